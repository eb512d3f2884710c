"""A Confluent-compatible schema registry (Apicurio Registry, in-memory H2 storage) on 127.0.0.1.

`scripts/build-registry.sh` fetches Apicurio's ready-built Quarkus application from Maven Central;
this module starts it on free ports and waits until the Confluent-compatible API answers.
Apicurio 3 needs Java 21 or newer: the JVM is taken from STREAMHOUSE_REGISTRY_JAVA, JAVA_HOME,
`java` on PATH or /usr/lib/jvm, whichever is the first new enough.

Run `python -m tests.harness.registry` to start one by hand; it prints the base URL.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.harness.processes import (
    free_port,
    run_build_script,
    start_process,
    stop_process,
    wait_until,
)

JAVA_HEAP = os.environ.get("STREAMHOUSE_REGISTRY_HEAP", "-Xmx384m")
MIN_JAVA = 21
CCOMPAT_PATH = "/apis/ccompat/v7"


@dataclass
class SchemaRegistryServer:
    """A running registry; `url` is the base of its Confluent-compatible API."""

    url: str
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    owns_workdir: bool = True

    @classmethod
    def start(cls, workdir: Path | None = None) -> SchemaRegistryServer:
        app = run_build_script("build-registry.sh")
        owns = workdir is None
        workdir = workdir or Path(tempfile.mkdtemp(prefix="streamhouse-registry-"))
        port, management_port = free_port(), free_port()
        log_file = workdir / "registry.log"
        process = start_process(
            [
                str(find_java(MIN_JAVA)),
                JAVA_HEAP,
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",  # C1 only: starts faster, and tests are short
                "-Djava.awt.headless=true",
                "-Dquarkus.http.host=127.0.0.1",
                f"-Dquarkus.http.port={port}",
                # Health and metrics live on a second listener; keep it off the default 9000.
                "-Dquarkus.management.host=127.0.0.1",
                f"-Dquarkus.management.port={management_port}",
                # The default pool opens 20 H2 connections up front: slow to start, never used.
                "-Dapicurio.datasource.jdbc.initial-size=2",
                "-Dapicurio.datasource.jdbc.min-size=2",
                "-Dquarkus.otel.sdk.disabled=true",
                "-Dquarkus.log.level=WARN",
                f"-Djava.io.tmpdir={workdir}",
                "-jar",
                str(app / "quarkus-run.jar"),
            ],
            log_file,
        )
        server = cls(f"http://127.0.0.1:{port}{CCOMPAT_PATH}", workdir, process, owns)
        wait_until(server._ready, 120, "schema registry", process, log_file)
        return server

    def _ready(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/subjects", timeout=2) as response:
            return isinstance(json.load(response), list)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, grace_s=15)
        if self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def find_java(min_major: int) -> Path:
    """The first JVM at least `min_major` among the configured and installed ones."""
    candidates: list[Path] = []
    explicit = os.environ.get("STREAMHOUSE_REGISTRY_JAVA")
    if explicit:
        candidates.append(Path(explicit))
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]) / "bin" / "java")
    on_path = shutil.which("java")
    if on_path:
        candidates.append(Path(on_path))
    # Newest first, so a machine with several JDKs gets the most recent one.
    installed = sorted(Path("/usr/lib/jvm").glob("*/bin/java"), key=_java_major, reverse=True)
    candidates.extend(installed)
    for java in candidates:
        if java.exists() and _java_major(java) >= min_major:
            return java
    found = ", ".join(f"{java} ({_java_major(java)})" for java in candidates) or "none"
    raise RuntimeError(
        f"the schema registry needs Java {min_major}+; found {found}. "
        "Set STREAMHOUSE_REGISTRY_JAVA to a newer java binary."
    )


def _java_major(java: Path) -> int:
    """The major version of a JVM: from its `release` file, else from `java -version`."""
    release = java.resolve().parent.parent / "release"
    text = release.read_text(errors="replace") if release.exists() else ""
    match = re.search(r'JAVA_VERSION="(\d+)', text)
    if match is None:
        try:
            result = subprocess.run(
                [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
            )
        except OSError:
            return 0
        match = re.search(r'version "(\d+)', result.stderr)
    return int(match.group(1)) if match else 0


def main() -> None:
    """Start a registry and keep it running until interrupted."""
    started = time.monotonic()
    server = SchemaRegistryServer.start()
    print(server.url, flush=True)
    print(f"ready in {time.monotonic() - started:.1f}s", file=sys.stderr, flush=True)
    try:
        while server.process is not None and server.process.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
