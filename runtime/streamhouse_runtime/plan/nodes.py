"""Logical plan operators. Each node knows its output schema, its key and the state it keeps."""

from __future__ import annotations

from dataclasses import dataclass

from streamhouse_runtime.sql.bound import AggregateCall, Expr
from streamhouse_runtime.sql.catalog import Format, SourceKind
from streamhouse_runtime.sql.query import EmitMode, JoinKind, WindowKind, WindowSpec
from streamhouse_runtime.sql.types import SqlType


@dataclass(frozen=True)
class Field:
    name: str
    type: SqlType


@dataclass(frozen=True)
class Schema:
    fields: tuple[Field, ...]
    key: tuple[str, ...] = ()  # field names forming the record key

    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def render(self) -> str:
        body = ", ".join(f"{f.name} {f.type}" for f in self.fields)
        key = f" KEY({', '.join(self.key)})" if self.key else ""
        return f"[{body}]{key}"


@dataclass(frozen=True)
class StateStore:
    """A piece of state an operator keeps: one RocksDB column family at run time."""

    name: str
    description: str


@dataclass(frozen=True)
class PlanNode:
    schema: Schema

    def children(self) -> tuple[PlanNode, ...]:
        return ()

    def label(self) -> str:
        return type(self).__name__

    def details(self) -> list[str]:
        return []

    def state(self) -> tuple[StateStore, ...]:
        return ()


@dataclass(frozen=True)
class Source(PlanNode):
    name: str
    kind: SourceKind
    topic: str
    value_format: Format
    key_format: Format
    timestamp_field: str | None
    timestamp_format: str | None = None
    alias: str | None = None
    window_type: str | None = None  # a windowed source: its keys carry window bounds
    window_size_ms: int | None = None

    def details(self) -> list[str]:
        details = [
            f"{self.kind.value.lower()} {self.name}" + (f" AS {self.alias}" if self.alias else ""),
            f"topic={self.topic} format={self.value_format.value}"
            f" key_format={self.key_format.value}",
            f"event_time={self.timestamp_field or 'ROWTIME'}",
        ]
        if self.window_type is not None:
            size = f" size={self.window_size_ms}ms" if self.window_size_ms else ""
            details.append(f"windowed_key={self.window_type}{size}")
        return details


@dataclass(frozen=True)
class Filter(PlanNode):
    input: PlanNode
    predicate: Expr

    def children(self) -> tuple[PlanNode, ...]:
        return (self.input,)

    def details(self) -> list[str]:
        return [f"predicate={self.predicate.render()}"]


@dataclass(frozen=True)
class Project(PlanNode):
    input: PlanNode
    expressions: tuple[tuple[str, Expr], ...]

    def children(self) -> tuple[PlanNode, ...]:
        return (self.input,)

    def details(self) -> list[str]:
        return [", ".join(f"{e.render()} AS {name}" for name, e in self.expressions)]


@dataclass(frozen=True)
class Repartition(PlanNode):
    """Re-key through an internal topic so each group lives in exactly one partition."""

    input: PlanNode
    keys: tuple[tuple[str, Expr], ...]
    topic_suffix: str
    # A table's changes: each row carries CHANGE_FIELD, the ChangeKind of the row: the
    # retraction of a table row's previous value (sent to its old group) or an addition.
    retractions: bool = False

    def children(self) -> tuple[PlanNode, ...]:
        return (self.input,)

    def details(self) -> list[str]:
        keys = ", ".join(expr.render() for _, expr in self.keys)
        carried = " carries=retractions" if self.retractions else ""
        return [f"by=({keys}) topic=<query>-{self.topic_suffix}{carried}"]


CHANGE_FIELD = "__change"  # of a row crossing a Repartition with retractions: ChangeKind


class ChangeKind:
    """What a row crossing a Repartition with retractions does to its group."""

    ADD = 0
    RETRACT = 1
    # A retraction that an addition to the same group follows at once: the group's result
    # is emitted once, after the addition (Kafka Streams' KIP-904: subtract, then add, one
    # output).
    REPLACE = 2


