"""Checks on parsed trees that come before analysis: empty quoted names and nesting depth.

Both walk the tree with an explicit stack, so a tree too deep for the analyzer's recursion is
still measured, and the error points at the node where the limit is crossed.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from streamhouse_runtime.sql.errors import ErrorCode, SqlError
from streamhouse_runtime.sql.positions import Locator

# Nesting levels of one statement's tree (statement, clause, operator, operand...). The runtime
# compiles every expression to Python source, and CPython refuses source nested deeper than 200
# parentheses: a chain of 150 `a + a + ...` fails there. 100 levels keeps a margin for the
# wrappers the expression compiler adds and lets 90-odd chained operators through.
MAX_TREE_DEPTH = 100


def check_trees(statements: Sequence[exp.Expr], locator: Locator) -> SqlError | None:
    """The first empty quoted name or over-deep node of the statements, or None."""
    for statement in statements:
        stack: list[tuple[exp.Expr, int]] = [(statement, 1)]
        while stack:
            node, depth = stack.pop()
            if isinstance(node, exp.Identifier) and node.quoted and not node.name:
                line, column = locator.of(node)
                return SqlError(
                    ErrorCode.EMPTY_IDENTIFIER,
                    "empty quoted name: a name needs at least one character",
                    line,
                    column,
                )
            if depth > MAX_TREE_DEPTH:
                line, column = locator.of(node)
                return SqlError(
                    ErrorCode.NESTING_TOO_DEEP,
                    f"expression nested deeper than {MAX_TREE_DEPTH} levels here; split it up",
                    line,
                    column,
                )
            # Reversed, so that siblings are visited in source order. `a OR b OR c` is one
            # level: the analyzer and the compiler flatten chains of one connective.
            stack.extend(
                (child, depth if _same_connective(node, child) else depth + 1)
                for child in reversed(list(node.iter_expressions()))
            )
    return None


def _same_connective(parent: exp.Expr, child: exp.Expr) -> bool:
    return isinstance(parent, exp.Connector) and type(child) is type(parent)


def deepest_node(statements: Sequence[exp.Expr]) -> exp.Expr | None:
    """The node at the greatest depth (the first in source order), iteratively."""
    best: tuple[int, exp.Expr | None] = (0, None)
    for statement in statements:
        stack: list[tuple[exp.Expr, int]] = [(statement, 1)]
        while stack:
            node, depth = stack.pop()
            if depth > best[0]:
                best = (depth, node)
            stack.extend((child, depth + 1) for child in reversed(list(node.iter_expressions())))
    return best[1]
