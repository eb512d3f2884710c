"""Invalid queries: each must fail with an exact error code at an exact line and column.

`§` marks where the error must point; it is removed before the SQL is analyzed. The prelude
declares the sources every case can use, so line numbers include its lines.
"""

from __future__ import annotations

import pytest

from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.sql.errors import SqlValidationError

pytestmark = pytest.mark.unit

PRELUDE = """\
CREATE STREAM orders (order_id BIGINT KEY, customer_id VARCHAR, amount DECIMAL(10,2), status VARCHAR, created_at TIMESTAMP, tags ARRAY<VARCHAR>, address STRUCT<city VARCHAR, zip VARCHAR>) WITH (kafka_topic='orders', value_format='JSON', timestamp='created_at');
CREATE TABLE customers (customer_id VARCHAR PRIMARY KEY, name VARCHAR, tier VARCHAR) WITH (kafka_topic='customers', value_format='JSON');
CREATE STREAM shipments (order_id BIGINT, carrier VARCHAR, shipped_at TIMESTAMP) WITH (kafka_topic='shipments', timestamp='shipped_at');
CREATE STREAM logins (user_id VARCHAR, status VARCHAR, event_time TIMESTAMP) WITH (kafka_topic='logins', timestamp='event_time');
CREATE FUNCTION score(amount DECIMAL(10,2)) RETURNS DOUBLE LANGUAGE PYTHON AS 'fraud:score';
"""  # noqa: E501

