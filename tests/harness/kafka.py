"""A single-node Apache Kafka broker in KRaft mode, on 127.0.0.1, with its data in a temp folder.

Run `python -m tests.harness.kafka` to start one by hand; it prints the bootstrap address.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Consumer, Message
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from tests.harness.processes import (
    free_port,
    run_build_script,
    start_process,
    stop_process,
    wait_until,
)

JAVA_HEAP = os.environ.get("STREAMHOUSE_KAFKA_HEAP", "-Xmx768m")


@dataclass
class KafkaBroker:
    """A running broker; `bootstrap` is what clients connect to."""

    bootstrap: str
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    owns_workdir: bool = True
    _admin: AdminClient | None = field(default=None, repr=False)

    @classmethod
    def start(cls, workdir: Path | None = None) -> KafkaBroker:
        libs = run_build_script("build-kafka.sh")
        owns = workdir is None
        workdir = workdir or Path(tempfile.mkdtemp(prefix="streamhouse-kafka-"))
        broker_port, controller_port = free_port(), free_port()
        config = workdir / "server.properties"
        config.write_text(_server_properties(workdir / "data", broker_port, controller_port))
        java = shutil.which("java") or "java"
        classpath = f"{libs}/*"
        log4j = f"-Dlog4j2.configurationFile={libs.parent / 'log4j2.properties'}"
        log_file = workdir / "kafka.log"
        subprocess.run(
            [
                java,
                log4j,
                "-cp",
                classpath,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                _cluster_id(),
                "-c",
                str(config),
                "--ignore-formatted",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        process = start_process(
            [
                java,
                JAVA_HEAP,
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Djava.awt.headless=true",
                log4j,
                "-cp",
                classpath,
                "kafka.Kafka",
                str(config),
            ],
            log_file,
        )
        broker = cls(f"127.0.0.1:{broker_port}", workdir, process, owns)
        wait_until(broker._ready, 90, "Kafka broker", process, log_file)
        return broker

    def admin(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap})
        return self._admin

    def _ready(self) -> bool:
        host, port = self.bootstrap.rsplit(":", 1)
        # Ask for metadata only once the port is open: a client started earlier logs a
        # "connection refused" line every 50 ms until then.
        socket.create_connection((host, int(port)), timeout=1).close()
        metadata = self.admin().list_topics(timeout=2)
        return len(metadata.brokers) == 1

    def create_topic(
        self, name: str, partitions: int = 1, config: dict[str, str] | None = None
    ) -> str:
        """Create a topic and wait until every partition has a leader."""
        futures = self.admin().create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
            operation_timeout=30,
        )
        futures[name].result(timeout=30)

        def leaders_known() -> bool:
            topic = self.admin().list_topics(name, timeout=5).topics[name]
            return (
                topic.error is None
                and len(topic.partitions) == partitions
                and all(p.leader >= 0 for p in topic.partitions.values())
            )

        wait_until(leaders_known, 30, f"topic {name}")
        return name

    def stop(self) -> None:
        self._admin = None
        if self.process is not None:
            stop_process(self.process, grace_s=15)
        if self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def read_messages(bootstrap: str, topic: str, expect: int, timeout_s: float = 60) -> list[Message]:
    """The first `expect` messages of `topic` (fewer if they do not arrive in time)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages: list[Message] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(messages) < expect and time.monotonic() < deadline:
            messages += [m for m in consumer.consume(100, 0.5) if not m.error()]
    finally:
        consumer.close()
    return messages


def _cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, never starting
    with `-` (the storage tool would read it as an option; Kafka's `Uuid.randomUuid` draws
    again in that case too)."""
    import base64

    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _server_properties(data_dir: Path, broker_port: int, controller_port: int) -> str:
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{broker_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "log.segment.bytes": str(64 * 1024 * 1024),
        # Tests replay event times from the past; time-based retention would delete them.
        "log.retention.ms": "-1",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def main() -> None:
    """Start a broker and keep it running until interrupted."""
    broker = KafkaBroker.start()
    print(broker.bootstrap, flush=True)
    try:
        while broker.process is not None and broker.process.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
