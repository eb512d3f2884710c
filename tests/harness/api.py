"""Runs `streamhouse api` as its own process against a control plane, and a small HTTP client
for it (urllib: the tests speak HTTP the way curl would)."""

from __future__ import annotations

import contextlib
import copy
import json
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.harness.kube import ControlPlane
from tests.harness.processes import free_port, start_process, stop_process, wait_until


def token_kubeconfig(plane: ControlPlane, token: str, path: Path) -> Path:
    """The control plane's kubeconfig with its admin credentials replaced by `token`."""
    config = copy.deepcopy(yaml.safe_load(plane.kubeconfig.read_text()))
    config["users"] = [{"name": "token", "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = "token"
    path.write_text(yaml.safe_dump(config))
    return path


def service_account_token(plane: ControlPlane, name: str, namespace: str) -> str:
    """A real token of a ServiceAccount (created if missing), from the TokenRequest API."""
    with contextlib.suppress(subprocess.CalledProcessError):  # already there
        plane.kubectl("create", "serviceaccount", name, "-n", namespace)
    return plane.kubectl("create", "token", name, "-n", namespace, "--duration=1h").strip()


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]
    text: str = ""


class ApiServer:
    def __init__(
        self, kubeconfig: Path, log_file: Path, default_bootstrap: str | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = log_file
        args = [sys.executable, "-m", "streamhouse_runtime.cli", "api",
                "--address", "127.0.0.1", "--port", str(self.port)]  # fmt: skip
        if default_bootstrap:
            args += ["--default-bootstrap", default_bootstrap]
        self.process = start_process(args, log_file, {"KUBECONFIG": str(kubeconfig)})
        try:
            wait_until(
                lambda: self.call("GET", "/healthz").status == 200,
                60,
                "streamhouse api",
                self.process,
                log_file,
            )
        except BaseException:
            self.stop()
            raise

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        raw: bytes | None = None,
        timeout_s: float = 30,
    ) -> Reply:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                status, content, headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, content, headers = error.code, error.read(), error.headers
        try:
            parsed: Any = json.loads(content) if content else None
        except ValueError:
            parsed = content.decode(errors="replace")
        return Reply(status, parsed, dict(headers.items()), content.decode(errors="replace"))

    def stop(self) -> None:
        stop_process(self.process, grace_s=5)