@dataclass(frozen=True)
class TableChanges(PlanNode):
    """A TABLE's rows as changes: keeps each table key's previous row, and turns an update
    (or a tombstone) into the retraction of the previous row and the addition of the new
    one, so an aggregate downstream can update its groups (Kafka Streams' KTable groupBy)."""

    input: PlanNode
    store: str = "table-rows"

    def children(self) -> tuple[PlanNode, ...]:
        return (self.input,)

    def details(self) -> list[str]:
        return ["previous row per table key (the record key); a tombstone deletes"]

    def state(self) -> tuple[StateStore, ...]:
        return (StateStore(self.store, "previous row per table key"),)


@dataclass(frozen=True)
class Aggregate(PlanNode):
    """GROUP BY without a window: a TABLE, an upsert stream keyed by the group key."""

    input: PlanNode
    group_keys: tuple[tuple[str, Expr], ...]
    aggregates: tuple[tuple[str, AggregateCall], ...]
    having: Expr | None = None
    store: str = "aggregate"
    # The names of the group key columns in the result's record key, in group key order: the
    # name (or alias) each grouped expression has in the SELECT list.
    result_key: tuple[str, ...] = ()
    # Aggregating a TABLE: its input carries retractions (see TableChanges).
    updating: bool = False

    def children(self) -> tuple[PlanNode, ...]:
        return (self.input,)

    def details(self) -> list[str]:
        lines = [
            "group_by=(" + ", ".join(e.render() for _, e in self.group_keys) + ")",
            "aggregates=(" + ", ".join(f"{a.render()} AS {n}" for n, a in self.aggregates) + ")",
        ]
        if self.updating:
            lines.append("updating: retracts a table row's previous contribution")
        if self.having is not None:
            lines.append(f"having={self.having.render()}")
        return lines

    def state(self) -> tuple[StateStore, ...]:
        if self.updating:
            return (StateStore(self.store, "accumulators and value multisets per group key"),)
        return (StateStore(self.store, "accumulators per group key"),)


@dataclass(frozen=True)
class WindowAggregate(PlanNode):
    input: PlanNode
    window: WindowSpec
    group_keys: tuple[tuple[str, Expr], ...]
    aggregates: tuple[tuple[str, AggregateCall], ...]
    emit: EmitMode
    window_start_fields: tuple[str, ...] = ()
    window_end_fields: tuple[str, ...] = ()
    having: Expr | None = None
    store: str = "window"
    result_key: tuple[str, ...] = ()  # as Aggregate.result_key

    def children(self) -> tuple[PlanNode, ...]:
        return (self.input,)

    def details(self) -> list[str]:
        lines = [
            f"window={self.window.render()} emit={self.emit.value}",
            "group_by=(" + ", ".join(e.render() for _, e in self.group_keys) + ")",
            "aggregates=(" + ", ".join(f"{a.render()} AS {n}" for n, a in self.aggregates) + ")",
        ]
        if self.having is not None:
            lines.append(f"having={self.having.render()}")
        return lines

    def state(self) -> tuple[StateStore, ...]:
        kind = "sessions" if self.window.kind is WindowKind.SESSION else "windows"
        return (StateStore(self.store, f"accumulators per (group key, {kind[:-1]})"),)


