from __future__ import annotations

import pytest

from streamhouse_runtime.state.changelog import checkpoint_records, offsets_key, replay

pytestmark = pytest.mark.unit


def _key(partition: int, name: bytes) -> bytes:
    return partition.to_bytes(4, "big") + name


def test_records_go_to_the_partition_in_their_key_and_offsets_close_each_checkpoint() -> None:
    records = checkpoint_records(
        {_key(0, b"a"): b"1", _key(2, b"b"): None},
        {(2, b"dedup-key"): b"\x00" * 8},
        {0: 10, 2: 7},
    )
    assert [(r.partition, r.key[:1]) for r in records] == [
        (0, b"\x00"),
        (2, b"\x00"),
        (2, b"\xfe"),
        (0, b"\xff"),
        (2, b"\xff"),
    ]
    assert records[-1].key == offsets_key(2)


def test_replay_applies_complete_checkpoints_only() -> None:
    first = checkpoint_records({_key(1, b"a"): b"1", _key(1, b"b"): b"2"}, {}, {1: 5})
    second = checkpoint_records(
        {_key(1, b"a"): b"3", _key(1, b"b"): None}, {(1, b"d"): b"x"}, {1: 9}
    )
    cut_short = checkpoint_records({_key(1, b"a"): b"99"}, {}, {1: 12})[:-1]  # no offsets record
    log = [(r.key, r.value) for r in [*first, *second, *cut_short]]
    restored = replay(log)
    assert restored.offset == 9
    assert restored.store_writes == {_key(1, b"a"): b"3", _key(1, b"b"): None}
    assert restored.dedup_writes == {b"d": b"x"}


def test_replay_of_an_empty_or_unfinished_log_restores_nothing() -> None:
    assert replay([]).offset is None
    unfinished = checkpoint_records({_key(0, b"a"): b"1"}, {}, {0: 3})[:-1]
    assert replay((r.key, r.value) for r in unfinished).offset is None


def test_offsets_records_carry_their_writer_and_replay_ignores_it() -> None:
    from streamhouse_runtime.state.changelog import checkpoint_offset, checkpoint_writer

    records = checkpoint_records({_key(2, b"a"): b"1"}, {}, {2: 9}, writer=b"pod-0-run-7")
    closing = records[-1]
    assert checkpoint_offset(closing.key, closing.value) == 9
    assert checkpoint_writer(closing.key, closing.value) == b"pod-0-run-7"
    assert checkpoint_writer(records[0].key, records[0].value) is None
    restored = replay((r.key, r.value) for r in records)
    assert restored.offset == 9 and restored.store_writes == {_key(2, b"a"): b"1"}