CASES: list[tuple[str, str, str]] = [
    # names
    ("unknown-stream", "SELECT * FROM §orderz", "E101"),
    ("unknown-column", "SELECT §amout FROM orders", "E102"),
    ("unknown-column-where", "SELECT order_id\nFROM orders\nWHERE §stat = 'x'", "E102"),
    ("unknown-function", "SELECT §frobnicate(amount) FROM orders", "E103"),
    (
        "ambiguous-column",
        "SELECT §order_id FROM orders o JOIN shipments s WITHIN 1 HOUR ON o.order_id = s.order_id",
        "E104",
    ),
    ("duplicate-stream", "CREATE STREAM §orders (a INT) WITH (kafka_topic='x')", "E105"),
    ("duplicate-column", "CREATE STREAM s2 (a INT, §a VARCHAR) WITH (kafka_topic='x')", "E106"),
    (
        "unknown-property",
        "CREATE STREAM s2 (a INT) WITH (kafka_topic='x', §value_fromat='JSON')",
        "E107",
    ),
    ("missing-topic", "CREATE STREAM §s2 (a INT) WITH (value_format='JSON')", "E108"),
    (
        "invalid-format",
        "CREATE STREAM s2 (a INT) WITH (kafka_topic='x', value_format=§'XML')",
        "E109",
    ),
    ("table-without-key", "CREATE TABLE §t2 (a INT) WITH (kafka_topic='x')", "E108"),
    (
        "unknown-key-column",
        "CREATE STREAM s2 (a INT) WITH (kafka_topic='x', key=§'b')",
        "E102",
    ),
    (
        "varchar-timestamp-without-format",
        "CREATE STREAM s2 (a VARCHAR) WITH (kafka_topic='x', timestamp=§'a')",
        "E408",
    ),
    ("unknown-qualifier", "SELECT §x.amount FROM orders o", "E101"),
    ("unknown-struct-field", "SELECT §address.country FROM orders", "E102"),
    (
        "duplicate-alias",
        "SELECT o.order_id FROM orders o JOIN shipments §o WITHIN 1 HOUR\n"
        "ON o.order_id = o.order_id",
        "E110",
    ),
    ("duplicate-output-column", "§SELECT order_id, amount AS order_id FROM orders", "E110"),
    ("insert-into-unknown", "INSERT INTO §nowhere SELECT * FROM orders", "E101"),
    (
        "insert-into-missing-column",
        "CREATE STREAM audit (order_id BIGINT, note VARCHAR) WITH (kafka_topic='audit');\n"
        "INSERT INTO audit §SELECT order_id FROM orders",
        "E102",
    ),
    ("drop-unknown", "DROP STREAM §nowhere", "E101"),
    # types
    ("compare-string-with-number", "SELECT order_id FROM orders WHERE §status > 5", "E201"),
    ("multiply-string", "SELECT §status * 2 AS x FROM orders", "E201"),
    ("where-not-boolean", "SELECT order_id FROM orders WHERE §amount", "E201"),
    ("cast-array-to-int", "SELECT §CAST(tags AS INT) AS x FROM orders", "E201"),
    ("in-list-type", "SELECT order_id FROM orders WHERE status IN ('a', §2)", "E201"),
    (
        "case-branches",
        "SELECT CASE WHEN amount > 1 THEN 'big' ELSE §amount END AS x FROM orders",
        "E201",
    ),
    ("like-on-number", "SELECT order_id FROM orders WHERE §amount LIKE 'a%'", "E201"),
    ("index-a-string", "SELECT §status[1] AS x FROM orders", "E201"),
    ("function-argument-count", "SELECT §LPAD(status, 3) AS x FROM orders", "E202"),
    ("udf-argument-count", "SELECT §score(amount, amount) AS x FROM orders", "E202"),
    ("function-argument-type", "SELECT §UPPER(amount) AS x FROM orders", "E203"),
    (
        "zero-interval",
        "SELECT COUNT(*) AS n FROM orders GROUP BY TUMBLE(created_at, §INTERVAL '0' MINUTE)",
        "E204",
    ),
    (
        "hop-slide-larger-than-size",
        "SELECT COUNT(*) AS n FROM orders\n"
        "GROUP BY §HOP(created_at, INTERVAL '10' MINUTE, INTERVAL '1' MINUTE)",
        "E204",
    ),
    # aggregation and windows
    (
        "non-grouped-column",
        "SELECT §status, COUNT(*) AS n FROM orders GROUP BY customer_id",
        "E301",
    ),
    ("aggregate-without-group-by", "SELECT §status, COUNT(*) AS n FROM orders", "E301"),
    ("star-with-group-by", "SELECT §*, COUNT(*) AS n FROM orders GROUP BY customer_id", "E301"),
    ("aggregate-in-where", "SELECT order_id FROM orders WHERE §COUNT(*) > 1", "E302"),
    ("having-without-group-by", "SELECT COUNT(*) AS n FROM orders §HAVING COUNT(*) > 1", "E303"),
    (
        "window-over-table",
        "SELECT COUNT(*) AS n FROM customers\nGROUP BY §TUMBLE(ROWTIME, INTERVAL '1' MINUTE)",
        "E304",
    ),
    (
        "ksql-window-over-table",
        "SELECT tier, COUNT(*) AS n FROM customers §WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY tier",
        "E304",
    ),
    (
        "window-in-select",
        "SELECT §TUMBLE(created_at, INTERVAL '1' MINUTE) AS w FROM orders",
        "E305",
    ),
    (
        "window-start-without-window",
        "SELECT §TUMBLE_START(created_at, INTERVAL '1' MINUTE) AS s, COUNT(*) AS n\n"
        "FROM orders GROUP BY customer_id",
        "E305",
    ),
    (
        "window-start-mismatch",
        "SELECT §TUMBLE_START(created_at, INTERVAL '2' MINUTE) AS s, COUNT(*) AS n\n"
        "FROM orders GROUP BY TUMBLE(created_at, INTERVAL '1' MINUTE)",
        "E305",
    ),
    (
        "tvf-without-window-group",
        "SELECT window_start, COUNT(*) AS n\n"
        "FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(created_at), INTERVAL '1' MINUTE))\n"
        "§GROUP BY window_start",
        "E305",
    ),
    (
        "nested-aggregate",
        "SELECT SUM(§COUNT(*)) AS n FROM orders GROUP BY customer_id",
        "E306",
    ),
    (
        "two-windows",
        "SELECT COUNT(*) AS n FROM orders GROUP BY TUMBLE(created_at, INTERVAL '1' MINUTE),\n"
        "  §HOP(created_at, INTERVAL '1' MINUTE, INTERVAL '5' MINUTE)",
        "E307",
    ),
    # joins, statements, unsupported combinations
    (
        "stream-join-without-within",
        "SELECT o.order_id FROM orders o JOIN §shipments s ON o.order_id = s.order_id",
        "E401",
    ),
    (
        "join-without-equality",
        "SELECT o.order_id FROM orders o JOIN shipments s WITHIN 1 HOUR ON §o.amount > 5",
        "E402",
    ),
    (
        "table-join-not-on-primary-key",
        "SELECT o.order_id FROM orders o JOIN customers c ON §o.status = c.tier",
        "E402",
    ),
    (
        "stream-table-right-join",
        "SELECT o.order_id FROM orders o §RIGHT JOIN customers c ON o.customer_id = c.customer_id",
        "E403",
    ),
    (
        "within-on-table-join",
        "SELECT o.order_id FROM orders o JOIN customers c §WITHIN 1 HOUR\n"
        "ON o.customer_id = c.customer_id",
        "E403",
    ),
    ("subquery", "SELECT * FROM §(SELECT * FROM orders) x", "E403"),
    ("order-by", "SELECT order_id FROM orders §ORDER BY order_id", "E403"),
    ("emit-final-without-window", "SELECT order_id FROM orders §EMIT FINAL", "E403"),
    (
        "stream-from-running-aggregate",
        "CREATE STREAM §totals AS SELECT customer_id, COUNT(*) AS n\n"
        "FROM orders GROUP BY customer_id",
        "E403",
    ),
    ("table-from-plain-stream", "CREATE TABLE §copy AS SELECT * FROM orders", "E403"),
    ("sum-distinct", "SELECT §SUM(DISTINCT amount) AS s FROM orders GROUP BY customer_id", "E403"),
    (
        "over-without-order",
        "SELECT §AVG(amount) OVER (PARTITION BY customer_id) AS a FROM orders",
        "E403",
    ),
    (
        "over-unbounded",
        "SELECT §AVG(amount) OVER (PARTITION BY customer_id ORDER BY created_at\n"
        "  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS a FROM orders",
        "E403",
    ),
    (
        "rust-udf",
        "CREATE FUNCTION detect_fraud(amount DECIMAL, velocity INT)\n"
        "  RETURNS BOOLEAN §LANGUAGE RUST AS 'fraud_detection.so'",
        "E404",
    ),
    (
        "undefined-pattern-variable",
        "SELECT * FROM logins MATCH_RECOGNIZE (PARTITION BY user_id ORDER BY event_time\n"
        "  MEASURES LAST(event_time) AS t PATTERN (FAIL+ OK)\n"
        "  DEFINE FAIL AS status = 'failed', §OTHER AS status = 'x')",
        "E407",
    ),
    # syntax
    (
        "topk-of-a-struct",
        "SELECT §TOPK(address, 2) AS t FROM orders GROUP BY customer_id",
        "E203",
    ),
    (
        "topk-count-not-an-integer",
        "SELECT §TOPK(amount, 'x') AS t FROM orders GROUP BY customer_id",
        "E203",
    ),
    (
        "topk-count-a-column",
        "SELECT TOPK(amount, §order_id) AS t FROM orders GROUP BY customer_id",
        "E204",
    ),
    (
        "topkdistinct-count-zero",
        "SELECT TOPKDISTINCT(amount, §0) AS t FROM orders GROUP BY customer_id",
        "E204",
    ),
    (
        "histogram-of-a-number",
        "SELECT §HISTOGRAM(amount) AS h FROM orders GROUP BY customer_id",
        "E203",
    ),
    (
        "stddev-of-a-string",
        "SELECT §STDDEV_SAMP(status) AS s FROM orders GROUP BY customer_id",
        "E203",
    ),
    (
        "variance-of-a-string",
        "SELECT §VARIANCE(status) AS s FROM orders GROUP BY customer_id",
        "E203",
    ),
    (
        "correlation-with-a-string",
        "SELECT §CORRELATION(amount, status) AS c FROM orders GROUP BY customer_id",
        "E203",
    ),
    (
        "correlation-of-one-column",
        "SELECT §CORRELATION(amount) AS c FROM orders GROUP BY customer_id",
        "E202",
    ),
    (
        "count-distinct-of-an-array",
        "SELECT §COUNT_DISTINCT(tags) AS n FROM orders GROUP BY customer_id",
        "E203",
    ),
    (
        "earliest-n-flag-not-boolean",
        "SELECT §EARLIEST_BY_OFFSET(amount, 2, 'yes') AS e FROM orders GROUP BY customer_id",
        "E203",
    ),
    (
        "latest-flag-an-expression",
        "SELECT LATEST_BY_OFFSET(status, §status = 'x') AS l FROM orders GROUP BY customer_id",
        "E204",
    ),
    (
        "lambda-body-reads-a-non-grouped-column",
        "SELECT customer_id, TRANSFORM(COLLECT_LIST(amount), x => x + §order_id) AS t"
        " FROM orders GROUP BY customer_id",
        "E301",
    ),
    ("missing-from-target", "SELECT order_id FROM §WHERE amount > 1", "E001"),
    ("unclosed-with", "CREATE STREAM s2 (a INT) WITH (kafka_topic=§'x'", "E001"),
    ("emit-sometimes", "SELECT order_id FROM orders EMIT §SOMETIMES", "E001"),
]


