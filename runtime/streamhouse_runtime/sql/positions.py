"""Where a node of the parsed SQL starts, as 1-based line and column."""

from __future__ import annotations

from sqlglot import exp

from streamhouse_runtime.sql.limits import position


def start_offset(node: exp.Expr) -> int | None:
    """The smallest token start among the node and its descendants (sqlglot records
    positions on identifiers, literals and functions, not on every composite node)."""
    best: int | None = None
    for descendant in node.walk():
        start = descendant.meta.get("start") if descendant.meta else None
        if isinstance(start, int) and (best is None or start < best):
            best = start
    return best


class Locator:
    """Turns nodes into (line, column) within one SQL text."""

    def __init__(self, text: str) -> None:
        self.text = text

    def of(self, node: exp.Expr | None, fallback: int = 0) -> tuple[int, int]:
        offset = start_offset(node) if node is not None else None
        return position(self.text, fallback if offset is None else offset)
