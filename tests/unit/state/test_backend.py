from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamhouse_runtime.state.backend import (
    MemoryStateBackend,
    RocksdbStateBackend,
    StateBackend,
)

pytestmark = pytest.mark.unit


@pytest.fixture(params=["memory", "rocksdb"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateBackend]:
    created: StateBackend = (
        MemoryStateBackend() if request.param == "memory" else RocksdbStateBackend(tmp_path / "db")
    )
    yield created
    created.close()


def test_commit_applies_changes_and_offsets_together(backend: StateBackend) -> None:
    backend.commit(
        {"window": {b"a": b"1", b"b": b"2"}, "join": {b"x": b"y"}},
        {("orders", 0): 10, ("orders", 1): 7},
        {"plan": b"fingerprint"},
    )
    backend.commit({"window": {b"a": None, b"c": b"3"}}, {("orders", 0): 12})

    assert backend.get("window", b"a") is None
    assert list(backend.scan("window")) == [(b"b", b"2"), (b"c", b"3")]
    assert backend.get("join", b"x") == b"y"
    assert backend.offsets() == {("orders", 0): 12, ("orders", 1): 7}
    assert backend.metadata("plan") == b"fingerprint"


def test_a_partition_offset_can_be_forgotten(backend: StateBackend) -> None:
    backend.commit({}, {("orders", 0): 10, ("orders", 1): 7})
    backend.commit({}, {("orders", 1): None})
    assert backend.offsets() == {("orders", 0): 10}


def test_scan_is_ordered_and_bounded(backend: StateBackend) -> None:
    keys = [bytes([0, i]) for i in range(10)] + [bytes([1, 0])]
    backend.commit({"s": {key: b"v" for key in reversed(keys)}}, {})
    assert [k for k, _ in backend.scan("s", bytes([0, 3]), bytes([0, 6]))] == keys[3:6]
    assert [k for k, _ in backend.scan("s", bytes([0, 9]))] == keys[9:]
    assert list(backend.scan("missing")) == []


def test_offsets_of_topics_whose_partition_bytes_contain_zero(backend: StateBackend) -> None:
    backend.commit({}, {("a\x00b", 256): 1, ("t", 0): 2})
    assert backend.offsets() == {("a\x00b", 256): 1, ("t", 0): 2}


def test_rocksdb_state_survives_reopen(tmp_path: Path) -> None:
    first = RocksdbStateBackend(tmp_path / "db")
    first.commit({"agg": {b"k": b"v"}}, {("in", 3): 99})
    first.close()
    second = RocksdbStateBackend(tmp_path / "db")
    assert second.get("agg", b"k") == b"v"
    assert second.offsets() == {("in", 3): 99}
    second.close()


def test_rocksdb_commit_survives_sigkill(tmp_path: Path) -> None:
    """A committed batch is in RocksDB's WAL: a killed process loses nothing it committed."""
    script = textwrap.dedent(
        f"""
        import os, sys, time
        from pathlib import Path
        from streamhouse_runtime.state.backend import RocksdbStateBackend
        backend = RocksdbStateBackend(Path({str(tmp_path / "db")!r}))
        for i in range(200):
            backend.commit({{"agg": {{b"n": str(i).encode()}}}}, {{("in", 0): i + 1}})
        print("committed", flush=True)
        time.sleep(60)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "committed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    reopened = RocksdbStateBackend(tmp_path / "db")
    assert reopened.get("agg", b"n") == b"199"
    assert reopened.offsets() == {("in", 0): 200}
    reopened.close()


def test_last_key_is_the_largest_committed_key_in_range(backend: StateBackend) -> None:
    keys = [bytes([0, 1]), bytes([0, 5]), bytes([1, 0]), bytes([1, 9])]
    backend.commit({"s": dict.fromkeys(keys, b"v")}, {})
    assert backend.last_key("s", bytes([0]), bytes([1])) == bytes([0, 5])
    assert backend.last_key("s", bytes([1]), bytes([2])) == bytes([1, 9])
    assert backend.last_key("s", bytes([1, 0]), bytes([1, 9])) == bytes([1, 0])  # end excluded
    assert backend.last_key("s", bytes([2]), bytes([3])) is None
    assert backend.last_key("empty", b"", b"\xff") is None


def test_reads_leave_the_memtable_alone(tmp_path: Path) -> None:
    """Reading must not flush: a flush per read writes a tiny SST file every time."""
    backend = RocksdbStateBackend(tmp_path / "db")
    try:
        backend.commit({"window": {b"k%d" % i: b"v" for i in range(100)}}, {("orders", 0): 100})
        for _ in range(3):
            assert backend.get("window", b"k1") == b"v"
            assert len(list(backend.scan("window", b"k1", b"k2"))) == 11
            assert backend.last_key("window", b"k", b"l") == b"k99"
            backend.approximate_size_bytes()
        view = backend._view("window")
        assert view.property_int_value("rocksdb.num-entries-active-mem-table") == 100
        assert view.property_int_value("rocksdb.live-sst-files-size") == 0
    finally:
        backend.close()