def _split_marker(sql: str) -> tuple[str, int, int]:
    text = PRELUDE + sql
    offset = text.index("§")
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return text.replace("§", "", 1), line, column


@pytest.mark.parametrize(("name", "sql", "code"), CASES, ids=[c[0] for c in CASES])
def test_invalid_query_reports_code_and_position(name: str, sql: str, code: str) -> None:
    text, line, column = _split_marker(sql)
    with pytest.raises(SqlValidationError) as raised:
        analyze(text)
    first = raised.value.errors[0]
    assert (first.code.value, first.line, first.column) == (code, line, column), first.message


def test_there_are_at_least_forty_cases() -> None:
    assert len(CASES) >= 40


def test_prelude_alone_is_valid() -> None:
    program = analyze(PRELUDE)
    assert [s.name for s in program.statements] == [
        "orders",
        "customers",
        "shipments",
        "logins",
        "score",
    ]


def test_every_statement_error_is_reported_not_just_the_first() -> None:
    text = (
        PRELUDE
        + "SELECT nope FROM orders;\nSELECT order_id FROM nowhere;\nSELECT 1 AS x FROM orders"
    )
    with pytest.raises(SqlValidationError) as raised:
        analyze(text)
    assert [e.code.value for e in raised.value.errors] == ["E102", "E101"]


def test_did_you_mean_names_the_closest_candidate() -> None:
    with pytest.raises(SqlValidationError) as raised:
        analyze(PRELUDE + "SELECT amout FROM orders")
    assert raised.value.errors[0].message == (
        "unknown column 'amout' in orders (did you mean 'amount'?)"
    )
