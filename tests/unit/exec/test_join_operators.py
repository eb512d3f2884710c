"""The join operators of the stage graph as pure logic: windowed stream-stream joins against a
brute-force reference, outer-join padding exactly once after window plus grace, late rows,
NULL keys; stream-table joins with upserts, tombstones and updates between stream rows."""

from __future__ import annotations

import random
from collections import Counter

import orjson
import pytest

from streamhouse_runtime.exec.operator import Output, Row, encode_key, encode_timed_key
from streamhouse_runtime.exec.stream_stream_join import LEFT, RIGHT, StreamStreamJoinOperator
from streamhouse_runtime.exec.stream_table_join import STREAM, TABLE, StreamTableJoinOperator
from streamhouse_runtime.sql.query import JoinKind

pytestmark = pytest.mark.unit

LEFT_FIELDS = ("o.id", "o.k", "o.t")
RIGHT_FIELDS = ("s.id", "s.k", "s.t")
END = 1 << 60


def _row_bytes(_side: int, row: Row) -> bytes:
    return orjson.dumps(row)


def windowed(
    kind: JoinKind, before: int = 10, after: int = 10, grace: int = 5
) -> StreamStreamJoinOperator:
    return StreamStreamJoinOperator(
        kind,
        lambda row: (row["o.k"],),
        lambda row: (row["s.k"],),
        LEFT_FIELDS,
        RIGHT_FIELDS,
        before,
        after,
        grace,
        _row_bytes,
    )


def left(id_: int, key: object, t: int) -> Row:
    return {"o.id": id_, "o.k": key, "o.t": t}


def right(id_: int, key: object, t: int) -> Row:
    return {"s.id": id_, "s.k": key, "s.t": t}


def pairs(outputs: list[Output]) -> Counter[tuple[object, object]]:
    return Counter(
        (o.row["o.id"] if o.row else None, o.row["s.id"] if o.row else None) for o in outputs
    )


def reference(
    kind: JoinKind,
    lefts: list[Row],
    rights: list[Row],
    before: int,
    after: int,
) -> Counter[tuple[object, object]]:
    """Every pair within the window, plus the unmatched rows of the preserved sides."""
    expected: Counter[tuple[object, object]] = Counter()
    matched_left, matched_right = set(), set()
    for lrow in lefts:
        for rrow in rights:
            if lrow["o.k"] is None or lrow["o.k"] != rrow["s.k"]:
                continue
            if lrow["o.t"] - before <= rrow["s.t"] <= lrow["o.t"] + after:
                expected[(lrow["o.id"], rrow["s.id"])] += 1
                matched_left.add(lrow["o.id"])
                matched_right.add(rrow["s.id"])
    if kind in (JoinKind.LEFT, JoinKind.FULL):
        expected.update((r["o.id"], None) for r in lefts if r["o.id"] not in matched_left)
    if kind in (JoinKind.RIGHT, JoinKind.FULL):
        expected.update((None, r["s.id"]) for r in rights if r["s.id"] not in matched_right)
    return expected


@pytest.mark.parametrize("kind", list(JoinKind))
@pytest.mark.parametrize("seed", range(12))
def test_windowed_join_equals_the_reference_over_out_of_order_input(
    kind: JoinKind, seed: int
) -> None:
    """Rows arrive out of order by less than the grace period, so none is late: the output is
    exactly every pair within the window plus the preserved sides' unmatched rows."""
    rng = random.Random(seed)
    before, after = rng.choice([(10, 10), (0, 25), (30, 5)])
    grace = 40
    events = []
    for index in range(300):
        t = index * 3 + rng.randint(-12, 12)
        key = rng.choice(["a", "b", "c", "d", None] if seed % 3 == 0 else ["a", "b", "c"])
        events.append((LEFT if rng.random() < 0.5 else RIGHT, index, key, max(0, t)))
    join = windowed(kind, before, after, grace)
    outputs: list[Output] = []
    lefts: list[Row] = []
    rights: list[Row] = []
    high = 0
    for port, id_, key, t in events:
        row = left(id_, key, t) if port == LEFT else right(id_, key, t)
        (lefts if port == LEFT else rights).append(row)
        outputs += join.process(port, 0, row, t)
        high = max(high, t)
        outputs += join.on_watermark(0, high)  # watermark = highest time seen (no lateness)
    outputs += join.on_watermark(0, END)
    assert join.late == 0
    assert pairs(outputs) == reference(kind, lefts, rights, before, after)
    assert join.buffered(0) == 0  # everything expired at the end


def test_outer_padding_waits_for_window_plus_grace_and_comes_once() -> None:
    join = windowed(JoinKind.FULL, before=10, after=10, grace=5)
    assert join.process(LEFT, 0, left(1, "a", 100), 100) == []
    assert join.process(RIGHT, 0, right(2, "b", 100), 100) == []
    # The left row at 100 can meet right rows up to 110; grace 5: closes once past 115.
    assert join.on_watermark(0, 115) == []
    padded = join.on_watermark(0, 116)
    assert pairs(padded) == Counter({(1, None): 1, (None, 2): 1})
    assert [o.time_ms for o in padded] == [100, 100]
    assert padded[0].row == {"o.id": 1, "o.k": "a", "o.t": 100, "s.id": None, "s.k": None,
                             "s.t": None}  # fmt: skip
    assert join.on_watermark(0, 500) == []  # never again


