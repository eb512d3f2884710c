"""A test-only node agent: a tiny kubelet, scheduler and local volume provisioner in one process.

The test control plane (tests/harness/kube.py) has no kube-scheduler and no kubelet, and this
machine has no container runtime. This agent fills the gap for end-to-end tests: it registers a
Node, binds every unscheduled Pod to it, provisions PersistentVolumes for pending claims, and runs
each container of each Pod bound to it as a local process, reporting Pod status like a kubelet,
so the real controllers (StatefulSet, PV binder, node lifecycle, ...) see Pods that really run.

Run it by hand with `python -m tests.harness.node_agent --kubeconfig PATH --root DIR`, or from a
test with `NodeAgent.start(kubeconfig, root)` (the `node_agent` fixture in tests/conftest.py).

What a Pod sees, and what a user of the agent must know
=======================================================
Processes
    `command` + `args` run as given; images do not exist, so a container without `command` never
    starts (waiting reason `NoCommand`). Each process runs in its own session/process group;
    when its main process exits, the rest of the group is killed too (as with a container's PID
    namespace). Output (stdout and stderr) is appended to `<root>/logs/<ns>_<pod>_<container>.log`.
    There is no kubelet API: `kubectl logs/exec/port-forward` do not work, read the log files.
    Every start and exit is recorded in `<root>/processes.jsonl`; `containerID` in the Pod status
    is `local://<pid>`.
Environment
    The agent's own environment is the base: its PATH starts with the agent's virtualenv `bin`
    folder and VIRTUAL_ENV is set, so `python` and `streamhouse` resolve to the repository's
    virtualenv. On top come PYTHONUNBUFFERED=1 and HOSTNAME=<pod name> (both overridable), the
    container's `envFrom` and `env` (fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef;
    `$(VAR)` expanded as the kubelet does), and last STREAMHOUSE_BIND_ADDRESS=<pod IP>, which the
    Pod cannot override (see the next paragraph).
Pod network
    There are no network namespaces. Each Pod gets its own loopback address (127.0.0.2,
    127.0.0.3, ... from --pod-cidr, handed out round-robin and released when the Pod goes),
    reported as status.podIP/podIPs; hostIP is 127.0.0.1. A process must bind to
    $STREAMHOUSE_BIND_ADDRESS (the variable name is configurable) instead of 0.0.0.0; that
    emulates the Pod's own network namespace, so several Pods can all listen on their
    containerPort 8080. Probes connect to podIP:port. Services, cluster IPs and cluster DNS do
    not work: connect to Pod IPs read from the API. `hostNetwork: true` Pods get 127.0.0.1.
Volumes
    persistentVolumeClaim (and generic ephemeral) volumes are the folder
    `<root>/volumes/<namespace>/<claimName>`, which outlives the Pod, so a re-created StatefulSet
    Pod finds its data. As a provisioner, the agent creates a hostPath PersistentVolume
    (`pvc-<claim uid>`, reclaim policy Retain, claimRef set) for each Pending claim, and the real
    PV controller binds the claim to it; when a claim is deleted, the agent deletes that volume and
    its folder. configMap, secret, downwardAPI and projected volumes (service account tokens come
    from the TokenRequest API) are written once into a per-Pod folder, with `items` honoured and
    never refreshed; emptyDir is a per-Pod folder; both are deleted with the Pod. hostPath is the
    host path itself. Other volume types are empty folders (with a warning).
Path mapping
    Processes see the host filesystem, so container paths are rewritten: every command/arg/env
    value (and exec probe argument, and workingDir) that equals a volumeMount's mountPath or
    starts with it on a path-segment boundary is rewritten to the local folder (longest mountPath
    first, `subPath`/`subPathExpr` honoured); so is the value part of `--flag=/path`. Paths inside
    files (a config file naming /var/lib/...) are NOT rewritten: pass paths via args or env.
    workingDir is used if it maps to a volume, else the process runs in its Pod folder.
Lifecycle
    Probes (httpGet, tcpSocket, exec; startup, liveness, readiness) honour their thresholds and
    delays; periods are at least 0.5 s. Restarts follow restartPolicy with back-off from 0.5 s to
    10 s (`CrashLoopBackOff` in between). A Pod being deleted gets SIGTERM, then SIGKILL after its
    grace period (capped at 30 s), then the agent deletes it for good; a Pod that vanished is
    killed at once. On SIGTERM/SIGINT, or when --parent-pid exits, the agent kills all its
    processes (SIGTERM, 5 s, SIGKILL) and exits; it leaves the Node and Pods in the API, as a
    kubelet that stopped would (the Node turns NotReady after the node monitor grace period).
    A SIGKILLed agent cannot clean up: its processes survive it.
Not emulated
    Images, resource limits, securityContext, service environment variables, DNS, volume
    refresh, preStop/postStart hooks, node selectors other than plain nodeSelector labels.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import ipaddress
import json
import logging
import math
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client import ApiException

from tests.harness.processes import REPO_ROOT, stop_process, wait_until

log = logging.getLogger("streamhouse.node_agent")

Obj = dict[str, Any]

NODE_NAME = "streamhouse-local"
BIND_ADDRESS_ENV = "STREAMHOUSE_BIND_ADDRESS"
POD_CIDR = "127.0.0.0/16"
HOST_IP = "127.0.0.1"
CAPACITY = {"cpu": "2", "memory": "24Gi", "pods": "110"}
COMPONENT = "streamhouse-node-agent"
PROVISIONER_LABEL = "streamhouse.dev/provisioned-by-node"
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_S = 40
HEARTBEAT_S = 10.0  # the kubelet's lease renewal period; node monitor grace is 40-50 s
MAX_GRACE_S = 30.0
SHUTDOWN_GRACE_S = 5.0
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 10.0
BACKOFF_RESET_S = 2 * BACKOFF_MAX_S  # a container that ran this long starts a fresh back-off
MIN_PROBE_PERIOD_S = 0.5
TICK_S = 0.1
WATCH_TIMEOUT_S = 30  # each watch ends after this and the informer relists: a periodic resync
TERMINAL = ("Succeeded", "Failed")
STRATEGIC_MERGE = "application/strategic-merge-patch+json"
MERGE_PATCH = "application/merge-patch+json"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now_micro() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dig(obj: Any, *keys: str) -> Any:
    """obj[k1][k2]... or None when any level is missing: API objects omit empty fields."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop_groups(
    processes: list[subprocess.Popen[bytes]],
    grace_s: float,
    abort: threading.Event | None = None,
) -> None:
    """SIGTERM each process group, wait up to `grace_s` for the leaders, then SIGKILL the groups.

    The SIGKILL goes to every group, also to those whose leader already exited: whatever the
    leader left behind dies with it, as it would with a container's PID namespace.
    """
    if grace_s > 0:
        for process in processes:
            _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for process in processes:
        while process.poll() is None and time.monotonic() < deadline:
            if abort is not None and abort.is_set():
                break
            time.sleep(0.05)
    for process in processes:
        _signal_group(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Expand `$(VAR)` as the kubelet does: `$$` is a literal `$`, unknown references stay."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == "$" and i + 1 < n:
            if text[i + 1] == "$":
                out.append("$")
                i += 2
                continue
            if text[i + 1] == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    value = lookup(text[i + 2 : end])
                    out.append(value if value is not None else text[i : end + 1])
                    i = end + 1
                    continue
        out.append(text[i])
        i += 1
    return "".join(out)


_QUANTITY = re.compile(r"([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)")
_SUFFIXES = {
    "": 1.0,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}


def parse_quantity(quantity: str) -> float:
    """A Kubernetes resource quantity ("500m", "1Gi", "2") as a float."""
    match = _QUANTITY.fullmatch(quantity.strip())
    if match is None or match.group(2) not in _SUFFIXES:
        raise ValueError(f"not a quantity: {quantity!r}")
    return float(match.group(1)) * _SUFFIXES[match.group(2)]


class NotReady(Exception):
    """Something a container needs (a ConfigMap, a claim, a key) is missing; retried later."""


@dataclass(frozen=True)
class PathMap:
    """Container paths -> host paths, from a container's volumeMounts.

    Longest mountPath first and whole path segments only, so /data does not capture /database
    and /var/lib/x/y maps through /var/lib/x rather than /var.
    """

    mounts: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, mounts: dict[str, Path]) -> PathMap:
        pairs = [(p.rstrip("/"), str(local)) for p, local in mounts.items() if p.rstrip("/")]
        return cls(tuple(sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)))

    def path(self, value: str) -> str | None:
        """The host path for a container path, or None if no mount covers it."""
        for mount_path, local in self.mounts:
            if value == mount_path or value.startswith(mount_path + "/"):
                return local + value[len(mount_path) :]
        return None

    def value(self, value: str) -> str:
        """Map a whole value, or the value part of `--flag=/path`; anything else unchanged."""
        mapped = self.path(value)
        if mapped is not None:
            return mapped
        if value.startswith("-") and "=" in value:
            flag, _, rest = value.partition("=")
            mapped = self.path(rest)
            if mapped is not None:
                return f"{flag}={mapped}"
        return value


