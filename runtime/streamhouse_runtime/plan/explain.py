"""EXPLAIN: deterministic text and JSON renderings of a logical plan."""

from __future__ import annotations

from typing import Any

from streamhouse_runtime.plan.nodes import PlanNode


def explain_text(root: PlanNode) -> str:
    """An indented tree, one operator per line plus its schema, details and state."""
    lines: list[str] = []

    def visit(node: PlanNode, prefix: str, child_prefix: str) -> None:
        details = node.details()
        head = f"{node.label()}" + (f" {details[0]}" if details else "")
        lines.append(prefix + head)
        for extra in details[1:]:
            lines.append(f"{child_prefix}    {extra}")
        lines.append(f"{child_prefix}    schema: {node.schema.render()}")
        for store in node.state():
            lines.append(f"{child_prefix}    state: {store.name} ({store.description})")
        children = node.children()
        for index, child in enumerate(children):
            last = index == len(children) - 1
            visit(
                child,
                child_prefix + ("└─ " if last else "├─ "),
                child_prefix + ("   " if last else "│  "),
            )

    visit(root, "", "")
    return "\n".join(lines) + "\n"


def explain_json(root: PlanNode) -> dict[str, Any]:
    """The same tree as nested dicts (stable key order), for `--json` and the operator."""
    return {
        "operator": root.label(),
        "details": root.details(),
        "schema": [{"name": f.name, "type": str(f.type)} for f in root.schema.fields],
        "key": list(root.schema.key),
        "state": [{"name": s.name, "description": s.description} for s in root.state()],
        "inputs": [explain_json(child) for child in root.children()],
    }


def summary(root: PlanNode) -> str:
    """One line: the operators from source to sink, e.g. `Source -> Filter -> Sink`."""
    labels: list[str] = []

    def visit(node: PlanNode) -> None:
        for child in node.children():
            visit(child)
        labels.append(node.label())

    visit(root)
    return " -> ".join(labels)
