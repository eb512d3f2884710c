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


def _chain(plan: PlanNode) -> list[PlanNode]:
    """The operators from the source up to `plan`, in execution order."""
    chain: list[PlanNode] = []
    node: PlanNode | None = plan
    while node is not None:
        children = node.children()
        if len(children) > 1:
            raise NotExecutable(
                f"{node.label()} is planned but not executable yet: this runtime runs "
                "filters, projections, windowed and running aggregations, DISTINCT and "
                "PARTITION BY"
            )
        chain.append(node)
        node = children[0] if children else None
    chain.reverse()
    return chain


def split_stages(plan: Sink) -> list[StageSpec]:
    """Stages in data-flow order; raises NotExecutable for operators not run yet."""
    chain = _chain(plan)
    first = chain[0]
    if not isinstance(first, Source):
        raise NotExecutable(f"a query must start at a source, not {first.label()}")
    stages = [StageSpec(0, first)]
    for position, node in enumerate(chain[1:], start=1):
        stage = stages[-1]
        if isinstance(node, Filter | Project):
            (stage.post if stage.stateful is not None else stage.pre).append(node)
        elif isinstance(node, Aggregate | WindowAggregate | Distinct):
            if stage.stateful is not None or stage.rekey is not None:
                before = stage.stateful.label() if stage.stateful else "PARTITION BY"
                raise NotExecutable(f"{node.label()} after {before} is not executable yet")
            stage.stateful = node
        elif isinstance(node, Repartition):
            later = chain[position + 1 :]
            if any(isinstance(n, Aggregate | WindowAggregate | Distinct) for n in later):
                stage.output = node
                stages.append(StageSpec(len(stages), node))
            else:
                if stage.stateful is not None:
                    raise NotExecutable("PARTITION BY after an aggregation is not executable")
                stage.rekey = node
        elif isinstance(node, Sink):
            stage.output = node
        else:
            raise NotExecutable(f"{node.label()} is planned but not executable yet")
    return stages


def internal_topic(query_id: str, suffix: str) -> str:
    """Deterministic name of an internal topic of one query (its identity, not its name)."""
    return f"streamhouse-{query_id}-{suffix}"


def plan_fingerprint(plan: PlanNode) -> str:
    """A short stable hash of the plan's operators and state, for upgrade compatibility."""
    from streamhouse_runtime.plan.explain import explain_text

    return hashlib.sha256(explain_text(plan).encode()).hexdigest()[:16]
