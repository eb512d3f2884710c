"""Splits a plan into stages: each stage reads one topic (a source or an internal repartition
topic) and runs its operators up to the next repartition or the sink.

A repartition that no stateful operator follows (PARTITION BY) needs no internal topic: it only
re-keys the sink's records, so it folds into the stage that writes the sink.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from streamhouse_runtime.plan.nodes import (
    Aggregate,
    Distinct,
    Filter,
    Join,
    PlanNode,
    Project,
    Repartition,
    Sink,
    Source,
    TableChanges,
    WindowAggregate,
)
from streamhouse_runtime.plan.stages import Port, Stage, stage_graph
from streamhouse_runtime.sql.catalog import Column, Format, SourceKind
from streamhouse_runtime.sql.errors import ErrorCode, SqlError


class NotExecutable(Exception):
    """The plan uses an operator the runtime does not run yet."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.error = SqlError(ErrorCode.UNSUPPORTED, message, 1, 1)


Stateful = Aggregate | WindowAggregate | Distinct | TableChanges


def result_key_columns(node: Aggregate | WindowAggregate) -> list[Column]:
    """The columns of an aggregate's result key, named after what they hold (the grouped
    column's name or alias, `Aggregate.result_key`), in group key order."""
    names = node.result_key or tuple(name for name, _ in node.group_keys)
    return [Column(name, expr.type) for name, (_, expr) in zip(names, node.group_keys, strict=True)]


@dataclass
class StageSpec:
    index: int
    input: Source | Repartition
    pre: list[Filter | Project] = field(default_factory=list)
    stateful: Stateful | None = None
    post: list[Filter | Project] = field(default_factory=list)
    rekey: Repartition | None = None  # PARTITION BY folded into the output
    output: Repartition | Sink | None = None
    output_key_format: Format = Format.JSON  # of a repartition topic's keys

    @property
    def is_source_stage(self) -> bool:
        return isinstance(self.input, Source)


@dataclass
class JoinStageSpec:
    """A join stage: two co-partitioned ports, the join, stateless operators after it."""

    index: int
    ports: tuple[Port, ...]
    join: Join
    post: list[Filter | Project] = field(default_factory=list)
    rekey: Repartition | None = None
    output: Repartition | Sink | None = None
    output_key_format: Format = Format.JSON

    @property
    def stateful(self) -> Join:
        return self.join

    @property
    def is_source_stage(self) -> bool:
        return False  # a join keeps state whatever it reads

    @property
    def input(self) -> Source | Repartition:
        return self.ports[0].reads


ExecSpec = StageSpec | JoinStageSpec

EXECUTABLE = (
    "filters, projections, windowed and running aggregations (of streams and of tables), "
    "DISTINCT, PARTITION BY, stream-table and stream-stream joins"
)


def _join_spec(stage: Stage) -> JoinStageSpec:
    joins = [n for n in stage.operators if isinstance(n, Join)]
    if len(stage.ports) != 2 or len(joins) != 1 or stage.operators[0] is not joins[0]:
        raise NotExecutable(f"a stage with {len(stage.ports)} inputs is not executable yet")
    join = joins[0]
    if (
        join.left_kind is SourceKind.TABLE
        and join.right_kind is SourceKind.TABLE
        and any(port.internal for port in stage.ports)
    ):
        raise NotExecutable(
            "a foreign-key table-table join (ON a column of one table = the other's primary "
            f"key) is planned but not executable yet: this runtime runs {EXECUTABLE}"
        )
    post: list[Filter | Project] = []
    for node in stage.operators[1:]:
        if not isinstance(node, Filter | Project):
            raise NotExecutable(
                f"{node.label()} right after a join is not executable yet (its input is "
                "keyed by the join key; re-key it first)"
            )
        post.append(node)
    return JoinStageSpec(stage.index, stage.ports, join, post, stage.rekey, stage.output)


