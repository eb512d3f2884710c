"""The analyzer's output: a checked, typed description of a program and of each query in it.

Everything here is bound: column references name fields of the row an operator sees, and
every expression carries its SQL type. The planner turns an AnalyzedQuery into plan nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sqlglot import exp

from streamhouse_runtime.sql.bound import AggregateCall, Expr
from streamhouse_runtime.sql.catalog import Catalog, Format, Source, SourceKind
from streamhouse_runtime.sql.compatibility import Compatibility
from streamhouse_runtime.sql.types import SqlType


class EmitMode(StrEnum):
    CHANGES = "CHANGES"
    FINAL = "FINAL"


class WindowKind(StrEnum):
    TUMBLING = "TUMBLING"
    HOPPING = "HOPPING"
    SESSION = "SESSION"


class WindowSyntax(StrEnum):
    FLINK_GROUP = "flink-group-window"
    FLINK_TVF = "flink-window-tvf"
    KSQL = "ksql-window"


class JoinKind(StrEnum):
    INNER = "INNER"
    LEFT = "LEFT"
    RIGHT = "RIGHT"
    FULL = "FULL"


@dataclass(frozen=True)
class WindowSpec:
    kind: WindowKind
    syntax: WindowSyntax
    time_field: str | None  # None: the Kafka record timestamp (ROWTIME)
    size_ms: int | None = None
    slide_ms: int | None = None
    gap_ms: int | None = None
    grace_ms: int | None = None
    retention_ms: int | None = None

    def render(self) -> str:
        parts = [f"time={self.time_field or 'ROWTIME'}"]
        for label, value in (
            ("size", self.size_ms),
            ("slide", self.slide_ms),
            ("gap", self.gap_ms),
            ("grace", self.grace_ms),
            ("retention", self.retention_ms),
        ):
            if value is not None:
                parts.append(f"{label}={value}ms")
        return f"{self.kind.value}({', '.join(parts)})"


@dataclass(frozen=True)
class RelationField:
    column: str  # the name users write
    field: str  # the field name in rows of this query (qualified when several relations)
    type: SqlType


@dataclass
class Relation:
    """One input of the FROM clause (a stream or table, maybe through a window TVF)."""

    alias: str
    source: Source
    fields: list[RelationField]
    window: WindowSpec | None = None

    @property
    def kind(self) -> SourceKind:
        return self.source.kind

    def find(self, column: str) -> RelationField | None:
        lowered = column.lower()
        return next((f for f in self.fields if f.column.lower() == lowered), None)


@dataclass(frozen=True)
class JoinStep:
    """Joins the accumulated left side with `right` (an index into `relations`)."""

    right: int
    kind: JoinKind
    left_keys: tuple[Expr, ...]
    right_keys: tuple[Expr, ...]
    residual: Expr | None
    left_kind: SourceKind
    within_before_ms: int | None = None
    within_after_ms: int | None = None
    grace_ms: int | None = None  # WITHIN ... GRACE PERIOD; None: not given


@dataclass(frozen=True)
class OverSpec:
    partition_by: tuple[Expr, ...]
    order_field: str | None  # None: ROWTIME
    frame: str  # "RANGE" or "ROWS"
    frame_size: int  # milliseconds for RANGE, rows for ROWS
    aggregates: tuple[tuple[str, AggregateCall], ...]


@dataclass(frozen=True)
class MatchSpec:
    partition_by: tuple[Expr, ...]
    partition_names: tuple[str, ...]
    order_field: str | None
    pattern: str
    definitions: tuple[tuple[str, Expr], ...]
    measures: tuple[tuple[str, Expr], ...]
    after_match: str
    within_ms: int | None


@dataclass
class AnalyzedQuery:
    """A SELECT, checked and bound. Stages run in this order at run time:
    joins -> where -> (over | match) -> post_where -> group/window -> having -> select
    -> distinct -> partition_by."""

    node: exp.Expr
    relations: list[Relation]
    joins: list[JoinStep] = field(default_factory=list)
    where: Expr | None = None
    over: OverSpec | None = None
    post_where: Expr | None = None  # conjuncts of WHERE that read OVER results
    match: MatchSpec | None = None
    group_keys: list[tuple[str, Expr]] = field(default_factory=list)
    aggregates: list[tuple[str, AggregateCall]] = field(default_factory=list)
    window: WindowSpec | None = None
    having: Expr | None = None
    select: list[tuple[str, Expr]] = field(default_factory=list)
    distinct: bool = False
    partition_by: list[tuple[str, Expr]] = field(default_factory=list)
    emit: EmitMode = EmitMode.CHANGES
    result_kind: SourceKind = SourceKind.STREAM
    key_fields: tuple[str, ...] = ()

    @property
    def is_aggregate(self) -> bool:
        return bool(self.group_keys or self.aggregates or self.window)

    @property
    def output_columns(self) -> list[tuple[str, SqlType]]:
        return [(name, expr.type) for name, expr in self.select]


class StatementKind(StrEnum):
    CREATE_SOURCE = "CREATE SOURCE"
    CREATE_AS = "CREATE AS SELECT"
    INSERT_INTO = "INSERT INTO"
    DROP = "DROP"
    CREATE_FUNCTION = "CREATE FUNCTION"
    SELECT = "SELECT"


@dataclass
class AnalyzedStatement:
    kind: StatementKind
    node: exp.Expr
    line: int
    name: str | None = None  # the created/dropped/target source
    query: AnalyzedQuery | None = None
    sink: Source | None = None  # the stream/table a persistent query writes

    @property
    def is_persistent_query(self) -> bool:
        return self.kind in (StatementKind.CREATE_AS, StatementKind.INSERT_INTO)


@dataclass
class Program:
    """A whole SQL text: the catalog it builds and every statement, analyzed."""

    text: str
    catalog: Catalog
    statements: list[AnalyzedStatement]
    compatibility: Compatibility = Compatibility.DEFAULT

    @property
    def persistent_queries(self) -> list[AnalyzedStatement]:
        return [s for s in self.statements if s.is_persistent_query]


DEFAULT_FORMAT = Format.JSON