@dataclass(frozen=True)
class Join(PlanNode):
    left: PlanNode
    right: PlanNode
    kind: JoinKind
    left_keys: tuple[Expr, ...]
    right_keys: tuple[Expr, ...]
    residual: Expr | None
    left_kind: SourceKind
    right_kind: SourceKind
    within_before_ms: int | None = None
    within_after_ms: int | None = None
    store: str = "join"
    grace_ms: int | None = None  # None: not given (ksqlDB's default applies)

    def children(self) -> tuple[PlanNode, ...]:
        return (self.left, self.right)

    def label(self) -> str:
        return f"{self.left_kind.value.title()}{self.right_kind.value.title()}Join"

    def details(self) -> list[str]:
        on = " AND ".join(
            f"{lk.render()} = {rk.render()}"
            for lk, rk in zip(self.left_keys, self.right_keys, strict=True)
        )
        lines = [f"{self.kind.value} ON {on}"]
        if self.residual is not None:
            lines.append(f"residual={self.residual.render()}")
        if self.within_before_ms is not None:
            lines.append(
                f"within=({self.within_before_ms}ms before, {self.within_after_ms}ms after)"
            )
        if self.grace_ms is not None:
            lines.append(f"grace={self.grace_ms}ms")
        return lines

    def state(self) -> tuple[StateStore, ...]:
        stores = []
        if self.left_kind is SourceKind.TABLE or self.right_kind is SourceKind.STREAM:
            stores.append(StateStore(f"{self.store}-left", "left rows by join key"))
        if self.right_kind is SourceKind.TABLE or self.left_kind is SourceKind.STREAM:
            stores.append(StateStore(f"{self.store}-right", "right rows by join key"))
        return tuple(stores)


@dataclass(frozen=True)
class PatternDefinition:
    variable: str
    condition: Expr


@dataclass(frozen=True)
class MatchRecognize(PlanNode):
    input: PlanNode
    partition_by: tuple[Expr, ...]
    order_by: str
    pattern: str
    definitions: tuple[PatternDefinition, ...]
    measures: tuple[tuple[str, Expr], ...]
    after_match: str
    within_ms: int | None
    store: str = "match"

    def children(self) -> tuple[PlanNode, ...]:
        return (self.input,)

    def details(self) -> list[str]:
        lines = [
            "partition_by=(" + ", ".join(e.render() for e in self.partition_by) + ")",
            f"order_by={self.order_by} pattern=({self.pattern}) after_match={self.after_match}",
        ]
        lines += [f"define {d.variable} AS {d.condition.render()}" for d in self.definitions]
        lines.append(
            "measures=(" + ", ".join(f"{e.render()} AS {n}" for n, e in self.measures) + ")"
        )
        if self.within_ms is not None:
            lines.append(f"within={self.within_ms}ms")
        return lines

    def state(self) -> tuple[StateStore, ...]:
        return (StateStore(self.store, "partial matches per partition key"),)


@dataclass(frozen=True)
class OverAggregate(PlanNode):
    """Adds `agg(x) OVER (PARTITION BY .. ORDER BY ts RANGE|ROWS ..)` columns to each row."""

    input: PlanNode
    partition_by: tuple[Expr, ...]
    order_by: str
    frame: str  # "RANGE 3600000ms" or "ROWS 10"
    frame_size: int
    aggregates: tuple[tuple[str, AggregateCall], ...]
    store: str = "over"

    def children(self) -> tuple[PlanNode, ...]:
        return (self.input,)

    def details(self) -> list[str]:
        return [
            "partition_by=(" + ", ".join(e.render() for e in self.partition_by) + ")",
            f"order_by={self.order_by} frame={self.frame} PRECEDING",
            "aggregates=(" + ", ".join(f"{a.render()} AS {n}" for n, a in self.aggregates) + ")",
        ]

    def state(self) -> tuple[StateStore, ...]:
        return (StateStore(self.store, "rows inside the frame per partition key"),)


@dataclass(frozen=True)
class Distinct(PlanNode):
    input: PlanNode
    store: str = "distinct"

    def children(self) -> tuple[PlanNode, ...]:
        return (self.input,)

    def state(self) -> tuple[StateStore, ...]:
        return (StateStore(self.store, "rows already emitted"),)


@dataclass(frozen=True)
class Sink(PlanNode):
    input: PlanNode
    name: str
    kind: SourceKind
    topic: str
    value_format: Format
    key_format: Format
    emit: EmitMode = EmitMode.CHANGES
    partitions: int | None = None

    def children(self) -> tuple[PlanNode, ...]:
        return (self.input,)

    def details(self) -> list[str]:
        return [
            f"{self.kind.value.lower()} {self.name} topic={self.topic} "
            f"format={self.value_format.value} key_format={self.key_format.value}"
        ]
