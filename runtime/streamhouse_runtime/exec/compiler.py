"""Compiles bound expressions into Python functions, once per query, for the per-record hot path.

Each expression tree becomes Python source text that is `exec`-ed once into a closure; the
per-record cost is then that of hand-written code: no tree walking, no function call per
operator. Techniques the generated code relies on:

- NULL checks use walrus temporaries, `(None if (_t0 := _g('a')) is None else _t0 + 1)`, so each
  sub-expression is evaluated once; operands that cannot be NULL (literals) are not checked.
- Predicates (WHERE, CASE conditions) are generated in a separate mode where NULL means FALSE:
  `(_t0 := _g('amount')) is not None and (_t0 > 1000)`; NOT is pushed down to the leaves there.
- Constants and helpers (Decimal literals, compiled regexes, library functions) are closure
  variables of the generated function, literals that Python can inline are inlined.
- A column read more than once is read into a local at the top of the function.
- One try/except around the whole body turns any failure into `EvaluationError`.

DECIMAL arithmetic runs in a 100-digit context (`functions.DECIMAL_CONTEXT`) so only the final
quantize to the declared scale rounds (half-up); results beyond the declared precision fail.
"""

from __future__ import annotations

import decimal
import math
import operator
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from functools import partial
from typing import Any, cast

from streamhouse_runtime.exec import functions as fx
from streamhouse_runtime.exec.like import ilike, like, like_matcher
from streamhouse_runtime.sql import bound
from streamhouse_runtime.sql import types as t
from streamhouse_runtime.sql.functions import DOUBLE_FUNCTIONS, SCALARS
from streamhouse_runtime.sql.types import SqlType, TypeKind

Row = dict[str, object]
UdfRegistry = Mapping[str, Callable[..., object]]

__all__ = [
    "EvaluationError",
    "UdfRegistry",
    "compile_predicate",
    "compile_projection",
    "compile_row_transform",
    "compile_value",
    "compile_values",
    "generated_source",
]


class EvaluationError(Exception):
    """A record cannot be evaluated (division by zero, bad cast, decimal overflow...); the
    message says why and names the expression being evaluated."""


# -- the generated code's building block ----------------------------------------------------


@dataclass(frozen=True)
class _Code:
    """Python expression text for one bound expression."""

    text: str
    nullable: bool = True  # may evaluate to None
    simple: bool = False  # a local name or an inline literal: cheap and safe to repeat


_NULL = _Code("None", nullable=True, simple=True)
_TRUE = _Code("True", nullable=False, simple=True)
_FALSE = _Code("False", nullable=False, simple=True)

