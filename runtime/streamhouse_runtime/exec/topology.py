"""Splits a plan into stages: each stage reads one topic (a source or an internal repartition
topic) and runs its operators up to the next repartition or the sink.

A repartition that no stateful operator follows (PARTITION BY) needs no internal topic: it only
re-keys the sink's records, so it folds into the stage that writes the sink.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from streamhouse_runtime.plan.nodes import (
    Aggregate,
    Distinct,
    Filter,
    PlanNode,
    Project,
    Repartition,
    Sink,
    Source,
    WindowAggregate,
)
from streamhouse_runtime.plan.stages import Stage, stage_graph
from streamhouse_runtime.sql.catalog import Column
from streamhouse_runtime.sql.errors import ErrorCode, SqlError


class NotExecutable(Exception):
    """The plan uses an operator the runtime does not run yet."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.error = SqlError(ErrorCode.UNSUPPORTED, message, 1, 1)


Stateful = Aggregate | WindowAggregate | Distinct


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

    @property
    def is_source_stage(self) -> bool:
        return isinstance(self.input, Source)


EXECUTABLE = "filters, projections, windowed and running aggregations, DISTINCT and PARTITION BY"


def _spec(stage: Stage) -> StageSpec:
    """The executor's view of one stage of the graph: one port, at most one stateful
    operator, stateless operators before and after it."""
    if len(stage.ports) > 1:
        join = next((n for n in stage.operators if len(n.children()) > 1), stage.operators[0])
        raise NotExecutable(
            f"{join.label()} is planned but not executable yet: this runtime runs {EXECUTABLE}"
        )
    port = stage.ports[0]
    spec = StageSpec(stage.index, port.reads, rekey=stage.rekey, output=stage.output)
    spec.pre.extend(n for n in port.operators if isinstance(n, Filter | Project))
    for node in stage.operators:
        if isinstance(node, Filter | Project):
            (spec.post if spec.stateful is not None else spec.pre).append(node)
        elif isinstance(node, Aggregate | WindowAggregate | Distinct):
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


def split_stages(plan: Sink) -> list[StageSpec]:
    """Stages in data-flow order, from the plan's stage graph; raises NotExecutable for
    operators not run yet."""
    if not isinstance(plan, Sink):
        raise NotExecutable(f"a query must end at a sink, not {plan.label()}")
    return [_spec(stage) for stage in stage_graph(plan).stages]


def internal_topic(query_id: str, suffix: str) -> str:
    """Deterministic name of an internal topic of one query (its identity, not its name)."""
    return f"streamhouse-{query_id}-{suffix}"


def plan_fingerprint(plan: PlanNode) -> str:
    """A short stable hash of the plan's operators and state, for upgrade compatibility."""
    from streamhouse_runtime.plan.explain import explain_text

    return hashlib.sha256(explain_text(plan).encode()).hexdigest()[:16]
