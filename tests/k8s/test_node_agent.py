"""The test node agent (tests/harness/node_agent.py) against the real API server and controllers:
it schedules Pods, runs them as local processes, provisions their volumes and reports status that
the real StatefulSet and PersistentVolume controllers act on."""

from __future__ import annotations

import contextlib
import json
import os
import time
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiException

from tests.harness.kube import ControlPlane
from tests.harness.node_agent import NODE_NAME, NodeAgent

pytestmark = pytest.mark.k8s

T = TypeVar("T")

# Writes what it was given (args, env, a configMap file) into its emptyDir, then serves that
# folder on $STREAMHOUSE_BIND_ADDRESS:8080.
REPORT_SERVER = """
import functools, http.server, json, os, sys
data_dir, pod_name, settings_file = sys.argv[1:4]
report = {
    "arg_pod_name": pod_name,
    "env_pod_name": os.environ["POD_NAME"],
    "greeting": os.environ["GREETING"],
    "settings": open(settings_file).read(),
    "settings_files": sorted(os.listdir(os.path.dirname(settings_file))),
    "data_dir": data_dir,
    "cache_dir": os.environ["CACHE_DIR"],
}
with open(os.path.join(data_dir, "report.json"), "w") as out:
    json.dump(report, out)
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=data_dir)
address = (os.environ["STREAMHOUSE_BIND_ADDRESS"], 8080)
http.server.ThreadingHTTPServer(address, handler).serve_forever()
"""

# Appends its Pod UID to a history file in its volume and serves what it found there before.
STATEFUL_SERVER = """
import http.server, json, os, sys
history = os.path.join(sys.argv[1], "history")
seen = open(history).read().split() if os.path.exists(history) else []
with open(history, "a") as out:
    out.write(os.environ["POD_UID"] + "\\n")
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"seen": seen, "pid": os.getpid()}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer((os.environ["STREAMHOUSE_BIND_ADDRESS"], 8080), Handler).serve_forever()
"""

# Writes a marker on SIGTERM, then exits; "ready" tells the exec probe the handler is in place.
TERM_WATCHER = """
import os, signal, sys, time
out = sys.argv[1]
def on_term(signum, frame):
    with open(os.path.join(out, "terminated"), "w") as marker:
        marker.write("SIGTERM")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
open(os.path.join(out, "ready"), "w").close()
while True:
    time.sleep(1)
"""


def _eventually(probe: Callable[[], T | None], timeout_s: float = 60, what: str = "") -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what or 'condition'} not met within {timeout_s}s")


def _create(plane: ControlPlane, namespace: str, *manifests: dict[str, Any]) -> None:
    plane.kubectl("create", "-n", namespace, "-f", "-", input_text=yaml.safe_dump_all(manifests))