_COMPARISON = {"=": "==", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_INVERSE = {"=": "<>", "<>": "=", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}
_ARITHMETIC = {"+", "-", "*", "/", "%"}
_LIKES = {"LIKE": (False, False), "ILIKE": (True, False), "NOT LIKE": (False, True)}
_LIKES["NOT ILIKE"] = (True, True)
_INTEGRAL = (TypeKind.INTEGER, TypeKind.BIGINT)
_EXACT = (TypeKind.INTEGER, TypeKind.BIGINT, TypeKind.DECIMAL)
_TEMPORAL = (TypeKind.TIMESTAMP, TypeKind.DATE, TypeKind.TIME)

# Library functions that get no NULL argument and are called as they are; True marks the ones
# that may still return NULL (SUBSTRING with a negative length, REGEXP_EXTRACT with no match).
_PLAIN_HELPERS: dict[str, tuple[Callable[..., object], bool]] = {
    "INITCAP": (fx.initcap, False),
    "SUBSTRING": (fx.substring, True),
    "LPAD": (fx.lpad, True),
    "RPAD": (fx.rpad, True),
    "SPLIT": (fx.split, False),
    "SQRT": (fx.sqrt, False),
    "POWER": (fx.power, False),
    "EXP": (fx.exp, False),
    "LN": (fx.ln, False),
    "LOG": (fx.log, False),
    **{name: (getattr(fx, name.lower()), False) for name in DOUBLE_FUNCTIONS},
    "ATAN2": (fx.atan2, False),
    "PI": (fx.pi, False),
    "RANDOM": (fx.random, False),
    "CHR": (fx.chr_of, True),
    "UUID": (fx.uuid, False),
    "ENCODE": (fx.encode, False),
    "SPLIT_TO_MAP": (fx.split_to_map, True),
    "ARRAY_DISTINCT": (fx.array_distinct, False),
    "ARRAY_EXCEPT": (fx.array_except, False),
    "ARRAY_INTERSECT": (fx.array_intersect, False),
    "ARRAY_UNION": (fx.array_union, False),
    "ARRAY_MAX": (fx.array_max, True),
    "ARRAY_MIN": (fx.array_min, True),
    "ARRAY_SORT": (fx.array_sort, True),
    "MAP_KEYS": (fx.map_keys, False),
    "MAP_VALUES": (fx.map_values, False),
    "AS_MAP": (fx.as_map, False),
    "JSON_ARRAY_LENGTH": (fx.json_array_length, True),
    "JSON_KEYS": (fx.json_keys, True),
    "JSON_CONCAT": (fx.json_concat, True),
    "EXTRACTJSONFIELD": (fx.extract_json_field, True),
    "JSON_RECORDS": (fx.json_records, True),
    "GENERATE_SERIES": (fx.generate_series, False),
    "REGEXP_EXTRACT_ALL": (fx.regexp_extract_all, False),
    "REGEXP_SPLIT_TO_ARRAY": (fx.regexp_split_to_array, False),
    "CONVERT_TZ": (fx.convert_tz, False),
    "TIMESTAMPADD": (fx.timestamp_add, False),
    "TIMESTAMPSUB": (fx.timestamp_sub, False),
    "DATEADD": (fx.date_add, False),
    "DATESUB": (fx.date_sub, False),
    "UNIX_DATE": (fx.unix_date, False),
    "FROM_DAYS": (fx.from_days, False),
    "PARSE_DATE": (fx.parse_date_pattern, False),
    "FORMAT_DATE": (fx.format_date_pattern, False),
}
# Library functions whose first `count` arguments are NULL-checked inline; the later ones may
# be NULL (MASK_LEFT's replacement characters: a NULL one leaves those characters unmasked).
# True marks the ones that may still return NULL (SLICE out of range).
_LEADING_GUARD_HELPERS: dict[str, tuple[Callable[..., object], int, bool]] = {
    "MASK": (fx.mask, 1, False),
    "MASK_LEFT": (fx.mask_left, 2, False),
    "MASK_RIGHT": (fx.mask_right, 2, False),
    "MASK_KEEP_LEFT": (fx.mask_keep_left, 2, False),
    "MASK_KEEP_RIGHT": (fx.mask_keep_right, 2, False),
    "ARRAY_REMOVE": (fx.array_remove, 1, False),
    "SLICE": (fx.slice_of, 1, True),
    "MAP_UNION": (fx.map_union, 0, True),  # NULL only when both maps are
    "ENTRIES": (fx.entries, 1, False),  # a NULL `sorted` is FALSE
}
# Methods and operators Python runs natively on non-NULL arguments.
_INLINE: dict[str, str] = {
    "UPPER": "{0}.upper()",
    "LOWER": "{0}.lower()",
    "TRIM": "{0}.strip()",
    "LTRIM": "{0}.lstrip()",
    "RTRIM": "{0}.rstrip()",
    "LENGTH": "len({0})",
    "REPLACE": "{0}.replace({1}, {2})",
    "INSTR": "({0}.find({1}) + 1)",
    "CARDINALITY": "len({0})",
    "ARRAY_CONTAINS": "({1} in {0})",
}


def _to_json(sql_type: SqlType, value: object) -> str:
    return fx.to_json_text(value, sql_type)


def _literal_text(value: object) -> str | None:
    """Python source for a value the compiler can inline, or None when it must be bound."""
    if value is None or isinstance(value, bool | str | bytes):
        return repr(value)
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        text = repr(value)
        return f"({text})" if text.startswith("-") else text
    return None


class _Generator:
    """Generates the code of one compiled function; owns its constants and temporaries."""

    def __init__(self, udfs: UdfRegistry | None, check_udfs: bool = True) -> None:
        self._udfs = {name.lower(): f for name, f in (udfs or {}).items()}
        self._check_udfs = check_udfs
        self.bindings: dict[str, object] = {}
        self._bound_keys: dict[object, str] = {}
        self._temps = 0
        self.columns: dict[str, str] = {}  # column read once into a local -> that local
        self.reads_row = False
        self.lambda_names: dict[str, str] = {}  # lambda parameter in scope -> its local

    # -- names ------------------------------------------------------------------------------

    def bind(self, value: object, prefix: str = "_k") -> str:
        """A closure variable holding `value`, shared by equal constants."""
        key: object
        if isinstance(value, int | float | str | bytes | Decimal):
            key = (type(value), repr(value))
        else:
            key = ("id", id(value))
        name = self._bound_keys.get(key)
        if name is None:
            name = f"{prefix}{len(self.bindings)}"
            self._bound_keys[key] = name
            self.bindings[name] = value
        return name

    def temp(self) -> str:
        self._temps += 1
        return f"_t{self._temps}"

    def constant(self, value: object) -> _Code:
        if value is None:
            return _NULL
        text = _literal_text(value)
        return _Code(text or self.bind(value), nullable=False, simple=True)

    def column(self, name: str) -> _Code:
        local = self.columns.get(name)
        if local is not None:
            return _Code(local, nullable=True, simple=True)
        self.reads_row = True
        return _Code(f"_g({name!r})", nullable=True)

    # -- NULL guards ------------------------------------------------------------------------

    def _prepare(
        self, operands: Sequence[_Code], reuse: bool
    ) -> tuple[list[str], list[tuple[str, str]]] | None:
        """Names to use for the operands in a body, and the (name, walrus-or-name) NULL checks
        to make first; None when an operand is the NULL literal."""
        names: list[str] = []
        checks: list[tuple[str, str]] = []
        for operand in operands:
            if operand.text == "None":
                return None
            if operand.simple:
                names.append(operand.text)
                if operand.nullable:
                    checks.append((operand.text, operand.text))
            elif operand.nullable or reuse:
                name = self.temp()
                names.append(name)
                # Non-nullable operands that the body repeats get a temporary too; their
                # `is None` test is always false and costs next to nothing.
                checks.append((name, f"({name} := {operand.text})"))
            else:
                names.append(operand.text)
        return names, checks

    def guard(
        self,
        operands: Sequence[_Code],
        build: Callable[..., str],
        *,
        reuse: bool = False,
        nullable: bool = False,
    ) -> _Code:
        """NULL when any operand is NULL, else `build(*names)`; operands are evaluated once.
        `reuse`: the body mentions an operand more than once. `nullable`: the body may
        itself produce NULL."""
        prepared = self._prepare(operands, reuse)
        if prepared is None:
            return _NULL
        names, checks = prepared
        body = build(*names)
        if not checks:
            return _Code(f"({body})", nullable=nullable)
        condition = " or ".join(f"{test} is None" for _, test in checks)
        return _Code(f"(None if {condition} else ({body}))", nullable=True)

    def guard_predicate(
        self, operands: Sequence[_Code], build: Callable[..., str], *, reuse: bool = False
    ) -> str:
        """Like `guard` for predicates: False when any operand is NULL."""
        prepared = self._prepare(operands, reuse)
        if prepared is None:
            return "False"
        names, checks = prepared
        parts = [f"{test} is not None" for _, test in checks]
        parts.append(f"({build(*names)})")
        return "(" + " and ".join(parts) + ")" if len(parts) > 1 else parts[0]

    def apply(self, code: _Code, template: str, *, nullable: bool = False) -> _Code:
        """`template` (`{0}` is the value) applied to a non-NULL value; NULL stays NULL.
        Templates are the compiler's own text, never user text (which may hold braces)."""
        reuse = template.count("{0}") > 1
        return self.guard([code], template.format, reuse=reuse, nullable=nullable)

    # -- DECIMAL results --------------------------------------------------------------------

    def decimal_result(self, body: str, target: SqlType) -> str:
        """Quantize `body` to the scale of `target` and fail beyond its precision."""
        precision = target.precision or t.MAX_DECIMAL_PRECISION
        scale = target.scale or 0
        quantize = self.bind(fx.DECIMAL_CONTEXT.quantize, "_h")
        quantum = self.bind(fx.decimal_quantum(scale))
        high = self.bind(fx.decimal_limit(precision, scale))
        low = self.bind(-fx.decimal_limit(precision, scale))
        overflow = self.bind(fx.decimal_overflow, "_h")
        result = self.temp()
        return (
            f"({result} if {low} < ({result} := {quantize}({body}, {quantum})) < {high} "
            f"else {overflow}({result}, {precision}, {scale}))"
        )

    # -- conversions ------------------------------------------------------------------------

    def convert(self, code: _Code, source: SqlType, target: SqlType) -> _Code:
        """Implicit conversion to a common type (CASE branches, COALESCE, comparisons)."""
        if source == target or target.is_null or source.is_null or code.text == "None":
            return code
        if target.kind is TypeKind.DOUBLE and source.kind in _EXACT:
            return self.apply(code, "float({0})")
        if target.kind is TypeKind.DECIMAL and source.kind in _EXACT:
            return self.guard([code], lambda x: self.decimal_result(x, target))
        if target.kind is TypeKind.TIMESTAMP and source.kind is TypeKind.DATE:
            return self.apply(code, f"{{0}} * {fx.MS_PER_DAY}")
        if target.is_temporal and source.kind is TypeKind.VARCHAR:  # ts = <text expression>
            parser = {
                TypeKind.TIMESTAMP: fx.parse_timestamp,
                TypeKind.DATE: fx.parse_date,
                TypeKind.TIME: fx.parse_time,
            }[target.kind]
            return self.apply(code, self.bind(parser, "_h") + "({0})")
        return code

    def value_as(self, expr: bound.Expr, target: SqlType) -> _Code:
        """The value of `expr` converted to `target`; literals are converted right away."""
        if isinstance(expr, bound.Literal) and expr.value is not None:
            return self.constant(_convert_constant(expr.value, expr.type, target))
        return self.convert(self.value(expr), expr.type, target)

    def comparison_operands(self, left: bound.Expr, right: bound.Expr) -> tuple[_Code, _Code]:
        """Both sides of a comparison, brought to values Python compares the SQL way."""
        target = _comparison_type(left.type, right.type)
        if target is None:
            return self.numeric_operand(left, right.type), self.numeric_operand(right, left.type)
        return self.value_as(left, target), self.value_as(right, target)

    def numeric_operand(self, expr: bound.Expr, other: SqlType) -> _Code:
        """An operand compared as it is. Python compares int and Decimal exactly, but Decimal
        with Decimal twice as fast: an integer literal facing a DECIMAL becomes a Decimal."""
        if (
            other.kind is TypeKind.DECIMAL
            and isinstance(expr, bound.Literal)
            and type(expr.value) is int
        ):
            return self.constant(Decimal(expr.value))
        return self.value(expr)

    # -- value mode -------------------------------------------------------------------------

    def value(self, expr: bound.Expr) -> _Code:
        """Code evaluating `expr` to its runtime value (None for NULL)."""
        if isinstance(expr, bound.ColumnRef):
            return self.column(expr.name)
        if isinstance(expr, bound.Literal):
            return self.constant(expr.value)
        if isinstance(expr, bound.Call):
            return self.call(expr)
        if isinstance(expr, bound.Case):
            return self.case(expr)
        if isinstance(expr, bound.Cast):
            return self.cast(expr)
        if isinstance(expr, bound.InList):
            return self.in_list_value(expr)
        if isinstance(expr, bound.FieldAccess):
            field = _declared_field(expr.operand.type, expr.field)
            key = repr(field)  # user text: kept out of str.format templates
            return self.guard(
                [self.value(expr.operand)], lambda x: f"{x}.get({key})", nullable=True
            )
        if isinstance(expr, bound.LambdaVariable):
            return _Code(self.lambda_names[expr.name], nullable=True, simple=True)
        if isinstance(expr, bound.AggregateCall):
            raise ValueError(f"aggregate {expr.render()} cannot be evaluated per record")
        raise ValueError(f"cannot compile expression {expr!r}")

    def call(self, expr: bound.Call) -> _Code:
        name = expr.function
        args = expr.args
        if name in _ARITHMETIC:
            return self.arithmetic(name, args[0], args[1], expr.type)
        if name in _COMPARISON:
            a, b = self.comparison_operands(args[0], args[1])
            op = _COMPARISON[name]
            return self.guard([a, b], lambda x, y: f"{x} {op} {y}")
        if name in ("AND", "OR"):
            return self.logical_value(name, [self.value(e) for e in _chain(name, expr)])
        if name == "NOT":
            return self.apply(self.value(args[0]), "not {0}")
        if name == "NEG":
            operand = self.value(args[0])
            if expr.type.kind is TypeKind.DECIMAL:
                minus = self.bind(fx.DECIMAL_CONTEXT.minus, "_h")
                return self.guard(
                    [operand], lambda x: self.decimal_result(f"{minus}({x})", expr.type)
                )
            if expr.type.kind in _INTEGRAL:
                return self.guard([operand], lambda x: self.integral_result(f"-{x}", expr.type))
            return self.apply(operand, "-{0}")
        if name in ("IS NULL", "IS NOT NULL"):
            operand = self.value(args[0])
            if not operand.nullable:
                return _FALSE if name == "IS NULL" else _TRUE
            op = "is" if name == "IS NULL" else "is not"
            return _Code(f"({operand.text} {op} None)", nullable=False)
        if name in ("IS DISTINCT FROM", "IS NOT DISTINCT FROM"):
            return _Code(self.distinct(name, args[0], args[1]), nullable=False)
        if name in _LIKES:
            return self.like_value(name, args[0], args[1])
        if name == "||":
            a, b = self.text_of(args[0]), self.text_of(args[1])
            return self.guard([a, b], lambda x, y: f"{x} + {y}")
        if name == "ELEMENT_AT":
            return self.element_at(args[0], args[1])
        if name in ("ARRAY", "MAP", "STRUCT"):
            return self.constructor(expr)
        if name in ("TRANSFORM", "FILTER", "REDUCE"):
            return self.lambda_call(expr)
        if name in SCALARS or name == "ROUND_HALF_CEILING":  # ksqlDB's ROUND, bound under ksqldb
            return self.function(expr)
        return self.udf(expr)

    def arithmetic(self, op: str, left: bound.Expr, right: bound.Expr, result: SqlType) -> _Code:
        if left.type.is_null or right.type.is_null or result.is_null:
            return _NULL
        if right.type.kind is TypeKind.INTERVAL and left.type.is_temporal:
            return self.temporal_arithmetic(op, left, right)
        if result.kind is TypeKind.DOUBLE:
            a, b = self.value_as(left, t.DOUBLE), self.value_as(right, t.DOUBLE)
            if op == "%":
                mod = self.bind(fx.mod, "_h")
                return self.guard([a, b], lambda x, y: f"{mod}({x}, {y})")
            return self.guard([a, b], lambda x, y: self.double_result(f"{x} {op} {y}"))
        a, b = self.value(left), self.value(right)
        if result.kind is TypeKind.DECIMAL:
            context = fx.DECIMAL_CONTEXT
            operation = {
                "+": context.add,
                "-": context.subtract,
                "*": context.multiply,
                "/": context.divide,
                "%": fx.decimal_remainder,
            }[op]
            helper = self.bind(operation, "_h")
            return self.guard(
                [a, b], lambda x, y: self.decimal_result(f"{helper}({x}, {y})", result)
            )
        divisor = right.value if isinstance(right, bound.Literal) else None
        if op in ("/", "%") and isinstance(divisor, int) and divisor > 0:
            pyop = "//" if op == "/" else "%"
            return self.guard(
                [a],
                lambda x: f"{x} {pyop} {divisor} if {x} >= 0 else -(-{x} {pyop} {divisor})",
                reuse=True,
            )
        if op == "/":  # SQL integer division truncates toward zero; Python's // floors
            return self.guard(
                [a, b],
                lambda x, y: self.integral_result(
                    f"{x} // {y} if ({x} >= 0) == ({y} > 0) else -(-{x} // {y})", result
                ),
                reuse=True,
            )
        if op == "%":  # the remainder takes the dividend's sign; Python's takes the divisor's
            return self.guard(
                [a, b],
                lambda x, y: f"{x} % {y} if ({x} >= 0) == ({y} > 0) else -(-{x} % {y})",
                reuse=True,
            )
        if result.kind in _INTEGRAL:
            return self.guard([a, b], lambda x, y: self.integral_result(f"{x} {op} {y}", result))
        return self.guard([a, b], lambda x, y: f"{x} {op} {y}")

    def integral_result(self, body: str, target: SqlType) -> str:
        """`body` checked against the range of INTEGER or BIGINT: standard SQL makes a result
        outside its type an error (Python's integers never overflow by themselves)."""
        bits = 31 if target.kind is TypeKind.INTEGER else 63
        overflow = self.bind(fx.integer_overflow, "_h")
        result = self.temp()
        return (
            f"({result} if {-(1 << bits)} <= ({result} := {body}) <= {(1 << bits) - 1} "
            f"else {overflow}({result}, {str(target)!r}))"
        )

    def double_result(self, body: str) -> str:
        """`body` when it is a finite DOUBLE; an infinity or NaN is an error of the record."""
        overflow = self.bind(fx.double_overflow, "_h")
        result = self.temp()
        return (
            f"({result} if {-sys.float_info.max!r} <= ({result} := {body}) <= "
            f"{sys.float_info.max!r} else {overflow}({result}))"
        )

    def temporal_arithmetic(self, op: str, left: bound.Expr, right: bound.Expr) -> _Code:
        a, b = self.value(left), self.value(right)
        kind = left.type.kind
        if kind is TypeKind.DATE:  # days; whole days of the interval move the date
            day = fx.MS_PER_DAY
            return self.guard([a, b], lambda x, y: f"({x} * {day} {op} {y}) // {day}")
        if kind is TypeKind.TIME:
            return self.guard([a, b], lambda x, y: f"({x} {op} {y}) % {fx.MS_PER_DAY}")
        return self.guard([a, b], lambda x, y: f"{x} {op} {y}")

    def logical_value(self, name: str, operands: Sequence[_Code]) -> _Code:
        """Three-valued AND/OR over a flattened chain (operands are True, False or None).

        The chain stays flat, `(False if a is False or b is False ... else (None if ...))`,
        because Python refuses source nested more than 200 parentheses deep."""
        keyword = name.lower()
        if not any(code.nullable for code in operands):
            return _Code("(" + f" {keyword} ".join(c.text for c in operands) + ")", False)
        decisive = "False" if name == "AND" else "True"
        other = "True" if name == "AND" else "False"
        named = [self._named(code) for code in operands]
        # Reaching the NULL test means no operand was decisive, so all temporaries are set.
        decided = " or ".join(f"{test} is {decisive}" for _, test in named)
        pairs = zip(named, operands, strict=True)
        unknown = " or ".join(f"{n} is None" for (n, _), code in pairs if code.nullable)
        return _Code(f"({decisive} if {decided} else (None if {unknown} else {other}))")

    def _named(self, code: _Code) -> tuple[str, str]:
        """A name for `code` and the text that evaluates it into that name."""
        if code.simple:
            return code.text, code.text
        name = self.temp()
        return name, f"({name} := {code.text})"

    def distinct(self, name: str, left: bound.Expr, right: bound.Expr) -> str:
        # Python's == and != already treat None like IS NOT DISTINCT FROM does.
        a, b = self.comparison_operands(left, right)
        op = "!=" if name == "IS DISTINCT FROM" else "=="
        return f"({a.text} {op} {b.text})"

    def text_of(self, expr: bound.Expr) -> _Code:
        """The value of `expr` as VARCHAR text (for `||`, CONCAT, CAST AS VARCHAR)."""
        if isinstance(expr, bound.Literal) and expr.value is not None:
            return self.constant(_text_constant(expr.value, expr.type))
        code = self.value(expr)
        kind = expr.type.kind
        if kind in (TypeKind.VARCHAR, TypeKind.NULL):
            return code
        if kind is TypeKind.BOOLEAN:
            return self.apply(code, "('true' if {0} else 'false')")
        if kind in _INTEGRAL:
            return self.apply(code, "str({0})")
        if kind is TypeKind.DECIMAL:
            return self.apply(code, "format({0}, 'f')")
        helper = {
            TypeKind.TIMESTAMP: fx.format_timestamp,
            TypeKind.DATE: fx.format_date,
            TypeKind.TIME: fx.format_time,
            TypeKind.BYTES: fx.cast_varchar_from_bytes,
        }.get(kind, fx.to_string)
        return self.apply(code, self.bind(helper, "_h") + "({0})")

    def like_value(self, name: str, value: bound.Expr, pattern: bound.Expr) -> _Code:
        operand = self.value(value)
        if isinstance(pattern, bound.Literal):
            if pattern.value is None:
                return _NULL
            return self.guard([operand], self.like_test(name, str(pattern.value)))
        helper = self.bind(ilike if "ILIKE" in name else like, "_h")
        negate = "not " if name.startswith("NOT") else ""
        return self.guard(
            [operand, self.value(pattern)], lambda x, y: f"{negate}{helper}({x}, {y})"
        )

    def like_test(self, name: str, pattern: str, negate: bool = False) -> Callable[[str], str]:
        """Test of one non-NULL string against a literal LIKE pattern, compiled now."""
        insensitive, negated = _LIKES[name]
        prefix = "not " if negated != negate else ""
        inner = pattern.strip("%")
        if not insensitive and "_" not in pattern and "%" not in inner:
            # Plain string methods beat a regex by far for the common shapes.
            literal = repr(inner)
            starts, ends = pattern.startswith("%"), pattern.endswith("%")
            if starts and ends:
                return lambda x: f"{prefix}({literal} in {x})"
            if ends:
                return lambda x: f"{prefix}{x}.startswith({literal})"
            if starts:
                return lambda x: f"{prefix}{x}.endswith({literal})"
            return lambda x: f"{prefix}({x} == {literal})"
        matcher = self.bind(like_matcher(pattern, insensitive), "_m")
        return lambda x: f"{prefix}{matcher}({x})"

    def element_at(self, collection: bound.Expr, key: bound.Expr) -> _Code:
        container = self.value(collection)
        index = self.value(key)
        if collection.type.kind is TypeKind.MAP:
            return self.guard([container, index], lambda c, k: f"{c}.get({k})", nullable=True)
        if isinstance(key, bound.Literal) and isinstance(key.value, int) and key.value > 0:
            position = key.value
            return self.guard(
                [container],
                lambda c: f"{c}[{position - 1}] if len({c}) >= {position} else None",
                reuse=True,
                nullable=True,
            )
        helper = self.bind(fx.element_at, "_h")
        return self.guard([container, index], lambda c, k: f"{helper}({c}, {k})", nullable=True)

    def case(self, expr: bound.Case) -> _Code:
        default = _NULL if expr.default is None else self.value_as(expr.default, expr.type)
        nullable = default.nullable
        parts: list[str] = []
        for condition, result in expr.whens:
            test = self.predicate(condition)
            if test == "False":
                continue
            branch = self.value_as(result, expr.type)
            parts.append(f"{branch.text} if {test} else")
            nullable = nullable or branch.nullable
        # `a if p else b if q else c` needs no parentheses: long CASEs stay flat.
        return _Code("(" + " ".join([*parts, default.text]) + ")", nullable=nullable)

    def in_list_value(self, expr: bound.InList) -> _Code:
        operand, found, null_test = self.membership(expr)
        yes, no = ("False", "True") if expr.negated else ("True", "False")
        if null_test == "False":
            negation = "not " if expr.negated else ""
            return self.guard([operand], lambda x: f"{negation}{found(x)}", reuse=True)
        if null_test == "True":  # a NULL literal in the list: never FALSE
            return self.guard(
                [operand], lambda x: f"{yes} if {found(x)} else None", reuse=True, nullable=True
            )
        return self.guard(
            [operand],
            lambda x: f"{yes} if {found(x)} else (None if {null_test} else {no})",
            reuse=True,
            nullable=True,
        )

    def membership(self, expr: bound.InList) -> tuple[_Code, Callable[[str], str], str]:
        """(operand, found-test given the operand's name, NULL-in-the-list test), the latter
        valid only after the found-test came out False."""
        target: SqlType | None = expr.operand.type
        for value in expr.values:
            target = _comparison_type(target, value.type) if target is not None else None
        target = target or expr.operand.type
        operand = self.value_as(expr.operand, target)
        constants: list[object] = []
        has_null = False
        dynamic: list[_Code] = []
        for value in expr.values:
            if isinstance(value, bound.Literal):
                if value.value is None:
                    has_null = True
                else:
                    constants.append(_convert_constant(value.value, value.type, target))
            else:
                dynamic.append(self.value_as(value, target))
        members: str | None = None
        if constants:
            try:
                members = self.bind(frozenset(constants), "_s")
            except TypeError:  # unhashable values (arrays, maps): compare one by one
                members = self.bind(tuple(constants), "_s")
        temps: list[str] = []
        dynamic_tests: list[Callable[[str], str]] = []
        for code in dynamic:
            if code.simple:
                text = code.text
                if code.nullable:
                    temps.append(code.text)
            else:
                text = self.temp()
                temps.append(text)
                text = f"({text} := {code.text})"
            dynamic_tests.append(lambda x, text=text: f"{text} == {x}")  # type: ignore[misc]

        def found(x: str) -> str:
            tests = ([f"{x} in {members}"] if members else []) + [d(x) for d in dynamic_tests]
            return "(" + " or ".join(tests) + ")" if tests else "False"

        null_tests = (["True"] if has_null else []) + [f"{name} is None" for name in temps]
        return operand, found, " or ".join(null_tests) if null_tests else "False"

    def cast(self, expr: bound.Cast) -> _Code:
        source, target = expr.operand.type, expr.type
        if isinstance(expr.operand, bound.Literal) and expr.operand.value is not None:
            try:
                return self.constant(_cast_constant(expr.operand.value, source, target))
            except (ValueError, TypeError, ArithmeticError):
                pass  # a literal that cannot be cast fails per record, like any other value
        if source.is_null:
            return _NULL
        code = self.value(expr.operand)
        if source == target:
            return code
        kind, origin = target.kind, source.kind
        if kind is TypeKind.VARCHAR:
            return self.text_of(expr.operand)
        if kind is TypeKind.DECIMAL:
            if origin in _EXACT:
                return self.guard([code], lambda x: self.decimal_result(x, target))
            helper = self.bind(fx.to_decimal, "_h")
            return self.apply(code, f"{helper}({{0}}, {target.precision}, {target.scale})")
        if kind is TypeKind.BIGINT and origin in (TypeKind.INTEGER, *_TEMPORAL):
            return code
        if kind is TypeKind.DOUBLE and origin is not TypeKind.VARCHAR:
            return self.apply(code, "float({0})")
        if kind is TypeKind.BOOLEAN and origin is not TypeKind.VARCHAR:
            return self.apply(code, "{0} != 0")
        if kind is TypeKind.TIMESTAMP:
            if origin in (TypeKind.INTEGER, TypeKind.BIGINT, TypeKind.TIME):
                return code
            if origin is TypeKind.DATE:
                return self.apply(code, f"{{0}} * {fx.MS_PER_DAY}")
        if kind is TypeKind.DATE and origin in (TypeKind.TIMESTAMP, *_INTEGRAL):
            return code if origin in _INTEGRAL else self.apply(code, f"{{0}} // {fx.MS_PER_DAY}")
        if kind is TypeKind.TIME and origin in (TypeKind.TIMESTAMP, *_INTEGRAL):
            return self.apply(code, f"{{0}} % {fx.MS_PER_DAY}")
        helper_for: dict[TypeKind, Callable[[Any], object]] = {
            TypeKind.BOOLEAN: fx.cast_boolean,
            TypeKind.INTEGER: fx.cast_integer,
            TypeKind.BIGINT: fx.cast_bigint,
            TypeKind.DOUBLE: fx.cast_double,
            TypeKind.TIMESTAMP: fx.cast_timestamp,
            TypeKind.DATE: fx.cast_date,
            TypeKind.TIME: fx.cast_time,
            TypeKind.BYTES: fx.cast_bytes,
        }
        cast_helper = helper_for.get(kind)
        if cast_helper is None:  # ARRAY, MAP, STRUCT: same shape, nothing to convert
            return code
        return self.apply(code, self.bind(cast_helper, "_h") + "({0})")

    # -- built-in functions -----------------------------------------------------------------

    def _bodies(self, functions: Sequence[bound.Expr], *, predicate: bool = False) -> list[str]:
        """Fresh locals for the lambdas' parameters (position by position, shared by all of
        them: both of a map TRANSFORM's lambdas see the same entry), then each body compiled
        with its parameters bound to them; names the lambdas shadow come back afterwards."""
        lambdas = [f for f in functions if isinstance(f, bound.Lambda)]
        saved = dict(self.lambda_names)
        names = []
        for _ in lambdas[0].parameters:
            self._temps += 1
            names.append(f"_l{self._temps}")
        try:
            bodies = []
            for function in lambdas:
                self.lambda_names.update(zip(function.parameters, names, strict=True))
                if predicate:
                    bodies.append(self.predicate(function.body))
                else:
                    bodies.append(self.value_as(function.body, function.type).text)
            return [*names, *bodies]
        finally:
            self.lambda_names = saved

    def lambda_call(self, expr: bound.Call) -> _Code:
        """TRANSFORM and FILTER as comprehensions over the collection (NULL stays NULL);
        REDUCE as a Python lambda folded by a helper (ksqlDB's NULL rules, in the helper)."""
        name, args = expr.function, expr.args
        collection = self.value(args[0])
        is_map = args[0].type.kind is TypeKind.MAP
        if name == "REDUCE":
            initial = self.value_as(args[1], expr.type)
            helper = self.bind(fx.reduce_map if is_map else fx.reduce_array, "_h")
            *parameters, body = self._bodies([args[2]])
            function = f"(lambda {', '.join(parameters)}: {body})"
            return _Code(f"{helper}({function}, {collection.text}, {initial.text})")
        build: Callable[[str], str]
        if name == "FILTER":
            parts = self._bodies([args[1]], predicate=True)
            if is_map:
                k, v, keep = parts
                build = lambda c: f"{{{k}: {v} for {k}, {v} in {c}.items() if {keep}}}"  # noqa: E731
            else:
                x, keep = parts
                build = lambda c: f"[{x} for {x} in {c} if {keep}]"  # noqa: E731
        elif is_map:
            k, v, key, value = self._bodies([args[1], args[2]])
            build = lambda c: f"{{{key}: {value} for {k}, {v} in {c}.items()}}"  # noqa: E731
        else:
            x, value = self._bodies([args[1]])
            build = lambda c: f"[{value} for {x} in {c}]"  # noqa: E731
        # reuse: the collection gets a local, so the comprehension's iterable holds no walrus.
        return self.guard([collection], build, reuse=True)

    def constructor(self, expr: bound.Call) -> _Code:
        """ARRAY[...] (elements in their common type), MAP(k := v, ...), STRUCT(f := v, ...):
        never NULL themselves, NULL elements, values and fields kept."""
        kind = expr.type
        if expr.function == "ARRAY":
            element = kind.element or t.NULL
            items = [self.value_as(a, element).text for a in expr.args]
            return _Code(f"[{', '.join(items)}]", nullable=False)
        if expr.function == "MAP":
            value_type = kind.element or t.NULL
            texts = [
                self.value(a).text if index % 2 == 0 else self.value_as(a, value_type).text
                for index, a in enumerate(expr.args)
            ]
            helper = self.bind(fx.map_of_entries, "_h")
            return _Code(f"{helper}({', '.join(texts)})", nullable=False)
        # Field names are user text: bound as constants, never spliced into the code.
        items = [
            f"{self.bind(name)}: {self.value(a).text}"
            for (name, _), a in zip(kind.fields, expr.args, strict=True)
        ]
        return _Code("{" + ", ".join(items) + "}", nullable=False)

    def function(self, expr: bound.Call) -> _Code:
        name, args, result = expr.function, expr.args, expr.type
        if name == "AS_VALUE":  # copies a key column into the value: the value itself
            return self.value(args[0])
        if name == "INSTR" and len(args) > 2:
            helper = self.bind(fx.instr, "_h")
            return self.guard(
                [self.value(a) for a in args], lambda *names: f"{helper}({', '.join(names)})"
            )
        if name in _INLINE:
            template = _INLINE[name]
            return self.guard([self.value(a) for a in args], template.format)
        if name in _PLAIN_HELPERS:
            helper_fn, may_be_null = _PLAIN_HELPERS[name]
            helper = self.bind(helper_fn, "_h")
            return self.guard(
                [self.value(a) for a in args],
                lambda *names: f"{helper}({', '.join(names)})",
                nullable=may_be_null,
            )
        if name in _LEADING_GUARD_HELPERS:
            helper_fn, count, may_be_null = _LEADING_GUARD_HELPERS[name]
            helper = self.bind(helper_fn, "_h")
            codes = [self.value(a) for a in args]
            rest = [c.text for c in codes[count:]]
            return self.guard(
                codes[:count],
                lambda *names: f"{helper}({', '.join([*names, *rest])})",
                nullable=may_be_null,
            )
        if name == "ARRAY_JOIN":
            return self.array_join(args)
        if name == "IS_JSON_STRING":  # FALSE, not NULL, for a NULL argument
            helper = self.bind(fx.is_json_string, "_h")
            return _Code(f"{helper}({self.value(args[0]).text})", nullable=False)
        if name == "TO_JSON_STRING":  # NULL is the JSON text 'null'
            helper = self.bind(partial(_to_json, args[0].type), "_h")
            return _Code(f"{helper}({self.value(args[0]).text})", nullable=False)
        if name in ("COALESCE", "IFNULL"):
            return self.coalesce([self.value_as(a, result) for a in args])
        if name == "NULLIF":
            first = self.value_as(args[0], result)
            a, b = self.comparison_operands(args[0], args[1])
            head, head_test = self._named(first)
            if a.text != first.text:  # the comparison needs a converted copy of the value
                return self.guard(
                    [first, b],
                    lambda x, y: f"None if {a.text} == {y} else {x}",
                    nullable=True,
                )
            return _Code(f"(None if {head_test} is None or {head} == {b.text} else {head})")
        if name in ("CONCAT", "CONCAT_WS"):
            texts = [self.text_of(a) for a in args]
            if name == "CONCAT_WS":
                helper = self.bind(fx.concat_ws, "_h")
                joined = ", ".join(c.text for c in texts)
                return _Code(f"{helper}({joined})", nullable=texts[0].nullable)
            items = ", ".join(c.text for c in texts)
            # filter(None, ...) drops NULLs (and empty strings, which join ignores anyway).
            return _Code(f"''.join(filter(None, ({items},)))", nullable=False)
        if name == "MOD":
            return self.arithmetic("%", args[0], args[1], result)
        if name in ("GREATEST", "LEAST"):
            builtin = "max" if name == "GREATEST" else "min"
            return self.guard(
                [self.value_as(a, result) for a in args],
                lambda *names: f"{builtin}({', '.join(names)})",
            )
        if name == "ABS":
            if result.kind is TypeKind.DECIMAL:
                absolute = self.bind(fx.DECIMAL_CONTEXT.abs, "_h")
                template = self.decimal_result(f"{absolute}({{0}})", result)
                return self.apply(self.value(args[0]), template)
            if result.kind in _INTEGRAL:
                return self.guard(
                    [self.value(args[0])], lambda x: self.integral_result(f"abs({x})", result)
                )
            return self.apply(self.value(args[0]), "abs({0})")
        if name == "SIGN":
            return self.apply(self.value(args[0]), "({0} > 0) - ({0} < 0)")
        if name in ("CEIL", "FLOOR", "ROUND", "TRUNC", "ROUND_HALF_CEILING"):
            return self.rounding(name, args, result)
        if name in ("UNIX_TIMESTAMP", "FROM_UNIXTIME"):
            return self.value_as(args[0], t.TIMESTAMP)
        if name in ("TIMESTAMPTOSTRING", "DATE_FORMAT", "STRINGTOTIMESTAMP"):
            return self.time_pattern(name, args)
        if name in ("REGEXP_EXTRACT", "REGEXP_REPLACE"):
            return self.regexp(name, args)
        raise ValueError(f"built-in function {name} has no runtime implementation")

    def array_join(self, args: Sequence[bound.Expr]) -> _Code:
        """ARRAY_JOIN(a [, delimiter]): elements as SQL text (a TIMESTAMP as its text form)."""
        element = args[0].type.element
        kind = element.kind if element is not None else TypeKind.NULL
        text_fn = {
            TypeKind.TIMESTAMP: fx.format_timestamp,
            TypeKind.DATE: fx.format_date,
            TypeKind.TIME: fx.format_time,
        }.get(kind, fx.to_string)
        helper = self.bind(fx.array_join, "_h")
        text = self.bind(text_fn, "_h")
        operands = [self.value(a) for a in args]
        if len(operands) == 1:
            operands.append(self.constant(","))
        return self.guard(operands, lambda a, d: f"{helper}({a}, {d}, {text})")

    def coalesce(self, codes: Sequence[_Code]) -> _Code:
        """First non-NULL argument; arguments after one that cannot be NULL never run."""
        parts: list[tuple[str, str]] = []
        for code in codes:
            if not code.nullable:
                chain = [f"{name} if {test} is not None else" for name, test in parts]
                return _Code("(" + " ".join([*chain, code.text]) + ")", nullable=False)
            if code.text == "None":
                continue
            parts.append(self._named(code))
        if not parts:
            return _NULL
        chain = [f"{name} if {test} is not None else" for name, test in parts[:-1]]
        return _Code("(" + " ".join([*chain, parts[-1][1]]) + ")")

    def rounding(self, name: str, args: Sequence[bound.Expr], result: SqlType) -> _Code:
        value = self.value(args[0])
        kind = args[0].type.kind
        if name in ("CEIL", "FLOOR", "TRUNC") and kind in _INTEGRAL and len(args) == 1:
            return value
        helper_fn = {
            "CEIL": fx.ceil if len(args) == 1 else fx.ceil_scaled,
            "FLOOR": fx.floor if len(args) == 1 else fx.floor_scaled,
            "ROUND": fx.round_half_up,
            "ROUND_HALF_CEILING": fx.round_half_ceiling,
            "TRUNC": fx.trunc,
        }[name]
        helper = self.bind(helper_fn, "_h")
        operands = [value] + [self.value(a) for a in args[1:]]

        def build(*names: str) -> str:
            call = f"{helper}({', '.join(names)})"
            if result.kind is TypeKind.DECIMAL:
                return self.decimal_result(call, result)
            if result.kind in _INTEGRAL and len(names) > 1:  # ROUND(2147483647, -1) overflows
                return self.integral_result(call, result)
            return call

        return self.guard(operands, build)

    def time_pattern(self, name: str, args: Sequence[bound.Expr]) -> _Code:
        pattern = args[1]
        zone_arg = args[2] if len(args) > 2 else None
        first = (
            self.value(args[0])
            if name == "STRINGTOTIMESTAMP"
            else self.value_as(args[0], t.TIMESTAMP)
        )
        literal_pattern = isinstance(pattern, bound.Literal) and isinstance(pattern.value, str)
        literal_zone = zone_arg is None or (
            isinstance(zone_arg, bound.Literal) and isinstance(zone_arg.value, str)
        )
        if literal_pattern and literal_zone:
            assert isinstance(pattern, bound.Literal) and isinstance(pattern.value, str)
            compiled: Callable[..., object] = (
                fx.timestamp_parser(pattern.value)
                if name == "STRINGTOTIMESTAMP"
                else fx.timestamp_formatter(pattern.value)
            )
            zone_value = UTC if zone_arg is None else fx.zone(str(cast(Any, zone_arg).value))
            function = self.bind(compiled, "_h")
            zone = self.bind(zone_value)
            return self.apply(first, f"{function}({{0}}, {zone})")
        helper_fn = {
            "TIMESTAMPTOSTRING": fx.timestamp_to_string,
            "STRINGTOTIMESTAMP": fx.string_to_timestamp,
            "DATE_FORMAT": fx.date_format,
        }[name]
        helper = self.bind(helper_fn, "_h")
        operands = [first] + [self.value(a) for a in args[1:]]
        return self.guard(operands, lambda *names: f"{helper}({', '.join(names)})")

    def regexp(self, name: str, args: Sequence[bound.Expr]) -> _Code:
        pattern = args[1]
        operands = [self.value(a) for a in args]
        if isinstance(pattern, bound.Literal) and isinstance(pattern.value, str):
            compiled = fx.regex(pattern.value)  # a bad literal pattern fails the compile
            regex = self.bind(compiled, "_r")
            if name == "REGEXP_EXTRACT":
                helper = self.bind(fx.regexp_extract_compiled, "_h")
                rest = [operands[0], *operands[2:]]
                return self.guard(
                    rest,
                    lambda *names: f"{helper}({regex}, {', '.join(names)})",
                    nullable=True,
                )
            replacement = args[2]
            if isinstance(replacement, bound.Literal) and isinstance(replacement.value, str):
                template = self.constant(fx.java_replacement(replacement.value)).text
                return self.guard([operands[0]], lambda x: f"{regex}.sub({template}, {x})")
            helper = self.bind(fx.regexp_replace_compiled, "_h")
            return self.guard(
                [operands[0], operands[2]], lambda x, y: f"{helper}({regex}, {x}, {y})"
            )
        helper_fn = fx.regexp_extract if name == "REGEXP_EXTRACT" else fx.regexp_replace
        helper = self.bind(helper_fn, "_h")
        return self.guard(
            operands,
            lambda *names: f"{helper}({', '.join(names)})",
            nullable=name == "REGEXP_EXTRACT",
        )

    # -- user-defined functions -------------------------------------------------------------

    def udf(self, expr: bound.Call) -> _Code:
        function = self._udfs.get(expr.function.lower())
        if function is None:
            if self._check_udfs:
                known = ", ".join(sorted(self._udfs)) or "none"
                raise KeyError(
                    f"function '{expr.function}' is neither built in nor a registered UDF "
                    f"(registered: {known})"
                )
            function = _unregistered(expr.function)
        name = self.bind(function, "_u")
        args = ", ".join(self.value(a).text for a in expr.args)  # NULL arguments pass as None
        call = f"{name}({args})"
        kind = expr.type.kind
        check = self.bind(_udf_result(expr.function, expr.type), "_h")
        exact = {
            TypeKind.BOOLEAN: "bool",
            TypeKind.INTEGER: "int",
            TypeKind.BIGINT: "int",
            TypeKind.DOUBLE: "float",
            TypeKind.VARCHAR: "str",
        }.get(kind)
        result = self.temp()
        if exact is not None:
            # The common, well-behaved case costs one class test; anything else is converted
            # (or rejected) by the slow path.
            return _Code(
                f"({result} if ({result} := {call}) is None or {result}.__class__ is {exact} "
                f"else {check}({result}))"
            )
        if kind is TypeKind.DECIMAL:
            return _Code(f"(None if ({result} := {call}) is None else {check}({result}))")
        return _Code(call)

    # -- predicate mode ---------------------------------------------------------------------

    def predicate(self, expr: bound.Expr) -> str:
        """Code that is True when `expr` is TRUE and False when it is FALSE or NULL."""
        if isinstance(expr, bound.Literal):
            return "True" if expr.value is True else "False"
        if isinstance(expr, bound.InList):
            return self.in_list_predicate(expr, expr.negated)
        if not isinstance(expr, bound.Call):
            return self.truth(self.value(expr), True)
        name, args = expr.function, expr.args
        if name in ("AND", "OR"):
            parts = [self.predicate(e) for e in _chain(name, expr)]
            return "(" + f" {name.lower()} ".join(parts) + ")"
        if name == "NOT":
            return self.negated(args[0])
        if name in _COMPARISON:
            return self.comparison_predicate(name, args[0], args[1])
        if name in _LIKES:
            return self.like_predicate(name, args[0], args[1], negate=False)
        return self.truth(self.value(expr), True)

    def negated(self, expr: bound.Expr) -> str:
        """Code that is True exactly when `expr` is FALSE (NOT pushed down, three-valued)."""
        if isinstance(expr, bound.Literal):
            return "True" if expr.value is False else "False"
        if isinstance(expr, bound.InList):
            return self.in_list_predicate(expr, not expr.negated)
        if not isinstance(expr, bound.Call):
            return self.truth(self.value(expr), False)
        name, args = expr.function, expr.args
        # De Morgan holds in three-valued logic.
        if name in ("AND", "OR"):
            parts = [self.negated(e) for e in _chain(name, expr)]
            return "(" + (" or " if name == "AND" else " and ").join(parts) + ")"
        if name == "NOT":
            return self.predicate(args[0])
        if name in _COMPARISON:
            return self.comparison_predicate(_INVERSE[name], args[0], args[1])
        if name in _LIKES:
            return self.like_predicate(name, args[0], args[1], negate=True)
        return self.truth(self.value(expr), False)

    def truth(self, code: _Code, wanted: bool) -> str:
        if code.text in ("True", "False", "None"):
            return "True" if code.text == str(wanted) else "False"
        return f"({code.text} is {wanted})"

    def comparison_predicate(self, name: str, left: bound.Expr, right: bound.Expr) -> str:
        a, b = self.comparison_operands(left, right)
        op = _COMPARISON[name]
        return self.guard_predicate([a, b], lambda x, y: f"{x} {op} {y}")

    def like_predicate(
        self, name: str, value: bound.Expr, pattern: bound.Expr, *, negate: bool
    ) -> str:
        operand = self.value(value)
        if isinstance(pattern, bound.Literal):
            if pattern.value is None:
                return "False"
            return self.guard_predicate([operand], self.like_test(name, str(pattern.value), negate))
        helper = self.bind(ilike if "ILIKE" in name else like, "_h")
        prefix = "not " if name.startswith("NOT") != negate else ""
        return self.guard_predicate(
            [operand, self.value(pattern)], lambda x, y: f"{prefix}{helper}({x}, {y})"
        )

    def in_list_predicate(self, expr: bound.InList, negated: bool) -> str:
        """True when `operand [NOT] IN (...)` is TRUE (negated: when NOT IN is TRUE)."""
        operand, found, null_test = self.membership(expr)
        if not negated:
            return self.guard_predicate([operand], found, reuse=True)
        if null_test == "True":
            return "False"  # x NOT IN (..., NULL) is never TRUE
        tail = "" if null_test == "False" else f" and not ({null_test})"
        return self.guard_predicate([operand], lambda x: f"not {found(x)}{tail}", reuse=True)


# -- compile-time helpers -------------------------------------------------------------------


def _chain(name: str, expr: bound.Expr) -> list[bound.Expr]:
    """The operands of a left- or right-deep chain of one operator: a AND b AND c -> [a, b, c]."""
    if isinstance(expr, bound.Call) and expr.function == name:
        return [leaf for arg in expr.args for leaf in _chain(name, arg)]
    return [expr]


def _declared_field(struct_type: SqlType, name: str) -> str:
    """The field name as the STRUCT type declares it (users may write another case)."""
    for declared, _ in struct_type.fields:
        if declared.lower() == name.lower():
            return declared
    return name


def _comparison_type(a: SqlType, b: SqlType) -> SqlType | None:
    """The type both sides of a comparison are converted to, or None to compare as they are."""
    kinds = {a.kind, b.kind}
    if TypeKind.DOUBLE in kinds and TypeKind.DECIMAL in kinds:
        return t.DOUBLE  # Decimal('1.1') != 1.1 in Python; SQL compares as DOUBLE
    for temporal in _TEMPORAL:
        if temporal in kinds and TypeKind.VARCHAR in kinds:
            return SqlType(temporal)  # ts > '2024-01-01': the text is parsed
    if kinds == {TypeKind.TIMESTAMP, TypeKind.DATE} or kinds == {TypeKind.DATE, TypeKind.BIGINT}:
        return t.TIMESTAMP
    if a.is_null:
        return b
    if b.is_null or a == b:
        return a
    if a.is_numeric and b.is_numeric:
        return None  # Python compares int, Decimal and float exactly
    return None


def _convert_constant(value: object, source: SqlType, target: SqlType) -> object:
    """A literal converted at compile time (what `_Generator.convert` does per record)."""
    if source == target or target.is_null:
        return value
    kind = target.kind
    if source.kind is TypeKind.VARCHAR and isinstance(value, str):
        if kind is TypeKind.TIMESTAMP:
            return fx.parse_timestamp(value)
        if kind is TypeKind.DATE:
            return fx.parse_date(value)
        if kind is TypeKind.TIME:
            return fx.parse_time(value)
        return value
    if kind is TypeKind.DOUBLE and isinstance(value, int | Decimal):
        return float(value)
    if kind is TypeKind.DECIMAL and isinstance(value, int | Decimal):
        return fx.to_decimal(value, target.precision or 38, target.scale or 0)
    if kind is TypeKind.TIMESTAMP and source.kind is TypeKind.DATE and isinstance(value, int):
        return value * fx.MS_PER_DAY
    return value


def _text_constant(value: object, source: SqlType) -> str:
    kind = source.kind
    if kind is TypeKind.TIMESTAMP and isinstance(value, int):
        return fx.format_timestamp(value)
    if kind is TypeKind.DATE and isinstance(value, int):
        return fx.format_date(value)
    if kind is TypeKind.TIME and isinstance(value, int):
        return fx.format_time(value)
    return fx.to_string(value)


def _cast_constant(value: object, source: SqlType, target: SqlType) -> object:
    """CAST of a literal, folded at compile time."""
    kind = target.kind
    if kind is TypeKind.VARCHAR:
        return _text_constant(value, source)
    if kind is TypeKind.DECIMAL:
        return fx.to_decimal(value, target.precision or 38, target.scale or 0)
    if source.kind is TypeKind.VARCHAR and isinstance(value, str):
        parser: Callable[[Any], object] | None = {
            TypeKind.BOOLEAN: fx.cast_boolean,
            TypeKind.INTEGER: fx.cast_integer,
            TypeKind.BIGINT: fx.cast_bigint,
            TypeKind.DOUBLE: fx.cast_double,
            TypeKind.TIMESTAMP: fx.parse_timestamp,
            TypeKind.DATE: fx.parse_date,
            TypeKind.TIME: fx.parse_time,
            TypeKind.BYTES: fx.cast_bytes,
        }.get(kind)
        if parser is not None:
            return parser(value)
    if kind is TypeKind.DOUBLE and isinstance(value, int | float | Decimal):
        return float(value)
    if kind is TypeKind.INTEGER and source.kind is not TypeKind.BOOLEAN:
        return fx.cast_integer(value)
    if kind is TypeKind.BIGINT and source.kind is not TypeKind.BOOLEAN:
        return fx.cast_bigint(value)
    raise ValueError("not folded")  # anything else is cast per record


def _unregistered(name: str) -> Callable[..., object]:
    def missing(*_: object) -> object:
        raise LookupError(f"UDF {name} is not registered")

    return missing


def _udf_result(name: str, declared: SqlType) -> Callable[[object], object]:
    """Slow path for a UDF result that is not exactly of its declared type's class."""
    kind = declared.kind

    def convert(value: object) -> object:
        # Numbers from numpy and friends: numpy.float64 subclasses float, numpy.int64 and
        # numpy.bool_ do not subclass anything but offer __index__ / __bool__.
        number = not isinstance(value, bool | str | bytes)
        if kind is TypeKind.DECIMAL and number and isinstance(value, int | float | Decimal):
            return fx.to_decimal(value, declared.precision or 38, declared.scale or 0)
        if kind is TypeKind.DOUBLE and number and isinstance(value, int | float | Decimal):
            return float(value)
        if kind in _INTEGRAL and number and hasattr(value, "__index__"):
            return operator.index(value)
        if kind is TypeKind.BOOLEAN and type(value).__name__ == "bool_":
            return bool(value)
        if kind is TypeKind.VARCHAR and isinstance(value, str):
            return str(value)
        raise TypeError(
            f"UDF {name} returned {type(value).__name__} {value!r}, declared {declared}"
        )

    return convert


# -- assembling functions -------------------------------------------------------------------


def _count_columns(exprs: Iterable[bound.Expr], counts: dict[str, int]) -> None:
    for expr in exprs:
        if isinstance(expr, bound.ColumnRef):
            counts[expr.name] = counts.get(expr.name, 0) + 1
        elif isinstance(expr, bound.Call | bound.AggregateCall):
            _count_columns(expr.args, counts)
        elif isinstance(expr, bound.Case):
            _count_columns([e for pair in expr.whens for e in pair], counts)
            if expr.default is not None:
                _count_columns([expr.default], counts)
        elif isinstance(expr, bound.Cast | bound.FieldAccess):
            _count_columns([expr.operand], counts)
        elif isinstance(expr, bound.Lambda):
            _count_columns([expr.body], counts)
        elif isinstance(expr, bound.InList):
            _count_columns([expr.operand, *expr.values], counts)


_FRIENDLY: list[tuple[type[BaseException], str]] = [
    (ZeroDivisionError, "division by zero"),  # also decimal.DivisionByZero/DivisionUndefined
    (decimal.Overflow, "decimal overflow"),
    # The context holds 100 digits: quantizing a result beyond that is the usual cause.
    (decimal.InvalidOperation, "decimal overflow or invalid decimal operand"),
]


def _wrap(error: Exception, where: str) -> EvaluationError:
    message = next((text for kind, text in _FRIENDLY if isinstance(error, kind)), None)
    if message is None:
        message = str(error) or type(error).__name__
    wrapped = EvaluationError(f"{message} (evaluating {where})")
    return wrapped


@dataclass(frozen=True)
class _Compiled:
    source: str
    bindings: dict[str, object]


def _hoist(generator: _Generator, exprs: Sequence[bound.Expr], counts: dict[str, int]) -> list[str]:
    """Read each column used more than once (per `counts`) into a local; the statements."""
    statements: list[str] = []
    local_counts: dict[str, int] = {}
    _count_columns(exprs, local_counts)
    for column in local_counts:
        if counts.get(column, 0) >= 2 and column not in generator.columns:
            local = f"_c{len(generator.columns)}"
            generator.columns[column] = local
            statements.append(f"{local} = _g({column!r})")
    return statements


def _assemble(generator: _Generator, body: list[str], where: str) -> _Compiled:
    """Wrap `body` into a factory whose parameters are the generator's closure bindings."""
    generator.bindings["_where"] = where
    generator.bindings["_EvaluationError"] = EvaluationError
    generator.bindings["_wrap"] = _wrap
    lines = [f"def _factory({', '.join(generator.bindings)}):", "    def _evaluate(row):"]
    if generator.reads_row or generator.columns:
        lines.append("        _g = row.get")
    lines.append("        try:")
    lines.extend(f"            {line}" for line in body)
    # One handler for the whole body: free while nothing fails (zero-cost try in 3.11).
    lines.append("        except _EvaluationError:")
    lines.append("            raise")
    lines.append("        except Exception as error:")
    lines.append("            raise _wrap(error, _where) from error")
    lines.append("    return _evaluate")
    return _Compiled("\n".join(lines) + "\n", generator.bindings)


def _value_source(expr: bound.Expr, udfs: UdfRegistry | None, check: bool = True) -> _Compiled:
    generator = _Generator(udfs, check)
    counts: dict[str, int] = {}
    _count_columns([expr], counts)
    body = _hoist(generator, [expr], counts)
    body.append(f"return {generator.value(expr).text}")
    return _assemble(generator, body, _shorten(expr.render()))


def _predicate_source(expr: bound.Expr, udfs: UdfRegistry | None, check: bool = True) -> _Compiled:
    generator = _Generator(udfs, check)
    counts: dict[str, int] = {}
    _count_columns([expr], counts)
    body = _hoist(generator, [expr], counts)
    body.append(f"return {generator.predicate(expr)}")
    return _assemble(generator, body, _shorten(expr.render()))


def _values_source(
    exprs: Sequence[bound.Expr], udfs: UdfRegistry | None, check: bool = True
) -> _Compiled:
    generator = _Generator(udfs, check)
    counts: dict[str, int] = {}
    _count_columns(exprs, counts)
    body = _hoist(generator, exprs, counts)
    body.append(f"return ({''.join(f'{generator.value(e).text}, ' for e in exprs)})")
    return _assemble(generator, body, _shorten(", ".join(e.render() for e in exprs)))


def _transform_source(
    predicate: bound.Expr | None,
    items: Sequence[tuple[str, bound.Expr]] | None,
    udfs: UdfRegistry | None,
    check: bool = True,
) -> _Compiled:
    generator = _Generator(udfs, check)
    outputs = [e for _, e in items or ()]
    counts: dict[str, int] = {}
    _count_columns(outputs + ([predicate] if predicate is not None else []), counts)
    body: list[str] = []
    if predicate is not None:
        # Columns the filter reads are fetched before it; the others only for rows it keeps.
        body.extend(_hoist(generator, [predicate], counts))
        body.append(f"if not {generator.predicate(predicate)}:")
        body.append("    return None")
    body.extend(_hoist(generator, outputs, counts))
    if items is None:
        body.append("return row")
    else:
        entries = ", ".join(f"{name!r}: {generator.value(e).text}" for name, e in items)
        body.append(f"return {{{entries}}}")
    parts = [] if predicate is None else [f"WHERE {predicate.render()}"]
    parts += [f"{e.render()} AS {name}" for name, e in items or ()]
    return _assemble(generator, body, _shorten(", ".join(parts)))


def _shorten(text: str) -> str:
    return text if len(text) <= 200 else text[:197] + "..."


def _build(compiled: _Compiled) -> Callable[[Row], Any]:
    namespace: dict[str, Any] = {}
    try:
        code = compile(compiled.source, "<streamhouse-expression>", "exec")
    except (SyntaxError, RecursionError, MemoryError) as error:
        # Only pathological nesting gets here (Python allows 200 nested parentheses).
        raise ValueError(f"expression too deeply nested to compile: {error}") from None
    exec(code, namespace)  # the source is generated from a bound tree, never from user text
    function = cast(Callable[[Row], Any], namespace["_factory"](**compiled.bindings))
    function.__streamhouse_source__ = compiled.source  # type: ignore[attr-defined]
    return function


# -- public API -----------------------------------------------------------------------------


def compile_value(
    expr: bound.Expr, udfs: UdfRegistry | None = None
) -> Callable[[dict[str, object]], object]:
    """Compile `expr` into `f(row) -> value` (None for NULL).

    Raises KeyError at compile time for a call to an unregistered UDF and ValueError for a
    literal the query cannot use (bad regex, bad timestamp text, unknown time zone)."""
    return _build(_value_source(expr, udfs))


def compile_values(
    exprs: Sequence[bound.Expr], udfs: UdfRegistry | None = None
) -> Callable[[dict[str, object]], tuple[object, ...]]:
    """Compile several expressions into one `f(row) -> (value, ...)` (a grouping key)."""
    return cast(Callable[[Row], tuple[object, ...]], _build(_values_source(exprs, udfs)))


def compile_predicate(
    expr: bound.Expr, udfs: UdfRegistry | None = None
) -> Callable[[dict[str, object]], bool]:
    """Compile a condition into `f(row) -> bool`; NULL counts as False."""
    return cast(Callable[[Row], bool], _build(_predicate_source(expr, udfs)))


def compile_projection(
    items: Sequence[tuple[str, bound.Expr]], udfs: UdfRegistry | None = None
) -> Callable[[dict[str, object]], dict[str, object]]:
    """Compile a select list into `f(row) -> {name: value, ...}` (one dict display)."""
    return cast(Callable[[Row], Row], _build(_transform_source(None, items, udfs)))


def compile_row_transform(
    predicate: bound.Expr | None,
    items: Sequence[tuple[str, bound.Expr]] | None,
    udfs: UdfRegistry | None = None,
) -> Callable[[dict[str, object]], dict[str, object] | None]:
    """Fuse a filter and a projection into one function: None when the row is filtered out,
    the projected dict otherwise (the input row itself when `items` is None)."""
    if predicate is None and items is None:
        return _identity
    return cast(Callable[[Row], Row | None], _build(_transform_source(predicate, items, udfs)))


def _identity(row: Row) -> Row:
    return row


def generated_source(
    expr_or_items: bound.Expr | Sequence[tuple[str, bound.Expr]] | None,
    predicate: bound.Expr | None = None,
    *,
    as_predicate: bool = False,
    udfs: UdfRegistry | None = None,
) -> str:
    """The Python source the compiler generates, for tests, debugging and EXPLAIN.

    `generated_source(expr)` is compile_value's, `generated_source(expr, as_predicate=True)`
    compile_predicate's, `generated_source(items, predicate)` (items may be None)
    compile_row_transform's. UDFs need not be registered here. A compiled function also
    carries its source as `__streamhouse_source__`."""
    if isinstance(expr_or_items, bound.Expr):
        if as_predicate:
            return _predicate_source(expr_or_items, udfs, check=False).source
        return _value_source(expr_or_items, udfs, check=False).source
    items = None if expr_or_items is None else list(expr_or_items)
    return _transform_source(predicate, items, udfs, check=False).source
