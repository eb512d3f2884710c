"""Bound, typed scalar expressions: the analyzer's output, the plan's and the runtime's input.

Columns are resolved to a field name of the operator's input schema; every node carries its
SQL type. The runtime compiles these into Python code once per query.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal

from streamhouse_runtime.sql.types import SqlType, TypeKind


@dataclass(frozen=True)
class Expr(ABC):
    type: SqlType

    @abstractmethod
    def render(self) -> str:
        """Deterministic SQL-like text, used by EXPLAIN."""


@dataclass(frozen=True)
class ColumnRef(Expr):
    name: str  # field name in the input schema

    def render(self) -> str:
        return self.name


@dataclass(frozen=True)
class Literal(Expr):
    value: object  # None, bool, int, Decimal, float, str, bytes; INTERVAL as int milliseconds

    def render(self) -> str:
        if self.value is None:
            return "NULL"
        if self.type.kind is TypeKind.INTERVAL:
            return f"INTERVAL {self.value}ms"
        if isinstance(self.value, str):
            return "'" + self.value.replace("'", "''") + "'"
        if isinstance(self.value, bool):
            return "TRUE" if self.value else "FALSE"
        if isinstance(self.value, Decimal):
            return str(self.value)
        return repr(self.value)


# Operators rendered infix; every other Call renders as NAME(args).
INFIX = {
    "+", "-", "*", "/", "%", "=", "<>", "<", "<=", ">", ">=", "AND", "OR", "||", "LIKE",
    "NOT LIKE", "IS DISTINCT FROM", "IS NOT DISTINCT FROM",
}  # fmt: skip
PREFIX = {"NOT", "NEG"}
POSTFIX = {"IS NULL", "IS NOT NULL"}


@dataclass(frozen=True)
class Call(Expr):
    """An operator or a scalar function: `+`, `=`, `AND`, `IS NULL`, `UPPER`, a UDF..."""

    function: str
    args: tuple[Expr, ...]

    def render(self) -> str:
        if self.function in INFIX and len(self.args) == 2:
            return f"({self.args[0].render()} {self.function} {self.args[1].render()})"
        if self.function == "NEG":
            return f"(-{self.args[0].render()})"
        if self.function in PREFIX:
            return f"({self.function} {self.args[0].render()})"
        if self.function in POSTFIX:
            return f"({self.args[0].render()} {self.function})"
        if self.function == "ARRAY" and self.type.kind is TypeKind.ARRAY:
            return f"ARRAY[{', '.join(arg.render() for arg in self.args)}]"
        if self.function == "MAP" and self.type.kind is TypeKind.MAP:
            pairs = zip(self.args[::2], self.args[1::2], strict=True)
            return f"MAP({', '.join(f'{k.render()} := {v.render()}' for k, v in pairs)})"
        if self.function == "STRUCT" and self.type.kind is TypeKind.STRUCT:
            fields = zip(self.type.fields, self.args, strict=True)
            return f"STRUCT({', '.join(f'{n} := {v.render()}' for (n, _), v in fields)})"
        return f"{self.function}({', '.join(arg.render() for arg in self.args)})"


@dataclass(frozen=True)
class Case(Expr):
    whens: tuple[tuple[Expr, Expr], ...]
    default: Expr | None

    def render(self) -> str:
        parts = " ".join(f"WHEN {c.render()} THEN {v.render()}" for c, v in self.whens)
        tail = f" ELSE {self.default.render()}" if self.default is not None else ""
        return f"CASE {parts}{tail} END"


@dataclass(frozen=True)
class Cast(Expr):
    operand: Expr

    def render(self) -> str:
        return f"CAST({self.operand.render()} AS {self.type})"


@dataclass(frozen=True)
class InList(Expr):
    operand: Expr
    values: tuple[Expr, ...]
    negated: bool = False

    def render(self) -> str:
        keyword = "NOT IN" if self.negated else "IN"
        values = ", ".join(v.render() for v in self.values)
        return f"({self.operand.render()} {keyword} ({values}))"


@dataclass(frozen=True)
class FieldAccess(Expr):
    operand: Expr
    field: str

    def render(self) -> str:
        return f"{self.operand.render()}.{self.field}"


@dataclass(frozen=True)
class AggregateCall(Expr):
    """An aggregate inside an Aggregate/WindowAggregate/OverAggregate node."""

    function: str
    args: tuple[Expr, ...]
    distinct: bool = False

    def render(self) -> str:
        inner = ", ".join(arg.render() for arg in self.args) or "*"
        return f"{self.function}({'DISTINCT ' if self.distinct else ''}{inner})"


@dataclass(frozen=True)
class LambdaVariable(Expr):
    """A parameter of the lambda that encloses it (`x` in `x => x + 1`)."""

    name: str

    def render(self) -> str:
        return self.name


@dataclass(frozen=True)
class Lambda(Expr):
    """An argument of TRANSFORM, FILTER or REDUCE; its type is the body's."""

    parameters: tuple[str, ...]
    body: Expr

    def render(self) -> str:
        names = ", ".join(self.parameters)
        head = names if len(self.parameters) == 1 else f"({names})"
        return f"{head} => {self.body.render()}"
