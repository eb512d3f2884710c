"""DECIMAL arithmetic equals exact Decimal math quantized (half-up) to the declared scale."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Context, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamhouse_runtime.exec.compiler import EvaluationError, compile_value
from streamhouse_runtime.sql import bound
from streamhouse_runtime.sql import types as t

pytestmark = pytest.mark.unit

EXACT = Context(prec=500, rounding=ROUND_HALF_UP)


@st.composite
def decimal_columns(draw: st.DrawFn) -> tuple[t.SqlType, Decimal]:
    """A DECIMAL(p, s) type and a value for it, sometimes with more digits than the scale
    (the runtime must not assume values arrive at their column's scale)."""
    precision = draw(st.integers(1, 38))
    scale = draw(st.integers(0, precision))
    extra = draw(st.sampled_from([0, 0, 0, 1, 3]))
    digits = draw(st.integers(-(10 ** (precision + extra) - 1), 10 ** (precision + extra) - 1))
    return t.decimal(precision, scale), Decimal(digits).scaleb(-(scale + extra), context=EXACT)


def expected(op: str, a: Decimal | int, b: Decimal | int, result: t.SqlType) -> Decimal | None:
    """The exact answer, or None where it does not fit the result type."""
    assert result.precision is not None and result.scale is not None
    exact = {
        "+": EXACT.add,
        "-": EXACT.subtract,
        "*": EXACT.multiply,
        "/": EXACT.divide,
    }[op](a, b)
    quantized = exact.quantize(Decimal(1).scaleb(-result.scale), context=EXACT)
    if EXACT.abs(quantized) >= Decimal(10) ** (result.precision - result.scale):
        return None
    return quantized


def check(op: str, ta: t.SqlType, a: Decimal | int, tb: t.SqlType, b: Decimal | int) -> None:
    result = t.arithmetic_result(op, ta, tb)
    assert result is not None and result.kind is t.TypeKind.DECIMAL
    expr = bound.Call(result, op, (bound.ColumnRef(ta, "a"), bound.ColumnRef(tb, "b")))
    function = compile_value(expr)
    want = expected(op, a, b, result)
    if want is None:
        with pytest.raises(EvaluationError, match="decimal overflow"):
            function({"a": a, "b": b})
        return
    got = function({"a": a, "b": b})
    assert isinstance(got, Decimal)
    assert got == want
    assert got.as_tuple().exponent == -(result.scale or 0)  # carries the declared scale


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["+", "-", "*"]), decimal_columns(), decimal_columns())
def test_decimal_add_subtract_multiply(
    op: str, left: tuple[t.SqlType, Decimal], right: tuple[t.SqlType, Decimal]
) -> None:
    check(op, left[0], left[1], right[0], right[1])


@settings(max_examples=200, deadline=None)
@given(decimal_columns(), decimal_columns())
def test_decimal_divide(left: tuple[t.SqlType, Decimal], right: tuple[t.SqlType, Decimal]) -> None:
    if right[1] == 0:
        return
    check("/", left[0], left[1], right[0], right[1])


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["+", "-", "*"]),
    decimal_columns(),
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
)
def test_decimal_with_integers_stays_exact(
    op: str, left: tuple[t.SqlType, Decimal], number: int, integer_first: bool
) -> None:
    if integer_first:
        check(op, t.BIGINT, number, left[0], left[1])
    else:
        check(op, left[0], left[1], t.BIGINT, number)


def test_results_with_more_than_28_digits_are_exact() -> None:
    """Python's default context has 28 digits; 38-digit values must not be rounded by it."""
    wide = t.decimal(38, 0)
    nines = Decimal("9" * 38)
    check("-", wide, nines, wide, Decimal(1))
    check("+", wide, nines - 1, t.INTEGER, 1)
    cast = bound.Cast(wide, bound.ColumnRef(t.VARCHAR, "s"))
    assert compile_value(cast)({"s": "9" * 38}) == nines
    negate = bound.Call(wide, "NEG", (bound.ColumnRef(wide, "a"),))
    assert compile_value(negate)({"a": nines}) == Decimal("-" + "9" * 38)


def test_half_up_rounding_of_results() -> None:
    # 1.25 * 0.5 = 0.625: DECIMAL(3,2) * DECIMAL(1,1) has scale 3, so no rounding there...
    price = bound.ColumnRef(t.decimal(3, 2), "p")
    half = bound.Literal(t.decimal(1, 1), Decimal("0.5"))
    product = bound.Call(t.decimal(4, 3), "*", (price, half))
    assert str(compile_value(product)({"p": Decimal("1.25")})) == "0.625"
    # ...but a cast to two places rounds half up (banker's rounding would give 0.62).
    cast = bound.Cast(t.decimal(4, 2), product)
    assert str(compile_value(cast)({"p": Decimal("1.25")})) == "0.63"
    negative = compile_value(cast)({"p": Decimal("-1.25")})
    assert str(negative) == "-0.63"
