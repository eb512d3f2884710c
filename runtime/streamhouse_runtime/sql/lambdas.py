"""Binding of ksqlDB's lambda functions TRANSFORM, FILTER and REDUCE (ksqlDB 0.17+).

    TRANSFORM(array, x => ...)                 TRANSFORM(map, (k, v) => key, (k, v) => value)
    FILTER(array, x => ...)                    FILTER(map, (k, v) => ...)
    REDUCE(array, state, (s, x) => ...)        REDUCE(map, state, (s, k, v) => ...)

A lambda's parameters are typed from the collection (and REDUCE's state); its body is bound
with them in scope before the query's columns. The rules are ksqlDB's (its `Transform`,
`Filter` and `Reduce` UDFs): a NULL collection gives NULL, except REDUCE, which then returns
the initial state; a NULL initial state makes REDUCE NULL. A FILTER condition that is NULL
drops the element (ksqlDB fails the record on it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

from sqlglot import exp

from streamhouse_runtime.sql import bound
from streamhouse_runtime.sql import types as t
from streamhouse_runtime.sql.errors import ErrorCode
from streamhouse_runtime.sql.types import SqlType, TypeKind

Fail = Callable[[ErrorCode, str, exp.Expr | None], NoReturn]
Visit = Callable[[exp.Expr], bound.Expr]
# Binds a lambda body with the given parameters (lower-case name -> type) in scope.
BindBody = Callable[[exp.Expr, dict[str, SqlType]], bound.Expr]

LAMBDA_FUNCTIONS = frozenset({"TRANSFORM", "FILTER", "REDUCE"})


def is_lambda_call(node: exp.Expr) -> bool:
    return isinstance(node, exp.Anonymous) and node.name.upper() in LAMBDA_FUNCTIONS


def _shape(kind: SqlType) -> str:
    return "map" if kind.kind is TypeKind.MAP else "array"


def bind_lambda_call(
    node: exp.Anonymous, visit: Visit, bind_body: BindBody, fail: Fail
) -> bound.Expr:
    name = node.name.upper()
    arguments = [a for a in node.expressions if isinstance(a, exp.Expr)]
    collection_node = arguments[0] if arguments else None
    collection = visit(collection_node) if collection_node is not None else None
    if collection is None or collection.type.kind not in (
        TypeKind.ARRAY,
        TypeKind.MAP,
        TypeKind.NULL,
    ):
        got = "nothing" if collection is None else str(collection.type)
        fail(
            ErrorCode.WRONG_ARGUMENT_TYPE,
            f"{name}: argument 1 must be an array or map, got {got}",
            node,
        )
    kind = collection.type
    is_map = kind.kind is TypeKind.MAP
    element = kind.element or t.NULL
    key = kind.key or t.NULL
    expected = {"TRANSFORM": 3 if is_map else 2, "FILTER": 2, "REDUCE": 3}[name]
    if len(arguments) != expected:
        fail(
            ErrorCode.WRONG_ARGUMENT_COUNT,
            f"{name} of a{'' if is_map else 'n'} {_shape(kind)} takes {expected} arguments, "
            f"got {len(arguments)}",
            node,
        )
    if name == "REDUCE":
        return _reduce(node, collection, arguments, bind_body, visit, fail)
    lambdas = arguments[1:]
    parameter_types = [key, element] if is_map else [element]
    bodies = [_lambda(name, n, parameter_types, bind_body, fail) for n in lambdas]
    if name == "FILTER":
        condition = bodies[0]
        if condition.body.type.kind not in (TypeKind.BOOLEAN, TypeKind.NULL):
            fail(
                ErrorCode.TYPE_MISMATCH,
                f"FILTER's lambda must be a BOOLEAN condition, not {condition.body.type}",
                lambdas[0],
            )
        return bound.Call(kind, name, (collection, condition))
    if is_map:
        result = t.map_of(bodies[0].body.type, bodies[1].body.type)
    else:
        result = t.array(bodies[0].body.type)
    return bound.Call(result, name, (collection, *bodies))


def _lambda(
    name: str,
    node: exp.Expr,
    parameter_types: list[SqlType],
    bind_body: BindBody,
    fail: Fail,
) -> bound.Lambda:
    if not isinstance(node, exp.Lambda):
        fail(
            ErrorCode.WRONG_ARGUMENT_TYPE,
            f"{name} needs a lambda here, such as x => x + 1",
            node,
        )
    parameters = [p.name.lower() for p in node.expressions]
    if len(parameters) != len(parameter_types):
        fail(
            ErrorCode.WRONG_ARGUMENT_COUNT,
            f"{name}'s lambda takes {len(parameter_types)} parameter"
            f"{'s' if len(parameter_types) > 1 else ''}, got {len(parameters)}",
            node,
        )
    if len(set(parameters)) != len(parameters):
        fail(ErrorCode.DUPLICATE_COLUMN, f"{name}'s lambda names a parameter twice", node)
    scope = dict(zip(parameters, parameter_types, strict=True))
    body = bind_body(node.this, scope)
    return bound.Lambda(body.type, tuple(parameters), body)


def _reduce(
    node: exp.Anonymous,
    collection: bound.Expr,
    arguments: list[exp.Expr],
    bind_body: BindBody,
    visit: Visit,
    fail: Fail,
) -> bound.Expr:
    kind = collection.type
    initial = visit(arguments[1])
    items = (
        [kind.key or t.NULL, kind.element or t.NULL]
        if kind.kind is TypeKind.MAP
        else [kind.element or t.NULL]
    )
    # The state keeps the initial value's type unless the lambda widens it (0 summing
    # DOUBLEs is a DOUBLE state); a body whose type cannot merge with it is an error.
    state = initial.type
    for _ in range(2):
        function = _lambda("REDUCE", arguments[2], [state, *items], bind_body, fail)
        merged = t.common_supertype(state, function.body.type)
        if merged is None:
            fail(
                ErrorCode.TYPE_MISMATCH,
                f"REDUCE's lambda returns {function.body.type}, not the state's {state}",
                arguments[2],
            )
        if merged == state:
            return bound.Call(state, "REDUCE", (collection, initial, function))
        state = merged
    fail(ErrorCode.TYPE_MISMATCH, f"REDUCE's state type does not settle ({state})", arguments[2])
