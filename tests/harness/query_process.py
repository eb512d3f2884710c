"""Runs `streamhouse run` as a real child process, configured through the environment the way
the operator configures pods."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.processes import free_port, start_process, stop_process, wait_until


@dataclass
class QueryProcess:
    sql_file: Path
    data_dir: Path
    bootstrap: str
    query_id: str
    extra_env: dict[str, str] = field(default_factory=dict)
    ordinal: int = 0
    replicas: int = 1
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_file(self) -> Path:
        return self.data_dir / f"runtime-{self.ordinal}.log"

    def env(self) -> dict[str, str]:
        return {
            "STREAMHOUSE_BOOTSTRAP_SERVERS": self.bootstrap,
            "STREAMHOUSE_QUERY_FILE": str(self.sql_file),
            "STREAMHOUSE_QUERY_ID": self.query_id,
            "STREAMHOUSE_DATA_DIR": str(self.data_dir / f"pod-{self.ordinal}"),
            "STREAMHOUSE_ORDINAL": str(self.ordinal),
            "STREAMHOUSE_REPLICAS": str(self.replicas),
            "STREAMHOUSE_BIND_ADDRESS": "127.0.0.1",
            "STREAMHOUSE_METRICS_PORT": str(self.port),
            "STREAMHOUSE_CHECKPOINT_INTERVAL_MS": "300",
            **self.extra_env,
        }

    def start(self, wait_ready: bool = True) -> QueryProcess:
        self.port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = start_process(
            [sys.executable, "-m", "streamhouse_runtime.cli", "run"], self.log_file, self.env()
        )
        if wait_ready:
            wait_until(self.ready, 60, "streamhouse run", self.process, self.log_file)
        return self

    def probe(self, path: str) -> tuple[int, str]:
        """Status and body of /healthz or /readyz (a 503 included)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return int(r.status), r.read().decode()
        except urllib.error.HTTPError as error:
            return int(error.code), error.read().decode()

    def ready(self) -> bool:
        url = f"http://127.0.0.1:{self.port}/readyz"
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as response:
            return str(response.read().decode())

    def metric(self, name: str) -> float:
        """Sum of every sample of a metric family (all label sets); `name` may include the
        start of a label set, e.g. 'streamhouse_records_in_total{topic="orders"'."""
        total = 0.0
        for line in self.metrics().splitlines():
            if (
                line.startswith(name + " ")
                or line.startswith(name + "{")
                or ("{" in name and line.startswith(name))
            ):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def kill(self) -> None:
        """SIGKILL: no final checkpoint, like a node failure."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> int | None:
        if self.process is None:
            return None
        stop_process(self.process, grace_s=20)
        return self.process.returncode
