"""SUM leaves its result type only as an error of the record; the per-record range check is
skipped only where leaving the type would take 10^18 records."""

from __future__ import annotations

from decimal import Decimal

import pytest

from streamhouse_runtime.exec.aggregates import Sum, compile_fold
from streamhouse_runtime.sql import types as t

pytestmark = pytest.mark.unit


def _fold(function: Sum, values: list[object]) -> list[object]:
    fold = compile_fold([function], [lambda row: row["v"]])
    accumulators: list[object] = [function.initialize()]
    for value in values:
        fold(accumulators, {"v": value}, 0)
    return accumulators


def test_a_decimal_sum_without_headroom_is_checked_and_fails_atomically() -> None:
    wide = t.decimal(38, 2)
    function = Sum(wide, wide)
    near = Decimal("9" * 36 + ".00")  # the largest integer part DECIMAL(38,2) holds
    accumulators = _fold(function, [near])
    fold = compile_fold([function], [lambda row: row["v"]])
    with pytest.raises(ArithmeticError, match="out of the range of DECIMAL"):
        fold(accumulators, {"v": near}, 1)
    assert accumulators == [near]  # untouched by the failed record


def test_a_decimal_sum_with_eighteen_digits_of_headroom_skips_the_check() -> None:
    assert Sum(t.decimal(38, 2), t.decimal(10, 2)).bounds is None
    assert Sum(t.decimal(38, 2), t.decimal(30, 2)).bounds is not None
    assert Sum(t.BIGINT, t.INTEGER).bounds is not None  # 2^32 INT records overflow BIGINT