class Kube:
    """Plain-JSON requests through the official client's transport (its TLS and credentials).

    Dicts in, dicts out: the typed models reject objects the agent must read or write (a Node
    with no nodeInfo, the Status a Binding returns), and the API's own JSON is what a kubelet
    speaks anyway.
    """

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)

    def request(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
        timeout_s: float = 15.0,
    ) -> Obj:
        """Send one request; raise ApiException on a non-2xx answer."""
        serialized = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or {},
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*serialized, _request_timeout=timeout_s)
        data = response.response.data
        if not 200 <= int(response.status) <= 299:
            raise ApiException(
                status=response.status,
                reason=response.reason,
                body=data.decode(errors="replace"),
            )
        parsed = json.loads(data) if data else {}
        return parsed if isinstance(parsed, dict) else {}


def api_client(kubeconfig: Path) -> client.ApiClient:
    """An ApiClient for a kubeconfig, with a connection pool big enough for the agent's threads."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.connection_pool_maxsize = 32
    return client.ApiClient(configuration)


class IpPool:
    """Loopback addresses for Pods, handed out round-robin so a freed one is not reused at once."""

    def __init__(self, cidr: str) -> None:
        network = ipaddress.IPv4Network(cidr)
        if not network.subnet_of(ipaddress.IPv4Network("127.0.0.0/8")):
            raise ValueError(f"pod CIDR {cidr} is not loopback; Linux routes all of 127/8 to lo")
        self._first = int(network.network_address) + 1
        self._last = int(network.broadcast_address) - 1
        self._next = self._first
        self._owners: dict[str, str] = {}
        self._lock = threading.Lock()

    def _usable(self, value: int) -> bool:
        return value % 256 not in (0, 255) and value != int(ipaddress.IPv4Address(HOST_IP))

    def allocate(self, owner: str, preferred: str | None = None) -> str:
        """An address for `owner` (its previous one if still free, e.g. after an agent restart)."""
        with self._lock:
            for address, holder in self._owners.items():
                if holder == owner:
                    return address
            if preferred and preferred not in self._owners:
                with contextlib.suppress(ValueError):
                    value = int(ipaddress.IPv4Address(preferred))
                    if self._first <= value <= self._last and self._usable(value):
                        self._owners[preferred] = owner
                        return preferred
            for _ in range(self._last - self._first + 1):
                value = self._next
                self._next = self._first if value >= self._last else value + 1
                address = str(ipaddress.IPv4Address(value))
                if self._usable(value) and address not in self._owners:
                    self._owners[address] = owner
                    return address
        raise RuntimeError("pod CIDR exhausted")

    def release(self, owner: str) -> None:
        with self._lock:
            for address in [a for a, holder in self._owners.items() if holder == owner]:
                del self._owners[address]


@dataclass
class ProbeState:
    """Consecutive results of one probe of one running container."""

    kind: str  # startup, liveness or readiness
    spec: Obj
    next_at: float
    result: bool | None
    successes: int = 0
    failures: int = 0

    @property
    def period_s(self) -> float:
        return max(MIN_PROBE_PERIOD_S, float(self.spec.get("periodSeconds") or 10))

    def record(self, ok: bool) -> bool:
        """Count one result; True when the settled result just turned to failure."""
        self.next_at = time.monotonic() + self.period_s
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= int(self.spec.get("successThreshold") or 1):
                self.result = True
            return False
        self.failures, self.successes = self.failures + 1, 0
        if (
            self.failures >= int(self.spec.get("failureThreshold") or 3)
            and self.result is not False
        ):
            self.result = False
            return True
        return False


class ContainerRun:
    """One container of one Pod: its process, restarts, probes and kubelet-style status."""

    def __init__(self, spec: Obj, init: bool, previous: Obj | None) -> None:
        self.spec = spec
        self.name: str = spec["name"]
        self.init = init
        self.sidecar = init and spec.get("restartPolicy") == "Always"
        # An agent restart adopts Pods whose containers already ran: keep counting from there.
        self.restart_count = int((previous or {}).get("restartCount") or 0)
        self.process: subprocess.Popen[bytes] | None = None
        self.container_id = ""
        self.state: Obj = {"waiting": {"reason": "ContainerCreating"}}
        self.last_state: Obj = {}
        self.exit_code: int | None = None
        self.done = False  # terminated and will not run again
        self.blocked = False  # can never start (no command)
        self.ever_ran = False
        self.sidecar_up = False  # a sidecar that started once lets initialization go on
        self.started = False  # startup probe passed (or none) in the current run
        self.started_at = ""
        self.started_mono = 0.0
        self.next_start = 0.0
        self.backoff_s = 0.0
        self.kill_deadline: float | None = None
        self.probes: dict[str, ProbeState] = {}
        self.raw_env: dict[str, str] = {}
        self.env: dict[str, str] = {}
        self.cwd = Path(".")
        self.paths = PathMap()
        self.reported = ""  # the last error reported as an event, to report each once

    @property
    def ready(self) -> bool:
        if self.process is None or not self.started or self.kill_deadline is not None:
            return False
        readiness = self.probes.get("readiness")
        return readiness is None or readiness.result is True

    def status(self) -> Obj:
        status: Obj = {
            "name": self.name,
            "image": self.spec.get("image") or "",
            "imageID": "",
            "ready": self.ready,
            "started": self.process is not None and self.started,
            "restartCount": self.restart_count,
            "state": self.state,
            "lastState": self.last_state,
        }
        if self.container_id:
            status["containerID"] = self.container_id
        return status


class PodWorker(threading.Thread):
    """Runs one Pod (one UID): volumes, processes, probes, status, and its termination."""

    def __init__(self, agent: Agent, pod: Obj) -> None:
        meta = pod["metadata"]
        self.uid: str = meta["uid"]
        self.namespace: str = meta["namespace"]
        self.pod_name: str = meta["name"]
        super().__init__(name=f"pod {self.namespace}/{self.pod_name}", daemon=True)
        self.agent = agent
        self.kube = agent.kube
        self._pod = pod
        self._pod_lock = threading.Lock()
        self._wake = threading.Event()
        self._vanished = threading.Event()
        self._proc_lock = threading.Lock()
        self._closed = False
        self.dir = agent.root / "pods" / f"{self.namespace}_{self.pod_name}_{self.uid}"
        status = pod.get("status") or {}
        previous = {
            s["name"]: s
            for s in (status.get("containerStatuses") or [])
            + (status.get("initContainerStatuses") or [])
        }
        spec = pod["spec"]
        self.init_containers = [
            ContainerRun(c, True, previous.get(c["name"])) for c in spec.get("initContainers") or []
        ]
        self.containers = [
            ContainerRun(c, False, previous.get(c["name"])) for c in spec.get("containers") or []
        ]
        # A Pod that already finished (adopted after an agent restart) is left as it is.
        self.adopted_terminal = status.get("phase") in TERMINAL
        self.phase: str = str(status.get("phase")) if self.adopted_terminal else "Pending"
        self.initialized = False
        self.start_time: str = status.get("startTime") or _now()
        self.ip = ""
        self.volume_paths: dict[str, Path] | None = None
        self.volume_error = ""
        self._volume_retry_at = 0.0
        self._transitions: dict[str, tuple[str, str]] = {}
        self._published: Obj | None = None
        self._publish_retry_at = 0.0

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.pod_name}"

    @property
    def pod(self) -> Obj:
        with self._pod_lock:
            return self._pod

    @property
    def all_containers(self) -> list[ContainerRun]:
        return [*self.init_containers, *self.containers]

    def update(self, pod: Obj) -> None:
        with self._pod_lock:
            self._pod = pod
        self._wake.set()

    def vanish(self) -> None:
        """The Pod is gone from the API (force-deleted or replaced): kill without grace."""
        self._vanished.set()
        self._wake.set()

    def close(self) -> list[subprocess.Popen[bytes]]:
        """Start nothing more; return the processes still running (the caller stops them)."""
        with self._proc_lock:
            self._closed = True
            return [c.process for c in self.all_containers if c.process is not None]

    # --- main loop --------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._run()
        except Exception:
            log.exception("pod %s: the agent failed running it", self.key)
        finally:
            # On agent shutdown the agent stops all processes itself, gracefully and in parallel.
            if not self.agent.stopping.is_set():
                self._kill_all(0)
                self.agent.ip_pool.release(self.uid)
                shutil.rmtree(self.dir, ignore_errors=True)
            self.agent.forget(self)

    def _run(self) -> None:
        if _dig(self.pod, "spec", "hostNetwork"):
            self.ip = HOST_IP
        else:
            self.ip = self.agent.ip_pool.allocate(self.uid, _dig(self.pod, "status", "podIP"))
        log.info("pod %s (%s): running with IP %s", self.key, self.uid, self.ip)
        while not self.agent.stopping.is_set():
            if self._vanished.is_set():
                log.info("pod %s (%s) vanished: killing its processes", self.key, self.uid)
                return
            pod = self.pod
            if _dig(pod, "metadata", "deletionTimestamp"):
                self._terminate(pod)
                return
            if self.phase not in TERMINAL:
                if self.volume_paths is None:
                    self._prepare_volumes(pod)
                if self.volume_paths is not None:
                    self._step(pod)
                if self.phase in TERMINAL:
                    self._kill_all(self._grace_s(pod))  # sidecars outlive nothing
            if not self.adopted_terminal:
                self._publish(pod)
            self._wake.wait(TICK_S)
            self._wake.clear()

    def _grace_s(self, pod: Obj) -> float:
        grace = _dig(pod, "metadata", "deletionGracePeriodSeconds")
        if grace is None:
            grace = _dig(pod, "spec", "terminationGracePeriodSeconds")
        return min(MAX_GRACE_S, max(0.0, float(30 if grace is None else grace)))

    def _terminate(self, pod: Obj) -> None:
        grace = self._grace_s(pod)
        if any(c.process is not None for c in self.all_containers):
            log.info("pod %s is being deleted: SIGTERM, SIGKILL after %.0fs", self.key, grace)
            self.agent.event(pod, "Killing", f"Stopping containers (grace period {grace:g}s)")
        self._kill_all(grace)
        if self._vanished.is_set():
            return
        if self.phase not in TERMINAL and not self.adopted_terminal:
            # Like a kubelet since 1.27: a deleted Pod reaches a terminal phase before it goes.
            failed = any(c.exit_code not in (None, 0) for c in self.containers)
            self.phase = "Failed" if failed else "Succeeded"
            self._publish(pod, force=True)
        self.agent.delete_pod(self.namespace, self.pod_name, self.uid)

    def _kill_all(self, grace_s: float) -> None:
        with self._proc_lock:
            self._closed = True
            running = [c for c in self.all_containers if c.process is not None]
        stop_groups([c.process for c in running if c.process], grace_s, self._vanished)
        for container in running:
            if container.process is not None:
                self._exited(container, container.process.returncode or 0, "Never")

    # --- volumes ----------------------------------------------------------------------------

    def _prepare_volumes(self, pod: Obj) -> None:
        if time.monotonic() < self._volume_retry_at:
            return
        try:
            paths = {v["name"]: self._volume(v, pod) for v in _dig(pod, "spec", "volumes") or []}
        except (NotReady, ApiException) as error:
            message = str(error) if isinstance(error, NotReady) else f"API error {error.status}"
            if message != self.volume_error:
                log.info("pod %s: volumes not ready: %s", self.key, message)
                self.agent.event(pod, "FailedMount", message, "Warning")
            self.volume_error = message
            self._volume_retry_at = time.monotonic() + 1.0
            return
        self.volume_paths, self.volume_error = paths, ""

    def _volume(self, volume: Obj, pod: Obj) -> Path:
        name: str = volume["name"]
        if (claim := volume.get("persistentVolumeClaim")) is not None:
            return self._claim_folder(claim["claimName"])
        if volume.get("ephemeral") is not None:
            return self._claim_folder(f"{self.pod_name}-{name}")  # the ephemeral-volume naming
        if (host := volume.get("hostPath")) is not None:
            path = Path(host["path"])
            if host.get("type") == "DirectoryOrCreate":
                path.mkdir(parents=True, exist_ok=True)
            elif host.get("type") == "FileOrCreate":
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            return path
        local = self.dir / "volumes" / name
        local.mkdir(parents=True, exist_ok=True)
        if volume.get("emptyDir") is not None:
            return local
        if (source := volume.get("configMap")) is not None:
            self._project_keys("configmap", source, source.get("name"), local, volume)
        elif (source := volume.get("secret")) is not None:
            self._project_keys("secret", source, source.get("secretName"), local, volume)
        elif (source := volume.get("downwardAPI")) is not None:
            self._project_downward(source.get("items") or [], local, source.get("defaultMode"), pod)
        elif (projected := volume.get("projected")) is not None:
            mode = projected.get("defaultMode")
            for item in projected.get("sources") or []:
                if (source := item.get("configMap")) is not None:
                    self._project_keys("configmap", source, source.get("name"), local, projected)
                elif (source := item.get("secret")) is not None:
                    self._project_keys("secret", source, source.get("name"), local, projected)
                elif (source := item.get("downwardAPI")) is not None:
                    self._project_downward(source.get("items") or [], local, mode, pod)
                elif (source := item.get("serviceAccountToken")) is not None:
                    _write_file(local / source["path"], self._token(source, pod), mode)
                else:
                    log.warning("pod %s: projected source %s not supported", self.key, list(item))
        else:
            kinds = sorted(k for k in volume if k != "name")
            log.warning("pod %s: volume %s of type %s is an empty folder", self.key, name, kinds)
        return local

    def _claim_folder(self, claim: str) -> Path:
        try:
            self.kube.request(
                "GET", f"/api/v1/namespaces/{self.namespace}/persistentvolumeclaims/{claim}"
            )
        except ApiException as error:
            if error.status == 404:
                raise NotReady(f'persistentvolumeclaim "{claim}" not found') from None
            raise
        folder = self.agent.claim_path(self.namespace, claim)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _source_data(self, kind: str, name: str, optional: bool) -> dict[str, bytes] | None:
        """A ConfigMap's or Secret's keys as bytes; None if it is missing and optional."""
        try:
            obj = self.kube.request("GET", f"/api/v1/namespaces/{self.namespace}/{kind}s/{name}")
        except ApiException as error:
            if error.status != 404:
                raise
            if optional:
                return None
            raise NotReady(f'{kind} "{name}" not found') from None
        if kind == "configmap":
            data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
            data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
            return data
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}

    def _project_keys(
        self, kind: str, source: Obj, name: str | None, target: Path, volume: Obj
    ) -> None:
        optional = bool(source.get("optional"))
        data = self._source_data(kind, name or "", optional)
        if data is None:
            return
        mode = volume.get("defaultMode")
        items = source.get("items")
        if not items:
            for key, value in data.items():
                _write_file(target / key, value, mode)
            return
        for item in items:
            if item["key"] not in data:
                if optional:
                    continue
                raise NotReady(f'{kind} "{name}" has no key "{item["key"]}"')
            _write_file(target / item["path"], data[item["key"]], item.get("mode", mode))

    def _project_downward(self, items: list[Obj], target: Path, mode: int | None, pod: Obj) -> None:
        for item in items:
            if (ref := item.get("fieldRef")) is not None:
                value = self._field(ref["fieldPath"], pod)
            elif (ref := item.get("resourceFieldRef")) is not None:
                value = self._resource(ref, self._container_spec(ref.get("containerName"), pod))
            else:
                continue
            _write_file(target / item["path"], value.encode(), item.get("mode", mode))

    def _token(self, source: Obj, pod: Obj) -> bytes:
        account = _dig(pod, "spec", "serviceAccountName") or "default"
        audience = source.get("audience")
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [audience] if audience else [],
                "expirationSeconds": int(source.get("expirationSeconds") or 3600),
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": self.pod_name,
                    "uid": self.uid,
                },
            },
        }
        path = f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{account}/token"
        try:
            result = self.kube.request("POST", path, body)
        except ApiException as error:
            raise NotReady(f"token for service account {account}: {error.status}") from None
        return str(_dig(result, "status", "token") or "").encode()

    # --- environment ------------------------------------------------------------------------

    def _container_spec(self, name: str | None, pod: Obj) -> Obj:
        for container in self.all_containers:
            if name in (None, "", container.name):
                return container.spec
        raise NotReady(f"no container named {name!r}")

    def _field(self, field_path: str, pod: Obj) -> str:
        meta = pod.get("metadata") or {}
        match = re.fullmatch(r"metadata\.(labels|annotations)\['(.*)'\]", field_path)
        if match:
            return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
        if field_path in ("metadata.labels", "metadata.annotations"):
            pairs = (meta.get(field_path.split(".")[1]) or {}).items()
            return "\n".join(f"{k}={json.dumps(v)}" for k, v in sorted(pairs))
        values = {
            "metadata.name": self.pod_name,
            "metadata.namespace": self.namespace,
            "metadata.uid": self.uid,
            "spec.nodeName": self.agent.node_name,
            "spec.serviceAccountName": _dig(pod, "spec", "serviceAccountName") or "",
            "status.podIP": self.ip,
            "status.podIPs": self.ip,
            "status.hostIP": HOST_IP,
            "status.hostIPs": HOST_IP,
        }
        if field_path not in values:
            raise NotReady(f"unsupported fieldRef {field_path}")
        return values[field_path]

    def _resource(self, ref: Obj, container: Obj) -> str:
        kind, _, resource = str(ref["resource"]).partition(".")
        quantity = _dig(container, "resources", kind, resource)
        if quantity is None and kind == "limits":
            quantity = CAPACITY.get(resource)  # no limit: the node's allocatable, as the kubelet
        value = parse_quantity(str(quantity or "0"))
        divisor = parse_quantity(str(ref.get("divisor") or "1")) or 1.0
        return str(math.ceil(value / divisor))

    def _value_from(self, source: Obj, container: ContainerRun, pod: Obj) -> str | None:
        if (ref := source.get("fieldRef")) is not None:
            return self._field(ref["fieldPath"], pod)
        if (ref := source.get("resourceFieldRef")) is not None:
            spec = self._container_spec(ref.get("containerName") or container.name, pod)
            return self._resource(ref, spec)
        for key, kind in (("configMapKeyRef", "configmap"), ("secretKeyRef", "secret")):
            if (ref := source.get(key)) is not None:
                optional = bool(ref.get("optional"))
                data = self._source_data(kind, ref["name"], optional)
                if data is None:
                    return None
                if ref["key"] not in data:
                    if optional:
                        return None
                    raise NotReady(f'couldn\'t find key {ref["key"]} in {kind} "{ref["name"]}"')
                return data[ref["key"]].decode(errors="replace")
        raise NotReady(f"unsupported valueFrom {sorted(source)}")

    def _injected(self) -> dict[str, str]:
        return {"HOSTNAME": self.pod_name, self.agent.bind_address_env: self.ip}

    def _declared_env(self, container: ContainerRun, pod: Obj) -> dict[str, str]:
        """The container's own variables (envFrom, then env), expanded, paths not yet mapped."""
        injected = self._injected()
        declared: dict[str, str] = {}
        for source in container.spec.get("envFrom") or []:
            prefix = source.get("prefix") or ""
            for key, kind in (("configMapRef", "configmap"), ("secretRef", "secret")):
                if (ref := source.get(key)) is not None:
                    data = self._source_data(kind, ref["name"], bool(ref.get("optional")))
                    for name, raw in (data or {}).items():
                        declared[prefix + name] = raw.decode(errors="replace")
        for var in container.spec.get("env") or []:
            if var.get("valueFrom") is not None:
                value = self._value_from(var["valueFrom"], container, pod)
            else:
                value = expand(var.get("value") or "", lambda n: declared.get(n, injected.get(n)))
            if value is not None:
                declared[var["name"]] = value
        return declared

    def _mounts(self, container: ContainerRun, raw_env: dict[str, str]) -> dict[str, Path]:
        """mountPath -> host path for each of the container's volumeMounts."""
        assert self.volume_paths is not None
        mounts: dict[str, Path] = {}
        for mount in container.spec.get("volumeMounts") or []:
            volume = self.volume_paths.get(mount["name"])
            if volume is None:
                raise NotReady(f"volumeMount {mount['name']} names no volume")
            sub_path = mount.get("subPath") or ""
            if mount.get("subPathExpr"):
                sub_path = expand(mount["subPathExpr"], raw_env.get)
            local = volume / sub_path if sub_path else volume
            if sub_path and not local.exists() and volume.is_dir():
                local.mkdir(parents=True, exist_ok=True)  # the kubelet creates subPath folders
            mounts[mount["mountPath"]] = local
        return mounts

    # --- containers -------------------------------------------------------------------------

    def _step(self, pod: Obj) -> None:
        policy = _dig(pod, "spec", "restartPolicy") or "Always"
        # Init containers restart on failure unless the Pod never restarts anything.
        init_policy = "Never" if policy == "Never" else "OnFailure"
        initialized = True
        for container in self.init_containers:
            self._step_container(container, "Always" if container.sidecar else init_policy, pod)
            if container.sidecar:
                container.sidecar_up = container.sidecar_up or container.started
                if not container.sidecar_up:
                    initialized = False
                    break
            elif not (container.done and container.exit_code == 0):
                if container.done:
                    self.phase = "Failed"
                initialized = False
                break
        self.initialized = initialized
        if initialized:
            for container in self.containers:
                self._step_container(container, policy, pod)
        self._update_phase(policy)

    def _step_container(self, container: ContainerRun, policy: str, pod: Obj) -> None:
        now = time.monotonic()
        process = container.process
        if process is not None:
            code = process.poll()
            if code is None:
                if container.kill_deadline is not None:
                    if now >= container.kill_deadline:
                        _signal_group(process.pid, signal.SIGKILL)
                else:
                    self._probe(container, pod)
                return
            self._exited(container, code, policy)
        if container.done or container.blocked or now < container.next_start:
            return
        self._start(container, pod, policy)

    def _start(self, container: ContainerRun, pod: Obj, policy: str) -> None:
        command = list(container.spec.get("command") or [])
        if not command:
            container.blocked = True
            message = (
                "the node agent runs no images: spec.containers[].command is required "
                "(e.g. [python, -m, ...] or [streamhouse, ...])"
            )
            container.state = {"waiting": {"reason": "NoCommand", "message": message}}
            self.agent.event(pod, "Failed", f"container {container.name}: {message}", "Warning")
            return
        try:
            declared = self._declared_env(container, pod)
            raw_env = {**self._injected(), **declared}
            raw_env[self.agent.bind_address_env] = self.ip
            mounts = self._mounts(container, raw_env)
        except (NotReady, ApiException) as error:
            message = str(error) if isinstance(error, NotReady) else f"API error {error.status}"
            container.state = {
                "waiting": {"reason": "CreateContainerConfigError", "message": message}
            }
            container.next_start = time.monotonic() + 1.0
            if container.reported != message:
                container.reported = message
                self.agent.event(pod, "Failed", f"Error: {message}", "Warning")
            return
        paths = PathMap.of(mounts)
        args = [*command, *(container.spec.get("args") or [])]
        argv = [paths.value(expand(arg, raw_env.get)) for arg in args]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HOSTNAME": self.pod_name}
        env.update({name: paths.value(value) for name, value in declared.items()})
        env[self.agent.bind_address_env] = self.ip  # the emulated network namespace wins
        working_dir = container.spec.get("workingDir")
        mapped_dir = paths.path(working_dir) if working_dir else None
        cwd = Path(mapped_dir) if mapped_dir else self.dir
        cwd.mkdir(parents=True, exist_ok=True)
        log_path = self.agent.log_path(self.namespace, self.pod_name, container.name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        start_error: OSError | None = None
        with self._proc_lock:
            if self._closed:
                return
            with log_path.open("ab") as output:
                try:
                    process: subprocess.Popen[bytes] | None = subprocess.Popen(
                        argv,
                        cwd=cwd,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                except OSError as failure:
                    process, start_error = None, failure
            container.process = process
        if container.ever_ran:
            container.restart_count += 1
        container.ever_ran = True
        container.started_at = _now()
        container.started_mono = time.monotonic()
        container.raw_env, container.env, container.cwd, container.paths = (
            raw_env,
            env,
            cwd,
            paths,
        )
        container.reported = ""
        if process is None:
            # Like a runtime's StartError: the container ran and failed at once.
            log.warning(
                "pod %s: container %s failed to start: %s", self.key, container.name, start_error
            )
            self.agent.event(pod, "Failed", f"Error: {start_error}", "Warning")
            self._exited(container, 128, policy, reason="StartError", message=str(start_error))
            return
        container.container_id = f"local://{process.pid}"
        container.state = {"running": {"startedAt": container.started_at}}
        container.kill_deadline = None
        now = time.monotonic()
        container.probes = {
            kind: ProbeState(
                kind,
                spec,
                now + float(spec.get("initialDelaySeconds") or 0),
                # Readiness starts failed and liveness succeeded, as in the kubelet.
                {"readiness": False, "liveness": True}.get(kind),
            )
            for kind in ("startup", "liveness", "readiness")
            if (spec := container.spec.get(f"{kind}Probe")) is not None
        }
        container.started = "startup" not in container.probes
        self.agent.record("start", self, container.name, process.pid)
        log.info("pod %s: started %s as pid %d: %s", self.key, container.name, process.pid, argv)
        self.agent.event(pod, "Started", f"Started container {container.name}")

    def _exited(
        self,
        container: ContainerRun,
        code: int,
        policy: str,
        reason: str = "",
        message: str = "",
    ) -> None:
        exit_code = code if code >= 0 else 128 - code
        process = container.process
        if process is not None:
            _signal_group(process.pid, signal.SIGKILL)  # the container's leftovers die with it
            self.agent.record("exit", self, container.name, process.pid, exit_code)
        terminated: Obj = {
            "exitCode": exit_code,
            "reason": reason or ("Completed" if exit_code == 0 else "Error"),
            "startedAt": container.started_at,
            "finishedAt": _now(),
        }
        if code < 0:
            terminated["signal"] = -code
        if message:
            terminated["message"] = message
        if container.container_id:
            terminated["containerID"] = container.container_id
        container.process = None
        container.exit_code = exit_code
        container.started = False
        container.kill_deadline = None
        container.probes = {}
        restart = policy == "Always" or (policy == "OnFailure" and exit_code != 0)
        if not restart or self._closed:
            container.state = {"terminated": terminated}
            container.done = True
            log.info("pod %s: %s exited with %d", self.key, container.name, exit_code)
            return
        now = time.monotonic()
        if now - container.started_mono >= BACKOFF_RESET_S:
            container.backoff_s = 0.0
        container.backoff_s = min(BACKOFF_MAX_S, container.backoff_s * 2 or BACKOFF_START_S)
        container.next_start = now + container.backoff_s
        container.last_state = {"terminated": terminated}
        container.state = {
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off {container.backoff_s:g}s restarting failed container="
                f"{container.name} pod={self.pod_name}_{self.namespace}({self.uid})",
            }
        }
        log.info(
            "pod %s: %s exited with %d; restarting in %gs",
            self.key,
            container.name,
            exit_code,
            container.backoff_s,
        )

    def _update_phase(self, policy: str) -> None:
        if self.phase in TERMINAL or not self.initialized:
            return
        running = waiting = stopped = succeeded = 0
        for container in self.containers:
            if container.process is not None:
                running += 1
            elif "terminated" in container.state:
                stopped += 1
                succeeded += container.exit_code == 0
            elif "terminated" in container.last_state:
                stopped += 1  # restarting after a termination
            else:
                waiting += 1
        # The kubelet's getPhase.
        if waiting:
            self.phase = "Pending"
        elif running:
            self.phase = "Running"
        elif stopped:
            if policy == "Always":
                self.phase = "Running"
            elif stopped == succeeded:
                self.phase = "Succeeded"
            elif policy == "Never":
                self.phase = "Failed"
            else:
                self.phase = "Running"

    # --- probes -----------------------------------------------------------------------------

    def _probe(self, container: ContainerRun, pod: Obj) -> None:
        now = time.monotonic()
        startup = container.probes.get("startup")
        if startup is not None and not container.started:
            if now >= startup.next_at:
                failed = self._check(startup, container, pod)
                if startup.result is True:
                    container.started = True
                elif failed:
                    self._kill_container(container, pod, "failed startup probe")
            return  # liveness and readiness wait for the startup probe
        for kind in ("liveness", "readiness"):
            probe = container.probes.get(kind)
            if probe is None or now < probe.next_at:
                continue
            if self._check(probe, container, pod) and kind == "liveness":
                self._kill_container(container, pod, "failed liveness probe")
                return

    def _check(self, probe: ProbeState, container: ContainerRun, pod: Obj) -> bool:
        ok = self._run_probe(probe.spec, container)
        failed = probe.record(ok)
        if failed:
            message = f"{probe.kind.capitalize()} probe failed for container {container.name}"
            self.agent.event(pod, "Unhealthy", message, "Warning")
        return failed

    def _kill_container(self, container: ContainerRun, pod: Obj, why: str) -> None:
        if container.process is None or container.kill_deadline is not None:
            return
        message = f"Container {container.name} {why}, will be restarted"
        log.info("pod %s: %s", self.key, message)
        self.agent.event(pod, "Killing", message)
        _signal_group(container.process.pid, signal.SIGTERM)
        container.kill_deadline = time.monotonic() + self._grace_s(pod)

    def _port(self, port: int | str, container: ContainerRun) -> int:
        if isinstance(port, int):
            return port
        if port.isdigit():
            return int(port)
        specs = [container.spec, *(c.spec for c in self.all_containers)]
        for spec in specs:
            for declared in spec.get("ports") or []:
                if declared.get("name") == port:
                    return int(declared["containerPort"])
        raise ValueError(f"no containerPort named {port!r}")

    def _run_probe(self, spec: Obj, container: ContainerRun) -> bool:
        timeout_s = max(1.0, float(spec.get("timeoutSeconds") or 1))
        try:
            if (get := spec.get("httpGet")) is not None:
                return self._http_probe(get, container, timeout_s)
            if (tcp := spec.get("tcpSocket")) is not None:
                address = (tcp.get("host") or self.ip, self._port(tcp["port"], container))
                with socket.create_connection(address, timeout=timeout_s):
                    return True
            if (command := _dig(spec, "exec", "command")) is not None:
                return self._exec_probe(command, container, timeout_s)
        except (OSError, http.client.HTTPException, ValueError) as error:
            log.debug("pod %s: probe of %s failed: %s", self.key, container.name, error)
            return False
        log.warning("pod %s: unsupported probe %s counts as success", self.key, sorted(spec))
        return True

    def _http_probe(self, get: Obj, container: ContainerRun, timeout_s: float) -> bool:
        host = get.get("host") or self.ip
        port = self._port(get["port"], container)
        connection: http.client.HTTPConnection
        if str(get.get("scheme") or "HTTP").upper() == "HTTPS":
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # the kubelet does not verify probe certificates
            connection = http.client.HTTPSConnection(host, port, timeout=timeout_s, context=context)
        else:
            connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
        headers = {h["name"]: h["value"] for h in get.get("httpHeaders") or []}
        headers.setdefault("User-Agent", "kube-probe/streamhouse-node-agent")
        try:
            connection.request("GET", get.get("path") or "/", headers=headers)
            return 200 <= connection.getresponse().status < 400
        finally:
            connection.close()

    def _exec_probe(self, command: list[str], container: ContainerRun, timeout_s: float) -> bool:
        argv = [container.paths.value(expand(arg, container.raw_env.get)) for arg in command]
        process = subprocess.Popen(
            argv,
            cwd=container.cwd,
            env=container.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            return process.wait(timeout=timeout_s) == 0
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()
            return False

    # --- status -----------------------------------------------------------------------------

    def _condition(self, pod: Obj, kind: str, ok: bool, reason: str = "", message: str = "") -> Obj:
        status = "True" if ok else "False"
        previous = self._transitions.get(kind)
        if previous is None or previous[0] != status:
            since = _now()
            for existing in _dig(pod, "status", "conditions") or []:
                # Keep the API's transition time when the status did not change (adoption).
                if existing.get("type") == kind and existing.get("status") == status:
                    since = existing.get("lastTransitionTime") or since
            self._transitions[kind] = (status, since)
        condition: Obj = {
            "type": kind,
            "status": status,
            "lastTransitionTime": self._transitions[kind][1],
        }
        # Explicit nulls: a strategic merge patch keeps fields it is not told to delete.
        condition["reason"] = reason if not ok and reason else None
        condition["message"] = message if not ok and reason and message else None
        return condition

    def _status(self, pod: Obj) -> Obj:
        if self.volume_paths is None:
            for container in self.all_containers:
                message = self.volume_error or "preparing volumes"
                container.state = {"waiting": {"reason": "ContainerCreating", "message": message}}
        elif not self.initialized:
            for container in self.containers:
                if container.state.get("waiting", {}).get("reason") == "ContainerCreating":
                    container.state = {"waiting": {"reason": "PodInitializing"}}
        terminal = self.phase in TERMINAL
        unready = [c.name for c in self.containers if not c.ready]
        unready += [c.name for c in self.init_containers if c.sidecar and not c.ready]
        containers_ready = not unready and self.initialized and not terminal
        gates_ok = True
        conditions = {
            c.get("type"): c.get("status") for c in _dig(pod, "status", "conditions") or []
        }
        for gate in _dig(pod, "spec", "readinessGates") or []:
            gates_ok = gates_ok and conditions.get(gate.get("conditionType")) == "True"
        reason = "PodCompleted" if terminal else "ContainersNotReady"
        message = "" if terminal else f"containers with unready status: [{' '.join(unready)}]"
        uninitialized = [c.name for c in self.init_containers if not (c.done or c.sidecar_up)]
        status: Obj = {
            "phase": self.phase,
            "conditions": [
                self._condition(pod, "PodReadyToStartContainers", bool(self.ip)),
                self._condition(
                    pod,
                    "Initialized",
                    self.initialized or terminal,
                    "ContainersNotInitialized",
                    f"containers with incomplete status: [{' '.join(uninitialized)}]",
                ),
                self._condition(pod, "ContainersReady", containers_ready, reason, message),
                self._condition(
                    pod,
                    "Ready",
                    containers_ready and gates_ok,
                    reason if not containers_ready else "ReadinessGatesNotReady",
                    message if not containers_ready else "readiness gates are not all True",
                ),
                self._condition(pod, "PodScheduled", True),
            ],
            "hostIP": HOST_IP,
            "hostIPs": [{"ip": HOST_IP}],
            "podIP": self.ip,
            "podIPs": [{"ip": self.ip}],
            "startTime": self.start_time,
            "containerStatuses": [c.status() for c in self.containers],
        }
        if self.init_containers:
            status["initContainerStatuses"] = [c.status() for c in self.init_containers]
        return status

    def _publish(self, pod: Obj, force: bool = False) -> None:
        """Patch the status subresource when it changed; the UID in the patch guards against
        writing to a newer Pod of the same name."""
        status = self._status(pod)
        if not force and (status == self._published or time.monotonic() < self._publish_retry_at):
            return
        path = f"/api/v1/namespaces/{self.namespace}/pods/{self.pod_name}/status"
        body = {"metadata": {"uid": self.uid}, "status": status}
        try:
            self.kube.request("PATCH", path, body, content_type=STRATEGIC_MERGE)
        except ApiException as error:
            if error.status in (404, 409, 422) and not self._still_exists():
                self.vanish()
                return
            log.warning("pod %s: status patch failed: %s %s", self.key, error.status, error.body)
            self._publish_retry_at = time.monotonic() + 1.0
            return
        except Exception as error:  # connection trouble: try again shortly
            log.warning("pod %s: status patch failed: %s", self.key, error)
            self._publish_retry_at = time.monotonic() + 1.0
            return
        self._published = json.loads(json.dumps(status))

    def _still_exists(self) -> bool:
        try:
            pod = self.kube.request(
                "GET", f"/api/v1/namespaces/{self.namespace}/pods/{self.pod_name}"
            )
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return bool(_dig(pod, "metadata", "uid") == self.uid)


def _write_file(path: Path, data: bytes, mode: int | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(0o644 if mode is None else mode)


class Informer(threading.Thread):
    """List, then watch from the list's resourceVersion; relist when the watch ends or fails.

    Each watch ends after WATCH_TIMEOUT_S, so the relist is also a periodic resync that repairs
    anything a lost event left behind.
    """

    def __init__(
        self,
        name: str,
        kube: Kube,
        path: str,
        list_function: Callable[..., Any],
        on_list: Callable[[list[Obj]], None],
        on_event: Callable[[str, Obj], None],
        stopping: threading.Event,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.kube, self.path, self.list_function = kube, path, list_function
        self.on_list, self.on_event, self.stopping = on_list, on_event, stopping

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                listing = self.kube.request("GET", self.path)
                self.on_list(listing.get("items") or [])
                version = _dig(listing, "metadata", "resourceVersion")
                watcher = watch.Watch()  # type: ignore[no-untyped-call]
                events = watcher.stream(  # type: ignore[no-untyped-call]
                    self.list_function,
                    resource_version=version,
                    timeout_seconds=WATCH_TIMEOUT_S,
                    allow_watch_bookmarks=True,
                    deserialize=False,
                    _request_timeout=WATCH_TIMEOUT_S + 10,
                )
                for event in events:
                    if self.stopping.is_set():
                        watcher.stop()  # type: ignore[no-untyped-call]
                        break
                    if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                        self.on_event(event["type"], event["object"])
            except Exception as error:
                if not self.stopping.is_set():
                    log.warning("%s informer: %s; relisting", self.name, error)
                    self.stopping.wait(1.0)


class Agent:
    """The node agent itself, in this process: call `run()` from the main thread."""

    def __init__(
        self,
        api: client.ApiClient,
        root: Path,
        node_name: str = NODE_NAME,
        *,
        bind_address_env: str = BIND_ADDRESS_ENV,
        pod_cidr: str = POD_CIDR,
        bind_pods: bool = True,
        provision_volumes: bool = True,
        parent_pid: int | None = None,
    ) -> None:
        self.kube = Kube(api)
        self.root = root.resolve()
        self.node_name = node_name
        self.bind_address_env = bind_address_env
        self.bind_pods = bind_pods
        self.provision_volumes = provision_volumes
        self.parent_pid = parent_pid
        self.ip_pool = IpPool(pod_cidr)
        self.stopping = threading.Event()
        self.labels = {
            "kubernetes.io/hostname": node_name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": {"x86_64": "amd64", "aarch64": "arm64"}.get(
                platform.machine(), platform.machine()
            ),
            "streamhouse.dev/node-agent": "true",
        }
        self._workers: dict[str, PodWorker] = {}
        self._finished: dict[str, float] = {}
        self._lock = threading.Lock()
        self._records_lock = threading.Lock()
        self._ready_since = _now()
        self._node_uid = ""
        self._unschedulable: set[str] = set()

    # --- paths shared with the launcher -----------------------------------------------------

    def log_path(self, namespace: str, pod: str, container: str) -> Path:
        return self.root / "logs" / f"{namespace}_{pod}_{container}.log"

    def claim_path(self, namespace: str, claim: str) -> Path:
        return self.root / "volumes" / namespace / claim

    # --- lifecycle --------------------------------------------------------------------------

    def run(self) -> None:
        """Register the Node, serve until `stop()`, then kill every process the agent started."""
        for folder in ("pods", "volumes", "logs"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        self._register_node()
        self._renew_lease()
        core = self.kube.core
        threads: list[threading.Thread] = [
            threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True),
            Informer(
                "pods",
                self.kube,
                "/api/v1/pods",
                core.list_pod_for_all_namespaces,
                self._on_pods_listed,
                self._on_pod,
                self.stopping,
            ),
        ]
        if self.provision_volumes:
            threads.append(
                Informer(
                    "claims",
                    self.kube,
                    "/api/v1/persistentvolumeclaims",
                    core.list_persistent_volume_claim_for_all_namespaces,
                    self._on_claims_listed,
                    self._on_claim,
                    self.stopping,
                )
            )
        for thread in threads:
            thread.start()
        log.info("node %s is up; root %s", self.node_name, self.root)
        # A timed wait so signal handlers run promptly in this (main) thread.
        while not self.stopping.wait(1.0):
            pass
        self._shutdown()

    def stop(self) -> None:
        """Ask `run()` to shut down (safe from signal handlers and other threads)."""
        self.stopping.set()

    def _shutdown(self) -> None:
        with self._lock:  # `stopping` is set: no new workers after this
            workers = list(self._workers.values())
        processes = [process for worker in workers for process in worker.close()]
        log.info("shutting down: stopping %d processes", len(processes))
        stop_groups(processes, SHUTDOWN_GRACE_S)
        for worker in workers:
            worker.join(timeout=2)
        log.info("node agent stopped")

    def forget(self, worker: PodWorker) -> None:
        now = time.monotonic()
        with self._lock:
            if self._workers.get(worker.uid) is worker:
                del self._workers[worker.uid]
            # Late watch events for a finished Pod must not start it again.
            self._finished[worker.uid] = now
            for uid in [u for u, t in self._finished.items() if now - t > 600]:
                del self._finished[uid]

    # --- node and lease ---------------------------------------------------------------------

    def _node_conditions(self) -> list[Obj]:
        now = _now()

        def condition(kind: str, status: str, reason: str, message: str) -> Obj:
            return {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": now,
                "lastTransitionTime": self._ready_since,
            }

        return [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "no pressure"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "no pressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "no pressure"),
            condition("Ready", "True", "KubeletReady", f"{COMPONENT} is posting ready status"),
        ]

    def _node_status(self) -> Obj:
        try:
            version = str(self.kube.request("GET", "/version").get("gitVersion") or "v0.0.0")
        except Exception:
            version = "v0.0.0"

        def read(path: str, default: str) -> str:
            try:
                return Path(path).read_text().strip() or default
            except OSError:
                return default

        machine_id = read("/etc/machine-id", uuid.uuid4().hex)
        return {
            "capacity": dict(CAPACITY),
            "allocatable": dict(CAPACITY),
            "addresses": [
                {"type": "InternalIP", "address": HOST_IP},
                {"type": "Hostname", "address": self.node_name},
            ],
            "conditions": self._node_conditions(),
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            # Every field is set: clients (the Python one included) reject a partial nodeInfo.
            "nodeInfo": {
                "machineID": machine_id,
                "systemUUID": machine_id,
                "bootID": read("/proc/sys/kernel/random/boot_id", machine_id),
                "kernelVersion": platform.release(),
                "osImage": platform.platform(),
                "containerRuntimeVersion": f"{COMPONENT}://0.1.0",
                "kubeletVersion": version,
                "kubeProxyVersion": version,
                "operatingSystem": "linux",
                "architecture": self.labels["kubernetes.io/arch"],
            },
        }

    def _register_node(self) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.node_name, "labels": self.labels},
            "spec": {},
            "status": self._node_status(),
        }
        try:
            node = self.kube.request("POST", "/api/v1/nodes", body)
        except ApiException as error:
            if error.status != 409:
                raise
            # Registered before (an earlier run): refresh labels and status.
            self.kube.request(
                "PATCH",
                f"/api/v1/nodes/{self.node_name}",
                {"metadata": {"labels": self.labels}},
                content_type=STRATEGIC_MERGE,
            )
            node = self.kube.request(
                "PATCH",
                f"/api/v1/nodes/{self.node_name}/status",
                {"status": body["status"]},
                content_type=STRATEGIC_MERGE,
            )
        self._node_uid = str(_dig(node, "metadata", "uid") or "")
        log.info("registered node %s", self.node_name)

    def _node_heartbeat(self) -> None:
        try:
            self.kube.request(
                "PATCH",
                f"/api/v1/nodes/{self.node_name}/status",
                {"status": {"conditions": self._node_conditions()}},
                content_type=STRATEGIC_MERGE,
            )
        except ApiException as error:
            if error.status != 404:
                raise
            log.warning("node %s was deleted: registering it again", self.node_name)
            self._register_node()

    def _renew_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases/{self.node_name}"
        now = _now_micro()
        spec = {
            "holderIdentity": self.node_name,
            "leaseDurationSeconds": LEASE_DURATION_S,
            "renewTime": now,
        }
        try:
            self.kube.request("PATCH", path, {"spec": spec}, content_type=MERGE_PATCH)
            return
        except ApiException as error:
            if error.status != 404:
                raise
        owner = {"apiVersion": "v1", "kind": "Node", "name": self.node_name, "uid": self._node_uid}
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.node_name,
                "namespace": LEASE_NAMESPACE,
                "ownerReferences": [owner] if self._node_uid else [],
            },
            "spec": {**spec, "acquireTime": now},
        }
        try:
            self.kube.request(
                "POST", f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases", body
            )
        except ApiException as error:
            if error.status != 409:  # created meanwhile: the next beat renews it
                raise

    def _heartbeat_loop(self) -> None:
        next_beat = time.monotonic() + HEARTBEAT_S
        while not self.stopping.wait(1.0):
            if self.parent_pid is not None and os.getppid() != self.parent_pid:
                log.warning("parent process %d is gone: shutting down", self.parent_pid)
                self.stop()
                return
            if time.monotonic() < next_beat:
                continue
            next_beat = time.monotonic() + HEARTBEAT_S
            try:
                self._renew_lease()
                self._node_heartbeat()
            except Exception as error:
                log.warning("heartbeat failed: %s", error)

    # --- pods -------------------------------------------------------------------------------

    def _on_pods_listed(self, pods: list[Obj]) -> None:
        seen = set()
        for pod in pods:
            seen.add(_dig(pod, "metadata", "uid"))
            self._on_pod("MODIFIED", pod)
        with self._lock:
            gone = [w for uid, w in self._workers.items() if uid not in seen]
        for worker in gone:
            worker.vanish()

    def _on_pod(self, kind: str, pod: Obj) -> None:
        uid = _dig(pod, "metadata", "uid")
        if not uid:
            return
        if kind == "DELETED":
            with self._lock:
                worker = self._workers.get(uid)
            if worker is not None:
                worker.vanish()
            return
        node = _dig(pod, "spec", "nodeName")
        if not node:
            if self.bind_pods:
                self._bind(pod)
            return
        if node != self.node_name:
            return
        with self._lock:
            if self.stopping.is_set() or uid in self._finished:
                return
            worker = self._workers.get(uid)
            if worker is None:
                worker = PodWorker(self, pod)
                self._workers[uid] = worker
                worker.start()
                return
        worker.update(pod)

    def _bind(self, pod: Obj) -> None:
        """Do the scheduler's one job for the default scheduler's Pods: POST a Binding."""
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        if meta.get("deletionTimestamp") or _dig(pod, "status", "phase") in TERMINAL:
            return
        if spec.get("schedulerName") not in (None, "", "default-scheduler"):
            return
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        selector = spec.get("nodeSelector") or {}
        if any(self.labels.get(k) != v for k, v in selector.items()):
            if key not in self._unschedulable:
                self._unschedulable.add(key)
                log.info("pod %s: nodeSelector %s does not match this node", key, selector)
            return
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/binding"
        try:
            self.kube.request("POST", path, body)
        except ApiException as error:
            if error.status not in (404, 409):  # gone, or bound already: nothing to do
                log.warning("pod %s: binding failed: %s %s", key, error.status, error.body)
            return
        log.info("pod %s: bound to %s", key, self.node_name)
        self.event(pod, "Scheduled", f"Successfully assigned {key} to {self.node_name}")

    def delete_pod(self, namespace: str, name: str, uid: str) -> None:
        """Finish a graceful deletion, as a kubelet does once the containers are gone."""
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": uid},
        }
        try:
            self.kube.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}", body)
        except ApiException as error:
            if error.status not in (404, 409):
                log.warning("pod %s/%s: delete failed: %s", namespace, name, error.status)
                return
        log.info("pod %s/%s (%s) deleted", namespace, name, uid)

    # --- volumes ----------------------------------------------------------------------------

    def _on_claims_listed(self, claims: list[Obj]) -> None:
        for claim in claims:
            self._on_claim("MODIFIED", claim)
        # Volumes whose claims went while no watch was running.
        live = {_dig(claim, "metadata", "uid") for claim in claims}
        volumes = self.kube.request(
            "GET",
            "/api/v1/persistentvolumes",
            query={"labelSelector": f"{PROVISIONER_LABEL}={self.node_name}"},
        )
        for volume in volumes.get("items") or []:
            if _dig(volume, "spec", "claimRef", "uid") not in live:
                self._delete_volume(volume)

    def _on_claim(self, kind: str, claim: Obj) -> None:
        if kind == "DELETED":
            try:
                volume = self.kube.request(
                    "GET", f"/api/v1/persistentvolumes/pvc-{_dig(claim, 'metadata', 'uid')}"
                )
            except ApiException as error:
                if error.status != 404:
                    log.warning("volume lookup failed: %s", error.status)
                return
            self._delete_volume(volume)
            return
        meta, spec = claim.get("metadata") or {}, claim.get("spec") or {}
        if _dig(claim, "status", "phase") != "Pending" or spec.get("volumeName"):
            return
        if meta.get("deletionTimestamp") or spec.get("selector"):
            return  # a selector asks for some pre-made volume, not ours
        if spec.get("volumeMode") == "Block":
            return
        self._provision(claim)

    def _provision(self, claim: Obj) -> None:
        meta, spec = claim["metadata"], claim.get("spec") or {}
        folder = self.claim_path(meta["namespace"], meta["name"])
        folder.mkdir(parents=True, exist_ok=True)
        volume = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": f"pvc-{meta['uid']}",
                "labels": {PROVISIONER_LABEL: self.node_name},
                "annotations": {"pv.kubernetes.io/provisioned-by": COMPONENT},
            },
            "spec": {
                "capacity": {
                    "storage": _dig(spec, "resources", "requests", "storage") or "1Gi",
                },
                "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                # Retain: the PV controller has no deleter for hostPath; the agent deletes the
                # volume itself when the claim goes.
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": spec.get("storageClassName") or "",
                "volumeMode": spec.get("volumeMode") or "Filesystem",
                "hostPath": {"path": str(folder), "type": "DirectoryOrCreate"},
                # Pre-bound: the real PV controller completes the binding from the claim's side.
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "namespace": meta["namespace"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            },
        }
        try:
            self.kube.request("POST", "/api/v1/persistentvolumes", volume)
        except ApiException as error:
            if error.status != 409:
                log.warning(
                    "claim %s/%s: provisioning failed: %s",
                    meta["namespace"],
                    meta["name"],
                    error.body,
                )
            return
        log.info("claim %s/%s: provisioned %s", meta["namespace"], meta["name"], folder)

    def _delete_volume(self, volume: Obj) -> None:
        if _dig(volume, "metadata", "labels", PROVISIONER_LABEL) != self.node_name:
            return
        name = _dig(volume, "metadata", "name")
        try:
            self.kube.request("DELETE", f"/api/v1/persistentvolumes/{name}")
        except ApiException as error:
            if error.status != 404:
                log.warning("volume %s: delete failed: %s", name, error.status)
                return
        folder = Path(str(_dig(volume, "spec", "hostPath", "path") or ""))
        if folder.is_relative_to(self.root / "volumes"):
            shutil.rmtree(folder, ignore_errors=True)
        log.info("volume %s deleted with its claim", name)

    # --- bookkeeping ------------------------------------------------------------------------

    def record(
        self, event: str, worker: PodWorker, container: str, pid: int, code: int | None = None
    ) -> None:
        """Append a process start/exit to <root>/processes.jsonl (tests find pids there)."""
        line = {
            "event": event,
            "namespace": worker.namespace,
            "pod": worker.pod_name,
            "uid": worker.uid,
            "container": container,
            "pid": pid,
            "time": _now_micro(),
        }
        if code is not None:
            line["exitCode"] = code
        with self._records_lock, (self.root / "processes.jsonl").open("a") as out:
            out.write(json.dumps(line) + "\n")

    def event(self, pod: Obj, reason: str, message: str, kind: str = "Normal") -> None:
        """Best effort core/v1 Event, so `kubectl describe pod` tells what happened."""
        if self.stopping.is_set():
            return
        meta = pod.get("metadata") or {}
        now = _now()
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"{meta.get('name')}.",
                "namespace": meta.get("namespace"),
            },
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": COMPONENT, "host": self.node_name},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.node_name,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        with contextlib.suppress(Exception):
            self.kube.request("POST", f"/api/v1/namespaces/{meta.get('namespace')}/events", body)