def test_a_row_is_late_only_when_its_own_window_plus_grace_has_closed() -> None:
    join = windowed(JoinKind.LEFT, before=10, after=10, grace=0)
    join.process(LEFT, 0, left(1, "a", 100), 100)
    assert pairs(join.on_watermark(0, 111)) == Counter({(1, None): 1})  # closed after 110
    # A right row at 105 may still meet left rows up to 115: not late (its partner at 100 was
    # already padded and expired, so it finds nothing).
    assert join.process(RIGHT, 0, right(2, "a", 105), 105) == []
    assert join.late == 0
    # A right row at 90 could only meet left rows up to 100, which closed: late, dropped.
    assert join.process(RIGHT, 0, right(3, "a", 90), 90) == []
    assert join.late == 1


def test_asymmetric_within_bounds_follow_before_and_after() -> None:
    join = windowed(JoinKind.INNER, before=0, after=30, grace=100)
    join.process(LEFT, 0, left(1, "a", 100), 100)
    assert pairs(join.process(RIGHT, 0, right(2, "a", 99), 99)) == Counter()  # before the left
    assert pairs(join.process(RIGHT, 0, right(3, "a", 130), 130)) == Counter({(1, 3): 1})
    assert pairs(join.process(RIGHT, 0, right(4, "a", 131), 131)) == Counter()
    out = join.process(LEFT, 0, left(5, "a", 131), 131)
    assert pairs(out) == Counter({(5, 4): 1})
    assert out[0].time_ms == 131  # the later of the two times


def test_null_join_keys_never_match_and_only_a_preserved_side_emits_them() -> None:
    inner = windowed(JoinKind.INNER)
    assert inner.process(LEFT, 0, left(1, None, 5), 5) == []
    assert inner.process(RIGHT, 0, right(2, None, 5), 5) == []
    outer = windowed(JoinKind.LEFT)
    assert pairs(outer.process(LEFT, 0, left(1, None, 5), 5)) == Counter({(1, None): 1})
    assert outer.process(RIGHT, 0, right(2, None, 5), 5) == []
    assert outer.buffered(0) == 0


def test_partitions_are_separate_and_state_changes_use_the_plan_stores() -> None:
    join = windowed(JoinKind.INNER)
    join.process(LEFT, 0, left(1, "a", 10), 10)
    assert join.process(RIGHT, 1, right(2, "a", 10), 10) == []  # another partition
    changes = join.changes()
    assert set(changes) == {"join-left", "join-right"}
    assert encode_timed_key(0, ("a",), 10, 0) in changes["join-left"]
    assert changes["join-left"][encode_timed_key(0, ("a",), 10, 0)][:1] == b"\x00"
    assert join.changes() == {}  # reported once
    join.on_watermark(0, END)
    assert changes != join.changes()  # the expiry deletes the buffered row
    join.process(RIGHT, 1, right(3, "b", 20), 20)
    join.drop_partition(1)
    assert join.buffered(1) == 0
    assert join.changes() == {}  # a dropped partition's pending writes are never reported


def lookup(kind: JoinKind) -> StreamTableJoinOperator:
    return StreamTableJoinOperator(
        kind,
        lambda row: (row["o.customer"],),
        lambda row: (row["c.id"],),
        ("c.id", "c.name"),
        orjson.dumps,
    )


def order(id_: int, customer: object) -> Row:
    return {"o.id": id_, "o.customer": customer}


def test_stream_table_join_sees_the_table_as_it_stands_at_each_stream_row() -> None:
    join = lookup(JoinKind.LEFT)
    assert join.process(TABLE, 0, {"c.id": "c1", "c.name": "Ann"}, 1) == []
    first = join.process(STREAM, 0, order(1, "c1"), 2)
    assert first[0].row == {"o.id": 1, "o.customer": "c1", "c.id": "c1", "c.name": "Ann"}
    join.process(TABLE, 0, {"c.id": "c1", "c.name": "Bob"}, 3)  # an update between two rows
    assert join.process(STREAM, 0, order(2, "c1"), 4)[0].row["c.name"] == "Bob"
    join.process(TABLE, 0, None, 5, key=("c1",))  # a tombstone deletes
    assert join.process(STREAM, 0, order(3, "c1"), 6)[0].row == {
        "o.id": 3, "o.customer": "c1", "c.id": None, "c.name": None,
    }  # fmt: skip
    assert join.process(STREAM, 0, order(4, None), 7)[0].row["c.name"] is None  # NULL key
    inner = lookup(JoinKind.INNER)
    inner.process(TABLE, 0, {"c.id": "c1", "c.name": "Ann"}, 1)
    assert inner.process(STREAM, 0, order(1, None), 2) == []
    assert inner.process(STREAM, 0, order(2, "missing"), 2) == []
    assert len(inner.process(STREAM, 0, order(3, "c1"), 2)) == 1
    assert inner.process(STREAM, 1, order(4, "c1"), 2) == []  # the table of partition 0 only


def test_stream_table_state_changes_are_upserts_and_deletes_by_partition_and_key() -> None:
    join = lookup(JoinKind.INNER)
    join.process(TABLE, 2, {"c.id": "c1", "c.name": "Ann"}, 1)
    join.process(TABLE, 2, {"c.id": "c2", "c.name": "Cy"}, 1)
    join.process(TABLE, 2, None, 2, key=("c2",))
    changes = join.changes()["join-right"]
    assert changes[encode_key(2, ("c1",))] == b'{"c.id":"c1","c.name":"Ann"}'
    assert changes[encode_key(2, ("c2",))] is None
    assert join.rows(2) == 1
    with pytest.raises(ValueError, match="INNER or LEFT"):
        lookup(JoinKind.FULL)