def _spec(stage: Stage) -> ExecSpec:
    """The executor's view of one stage of the graph: one port, at most one stateful
    operator, stateless operators before and after it; or a join stage."""
    if len(stage.ports) > 1:
        return _join_spec(stage)
    port = stage.ports[0]
    spec = StageSpec(stage.index, port.reads, rekey=stage.rekey, output=stage.output)
    spec.pre.extend(n for n in port.operators if isinstance(n, Filter | Project))
    for node in stage.operators:
        if isinstance(node, Filter | Project):
            (spec.post if spec.stateful is not None else spec.pre).append(node)
        elif isinstance(node, Aggregate | WindowAggregate | Distinct | TableChanges):
            if spec.stateful is not None:
                raise NotExecutable(
                    f"{node.label()} after {spec.stateful.label()} is not executable yet"
                )
            spec.stateful = node
        else:
            raise NotExecutable(f"{node.label()} is planned but not executable yet")
    if spec.stateful is not None and spec.rekey is not None:
        raise NotExecutable("PARTITION BY after an aggregation is not executable")
    return spec


def split_stages(plan: Sink) -> list[ExecSpec]:
    """Stages in data-flow order, from the plan's stage graph; raises NotExecutable for
    operators not run yet."""
    if not isinstance(plan, Sink):
        raise NotExecutable(f"a query must end at a sink, not {plan.label()}")
    graph = stage_graph(plan)
    specs = [_spec(stage) for stage in graph.stages]
    formats = _repartition_key_formats(graph.stages)
    for spec in specs:
        if isinstance(spec.output, Repartition):
            spec.output_key_format = formats.get(spec.output.topic_suffix, Format.JSON)
    return specs


def _repartition_key_formats(stages: tuple[Stage, ...]) -> dict[str, Format]:
    """The key format of each repartition topic that feeds a join next to a source topic it
    reads directly: that source's key format, so the same key value has the same key bytes
    (and so the same partition) on both sides. Other repartition topics use JSON keys."""
    formats: dict[str, Format] = {}
    for stage in stages:
        direct = [p.reads for p in stage.ports if isinstance(p.reads, Source)]
        if len(stage.ports) < 2 or not direct:
            continue
        for port in stage.ports:
            if isinstance(port.reads, Repartition):
                key_format = direct[0].key_format
                if key_format is Format.KAFKA and len(port.reads.keys) > 1:
                    key_format = Format.JSON
                formats[port.reads.topic_suffix] = key_format
    return formats


def stage_ports(spec: ExecSpec) -> list[Port]:
    """The input ports of a stage (one for a single-input stage)."""
    if isinstance(spec, JoinStageSpec):
        return list(spec.ports)
    kind = spec.input.kind if isinstance(spec.input, Source) else SourceKind.STREAM
    return [Port(0, spec.input, kind)]


def source_topics(stages: Sequence[ExecSpec]) -> list[str]:
    """Every source topic the stages read, in data-flow order (the first is the query's)."""
    return [
        port.reads.topic
        for spec in stages
        for port in stage_ports(spec)
        if isinstance(port.reads, Source)
    ]


def repartition_counts(stages: Sequence[ExecSpec], counts: Mapping[str, int]) -> dict[str, int]:
    """The partition count of each repartition topic, by suffix: the count of the query's
    first source topic, except a repartition topic a join reads next to a source topic,
    which gets that topic's count (the two inputs of a join must be co-partitioned).
    `counts`: the partition counts of the source topics."""
    sources = source_topics(stages)
    default = counts.get(sources[0], 1) if sources else 1
    found: dict[str, int] = {}
    for spec in stages:
        ports = stage_ports(spec)
        direct = [p.reads.topic for p in ports if isinstance(p.reads, Source)]
        for port in ports:
            if isinstance(port.reads, Repartition):
                joined = len(ports) > 1 and direct
                found[port.reads.topic_suffix] = counts.get(direct[0], 1) if joined else default
    return found


def internal_topic(query_id: str, suffix: str) -> str:
    """Deterministic name of an internal topic of one query (its identity, not its name)."""
    return f"streamhouse-{query_id}-{suffix}"


def plan_fingerprint(plan: PlanNode) -> str:
    """A short stable hash of the plan's operators and state, for upgrade compatibility."""
    from streamhouse_runtime.plan.explain import explain_text

    return hashlib.sha256(explain_text(plan).encode()).hexdigest()[:16]
