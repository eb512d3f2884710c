"""Micro-benchmark: compiled expressions vs. a naive tree-walking evaluator.

Runs a WHERE filter, a projection and the fused filter+projection over 200,000 dict rows and
prints rows/s (median of --repeat runs) for the compiled code and for a straightforward
interpreter of the same bound trees, written here for comparison only.

    .venv/bin/python bench/bench_expressions.py [--rows 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import operator
import random
import re
import statistics
import time
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

from streamhouse_runtime.exec.compiler import (
    compile_predicate,
    compile_projection,
    compile_row_transform,
    generated_source,
)
from streamhouse_runtime.sql import bound
from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.sql.types import TypeKind

SQL = """
CREATE STREAM orders (
  order_id BIGINT, customer_id VARCHAR, amount DECIMAL(10,2), status VARCHAR,
  quantity INT, region VARCHAR, created_at TIMESTAMP
) WITH (kafka_topic = 'orders', value_format = 'JSON');
SELECT order_id, UPPER(status) AS status, amount * 1.2 AS gross, quantity * 2 AS double_qty,
       CASE WHEN quantity > 2 THEN 'bulk' ELSE 'single' END AS kind,
       COALESCE(region, 'none') AS region
FROM orders
WHERE amount > 100 AND status IN ('SHIPPED', 'DELIVERED') AND customer_id LIKE 'c-1%'
EMIT CHANGES;
"""

Row = dict[str, object]


def make_rows(count: int) -> list[Row]:
    rng = random.Random(42)
    statuses = ["SHIPPED", "DELIVERED", "PENDING", "CANCELLED"]
    rows: list[Row] = []
    for index in range(count):
        row: Row = {
            "order_id": index,
            "customer_id": f"c-{rng.randrange(100)}",
            "amount": Decimal(rng.randrange(0, 200_000)).scaleb(-2),
            "status": rng.choice(statuses),
            "quantity": rng.randrange(1, 6),
            "created_at": 1_700_000_000_000 + index,
        }
        if rng.random() < 0.7:
            row["region"] = rng.choice(["eu", "us", "apac"])
        rows.append(row)
    return rows


# -- the naive evaluator: walks the tree for every row ---------------------------------------

_CONTEXT = Context(prec=76, rounding=ROUND_HALF_UP)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "<>": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
}


def _like(pattern: str) -> re.Pattern[str]:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.compile(regex, re.DOTALL)


def naive(expr: bound.Expr, row: Row) -> object:
    """Evaluate by recursion over the bound tree (what the compiler avoids)."""
    if isinstance(expr, bound.ColumnRef):
        return row.get(expr.name)
    if isinstance(expr, bound.Literal):
        return expr.value
    if isinstance(expr, bound.InList):
        value = naive(expr.operand, row)
        if value is None:
            return None
        values = [naive(v, row) for v in expr.values]
        found = value in values
        return (not found) if expr.negated else found
    if isinstance(expr, bound.Case):
        for condition, result in expr.whens:
            if naive(condition, row) is True:
                return naive(result, row)
        return None if expr.default is None else naive(expr.default, row)
    if not isinstance(expr, bound.Call):
        raise NotImplementedError(type(expr).__name__)
    name = expr.function
    if name == "AND":
        left, right = naive(expr.args[0], row), naive(expr.args[1], row)
        if left is False or right is False:
            return False
        return None if left is None or right is None else True
    if name == "COALESCE":
        for arg in expr.args:
            value = naive(arg, row)
            if value is not None:
                return value
        return None
    args = [naive(a, row) for a in expr.args]
    if any(a is None for a in args):
        return None
    if name in _COMPARE:
        return _COMPARE[name](args[0], args[1])
    if name in _ARITHMETIC:
        number = _ARITHMETIC[name](args[0], args[1])
        if expr.type.kind is TypeKind.DECIMAL:
            quantum = Decimal(1).scaleb(-(expr.type.scale or 0))
            number = _CONTEXT.quantize(number, quantum)
        return number
    if name == "LIKE":
        return _like(str(args[1])).fullmatch(str(args[0])) is not None
    if name == "UPPER":
        return str(args[0]).upper()
    raise NotImplementedError(name)


# -- measuring -------------------------------------------------------------------------------


def rate(function: Callable[[Row], object], rows: Sequence[Row], repeat: int) -> float:
    """Median rows/s over `repeat` passes."""
    rates = []
    for _ in range(repeat):
        start = time.perf_counter()
        for row in rows:
            function(row)
        rates.append(len(rows) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--show-source", action="store_true")
    options = parser.parse_args()

    query = analyze(SQL).statements[-1].query
    assert query is not None and query.where is not None
    where, select = query.where, query.select
    rows = make_rows(options.rows)

    keep = compile_predicate(where)
    project = compile_projection(select)
    fused = compile_row_transform(where, select)

    def naive_keep(row: Row) -> bool:
        return naive(where, row) is True

    def naive_project(row: Row) -> Row:
        return {name: naive(expr, row) for name, expr in select}

    def naive_fused(row: Row) -> Row | None:
        return naive_project(row) if naive_keep(row) else None

    # Both evaluators must agree before their speed means anything.
    for row in rows[:5_000]:
        assert keep(row) == naive_keep(row), row
        assert project(row) == naive_project(row), row
        assert fused(row) == naive_fused(row), row
    selectivity = sum(1 for row in rows if keep(row)) / len(rows)

    if options.show_source:
        print(generated_source(select, where))
    print(f"{len(rows):,} rows, filter keeps {selectivity:.1%}, median of {options.repeat} runs")
    print(f"  WHERE      {where.render()}")
    results = [
        ("filter      compiled", rate(keep, rows, options.repeat)),
        ("filter      naive", rate(naive_keep, rows, options.repeat)),
        ("projection  compiled", rate(project, rows, options.repeat)),
        ("projection  naive", rate(naive_project, rows, options.repeat)),
        ("fused       compiled", rate(fused, rows, options.repeat)),
        ("fused       naive", rate(naive_fused, rows, options.repeat)),
    ]
    for label, rows_per_second in results:
        print(f"  {label:<22} {rows_per_second:>12,.0f} rows/s")


if __name__ == "__main__":
    main()
