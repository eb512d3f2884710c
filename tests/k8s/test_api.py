"""The REST API on the real API server: the chart installed (api.enabled), `streamhouse api` running
as the chart's API service account, callers authenticated by TokenReview and authorized by their
own RBAC (SubjectAccessReview). No operator runs here: the API's effect is the StreamQuery
object, which is what `kubectl get sq` and GitOps see (tests/e2e/test_api_e2e.py deploys one)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from streamhouse_operator.api.auth import RESULTS_SUBRESOURCE
from streamhouse_operator.handlers.admission import problem
from streamhouse_operator.models import streamquery as model
from tests.conftest import unique_name
from tests.harness.api import ApiServer, service_account_token, token_kubeconfig
from tests.harness.kube import ControlPlane
from tests.harness.processes import REPO_ROOT, wait_until

pytestmark = pytest.mark.k8s

CHART = REPO_ROOT / "helm" / "streamhouse"
DDL = (
    "CREATE STREAM orders (order_id BIGINT, customer VARCHAR, amount DOUBLE)\n"
    "  WITH (kafka_topic='orders', value_format='JSON');\n"
)
TOTALS = DDL + (
    "CREATE TABLE totals AS SELECT customer, COUNT(*) AS n, SUM(amount) AS total\n"
    "  FROM orders GROUP BY customer;"
)
TYPO = DDL + "CREATE STREAM big AS SELECT order_id, amout FROM orders WHERE amount > 10;"


def _helm(plane: ControlPlane, *args: str) -> str:
    return subprocess.run(
        [str(plane.bin_dir / "helm"), f"--kubeconfig={plane.kubeconfig}", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@dataclass
class Setup:
    api: ApiServer
    plane: ControlPlane
    namespace: str
    release: str

    def token(self, user: str) -> str:
        return service_account_token(self.plane, user, self.namespace)

    def bind(self, user: str, cluster_role: str) -> None:
        self.plane.kubectl(
            "create", "rolebinding", unique_name(user), "-n", self.namespace,
            f"--clusterrole={cluster_role}", f"--serviceaccount={self.namespace}:{user}",
        )  # fmt: skip

    @property
    def editor_role(self) -> str:
        return f"{self.release}-streamhouse-query-editor"

    @property
    def viewer_role(self) -> str:
        return f"{self.release}-streamhouse-query-viewer"


@pytest.fixture
def setup(control_plane: ControlPlane, namespace: str, tmp_path: Path) -> Iterator[Setup]:
    # Cluster-scoped objects are named after the release: one release name per test.
    release = unique_name("api")
    _helm(
        control_plane, "install", release, str(CHART), "-n", namespace,
        "--set", "operator.replicas=0", "--set", "api.enabled=true", "--set", "api.replicas=0",
    )  # fmt: skip
    token = control_plane.kubectl(
        "create", "token", f"{release}-streamhouse-api", "-n", namespace
    ).strip()
    kubeconfig = token_kubeconfig(control_plane, token, tmp_path / "api.kubeconfig")
    api = ApiServer(kubeconfig, tmp_path / "api.log", default_bootstrap="127.0.0.1:9092")
    try:
        yield Setup(api, control_plane, namespace, release)
    finally:
        api.stop()
        _helm(control_plane, "uninstall", release, "-n", namespace)


def _create_body(namespace: str, name: str, sql: str) -> dict[str, Any]:
    return {"namespace": namespace, "name": name, "sql": sql, "parallelism": 2}


def test_no_token_is_401_and_missing_rbac_is_403_until_a_rolebinding_grants_it(
    setup: Setup,
) -> None:
    api, ns = setup.api, setup.namespace
    listing = f"/api/v1/queries?namespace={ns}"
    reply = api.call("GET", listing)
    assert reply.status == 401 and reply.body["error"]["code"] == "UNAUTHENTICATED"
    assert reply.headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert api.call("GET", listing, token="not-a-token").status == 401
    assert api.call("POST", "/api/v1/validate", {"sql": TOTALS}).status == 401

    alice = setup.token("alice")
    reply = api.call("GET", listing, token=alice)
    assert reply.status == 403, reply.body
    assert reply.body["error"]["missingVerb"] == "list"
    assert "'list'" in reply.body["error"]["message"]
    assert f"system:serviceaccount:{ns}:alice" in reply.body["error"]["message"]

    setup.bind("alice", setup.viewer_role)
    wait_until(lambda: api.call("GET", listing, token=alice).status == 200, 15, "list allowed")
    reply = api.call("POST", "/api/v1/queries", _create_body(ns, "totals", TOTALS), token=alice)
    assert reply.status == 403 and reply.body["error"]["missingVerb"] == "create"
    assert api.call("GET", listing, token=alice).body["items"] == []

    setup.bind("alice", setup.editor_role)

    def created() -> bool:
        body = _create_body(ns, "totals", TOTALS)
        return api.call("POST", "/api/v1/queries", body, token=alice).status == 201

    wait_until(created, 15, "create allowed")
    # The API's only store is the StreamQuery object: kubectl sees what REST created.
    listed = json.loads(setup.plane.kubectl("get", "sq", "-n", ns, "-o", "json"))["items"]
    assert [(o["metadata"]["name"], o["spec"]["sql"]) for o in listed] == [("totals", TOTALS)]
    assert listed[0]["spec"]["kafka"] == {"bootstrapServers": "127.0.0.1:9092"}
    # A query applied with kubectl shows up in the API.
    setup.plane.kubectl(
        "apply", "-n", ns, "-f", "-",
        input_text=json.dumps({
            "apiVersion": model.API_VERSION, "kind": model.KIND, "metadata": {"name": "applied"},
            "spec": {"sql": TOTALS, "kafka": {"bootstrapServers": "127.0.0.1:9092"}},
        }),
    )  # fmt: skip
    names = [q["name"] for q in api.call("GET", listing, token=alice).body["items"]]
    assert sorted(names) == ["applied", "totals"]
    # In another namespace alice has no binding.
    assert api.call("GET", "/api/v1/queries?namespace=default", token=alice).status == 403
    assert api.call("GET", "/api/v1/queries", token=alice).status == 403  # every namespace


def test_rest_round_trip_on_the_api_server(
    setup: Setup, kube_api: client.ApiClient, tmp_path: Path
) -> None:
    api, ns = setup.api, setup.namespace
    setup.bind("editor", setup.editor_role)
    token = setup.token("editor")
    wait_until(
        lambda: api.call("GET", f"/api/v1/queries?namespace={ns}", token=token).status == 200,
        15,
        "editor allowed",
    )
    one = f"/api/v1/queries/{ns}/big"

    # Bad SQL: 422 with admission's own line (what `kubectl apply` prints), code and position.
    reply = api.call("POST", "/api/v1/queries", _create_body(ns, "big", TYPO), token=token)
    assert reply.status == 422, reply.body
    error = reply.body["error"]
    expected = problem({"sql": TYPO, "kafka": {"bootstrapServers": "127.0.0.1:9092"}})
    assert expected is not None and error["rendered"] == expected
    assert expected.startswith("spec.sql:3:39: error[E102]: unknown column 'amout'")
    assert (error["code"], error["line"], error["column"]) == ("E102", 3, 39)
    assert api.call("GET", one, token=token).status == 404
    # A bad field is a field path.
    body = {**_create_body(ns, "big", TOTALS), "parallelism": -1}
    reply = api.call("POST", "/api/v1/queries", body, token=token)
    assert reply.status == 422 and reply.body["error"]["field"] == "spec.parallelism"

    fixed = TYPO.replace("amout", "amount")
    reply = api.call("POST", "/api/v1/queries", _create_body(ns, "big", fixed), token=token)
    assert reply.status == 201, reply.body
    assert reply.body["kind"] == "STREAM" and reply.body["spec"]["parallelism"] == 2
    assert (
        api.call("POST", "/api/v1/queries", _create_body(ns, "big", fixed), token=token).status
        == 409
    )

    # Events: a stream of the query's changes, opened before the patches below.
    seen: list[dict[str, Any]] = []
    stream = urllib.request.Request(
        api.url + one + "/events", headers={"Authorization": f"Bearer {token}"}
    )
    response = urllib.request.urlopen(stream, timeout=30)

    def read_events() -> None:
        event = ""
        with contextlib.suppress(OSError, ValueError, AttributeError):  # closed by the test
            for raw in response:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "query":
                    seen.append(json.loads(line[6:]))

    threading.Thread(target=read_events, daemon=True).start()
    wait_until(lambda: len(seen) >= 1, 15, "the first event")

    reply = api.call("PATCH", one, {"state": "suspended"}, token=token)
    assert reply.status == 200 and reply.body["spec"]["state"] == "suspended"
    reply = api.call("PATCH", one, {"parallelism": 3, "state": "running"}, token=token)
    assert reply.status == 200
    custom = client.CustomObjectsApi(kube_api)
    stored = custom.get_namespaced_custom_object(
        model.GROUP, model.VERSION, ns, model.PLURAL, "big"
    )
    assert stored["spec"]["parallelism"] == 3 and stored["spec"]["state"] == "running"
    wait_until(lambda: any(e["spec"].get("parallelism") == 3 for e in seen), 15, "the scale event")
    assert any(e["spec"].get("state") == "suspended" for e in seen)
    response.close()

    # The operator's upgrade rules: as if the operator had deployed TOTALS (lastReconciledSpec),
    # a state-incompatible change (another GROUP BY key) is refused and not written.
    reply = api.call("POST", "/api/v1/queries", _create_body(ns, "totals", TOTALS), token=token)
    assert reply.status == 201
    spec = model.StreamQuerySpec.model_validate(reply.body["spec"])
    custom.patch_namespaced_custom_object_status(
        model.GROUP, model.VERSION, ns, model.PLURAL, "totals",
        {"status": {"lastReconciledSpec": model.spec_json(spec)}},
    )  # fmt: skip
    regrouped = TOTALS.replace("GROUP BY customer", "GROUP BY order_id").replace(
        "SELECT customer", "SELECT order_id"
    )
    reply = api.call("PATCH", f"/api/v1/queries/{ns}/totals", {"sql": regrouped}, token=token)
    assert reply.status == 409, reply.body
    assert reply.body["error"]["code"] == "UPGRADE_REFUSED"
    assert "state-incompatible" in reply.body["error"]["message"]
    stored = custom.get_namespaced_custom_object(
        model.GROUP, model.VERSION, ns, model.PLURAL, "totals"
    )
    assert stored["spec"]["sql"] == TOTALS
    having = TOTALS.replace("GROUP BY customer;", "GROUP BY customer HAVING COUNT(*) > 1;")
    reply = api.call("PATCH", f"/api/v1/queries/{ns}/totals", {"sql": having}, token=token)
    assert reply.status == 200 and reply.body["spec"]["sql"] == having
    reply = api.call("PATCH", f"/api/v1/queries/{ns}/totals", {"sql": TYPO}, token=token)
    assert reply.status == 422 and reply.body["error"]["code"] == "E102"

    # Validate and explain: no side effects.
    reply = api.call("POST", "/api/v1/validate", {"sql": TYPO}, token=token)
    assert reply.status == 200 and reply.body["valid"] is False
    assert (reply.body["errors"][0]["line"], reply.body["errors"][0]["column"]) == (3, 39)
    reply = api.call("POST", "/api/v1/explain", {"sql": TOTALS}, token=token)
    assert reply.status == 200 and reply.body["kind"] == "TABLE"
    assert reply.body["plan"]["operator"].startswith("Sink") and "Aggregate" in reply.body["text"]

    # Results need get on streamqueries/results: a reader without it gets 403 naming it.
    setup.plane.kubectl(
        "create", "role", "no-results", "-n", ns, "--verb=get,list,watch",
        f"--resource={model.PLURAL}.{model.GROUP}",
    )  # fmt: skip
    setup.plane.kubectl(
        "create", "rolebinding", "no-results", "-n", ns, "--role=no-results",
        f"--serviceaccount={ns}:reader",
    )  # fmt: skip
    reader = setup.token("reader")
    wait_until(
        lambda: api.call("GET", f"/api/v1/queries/{ns}/totals", token=reader).status == 200,
        15,
        "reader allowed",
    )
    reply = api.call("GET", f"/api/v1/queries/{ns}/totals/results", token=reader)
    assert reply.status == 403 and reply.body["error"]["missingVerb"] == "get"
    assert f"{model.PLURAL}/{RESULTS_SUBRESOURCE}" in reply.body["error"]["message"]
    assert api.call("DELETE", f"/api/v1/queries/{ns}/totals", token=reader).status == 403
    # The editor may read results: no pods run here, which is said as such.
    reply = api.call("GET", f"/api/v1/queries/{ns}/totals/results", token=token)
    assert reply.status == 503 and reply.body["error"]["code"] == "PODS_UNAVAILABLE"
    assert api.call("GET", f"{one}/results", token=token).status == 404  # a STREAM

    # Limits: body size, page size.
    huge = {"sql": "x" * (2 << 20)}
    assert api.call("POST", "/api/v1/validate", huge, token=token).status == 413
    reply = api.call("GET", f"/api/v1/queries?namespace={ns}&limit=1", token=token)
    assert len(reply.body["items"]) == 1 and reply.body["continue"]
    second = api.call(
        "GET", f"/api/v1/queries?namespace={ns}&limit=1&continue={reply.body['continue']}",
        token=token,
    )  # fmt: skip
    assert second.body["items"][0]["name"] != reply.body["items"][0]["name"]

    reply = api.call("DELETE", one, token=token)
    assert reply.status == 200 and reply.body["name"] == "big"
    wait_until(lambda: api.call("GET", one, token=token).status == 404, 15, "deleted")

    document = api.call("GET", "/api/v1/openapi.json")
    assert document.status == 200 and "CreateQuery" in document.body["components"]["schemas"]


def test_cli_uses_the_kubeconfig_token(setup: Setup, tmp_path: Path) -> None:
    setup.bind("cli-user", setup.editor_role)
    token = setup.token("cli-user")
    kubeconfig = token_kubeconfig(setup.plane, token, tmp_path / "user.kubeconfig")
    config = yaml.safe_load(kubeconfig.read_text())
    config["contexts"][0]["context"]["namespace"] = setup.namespace
    kubeconfig.write_text(json.dumps(config))
    environment = {"KUBECONFIG": str(kubeconfig), "STREAMHOUSE_API_URL": setup.api.url}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "streamhouse_runtime.cli", "queries", *args],
            capture_output=True, text=True, env={**os.environ, **environment}, timeout=60,
        )  # fmt: skip

    wait_until(lambda: cli("list").returncode == 0, 15, "cli-user allowed")
    bad = tmp_path / "bad.sql"
    bad.write_text(TYPO)
    failed = cli("create", "-f", str(bad))
    assert failed.returncode == 1
    assert f"{bad}:3:39: error[E102]: unknown column 'amout'" in failed.stderr
    good = tmp_path / "totals.sql"
    good.write_text(TOTALS)
    created = cli("create", "-f", str(good), "--parallelism", "2")
    assert created.returncode == 0, created.stderr
    assert "streamquery totals created" in created.stdout  # named after the sink
    listed = cli("list").stdout.splitlines()
    assert listed[0].split() == ["NAME", "KIND", "STATE", "READY", "LAG", "INPUT/S", "OUTPUT/S"]
    assert listed[1].split()[:2] == ["totals", "TABLE"]
    as_json = json.loads(cli("get", "totals", "-o", "json").stdout)
    assert as_json["spec"]["sql"] == TOTALS and as_json["spec"]["parallelism"] == 2
    as_yaml = yaml.safe_load(cli("list", "-o", "yaml").stdout)
    assert [q["name"] for q in as_yaml["items"]] == ["totals"]
    no_pods = cli("results", "totals")
    assert no_pods.returncode == 1 and "PODS_UNAVAILABLE" in no_pods.stderr
    deleted = cli("delete", "totals")
    assert deleted.returncode == 0 and "deleted" in deleted.stdout
    other = cli("list", "-n", "default")
    assert other.returncode == 1 and "may not list" in other.stderr
