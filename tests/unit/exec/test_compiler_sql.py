"""End to end: queries analyzed from real SQL, their WHERE and select list compiled and run."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from streamhouse_runtime.exec.compiler import (
    compile_predicate,
    compile_projection,
    compile_row_transform,
)
from streamhouse_runtime.sql import bound
from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.sql.query import AnalyzedQuery
from streamhouse_runtime.sql.types import SqlType, TypeKind

pytestmark = pytest.mark.unit

DESIGN = Path(__file__).resolve().parents[3] / "examples" / "sql" / "design.sql"

ORDERS = """
CREATE STREAM orders (
  order_id BIGINT, customer_id VARCHAR, amount DECIMAL(10,2), status VARCHAR,
  created_at TIMESTAMP, quantity INT, tags ARRAY<VARCHAR>,
  address STRUCT<city VARCHAR, zip VARCHAR>
) WITH (kafka_topic = 'orders', value_format = 'JSON', timestamp = 'created_at');
"""


def query_of(sql: str) -> AnalyzedQuery:
    program = analyze(ORDERS + sql)
    query = program.statements[-1].query
    assert query is not None
    return query


def transform_of(sql: str) -> tuple[AnalyzedQuery, object]:
    query = query_of(sql)
    return query, compile_row_transform(query.where, query.select)


def order(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "order_id": 1,
        "customer_id": "c-1",
        "amount": Decimal("1500.00"),
        "status": "SHIPPED",
        "created_at": 1_704_067_200_000,  # 2024-01-01 00:00:00 UTC
        "quantity": 3,
        "tags": ["gift", "express"],
        "address": {"city": "Lyon", "zip": "69001"},
    }
    row.update(overrides)
    return row


def test_filter_and_computed_columns() -> None:
    query = query_of(
        """
        CREATE STREAM big AS
        SELECT order_id, UPPER(status) AS status, amount * 1.2 AS gross,
               CASE WHEN quantity >= 3 THEN 'bulk' ELSE 'single' END AS kind,
               address->city AS city, ELEMENT_AT(tags, 1) AS first_tag
        FROM orders
        WHERE amount > 1000 AND status IN ('SHIPPED', 'DELIVERED')
          AND created_at >= '2024-01-01' AND customer_id LIKE 'c-%'
        EMIT CHANGES;
        """
    )
    transform = compile_row_transform(query.where, query.select)
    assert transform(order()) == {
        "order_id": 1,
        "status": "SHIPPED",
        "gross": Decimal("1800.000"),
        "kind": "bulk",
        "city": "Lyon",
        "first_tag": "gift",
    }
    assert transform(order(amount=Decimal("999.99"))) is None
    assert transform(order(status="CANCELLED")) is None
    assert transform(order(created_at=1_704_067_199_999)) is None
    assert transform(order(customer_id=None)) is None
    assert transform(order(amount=None)) is None
    result = transform(order(quantity=None, address=None, tags=[]))
    assert result is not None
    assert (result["kind"], result["city"], result["first_tag"]) == ("single", None, None)


def test_null_handling_through_or_and_coalesce() -> None:
    query = query_of(
        """
        SELECT order_id, COALESCE(status, 'UNKNOWN') AS status,
               CONCAT(customer_id, '/', status) AS label,
               amount / quantity AS unit_price
        FROM orders
        WHERE status IS NULL OR amount BETWEEN 10 AND 2000
        EMIT CHANGES;
        """
    )
    transform = compile_row_transform(query.where, query.select)
    assert transform(order(status=None, amount=None)) == {
        "order_id": 1,
        "status": "UNKNOWN",
        "label": "c-1/",
        "unit_price": None,
    }
    kept = transform(order())
    assert kept is not None
    assert kept["unit_price"] == Decimal("500")
    assert transform(order(amount=Decimal("5000"))) is None


def test_negated_conditions_follow_three_valued_logic() -> None:
    query = query_of(
        "SELECT order_id FROM orders "
        "WHERE NOT (status = 'CANCELLED' OR quantity > 10) EMIT CHANGES;"
    )
    assert query.where is not None
    keep = compile_predicate(query.where)
    assert keep(order()) is True
    assert keep(order(status="CANCELLED")) is False
    assert keep(order(quantity=11)) is False
    # NOT (NULL OR FALSE) is NULL: the row is dropped.
    assert keep(order(status=None)) is False
    # NOT (NULL OR TRUE) is FALSE.
    assert keep(order(status=None, quantity=11)) is False


def test_casts_and_time_functions_from_sql() -> None:
    query = query_of(
        """
        SELECT CAST(order_id AS VARCHAR) || ':' || CAST(amount AS VARCHAR) AS k,
               TIMESTAMPTOSTRING(created_at, 'yyyy-MM-dd HH:mm') AS day,
               created_at + INTERVAL '1' DAY AS due,
               CAST(quantity AS DECIMAL(6,2)) AS q
        FROM orders EMIT CHANGES;
        """
    )
    projection = compile_projection(query.select)
    assert projection(order()) == {
        "k": "1:1500.00",
        "day": "2024-01-01 00:00",
        "due": 1_704_153_600_000,
        "q": Decimal("3.00"),
    }


def _sample(kind: SqlType) -> object:
    samples: dict[TypeKind, object] = {
        TypeKind.BOOLEAN: True,
        TypeKind.INTEGER: 3,
        TypeKind.BIGINT: 42,
        TypeKind.DECIMAL: Decimal("1500.25"),
        TypeKind.DOUBLE: 21.5,
        TypeKind.VARCHAR: "FAILED",
        TypeKind.TIMESTAMP: 1_704_067_200_000,
        TypeKind.DATE: 19_723,
        TypeKind.TIME: 0,
        TypeKind.ARRAY: [],
        TypeKind.MAP: {},
        TypeKind.STRUCT: {},
    }
    return samples.get(kind.kind)


def _columns(expr: bound.Expr, found: dict[str, SqlType]) -> None:
    if isinstance(expr, bound.ColumnRef):
        found[expr.name] = expr.type
    for child in vars(expr).values():
        children = child if isinstance(child, tuple) else (child,)
        for item in children:
            for sub in item if isinstance(item, tuple) else (item,):
                if isinstance(sub, bound.Expr):
                    _columns(sub, found)


def test_every_design_query_compiles_and_runs() -> None:
    """Each persistent query of the design document: WHERE and select list, fused."""
    program = analyze(DESIGN.read_text())
    fraud_calls: list[tuple[object, ...]] = []

    def detect_fraud(*args: object) -> bool:
        fraud_calls.append(args)
        return True

    compiled = 0
    for statement in program.persistent_queries:
        query = statement.query
        assert query is not None
        columns: dict[str, SqlType] = {}
        for expr in [e for _, e in query.select] + ([query.where] if query.where else []):
            _columns(expr, columns)
        row = {name: _sample(kind) for name, kind in columns.items()}
        transform = compile_row_transform(query.where, query.select, {"detect_fraud": detect_fraud})
        result = transform(row)
        if query.where is None:
            assert result is not None and list(result) == [n for n, _ in query.select]
        compiled += 1
    assert compiled == len(program.persistent_queries) > 10
    assert fraud_calls == [(Decimal("1500.25"), 3)]


def test_design_fee_query_values() -> None:
    program = analyze(DESIGN.read_text())
    fee = next(s for s in program.persistent_queries if s.name == "orders_with_fee")
    assert fee.query is not None
    projection = compile_projection(fee.query.select)
    out = projection({"order_id": 7, "amount": Decimal("100.10")})
    assert out == {
        "order_id": 7,
        "amount": Decimal("100.10"),
        "processing_fee": Decimal("3.0030"),
        "total": Decimal("103.1030"),
    }