# --- the launcher -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessRecord:
    """One line of <root>/processes.jsonl."""

    event: str  # "start" or "exit"
    namespace: str
    pod: str
    uid: str
    container: str
    pid: int


@dataclass
class NodeAgent:
    """A node agent running as a subprocess, for fixtures: `NodeAgent.start(...)`, `.stop()`."""

    kubeconfig: Path
    root: Path
    node_name: str
    process: subprocess.Popen[bytes]
    _kube: Kube | None = field(default=None, repr=False)

    @classmethod
    def start(
        cls,
        kubeconfig: Path,
        root: Path,
        node_name: str = NODE_NAME,
        *,
        bind_pods: bool = True,
        provision_volumes: bool = True,
        pod_cidr: str = POD_CIDR,
        bind_address_env: str = BIND_ADDRESS_ENV,
        timeout_s: float = 60.0,
    ) -> NodeAgent:
        """Start `python -m tests.harness.node_agent` (log: <root>/node-agent.log) and wait
        until its Node is Ready in the API.

        Give a second agent on the same cluster its own `pod_cidr`, and usually
        `bind_pods=False, provision_volumes=False`: it then runs only Pods naming its Node.
        """
        root = root.resolve()
        root.mkdir(parents=True, exist_ok=True)
        args = [
            sys.executable,
            "-m",
            "tests.harness.node_agent",
            f"--kubeconfig={kubeconfig}",
            f"--root={root}",
            f"--node-name={node_name}",
            f"--pod-cidr={pod_cidr}",
            f"--bind-address-env={bind_address_env}",
            f"--parent-pid={os.getpid()}",
        ]
        args += [] if bind_pods else ["--no-bind"]
        args += [] if provision_volumes else ["--no-provision"]
        log_file = root / "node-agent.log"
        with log_file.open("ab") as output:
            process = subprocess.Popen(
                args,
                cwd=REPO_ROOT,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        agent = cls(kubeconfig, root, node_name, process)
        try:
            wait_until(agent.node_ready, timeout_s, f"node agent {node_name}", process, log_file)
        except BaseException:
            agent.stop()
            raise
        return agent

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            self._kube = Kube(api_client(self.kubeconfig))
        return self._kube

    def node_ready(self) -> bool:
        """Whether the agent's Node reports Ready=True."""
        node = self.kube.request("GET", f"/api/v1/nodes/{self.node_name}")
        conditions = _dig(node, "status", "conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    def stop(self, grace_s: float = 30.0) -> None:
        """SIGTERM the agent: it kills its processes (SIGTERM, then SIGKILL after 5 s) and exits."""
        stop_process(self.process, grace_s)
        if self._kube is not None:
            self._kube.api.close()  # type: ignore[no-untyped-call]
            self._kube = None

    @property
    def log_file(self) -> Path:
        return self.root / "node-agent.log"

    def log_path(self, namespace: str, pod: str, container: str) -> Path:
        """Where a container's stdout and stderr go (appended across restarts)."""
        return self.root / "logs" / f"{namespace}_{pod}_{container}.log"

    def claim_path(self, namespace: str, claim: str) -> Path:
        """The folder behind a PersistentVolumeClaim."""
        return self.root / "volumes" / namespace / claim

    def processes(self) -> list[ProcessRecord]:
        """Every process start and exit so far, oldest first."""
        path = self.root / "processes.jsonl"
        if not path.exists():
            return []
        records = []
        for line in path.read_text().splitlines():
            data = json.loads(line)
            records.append(
                ProcessRecord(
                    data["event"],
                    data["namespace"],
                    data["pod"],
                    data["uid"],
                    data["container"],
                    int(data["pid"]),
                )
            )
        return records

    def pids(self, namespace: str, pod: str, container: str | None = None) -> list[int]:
        """Pids of the processes started for a Pod (by name, any UID), oldest first."""
        return [
            r.pid
            for r in self.processes()
            if r.event == "start"
            and (r.namespace, r.pod) == (namespace, pod)
            and container in (None, r.container)
        ]

    def surviving_processes(self) -> list[int]:
        """Live processes in the sessions of processes the agent started (children included)."""
        sessions = {r.pid for r in self.processes() if r.event == "start"}
        alive = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[3]) in sessions and fields[0] != "Z":
                alive.append(int(entry.name))
        return alive


def main(argv: list[str] | None = None) -> None:
    """Command line entry point: `python -m tests.harness.node_agent --kubeconfig K --root DIR`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--root", type=Path, required=True, help="volumes, logs and pod folders")
    parser.add_argument("--node-name", default=NODE_NAME)
    parser.add_argument("--pod-cidr", default=POD_CIDR, help="loopback range for pod IPs")
    parser.add_argument("--bind-address-env", default=BIND_ADDRESS_ENV)
    parser.add_argument("--no-bind", action="store_true", help="do not schedule pods")
    parser.add_argument("--no-provision", action="store_true", help="do not provision volumes")
    parser.add_argument("--parent-pid", type=int, help="shut down when this parent exits")
    parser.add_argument("--log-level", default="INFO")
    options = parser.parse_args(argv)
    logging.basicConfig(
        level=options.log_level,
        format="%(asctime)s %(levelname)s [%(threadName)s] %(message)s",
    )
    # Children inherit this environment: make this virtualenv's `python` and `streamhouse` win.
    venv_bin = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if path.split(os.pathsep)[0] != venv_bin:
        os.environ["PATH"] = os.pathsep.join([venv_bin, path]) if path else venv_bin
    if sys.prefix != sys.base_prefix:
        os.environ.setdefault("VIRTUAL_ENV", sys.prefix)
    agent = Agent(
        api_client(options.kubeconfig),
        options.root,
        options.node_name,
        bind_address_env=options.bind_address_env,
        pod_cidr=options.pod_cidr,
        bind_pods=not options.no_bind,
        provision_volumes=not options.no_provision,
        parent_pid=options.parent_pid,
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: agent.stop())
    agent.run()


if __name__ == "__main__":
    main()
