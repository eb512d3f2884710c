"""Where a node of the parsed SQL starts, as 1-based line and column.

sqlglot records token positions on identifiers, literals and function names, not on every
composite node. A node's start is therefore its earliest positioned descendant, extended left
over the keywords that open that kind of node (`CAST(`, `INTERVAL`, `LEFT JOIN`, `SELECT`...).
"""

from __future__ import annotations

from sqlglot import exp

from streamhouse_runtime.sql import nodes
from streamhouse_runtime.sql.limits import position

_OPENING_WORDS: dict[type[exp.Expr], frozenset[str]] = {
    exp.Cast: frozenset({"CAST"}),
    exp.TryCast: frozenset({"TRY_CAST"}),
    exp.Interval: frozenset({"INTERVAL"}),
    exp.Case: frozenset({"CASE"}),
    exp.Select: frozenset({"SELECT", "DISTINCT", "ALL"}),
    exp.Subquery: frozenset({"SELECT", "DISTINCT", "ALL"}),
    exp.Join: frozenset({"JOIN", "LEFT", "RIGHT", "FULL", "INNER", "OUTER", "CROSS"}),
    exp.Group: frozenset({"GROUP", "BY"}),
    exp.Order: frozenset({"ORDER", "BY"}),
    exp.Having: frozenset({"HAVING"}),
    exp.Where: frozenset({"WHERE"}),
    exp.Not: frozenset({"NOT"}),
    exp.Window: frozenset(),
    nodes.GroupWindow: frozenset({"TUMBLE", "HOP", "SESSION"}),
    nodes.GroupWindowBound: frozenset(
        {f"{kind}_{bound}" for kind in ("TUMBLE", "HOP", "SESSION") for bound in ("START", "END")}
    ),
    nodes.WindowTableFunction: frozenset({"TABLE", "TUMBLE", "HOP", "SESSION"}),
    nodes.CreateSource: frozenset({"CREATE", "OR", "REPLACE", "STREAM", "TABLE"}),
    nodes.CreateAs: frozenset({"CREATE", "OR", "REPLACE", "STREAM", "TABLE"}),
    nodes.CreateFunction: frozenset({"CREATE", "OR", "REPLACE", "FUNCTION"}),
    nodes.DropSource: frozenset({"DROP", "STREAM", "TABLE"}),
    nodes.InsertInto: frozenset({"INSERT", "INTO"}),
}
_PAREN_OPENED = (exp.Subquery, exp.Paren, exp.Tuple)


def _earliest(node: exp.Expr) -> int | None:
    best: int | None = None
    for descendant in node.walk():
        start = descendant.meta.get("start") if descendant.meta else None
        if isinstance(start, int) and (best is None or start < best):
            best = start
    return best


def _extend_left(text: str, offset: int, words: frozenset[str], parens: bool) -> int:
    """Move `offset` left over whitespace, '(' and any of `words` that open the node."""
    while True:
        cursor = offset
        while cursor > 0 and (text[cursor - 1].isspace() or text[cursor - 1] == "("):
            cursor -= 1
            if parens and text[cursor] == "(":
                offset = cursor
        word_start = cursor
        while word_start > 0 and (text[word_start - 1].isalnum() or text[word_start - 1] == "_"):
            word_start -= 1
        if word_start < cursor and text[word_start:cursor].upper() in words:
            offset = word_start
            continue
        return offset


def start_offset(node: exp.Expr, text: str) -> int | None:
    offset = _earliest(node)
    if offset is None:
        return None
    words = next((w for kind, w in _OPENING_WORDS.items() if isinstance(node, kind)), None)
    parens = isinstance(node, _PAREN_OPENED)
    if words or parens:
        offset = _extend_left(text, offset, words or frozenset(), parens)
    return offset


class Locator:
    """Turns nodes into (line, column) within one SQL text."""

    def __init__(self, text: str) -> None:
        self.text = text

    def of(self, node: exp.Expr | None, fallback: int = 0) -> tuple[int, int]:
        offset = None
        while node is not None and offset is None:
            offset = start_offset(node, self.text)
            node = node.parent  # a node with no positioned token points at its parent
        return position(self.text, fallback if offset is None else offset)
