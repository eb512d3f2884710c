"""SQL types as the analyzer, the plan and the runtime see them (independent of sqlglot)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class TypeKind(StrEnum):
    NULL = "NULL"
    BOOLEAN = "BOOLEAN"
    INTEGER = "INTEGER"
    BIGINT = "BIGINT"
    DECIMAL = "DECIMAL"
    DOUBLE = "DOUBLE"
    VARCHAR = "VARCHAR"
    BYTES = "BYTES"
    TIMESTAMP = "TIMESTAMP"
    DATE = "DATE"
    TIME = "TIME"
    INTERVAL = "INTERVAL"
    ARRAY = "ARRAY"
    MAP = "MAP"
    STRUCT = "STRUCT"


NUMERIC_ORDER = (TypeKind.INTEGER, TypeKind.BIGINT, TypeKind.DECIMAL, TypeKind.DOUBLE)
MAX_DECIMAL_PRECISION = 38


@dataclass(frozen=True)
class SqlType:
    kind: TypeKind
    precision: int | None = None
    scale: int | None = None
    element: SqlType | None = None  # ARRAY element, MAP value
    key: SqlType | None = None  # MAP key
    fields: tuple[tuple[str, SqlType], ...] = ()  # STRUCT fields, in order

    def __str__(self) -> str:
        if self.kind is TypeKind.DECIMAL:
            return f"DECIMAL({self.precision},{self.scale})"
        if self.kind is TypeKind.ARRAY:
            return f"ARRAY<{self.element}>"
        if self.kind is TypeKind.MAP:
            return f"MAP<{self.key}, {self.element}>"
        if self.kind is TypeKind.STRUCT:
            return "STRUCT<" + ", ".join(f"{n} {t}" for n, t in self.fields) + ">"
        return self.kind.value

    @property
    def is_numeric(self) -> bool:
        return self.kind in NUMERIC_ORDER

    @property
    def is_null(self) -> bool:
        return self.kind is TypeKind.NULL

    @property
    def is_temporal(self) -> bool:
        return self.kind in (TypeKind.TIMESTAMP, TypeKind.DATE, TypeKind.TIME)

    def field(self, name: str) -> SqlType | None:
        for field_name, field_type in self.fields:
            if field_name.lower() == name.lower():
                return field_type
        return None


NULL = SqlType(TypeKind.NULL)
BOOLEAN = SqlType(TypeKind.BOOLEAN)
INTEGER = SqlType(TypeKind.INTEGER)
BIGINT = SqlType(TypeKind.BIGINT)
DOUBLE = SqlType(TypeKind.DOUBLE)
VARCHAR = SqlType(TypeKind.VARCHAR)
BYTES = SqlType(TypeKind.BYTES)
TIMESTAMP = SqlType(TypeKind.TIMESTAMP)
DATE = SqlType(TypeKind.DATE)
TIME = SqlType(TypeKind.TIME)
INTERVAL = SqlType(TypeKind.INTERVAL)


def decimal(precision: int, scale: int) -> SqlType:
    precision = min(max(precision, 1), MAX_DECIMAL_PRECISION)
    return SqlType(TypeKind.DECIMAL, precision=precision, scale=min(scale, precision))


def array(element: SqlType) -> SqlType:
    return SqlType(TypeKind.ARRAY, element=element)


def map_of(key: SqlType, value: SqlType) -> SqlType:
    return SqlType(TypeKind.MAP, key=key, element=value)


def struct(fields: list[tuple[str, SqlType]]) -> SqlType:
    return SqlType(TypeKind.STRUCT, fields=tuple(fields))


def _as_decimal(t: SqlType) -> SqlType:
    if t.kind is TypeKind.DECIMAL:
        return t
    if t.kind is TypeKind.INTEGER:
        return decimal(10, 0)
    return decimal(19, 0)  # BIGINT


def common_supertype(a: SqlType, b: SqlType) -> SqlType | None:
    """The type both values convert to without loss (for CASE, COALESCE, IN, comparisons)."""
    if a.is_null:
        return b
    if b.is_null or a == b:
        return a
    if a.is_numeric and b.is_numeric:
        if TypeKind.DOUBLE in (a.kind, b.kind):
            return DOUBLE
        if TypeKind.DECIMAL in (a.kind, b.kind):
            da, db = _as_decimal(a), _as_decimal(b)
            assert da.precision is not None and da.scale is not None
            assert db.precision is not None and db.scale is not None
            scale = max(da.scale, db.scale)
            integral = max(da.precision - da.scale, db.precision - db.scale)
            return decimal(integral + scale, scale)
        return a if NUMERIC_ORDER.index(a.kind) >= NUMERIC_ORDER.index(b.kind) else b
    if a.kind == b.kind and a.kind in (TypeKind.ARRAY, TypeKind.MAP, TypeKind.STRUCT):
        return a if str(a) == str(b) else None
    if {a.kind, b.kind} == {TypeKind.TIMESTAMP, TypeKind.DATE}:
        return TIMESTAMP
    return None


def arithmetic_result(op: str, a: SqlType, b: SqlType) -> SqlType | None:
    """Result type of `a op b` for + - * / %, following Flink's DECIMAL rules."""
    if a.is_null or b.is_null:
        return b if a.is_null else a
    if not (a.is_numeric and b.is_numeric):
        return None
    if TypeKind.DOUBLE in (a.kind, b.kind):
        return DOUBLE
    if TypeKind.DECIMAL not in (a.kind, b.kind):
        if op == "/":
            return a if NUMERIC_ORDER.index(a.kind) >= NUMERIC_ORDER.index(b.kind) else b
        return common_supertype(a, b)
    da, db = _as_decimal(a), _as_decimal(b)
    p1, s1, p2, s2 = da.precision, da.scale, db.precision, db.scale
    assert p1 is not None and s1 is not None and p2 is not None and s2 is not None
    if op in ("+", "-"):
        scale = max(s1, s2)
        return decimal(max(p1 - s1, p2 - s2) + scale + 1, scale)
    if op == "*":
        return decimal(p1 + p2, s1 + s2)
    if op == "/":
        scale = max(6, s1 + p2 + 1)
        return decimal(p1 - s1 + s2 + scale, scale)
    return decimal(min(p1 - s1, p2 - s2) + max(s1, s2), max(s1, s2))  # %