def _pod(core: client.CoreV1Api, namespace: str, name: str) -> client.V1Pod | None:
    try:
        return core.read_namespaced_pod(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def _condition(pod: client.V1Pod, kind: str) -> str | None:
    return next((c.status for c in pod.status.conditions or [] if c.type == kind), None)


def _ready_pod(
    core: client.CoreV1Api,
    namespace: str,
    name: str,
    timeout_s: float = 60,
    not_uid: str | None = None,
) -> client.V1Pod:
    """Wait like `kubectl wait --for=condition=Ready` (for a Pod other than `not_uid`)."""

    def ready() -> client.V1Pod | None:
        pod = _pod(core, namespace, name)
        if pod is None or pod.metadata.uid == not_uid or pod.status.phase != "Running":
            return None
        return pod if _condition(pod, "Ready") == "True" else None

    return _eventually(ready, timeout_s, f"pod {name} Ready")


def _gone(core: client.CoreV1Api, namespace: str, name: str, uid: str | None) -> bool:
    pod = _pod(core, namespace, name)
    return pod is None or pod.metadata.uid != uid


def _pid(pod: client.V1Pod) -> int:
    container_id = pod.status.container_statuses[0].container_id
    assert container_id.startswith("local://"), container_id
    return int(container_id.removeprefix("local://"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _container(name: str, command: list[str], **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": "streamhouse:test", "command": command, **fields}


def _pod_manifest(name: str, *containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"terminationGracePeriodSeconds": 5, "containers": list(containers), **spec},
    }


def _statefulset(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    container = _container(
        "main",
        ["python", "-c", STATEFUL_SERVER],
        args=["/var/lib/streamhouse"],
        env=[{"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}}],
        ports=[{"name": "http", "containerPort": 8080}],
        volumeMounts=[{"name": "state", "mountPath": "/var/lib/streamhouse"}],
        readinessProbe={"tcpSocket": {"port": 8080}, "periodSeconds": 1},
        livenessProbe={"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"terminationGracePeriodSeconds": 5, "containers": [container]},
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "state"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
            ],
        },
    }


def test_the_node_is_ready_with_capacity_and_a_renewed_lease(
    node_agent: NodeAgent, kube_api: client.ApiClient
) -> None:
    node = client.CoreV1Api(kube_api).read_node(NODE_NAME)
    assert _condition_of_node(node, "Ready") == "True"
    assert node.status.capacity == {"cpu": "2", "memory": "24Gi", "pods": "110"}
    assert node.status.allocatable == node.status.capacity
    assert {(a.type, a.address) for a in node.status.addresses} >= {("InternalIP", "127.0.0.1")}
    lease = client.CoordinationV1Api(kube_api).read_namespaced_lease(NODE_NAME, "kube-node-lease")
    assert lease.spec.holder_identity == NODE_NAME
    assert (datetime.now(UTC) - lease.spec.renew_time).total_seconds() < 30


def _condition_of_node(node: client.V1Node, kind: str) -> str | None:
    return next((c.status for c in node.status.conditions or [] if c.type == kind), None)


def test_a_pod_runs_with_its_env_volumes_own_ip_and_readiness_probe(
    node_agent: NodeAgent, control_plane: ControlPlane, kube_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    settings = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings"},
        "data": {"greeting": "hello", "app.yaml": "mode: test\n"},
    }
    server = _container(
        "main",
        ["python", "-c", REPORT_SERVER],
        args=["/data", "$(POD_NAME)", "/etc/streamhouse/app.yaml"],
        env=[
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {
                "name": "GREETING",
                "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "greeting"}},
            },
            {"name": "CACHE_DIR", "value": "/data/cache-$(POD_NAME)"},
        ],
        ports=[{"name": "http", "containerPort": 8080}],
        volumeMounts=[
            {"name": "data", "mountPath": "/data"},
            {"name": "settings", "mountPath": "/etc/streamhouse"},
        ],
        readinessProbe={"httpGet": {"path": "/report.json", "port": "http"}, "periodSeconds": 1},
    )
    volumes = [
        {"name": "data", "emptyDir": {}},
        {
            "name": "settings",
            "configMap": {"name": "settings", "items": [{"key": "app.yaml", "path": "app.yaml"}]},
        },
    ]
    _create(control_plane, namespace, settings, _pod_manifest("web", server, volumes=volumes))

    pod = _ready_pod(core, namespace, "web")
    ip = pod.status.pod_ip
    assert ip.startswith("127.") and ip != "127.0.0.1"
    assert [i.ip for i in pod.status.pod_ips] == [ip]
    assert pod.status.host_ip == "127.0.0.1"
    assert pod.spec.node_name == NODE_NAME
    for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready"):
        assert _condition(pod, kind) == "True", kind
    status = pod.status.container_statuses[0]
    assert (status.ready, status.started, status.restart_count) == (True, True, 0)
    assert status.state.running.started_at is not None

    report = _get_json(f"http://{ip}:8080/report.json")
    assert report["arg_pod_name"] == report["env_pod_name"] == "web"
    assert report["greeting"] == "hello"
    assert report["settings"] == "mode: test\n"
    assert report["settings_files"] == ["app.yaml"]  # `items` picks keys
    # /data was mapped to the emptyDir's folder, in args and in env values alike.
    assert report["data_dir"] != "/data" and report["data_dir"].endswith("/volumes/data")
    assert report["cache_dir"] == f"{report['data_dir']}/cache-web"
    log = node_agent.log_path(namespace, "web", "main").read_text()
    assert "GET /report.json" in log  # the readiness probe's requests, answered on the pod IP


def test_a_statefulset_gets_bound_claims_ready_pods_and_scales_down(
    node_agent: NodeAgent, control_plane: ControlPlane, kube_api: client.ApiClient, namespace: str
) -> None:
    core, apps = client.CoreV1Api(kube_api), client.AppsV1Api(kube_api)
    _create(control_plane, namespace, _statefulset("db", replicas=2))

    _eventually(
        lambda: apps.read_namespaced_stateful_set("db", namespace).status.ready_replicas == 2,
        90,
        "readyReplicas == 2",
    )
    pods = [_ready_pod(core, namespace, f"db-{i}") for i in range(2)]
    ips = {pod.status.pod_ip for pod in pods}
    assert len(ips) == 2 and all(ip.startswith("127.") for ip in ips)
    for i, pod in enumerate(pods):
        claim = core.read_namespaced_persistent_volume_claim(f"state-db-{i}", namespace)
        assert claim.status.phase == "Bound"
        volume = core.read_persistent_volume(str(claim.spec.volume_name))
        assert volume.spec.host_path.path == str(node_agent.claim_path(namespace, f"state-db-{i}"))
        assert volume.spec.claim_ref.uid == claim.metadata.uid
        served = _get_json(f"http://{pod.status.pod_ip}:8080/")
        assert served["seen"] == []
        assert served["pid"] == _pid(pod) and node_agent.pids(namespace, f"db-{i}") == [_pid(pod)]

    pid = _pid(pods[1])
    assert _alive(pid)
    control_plane.kubectl("scale", "statefulset/db", "--replicas=1", "-n", namespace)
    _eventually(lambda: _gone(core, namespace, "db-1", pods[1].metadata.uid), 30, "db-1 gone")
    _eventually(lambda: not _alive(pid), 10, f"pid {pid} gone")
    assert _alive(_pid(pods[0]))


def test_a_recreated_statefulset_pod_finds_the_data_of_its_predecessor(
    node_agent: NodeAgent, control_plane: ControlPlane, kube_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    _create(control_plane, namespace, _statefulset("keeper", replicas=1))
    first = _ready_pod(core, namespace, "keeper-0", 90)
    assert _get_json(f"http://{first.status.pod_ip}:8080/")["seen"] == []

    core.delete_namespaced_pod("keeper-0", namespace)
    second = _ready_pod(core, namespace, "keeper-0", 60, not_uid=first.metadata.uid)
    assert _get_json(f"http://{second.status.pod_ip}:8080/")["seen"] == [first.metadata.uid]
    assert not _alive(_pid(first))
    history = node_agent.claim_path(namespace, "state-keeper-0") / "history"
    assert history.read_text().split() == [first.metadata.uid, second.metadata.uid]


def test_a_crashing_container_is_restarted_with_back_off(
    node_agent: NodeAgent, control_plane: ControlPlane, kube_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    crash = "import sys; print('crashing', flush=True); sys.exit(3)"
    _create(
        control_plane,
        namespace,
        _pod_manifest("crasher", _container("main", ["python", "-c", crash])),
    )

    def crash_looping() -> client.V1Pod | None:
        pod = _pod(core, namespace, "crasher")
        statuses = pod.status.container_statuses if pod is not None else None
        if not statuses or statuses[0].restart_count < 2 or statuses[0].state.waiting is None:
            return None
        return pod

    pod = _eventually(crash_looping, 30, "two restarts")
    status = pod.status.container_statuses[0]
    assert status.state.waiting.reason == "CrashLoopBackOff"
    assert status.last_state.terminated.exit_code == 3
    assert status.last_state.terminated.reason == "Error"
    assert status.ready is False
    assert pod.status.phase == "Running"  # restartPolicy Always: restarting, not failed
    assert _condition(pod, "Ready") == "False"
    log = node_agent.log_path(namespace, "crasher", "main").read_text()
    assert log.count("crashing") >= 3  # appended across restarts


def test_a_failing_liveness_probe_restarts_the_container(
    node_agent: NodeAgent, control_plane: ControlPlane, kube_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    # Listens nowhere, so the TCP liveness probe fails and the agent kills it (SIGTERM: 143).
    sleeper = _container(
        "main",
        ["python", "-c", "import time; time.sleep(600)"],
        livenessProbe={"tcpSocket": {"port": 8080}, "periodSeconds": 1, "failureThreshold": 1},
    )
    _create(control_plane, namespace, _pod_manifest("unhealthy", sleeper))

    def restarted() -> client.V1ContainerStatus | None:
        pod = _pod(core, namespace, "unhealthy")
        statuses = pod.status.container_statuses if pod is not None else None
        return statuses[0] if statuses and statuses[0].restart_count >= 1 else None

    status = _eventually(restarted, 30, "a liveness restart")
    assert status.last_state.terminated.exit_code == 143
    assert len(node_agent.pids(namespace, "unhealthy")) >= 2


def test_containers_that_finish_end_their_pod_or_never_start(
    node_agent: NodeAgent, control_plane: ControlPlane, kube_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    _create(
        control_plane,
        namespace,
        _pod_manifest("done", _container("main", ["true"]), restartPolicy="Never"),
        _pod_manifest("failed", _container("main", ["false"]), restartPolicy="OnFailure"),
        _pod_manifest("broken", _container("main", ["sh", "-c", "exit 2"]), restartPolicy="Never"),
        _pod_manifest("imageonly", {"name": "main", "image": "streamhouse:test"}),
    )

    def phase(name: str, expected: str) -> client.V1Pod | None:
        pod = _pod(core, namespace, name)
        return pod if pod is not None and pod.status.phase == expected else None

    done = _eventually(lambda: phase("done", "Succeeded"), 30, "done Succeeded")
    assert done.status.container_statuses[0].state.terminated.reason == "Completed"
    assert _condition(done, "Ready") == "False"
    broken = _eventually(lambda: phase("broken", "Failed"), 30, "broken Failed")
    assert broken.status.container_statuses[0].state.terminated.exit_code == 2

    def restarted_on_failure() -> client.V1Pod | None:
        pod = phase("failed", "Running")  # OnFailure: a failed container restarts
        return pod if pod is not None and pod.status.container_statuses[0].restart_count else None

    _eventually(restarted_on_failure, 30, "failed restarted")

    def no_command() -> str | None:
        pod = _pod(core, namespace, "imageonly")
        statuses = pod.status.container_statuses if pod is not None else None
        waiting = statuses[0].state.waiting if statuses else None
        return (
            waiting.reason
            if waiting is not None and waiting.reason != "ContainerCreating"
            else None
        )

    assert _eventually(no_command, 30, "a waiting reason") == "NoCommand"


def test_init_containers_secrets_downward_api_and_sub_paths(
    node_agent: NodeAgent,
    control_plane: ControlPlane,
    kube_api: client.ApiClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    core = client.CoreV1Api(kube_api)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds"},
        "stringData": {"PASSWORD": "s3cret"},
    }
    prepare = _container(
        "prepare",
        ["sh", "-c", 'echo prepared > "$WORK/ready.txt"'],
        env=[{"name": "WORK", "value": "/work"}],
        volumeMounts=[{"name": "work", "mountPath": "/work"}],
    )
    # Paths inside a shell string are not mapped; paths in env values are.
    script = 'cat "$READY" "$PODINFO" > "$OUT/report.txt"; echo "$DB_PASSWORD" >> "$OUT/report.txt"'
    main = _container(
        "main",
        ["sh", "-c", f"{script}; exec sleep 600"],
        env=[
            {"name": "READY", "value": "/config/ready.txt"},
            {"name": "PODINFO", "value": "/podinfo/labels"},
            {"name": "OUT", "value": "/out"},
        ],
        envFrom=[{"secretRef": {"name": "creds"}, "prefix": "DB_"}],
        volumeMounts=[
            {"name": "work", "mountPath": "/config/ready.txt", "subPath": "ready.txt"},
            {"name": "podinfo", "mountPath": "/podinfo"},
            {"name": "out", "mountPath": "/out"},
        ],
        readinessProbe={"exec": {"command": ["test", "-s", "/out/report.txt"]}, "periodSeconds": 1},
    )
    volumes = [
        {"name": "work", "emptyDir": {}},
        {"name": "out", "hostPath": {"path": str(tmp_path)}},
        {
            "name": "podinfo",
            "downwardAPI": {
                "items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]
            },
        },
    ]
    manifest = _pod_manifest("staged", main, initContainers=[prepare], volumes=volumes)
    manifest["metadata"]["labels"] = {"app": "staged"}
    _create(control_plane, namespace, secret, manifest)

    pod = _ready_pod(core, namespace, "staged")
    init = pod.status.init_container_statuses[0]
    assert (init.state.terminated.reason, init.state.terminated.exit_code) == ("Completed", 0)
    assert _condition(pod, "Initialized") == "True"
    assert (tmp_path / "report.txt").read_text() == 'prepared\napp="staged"s3cret\n'


def test_deleting_a_pod_sends_sigterm_first_then_removes_it(
    node_agent: NodeAgent,
    control_plane: ControlPlane,
    kube_api: client.ApiClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    core = client.CoreV1Api(kube_api)
    watcher = _container(
        "main",
        ["python", "-c", TERM_WATCHER],
        args=["/out"],
        volumeMounts=[{"name": "out", "mountPath": "/out"}],
        readinessProbe={"exec": {"command": ["test", "-f", "/out/ready"]}, "periodSeconds": 1},
    )
    volumes = [{"name": "out", "hostPath": {"path": str(tmp_path), "type": "Directory"}}]
    _create(
        control_plane,
        namespace,
        _pod_manifest("watcher", watcher, volumes=volumes, terminationGracePeriodSeconds=30),
    )
    pod = _ready_pod(core, namespace, "watcher")
    pid = _pid(pod)

    started = time.monotonic()
    core.delete_namespaced_pod("watcher", namespace)
    _eventually(lambda: _gone(core, namespace, "watcher", pod.metadata.uid), 30, "pod gone")
    # Well inside the 30 s grace period: the process left on SIGTERM, nobody waited to SIGKILL.
    assert time.monotonic() - started < 15
    assert (tmp_path / "terminated").read_text() == "SIGTERM"
    assert not _alive(pid)


def test_stopping_the_agent_leaves_no_processes_behind(
    control_plane: ControlPlane, kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    core = client.CoreV1Api(kube_api)
    node = f"orphans-{uuid.uuid4().hex[:8]}"
    # A second agent: its own Node and addresses, and it leaves scheduling to the first one.
    agent = NodeAgent.start(
        control_plane.kubeconfig,
        tmp_path / "agent",
        node,
        bind_pods=False,
        provision_volumes=False,
        pod_cidr="127.201.0.0/16",
    )
    # A shell with two children, one of which ignores SIGTERM: only SIGKILL to the group ends it.
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
    family = _container("main", ["sh", "-c", f"python -c '{stubborn}' & sleep 600 & wait"])
    try:
        _create(control_plane, namespace, _pod_manifest("family", family, nodeName=node))
        _eventually(lambda: len(agent.surviving_processes()) >= 3, 30, "sh, python and sleep")
        pod = _eventually(lambda: _pod(core, namespace, "family"), 10)
        assert pod.status.pod_ip.startswith("127.201.")
    finally:
        agent.stop()
        # Its node is dead now: nobody would finish a graceful deletion of its Pod.
        with contextlib.suppress(ApiException):
            core.delete_namespaced_pod("family", namespace, grace_period_seconds=0)
        core.delete_node(node)
    assert agent.process.returncode == 0
    assert agent.surviving_processes() == []
