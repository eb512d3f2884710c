"""Upgrade compatibility: can a changed query keep the state the old one wrote?

The state of a query is the stores of its stateful operators (aggregations, windows, DISTINCT,
joins, patterns). A store's layout follows from the operator's kind, window, group keys,
aggregate calls and output schema, and from where its input comes from (the source, or a
repartition by some key). A change that leaves every store's layout alone is
state-compatible: filters, projections after the aggregation, HAVING, the sink's topic or
format. Any other change to a stateful query is state-incompatible, and a query without state
before and after is a stateless change. This is what Flink calls state compatibility, decided
before anything is deployed instead of when a savepoint fails to load.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from streamhouse_runtime.plan.nodes import PlanNode, Repartition, Source


class UpgradeKind(StrEnum):
    STATELESS = "stateless"  # no state before or after: nothing to keep
    STATE_COMPATIBLE = "state-compatible"  # every store keeps its layout
    STATE_INCOMPATIBLE = "state-incompatible"  # some store would not read the old state


@dataclass(frozen=True)
class Upgrade:
    kind: UpgradeKind
    reason: str


def _input_of(node: PlanNode) -> str:
    """Where a stateful operator's rows come from: a repartition by its keys, or a source."""
    current: PlanNode | None = node
    while current is not None:
        children = current.children()
        if not children:
            break
        current = children[0]
        if isinstance(current, Repartition):
            return "repartition by (" + ", ".join(e.render() for _, e in current.keys) + ")"
        if isinstance(current, Source):
            return f"source {current.name}"
    return "inputs " + ", ".join(child.label() for child in node.children())


def state_layout(plan: PlanNode) -> list[str]:
    """One line per stateful operator, in data-flow order: what its store's layout depends on.
    HAVING is left out: it filters what is emitted, not what is stored."""
    lines: list[str] = []

    def visit(node: PlanNode) -> None:
        for child in node.children():
            visit(child)
        stores = node.state()
        if stores:
            details = [d for d in node.details() if not d.startswith("having=")]
            lines.append(
                f"{node.label()} {' '.join(details)} schema: {node.schema.render()} "
                f"from {_input_of(node)} store: {', '.join(s.name for s in stores)}"
            )

    visit(plan)
    return lines


def state_fingerprint(plan: PlanNode) -> str:
    """A short stable hash of state_layout ("" for a query without state)."""
    layout = state_layout(plan)
    if not layout:
        return ""
    return hashlib.sha256("\n".join(layout).encode()).hexdigest()[:16]


def classify(old: PlanNode, new: PlanNode) -> Upgrade:
    """How going from `old` to `new` treats the state, with a reason for humans."""
    before, after = state_layout(old), state_layout(new)
    if not before and not after:
        return Upgrade(UpgradeKind.STATELESS, "neither query keeps state")
    if before == after:
        return Upgrade(
            UpgradeKind.STATE_COMPATIBLE, f"all {len(after)} stateful operators are unchanged"
        )
    if not before:
        return Upgrade(UpgradeKind.STATE_COMPATIBLE, "the old query kept no state to carry over")
    for index in range(max(len(before), len(after))):
        was = before[index] if index < len(before) else None
        now = after[index] if index < len(after) else None
        if was != now:
            break
    if was is None:
        reason = f"adds a stateful operator: {now}"
    elif now is None:
        reason = f"removes the stateful operator {was}"
    else:
        reason = f"changes stateful operator {index + 1} from {was} to {now}"
    return Upgrade(UpgradeKind.STATE_INCOMPATIBLE, reason)
