"""Binding of ksqlDB's value constructors: ARRAY[...], MAP(k := v, ...), STRUCT(name := v, ...).

They are calls of the bound names ARRAY, MAP and STRUCT: ARRAY's arguments are its elements
(converted to their common type), MAP's alternate keys and values, STRUCT's are its field
values in the order of its type's fields. The rules are ksqlDB's (scalar function reference,
"Collections"): elements and map values must have a common type, map keys are strings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NoReturn

from sqlglot import exp

from streamhouse_runtime.sql import bound
from streamhouse_runtime.sql import types as t
from streamhouse_runtime.sql.errors import ErrorCode
from streamhouse_runtime.sql.types import SqlType, TypeKind

Fail = Callable[[ErrorCode, str, exp.Expr | None], NoReturn]
Visit = Callable[[exp.Expr], bound.Expr]


def is_constructor(node: exp.Expr) -> bool:
    if isinstance(node, exp.Array | exp.Struct):
        return True
    return isinstance(node, exp.Anonymous) and node.name.upper() == "MAP"


def bind_constructor(node: exp.Expr, visit: Visit, fail: Fail) -> bound.Expr:
    if isinstance(node, exp.Array):
        return _array(node, visit, fail)
    if isinstance(node, exp.Struct):
        return _struct(node, visit, fail)
    return _map(node, visit, fail)


def _common(
    values: Sequence[bound.Expr], nodes: Sequence[exp.Expr], what: str, fail: Fail
) -> SqlType:
    common: SqlType = t.NULL
    for value, node in zip(values, nodes, strict=True):
        merged = t.common_supertype(common, value.type)
        if merged is None:
            fail(ErrorCode.TYPE_MISMATCH, f"{what} mix {common} and {value.type}", node)
        common = merged
    return common


def _array(node: exp.Array, visit: Visit, fail: Fail) -> bound.Expr:
    nodes = [e for e in node.expressions if isinstance(e, exp.Expr)]
    if not nodes:
        fail(ErrorCode.WRONG_ARGUMENT_COUNT, "ARRAY[] needs at least one element", node)
    elements = [visit(e) for e in nodes]
    element = _common(elements, nodes, "ARRAY elements", fail)
    return bound.Call(t.array(element), "ARRAY", tuple(elements))


def _entries(node: exp.Anonymous, fail: Fail) -> list[tuple[exp.Expr, exp.Expr]]:
    """MAP(k := v, ...) or MAP(k1, v1, k2, v2, ...) as (key, value) nodes."""
    arguments = [e for e in node.expressions if isinstance(e, exp.Expr)]
    if not arguments:
        fail(ErrorCode.WRONG_ARGUMENT_COUNT, "MAP() needs at least one entry", node)
    if all(isinstance(a, exp.PropertyEQ) for a in arguments):
        # sqlglot reads the name before := as an identifier; here it is a column.
        return [
            (exp.column(a.this) if isinstance(a.this, exp.Identifier) else a.this, a.expression)
            for a in arguments
        ]
    if any(isinstance(a, exp.PropertyEQ) for a in arguments) or len(arguments) % 2:
        fail(
            ErrorCode.WRONG_ARGUMENT_COUNT,
            "MAP takes key := value entries (or keys and values in pairs)",
            node,
        )
    return [(arguments[i], arguments[i + 1]) for i in range(0, len(arguments), 2)]


def _map(node: exp.Expr, visit: Visit, fail: Fail) -> bound.Expr:
    assert isinstance(node, exp.Anonymous)
    entries = _entries(node, fail)
    keys = [visit(k) for k, _ in entries]
    for key, key_node in zip(keys, (k for k, _ in entries), strict=True):
        if key.type.kind not in (TypeKind.VARCHAR, TypeKind.NULL):
            fail(ErrorCode.TYPE_MISMATCH, f"MAP keys must be strings, got {key.type}", key_node)
    values = [visit(v) for _, v in entries]
    value_type = _common(values, [v for _, v in entries], "MAP values", fail)
    flat = tuple(item for pair in zip(keys, values, strict=True) for item in pair)
    return bound.Call(t.map_of(t.VARCHAR, value_type), "MAP", flat)


def _struct(node: exp.Struct, visit: Visit, fail: Fail) -> bound.Expr:
    fields: list[tuple[str, SqlType]] = []
    values: list[bound.Expr] = []
    seen: set[str] = set()
    arguments = [e for e in node.expressions if isinstance(e, exp.Expr)]
    if not arguments:
        fail(ErrorCode.WRONG_ARGUMENT_COUNT, "STRUCT() needs at least one field", node)
    for argument in arguments:
        if not isinstance(argument, exp.PropertyEQ) or not isinstance(
            argument.this, exp.Identifier | exp.Column
        ):
            fail(
                ErrorCode.UNSUPPORTED,
                "STRUCT fields are written name := value",
                argument,
            )
        name = argument.this.name
        if name.lower() in seen:
            fail(ErrorCode.DUPLICATE_COLUMN, f"STRUCT field '{name}' appears twice", argument)
        seen.add(name.lower())
        value = visit(argument.expression)
        fields.append((name, value.type))
        values.append(value)
    return bound.Call(t.struct(fields), "STRUCT", tuple(values))
