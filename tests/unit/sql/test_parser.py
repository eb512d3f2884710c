"""The parse layer: StreamHouse SQL text -> sqlglot trees (syntax only, no name resolution)."""

from __future__ import annotations

import logging

import pytest
from sqlglot import exp
from sqlglot.errors import ParseError

from streamhouse_runtime.sql.dialect import StreamHouse, parse_statements
from streamhouse_runtime.sql.nodes import (
    CreateAs,
    CreateFunction,
    CreateSource,
    DropSource,
    Emit,
    FieldAccess,
    GroupWindow,
    GroupWindowBound,
    InsertInto,
    KeyColumnConstraint,
    KsqlWindow,
    PartitionByClause,
    WindowTableFunction,
    Within,
)
from streamhouse_runtime.sql.pattern import PatternConcat, PatternQuantified, parse_pattern

pytestmark = pytest.mark.unit

# Every SQL example of the design doc (seed 000), verbatim but for trailing blanks.
DESIGN_DOC: dict[str, str] = {
    "orders": """
-- Define a stream (maps to existing topic)
CREATE STREAM orders (
  order_id BIGINT,
  customer_id VARCHAR,
  amount DECIMAL(10,2),
  status VARCHAR,
  created_at TIMESTAMP
) WITH (
  kafka_topic = 'orders',
  value_format = 'AVRO',
  key = 'order_id',
  timestamp = 'created_at'
);""",
    "customers": """
-- Define a table (changelog stream)
CREATE TABLE customers (
  customer_id VARCHAR PRIMARY KEY,
  name VARCHAR,
  email VARCHAR,
  tier VARCHAR
) WITH (
  kafka_topic = 'customers',
  value_format = 'AVRO'
);""",
    "high_value_orders": """
-- Simple filter
CREATE STREAM high_value_orders AS
SELECT * FROM orders
WHERE amount > 1000;""",
    "order_summary": """
-- Projection
CREATE STREAM order_summary AS
SELECT order_id, customer_id, amount, status
FROM orders;""",
    "orders_with_fee": """
-- Expression evaluation
CREATE STREAM orders_with_fee AS
SELECT
  order_id,
  amount,
  amount * 0.03 AS processing_fee,
  amount + (amount * 0.03) AS total
FROM orders;""",
    "order_counts": """
-- Count orders per 5-minute window
CREATE STREAM order_counts AS
SELECT
  TUMBLE_START(created_at, INTERVAL '5' MINUTE) AS window_start,
  COUNT(*) AS order_count,
  SUM(amount) AS total_amount
FROM orders
GROUP BY TUMBLE(created_at, INTERVAL '5' MINUTE);""",
    "avg_order_value": """
-- Average order value over last 10 minutes, updated every minute
CREATE STREAM avg_order_value AS
SELECT
  HOP_START(created_at, INTERVAL '1' MINUTE, INTERVAL '10' MINUTE) AS window_start,
  AVG(amount) AS avg_value
FROM orders
GROUP BY HOP(created_at, INTERVAL '1' MINUTE, INTERVAL '10' MINUTE);""",
    "user_sessions": """
-- Group user events into sessions (30-min inactivity gap)
CREATE STREAM user_sessions AS
SELECT
  user_id,
  SESSION_START(event_time, INTERVAL '30' MINUTE) AS session_start,
  COUNT(*) AS event_count,
  COLLECT_LIST(event_type) AS events
FROM user_events
GROUP BY user_id, SESSION(event_time, INTERVAL '30' MINUTE);""",
    "customer_totals": """
-- Running total per customer (stateful)
CREATE TABLE customer_totals AS
SELECT
  customer_id,
  COUNT(*) AS order_count,
  SUM(amount) AS total_spent,
  AVG(amount) AS avg_order_value
FROM orders
GROUP BY customer_id;""",
    "enriched_orders": """
-- Enrich orders with customer info
CREATE STREAM enriched_orders AS
SELECT
  o.order_id,
  o.amount,
  c.name AS customer_name,
  c.tier AS customer_tier
FROM orders o
LEFT JOIN customers c
  ON o.customer_id = c.customer_id;""",
    "order_shipments": """
-- Join orders with shipments within 1-hour window
CREATE STREAM order_shipments AS
SELECT
  o.order_id,
  o.amount,
  s.tracking_number,
  s.carrier
FROM orders o
INNER JOIN shipments s
  WITHIN INTERVAL '1' HOUR
  ON o.order_id = s.order_id;""",
    "full_order_details": """
-- Join orders, customers, and products
CREATE STREAM full_order_details AS
SELECT
  o.order_id,
  c.name AS customer_name,
  p.name AS product_name,
  o.quantity,
  p.price * o.quantity AS line_total
FROM orders o
JOIN customers c ON o.customer_id = c.customer_id
JOIN products p ON o.product_id = p.product_id;""",
    "detect_fraud": """
-- Register UDF
CREATE FUNCTION detect_fraud(amount DECIMAL, velocity INT)
  RETURNS BOOLEAN
  LANGUAGE RUST
  AS 'fraud_detection.so';""",
    "potential_fraud": """
-- Use UDF
CREATE STREAM potential_fraud AS
SELECT * FROM orders
WHERE detect_fraud(amount, order_velocity) = TRUE;""",
    "suspicious_logins": """
-- Detect 3 failed logins followed by success
CREATE STREAM suspicious_logins AS
SELECT * FROM login_events
MATCH_RECOGNIZE (
  PARTITION BY user_id
  ORDER BY event_time
  MEASURES
    FIRST(event_time) AS pattern_start,
    LAST(event_time) AS pattern_end
  PATTERN (FAIL{3,} SUCCESS)
  DEFINE
    FAIL AS status = 'failed',
    SUCCESS AS status = 'success'
);""",
    "anomalies": """
-- Detect outliers using moving average
CREATE STREAM anomalies AS
SELECT
  sensor_id,
  temperature,
  AVG(temperature) OVER (
    PARTITION BY sensor_id
    ORDER BY event_time
    RANGE INTERVAL '1' HOUR PRECEDING
  ) AS avg_temp
FROM sensor_readings
WHERE ABS(temperature - avg_temp) > 10;""",
}

# ksqlDB and Flink forms beyond the design doc.
EXTRA: dict[str, str] = {
    "ksql_key_column": """CREATE STREAM pageviews (
        viewtime BIGINT, user_id VARCHAR KEY, page_id VARCHAR NOT NULL, tags ARRAY<STRING>,
        props MAP<VARCHAR, INT>, address STRUCT<city VARCHAR, geo STRUCT<lat DOUBLE, lon DOUBLE>>,
        payload BYTES, d DATE, t TIME, ok BOOLEAN, n INTEGER, s STRING
    ) WITH (KAFKA_TOPIC='pageviews', VALUE_FORMAT='JSON', PARTITIONS=3, "Wrap"=true)""",
    "registry_schema": "CREATE STREAM s WITH (kafka_topic='s', value_format='AVRO')",
    "replace_if_not_exists": (
        "CREATE OR REPLACE TABLE IF NOT EXISTS t (k VARCHAR PRIMARY KEY, v INT) "
        "WITH (kafka_topic='t')"
    ),
    "create_as_with": (
        "CREATE OR REPLACE TABLE totals WITH (kafka_topic='totals', partitions=6) AS "
        "SELECT user_id, COUNT(*) AS n FROM pageviews GROUP BY user_id EMIT CHANGES"
    ),
    "create_as_if_not_exists": "CREATE STREAM IF NOT EXISTS copy AS SELECT * FROM pageviews",
    "create_as_union": "CREATE STREAM u AS SELECT a FROM x UNION ALL SELECT a FROM y",
    "tumbling": """SELECT region, COUNT(*) AS n FROM pageviews
        WINDOW TUMBLING (SIZE 5 MINUTES, RETENTION 7 DAYS, GRACE PERIOD 10 SECONDS)
        WHERE region <> 'x' GROUP BY region EMIT FINAL""",
    "hopping": """SELECT region, COUNT(*) FROM pageviews
        WINDOW HOPPING (SIZE 10 MINUTES, ADVANCE BY 1 MINUTE) GROUP BY region EMIT CHANGES""",
    "session": """SELECT user_id, COUNT(*) FROM pageviews
        WINDOW SESSION (30 MINUTES, GRACE PERIOD 1 HOUR) GROUP BY user_id EMIT CHANGES LIMIT 5""",
    "window_after_where": (
        "SELECT k, COUNT(*) FROM s WHERE x > 1 WINDOW TUMBLING (SIZE 100 MILLISECONDS) GROUP BY k"
    ),
    "named_window": (
        "SELECT a, SUM(b) OVER w FROM t WINDOW w AS (PARTITION BY a ORDER BY ts ROWS "
        "BETWEEN 10 PRECEDING AND CURRENT ROW)"
    ),
    "named_window_called_session": (
        "SELECT SUM(b) OVER session FROM t WINDOW session AS (ORDER BY ts)"
    ),
    "partition_by": (
        "CREATE STREAM rekeyed AS SELECT * FROM orders PARTITION BY customer_id, region"
    ),
    "within_before_after": """SELECT * FROM orders o
        LEFT OUTER JOIN shipments s WITHIN (1 HOUR, 2 HOURS) GRACE PERIOD 5 MINUTES
        ON o.id = s.id EMIT CHANGES""",
    "within_ksql": "SELECT * FROM a FULL OUTER JOIN b WITHIN 10 SECONDS ON a.id = b.id",
    "within_no_alias": "SELECT * FROM a RIGHT JOIN b WITHIN INTERVAL '2' DAY ON a.id = b.id",
    "flink_tumble_tvf": """SELECT window_start, window_end, COUNT(*) FROM TABLE(
        TUMBLE(TABLE orders, DESCRIPTOR(created_at), INTERVAL '5' MINUTE))
        GROUP BY window_start, window_end""",
    "flink_hop_tvf": """SELECT * FROM TABLE(
        HOP(TABLE t, DESCRIPTOR(ts), INTERVAL '1' MINUTE, INTERVAL '10' MINUTE)) AS w""",
    "flink_session_tvf": """SELECT * FROM TABLE(
        SESSION(TABLE t PARTITION BY user_id, DESCRIPTOR(ts), INTERVAL '30' MINUTE)) w""",
    "flink_session_tvf_multi_key": """SELECT * FROM TABLE(SESSION(
        TABLE t PARTITION BY (a, b), DESCRIPTOR(ts), INTERVAL '30' MINUTE))""",
    "flink_named_args": """SELECT * FROM TABLE(TUMBLE(
        DATA => TABLE orders, TIMECOL => DESCRIPTOR(created_at), SIZE => INTERVAL '5' MINUTES))""",
    "tvf_join": """SELECT * FROM TABLE(TUMBLE(TABLE a, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) x
        JOIN TABLE(TUMBLE(TABLE b, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) y
        ON x.k = y.k AND x.window_start = y.window_start""",
    "match_recognize_full": """SELECT * FROM ticks MATCH_RECOGNIZE (
        PARTITION BY symbol ORDER BY ts
        MEASURES A.price AS start_price, LAST(B.price) AS low, PREV(B.price, 1) AS prev,
          NEXT(price) AS nxt
        ONE ROW PER MATCH
        AFTER MATCH SKIP TO LAST B
        PATTERN (A B+? (C | D){1,3})
        WITHIN INTERVAL '10' MINUTE
        DEFINE B AS B.price < PREV(B.price), C AS price > A.price
    ) AS mr""",
    "match_recognize_skip_next": """SELECT * FROM t MATCH_RECOGNIZE (ORDER BY ts
        MEASURES FIRST(x) AS f AFTER MATCH SKIP TO NEXT ROW PATTERN (A*) DEFINE A AS x > 0)""",
    "match_recognize_skip_past": """SELECT * FROM t MATCH_RECOGNIZE (ORDER BY ts
        AFTER MATCH SKIP PAST LAST ROW PATTERN (A B) DEFINE A AS x > 0)""",
    "match_recognize_skip_first": """SELECT * FROM t MATCH_RECOGNIZE (ORDER BY ts
        AFTER MATCH SKIP TO FIRST B PATTERN (A B) DEFINE B AS x > 0)""",
    "over_frames": """SELECT
        AVG(t) OVER (PARTITION BY s ORDER BY e RANGE BETWEEN INTERVAL '1' HOUR PRECEDING
          AND CURRENT ROW) AS a,
        SUM(x) OVER (ORDER BY e ROWS BETWEEN 10 PRECEDING AND CURRENT ROW) AS b,
        COUNT(*) OVER (ORDER BY e ROWS UNBOUNDED PRECEDING) AS c
        FROM s""",
    "expressions": """SELECT
        CASE WHEN a > 1 THEN 'x' WHEN a IS NULL THEN NULL ELSE 'y' END AS c,
        CAST(a AS BIGINT), CAST(s AS STRUCT<a INT, b ARRAY<MAP<STRING, DECIMAL(5,2)>>>),
        a IN (1, 2), a NOT IN (3), b BETWEEN 1 AND 2, s LIKE 'a%', s NOT LIKE 'b',
        x IS NOT NULL, x IS DISTINCT FROM y, x IS NOT DISTINCT FROM y,
        (a + b) * c / d - e % f, -a, a.b.c, addr->city, addr->geo->lat, o.*,
        COALESCE(a, b), UPPER(name), NOT ok AND (p OR q)
        FROM t o""",
    "keywords_as_columns": """SELECT timestamp, key, window_start, window_end, size, status,
        name, value, emit, within, advance, grace, retention, stream, session, hop, tumble
        FROM t WHERE key = 'k' AND size > 1""",
    "insert_into": "INSERT INTO high_value SELECT * FROM orders WHERE amount > 1000",
    "insert_into_cte": "INSERT INTO s WITH x AS (SELECT a FROM t) SELECT a FROM x",
    "drop_stream": "DROP STREAM IF EXISTS orders",
    "drop_table": "DROP TABLE customers",
    "create_function_python": (
        "CREATE OR REPLACE FUNCTION score(x DOUBLE, tags ARRAY<STRING>) "
        "RETURNS DOUBLE LANGUAGE PYTHON AS 'udfs.scoring:score'"
    ),
    "create_function_flink_order": ("CREATE FUNCTION f() AS 'm:c' LANGUAGE python RETURNS VARCHAR"),
    "transient_query": "SELECT * FROM orders WHERE status = 'NEW' EMIT CHANGES LIMIT 3",
    "ksql_lambdas_and_constructors": (
        "SELECT TRANSFORM(tags, x => UPPER(x)), FILTER(props, (k, v) => v > 1), "
        "REDUCE(tags, '', (s, x) => s || x), TRANSFORM(props, (k, v) => k, (k, v) => v + 1), "
        "ARRAY[1, 2], MAP('a' := 1, 'b' := 2, 'c' := 3), STRUCT(n := 1, s := 'x') "
        "FROM pageviews EMIT CHANGES"
    ),
}

ALL_STATEMENTS = {**DESIGN_DOC, **EXTRA}


def parse_one(sql: str) -> exp.Expression:
    statements = parse_statements(sql)
    assert len(statements) == 1, statements
    return statements[0]


def select_of(statement: exp.Expression) -> exp.Select:
    query = (
        statement.args["expression"] if isinstance(statement, (CreateAs, InsertInto)) else statement
    )
    assert isinstance(query, exp.Select), type(query)
    return query


def interval(amount: str, unit: str) -> exp.Interval:
    return exp.Interval(this=exp.Literal.string(amount), unit=exp.var(unit))


def parse_error(sql: str) -> dict[str, object]:
    with pytest.raises(ParseError) as caught:
        parse_statements(sql)
    assert caught.value.errors, caught.value
    error = caught.value.errors[0]
    for key in ("line", "col", "description", "highlight"):
        assert key in error
    return error


# -- structure, every statement ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ALL_STATEMENTS))
def test_round_trip(name: str) -> None:
    tree = parse_one(ALL_STATEMENTS[name])
    rendered = tree.sql(dialect=StreamHouse)
    again = parse_one(rendered)
    assert again == tree, rendered
    # Rendering is a fixed point, so what the lead logs is stable.
    assert again.sql(dialect=StreamHouse) == rendered


@pytest.mark.parametrize("name", sorted(ALL_STATEMENTS))
def test_no_command_fallback(name: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sqlglot"):
        tree = parse_one(ALL_STATEMENTS[name])
    assert not list(tree.find_all(exp.Command))
    assert isinstance(
        tree, (CreateSource, CreateAs, InsertInto, DropSource, CreateFunction, exp.Query)
    )
    assert not [r for r in caplog.records if "unsupported syntax" in r.getMessage()]


def test_whole_design_doc_as_one_script() -> None:
    script = "\n".join(DESIGN_DOC.values())
    statements = parse_statements(script)
    assert len(statements) == len(DESIGN_DOC)
    assert not any(list(s.find_all(exp.Command)) for s in statements)
    names = [s.this.name for s in statements]
    assert names == list(DESIGN_DOC)


# -- design doc statements -----------------------------------------------------------------------


def test_create_stream_orders() -> None:
    tree = parse_one(DESIGN_DOC["orders"])
    assert isinstance(tree, CreateSource)
    assert tree.this == exp.to_identifier("orders")
    assert tree.args["kind"] == "STREAM"
    assert tree.args["replace"] is False and tree.args["exists"] is False
    columns = tree.args["columns"]
    assert [c.name for c in columns] == [
        "order_id",
        "customer_id",
        "amount",
        "status",
        "created_at",
    ]
    assert all(isinstance(c, exp.ColumnDef) for c in columns)
    assert columns[0].args["kind"].this == exp.DType.BIGINT
    assert columns[2].args["kind"] == exp.DataType.build("DECIMAL(10,2)")
    assert columns[4].args["kind"].this == exp.DType.TIMESTAMP
    props = {p.name: p.args["value"] for p in tree.args["properties"]}
    assert props == {
        "kafka_topic": exp.Literal.string("orders"),
        "value_format": exp.Literal.string("AVRO"),
        "key": exp.Literal.string("order_id"),
        "timestamp": exp.Literal.string("created_at"),
    }
    assert all(isinstance(p, exp.Property) for p in tree.args["properties"])


def test_create_table_customers_primary_key() -> None:
    tree = parse_one(DESIGN_DOC["customers"])
    assert isinstance(tree, CreateSource)
    assert tree.args["kind"] == "TABLE"
    first = tree.args["columns"][0]
    assert [c.args["kind"] for c in first.args["constraints"]] == [exp.PrimaryKeyColumnConstraint()]
    assert not tree.args["columns"][1].args.get("constraints")


@pytest.mark.parametrize(
    "name", ["high_value_orders", "order_summary", "orders_with_fee", "potential_fraud"]
)
def test_simple_create_as(name: str) -> None:
    tree = parse_one(DESIGN_DOC[name])
    assert isinstance(tree, CreateAs)
    assert tree.name == name
    assert tree.args["kind"] == "STREAM"
    assert tree.args["properties"] == []
    assert select_of(tree).args["from_"].this.name in {"orders"}


def test_tumble_group_window_and_bound() -> None:
    select = select_of(parse_one(DESIGN_DOC["order_counts"]))
    (window,) = select.args["group"].expressions
    assert isinstance(window, GroupWindow)
    assert window.args["kind"] == "TUMBLE"
    assert window.this == exp.column("created_at")
    assert window.args["size"] == interval("5", "MINUTE")
    bound = select.expressions[0].this
    assert isinstance(bound, GroupWindowBound)
    assert (bound.args["kind"], bound.args["bound"]) == ("TUMBLE", "START")
    assert bound.args["size"] == interval("5", "MINUTE")
    assert select.expressions[0].alias == "window_start"


def test_hop_keeps_flink_argument_roles() -> None:
    select = select_of(parse_one(DESIGN_DOC["avg_order_value"]))
    (window,) = select.args["group"].expressions
    assert isinstance(window, GroupWindow) and window.args["kind"] == "HOP"
    assert window.args["slide"] == interval("1", "MINUTE")
    assert window.args["size"] == interval("10", "MINUTE")
    bound = select.expressions[0].this
    assert isinstance(bound, GroupWindowBound)
    assert bound.args["slide"] == interval("1", "MINUTE")
    assert bound.args["size"] == interval("10", "MINUTE")


def test_session_group_window_mixed_with_keys() -> None:
    select = select_of(parse_one(DESIGN_DOC["user_sessions"]))
    key, window = select.args["group"].expressions
    assert key == exp.column("user_id")
    assert isinstance(window, GroupWindow) and window.args["kind"] == "SESSION"
    assert window.this == exp.column("event_time")
    assert window.args["gap"] == interval("30", "MINUTE")
    bound = select.expressions[1].this
    assert isinstance(bound, GroupWindowBound)
    assert (bound.args["kind"], bound.args["bound"]) == ("SESSION", "START")
    assert isinstance(select.expressions[3].this, exp.Anonymous)  # COLLECT_LIST: a plain call


def test_stateful_aggregation_table() -> None:
    tree = parse_one(DESIGN_DOC["customer_totals"])
    assert isinstance(tree, CreateAs) and tree.args["kind"] == "TABLE"
    assert select_of(tree).args["group"].expressions == [exp.column("customer_id")]


def test_left_join() -> None:
    select = select_of(parse_one(DESIGN_DOC["enriched_orders"]))
    (join,) = select.args["joins"]
    assert join.side == "LEFT"
    assert join.this.alias == "c"
    assert join.args.get("within") is None
    assert join.args["on"].sql() == "o.customer_id = c.customer_id"


def test_windowed_join_within() -> None:
    select = select_of(parse_one(DESIGN_DOC["order_shipments"]))
    (join,) = select.args["joins"]
    assert join.kind == "INNER"
    assert join.this.name == "shipments" and join.this.alias == "s"
    within = join.args["within"]
    assert isinstance(within, Within)
    assert within.this == interval("1", "HOUR")
    assert within.args.get("before") is None and within.args.get("after") is None
    assert join.args["on"].sql() == "o.order_id = s.order_id"


def test_multi_way_join() -> None:
    select = select_of(parse_one(DESIGN_DOC["full_order_details"]))
    joins = select.args["joins"]
    assert [j.this.name for j in joins] == ["customers", "products"]
    assert all(not j.side and not j.kind for j in joins)
    assert all(j.args["on"] is not None for j in joins)


def test_create_function_any_language_parses() -> None:
    tree = parse_one(DESIGN_DOC["detect_fraud"])
    assert isinstance(tree, CreateFunction)
    assert tree.name == "detect_fraud"
    assert [p.name for p in tree.args["params"]] == ["amount", "velocity"]
    assert tree.args["params"][0].args["kind"].this == exp.DType.DECIMAL
    assert tree.args["params"][1].args["kind"].this == exp.DType.INT
    assert tree.args["returns"].this == exp.DType.BOOLEAN
    assert tree.args["language"] == "RUST"
    assert tree.args["definition"] == exp.Literal.string("fraud_detection.so")


def test_match_recognize_design_doc() -> None:
    select = select_of(parse_one(DESIGN_DOC["suspicious_logins"]))
    match = select.args["match"]
    assert isinstance(match, exp.MatchRecognize)
    assert match.args["partition_by"] == [exp.column("user_id")]
    assert match.args["order"].expressions[0].this == exp.column("event_time")
    measures = match.args["measures"]
    assert [m.this.alias for m in measures] == ["pattern_start", "pattern_end"]
    assert isinstance(measures[0].this.this, exp.First)
    assert isinstance(measures[1].this.this, exp.Last)
    assert match.args["pattern"].name == "FAIL{3,} SUCCESS"
    assert parse_pattern(match.args["pattern"].name) == PatternConcat(
        (
            PatternQuantified(parse_pattern("FAIL"), 3, None),
            parse_pattern("SUCCESS"),
        )
    )
    defines = {d.alias: d.this.sql() for d in match.args["define"]}
    assert defines == {"FAIL": "status = 'failed'", "SUCCESS": "status = 'success'"}
    assert match.args.get("within") is None


def test_over_range_interval_preceding() -> None:
    select = select_of(parse_one(DESIGN_DOC["anomalies"]))
    window = select.expressions[2].this
    assert isinstance(window, exp.Window)
    assert isinstance(window.this, exp.Avg)
    spec = window.args["spec"]
    assert spec.args["kind"] == "RANGE"
    assert spec.args["start"] == interval("1", "HOUR")
    assert spec.args["start_side"] == "PRECEDING"
    assert spec.args.get("end") is None
    assert "RANGE INTERVAL '1' HOUR PRECEDING" in select.sql(dialect=StreamHouse)


# -- ksqlDB forms --------------------------------------------------------------------------------


def test_ksql_key_column_types_and_properties() -> None:
    tree = parse_one(EXTRA["ksql_key_column"])
    assert isinstance(tree, CreateSource)
    columns = {c.name: c for c in tree.args["columns"]}
    assert [c.args["kind"] for c in columns["user_id"].args["constraints"]] == [
        KeyColumnConstraint()
    ]
    assert [c.args["kind"] for c in columns["page_id"].args["constraints"]] == [
        exp.NotNullColumnConstraint()
    ]
    types = {name: c.args["kind"] for name, c in columns.items()}
    assert types["tags"] == exp.DataType.build("ARRAY<TEXT>")
    assert types["props"] == exp.DataType.build("MAP<VARCHAR, INT>")
    address = types["address"]
    assert address.this == exp.DType.STRUCT
    assert [f.name for f in address.expressions] == ["city", "geo"]
    assert address.expressions[1].args["kind"].this == exp.DType.STRUCT
    assert types["payload"].this == exp.DType.VARBINARY
    assert types["s"].this == exp.DType.TEXT
    assert types["n"].this == exp.DType.INT
    props = {p.name: p.args["value"] for p in tree.args["properties"]}
    assert props == {
        "kafka_topic": exp.Literal.string("pageviews"),
        "value_format": exp.Literal.string("JSON"),
        "partitions": exp.Literal.number(3),
        "wrap": exp.true(),
    }


def test_create_source_without_columns() -> None:
    tree = parse_one(EXTRA["registry_schema"])
    assert isinstance(tree, CreateSource)
    assert tree.args["columns"] == []
    assert len(tree.args["properties"]) == 2


def test_or_replace_and_if_not_exists() -> None:
    tree = parse_one(EXTRA["replace_if_not_exists"])
    assert isinstance(tree, CreateSource)
    assert tree.args["replace"] is True and tree.args["exists"] is True
    tree = parse_one(EXTRA["create_as_if_not_exists"])
    assert isinstance(tree, CreateAs)
    assert tree.args["replace"] is False and tree.args["exists"] is True


def test_create_as_with_properties_and_emit() -> None:
    tree = parse_one(EXTRA["create_as_with"])
    assert isinstance(tree, CreateAs)
    assert tree.args["kind"] == "TABLE" and tree.args["replace"] is True
    assert [p.name for p in tree.args["properties"]] == ["kafka_topic", "partitions"]
    assert select_of(tree).args["emit"] == Emit(this="CHANGES")


def test_create_as_union() -> None:
    tree = parse_one(EXTRA["create_as_union"])
    assert isinstance(tree.args["expression"], exp.Union)


def test_tumbling_window() -> None:
    select = select_of(parse_one(EXTRA["tumbling"]))
    window = select.args["ksql_window"]
    assert isinstance(window, KsqlWindow)
    assert window.args["kind"] == "TUMBLING"
    assert window.args["size"] == interval("5", "MINUTE")
    assert window.args["retention"] == interval("7", "DAY")
    assert window.args["grace"] == interval("10", "SECOND")
    assert select.args["where"] is not None and select.args["group"] is not None
    assert select.args["emit"] == Emit(this="FINAL")


def test_hopping_window() -> None:
    window = select_of(parse_one(EXTRA["hopping"])).args["ksql_window"]
    assert window.args["kind"] == "HOPPING"
    assert window.args["size"] == interval("10", "MINUTE")
    assert window.args["advance"] == interval("1", "MINUTE")


def test_session_window_and_limit_after_emit() -> None:
    select = select_of(parse_one(EXTRA["session"]))
    window = select.args["ksql_window"]
    assert window.args["kind"] == "SESSION"
    assert window.args["gap"] == interval("30", "MINUTE")
    assert window.args["grace"] == interval("1", "HOUR")
    assert window.args.get("size") is None
    assert select.args["emit"] == Emit(this="CHANGES")
    assert select.args["limit"].expression == exp.Literal.number(5)
    assert select.sql(dialect=StreamHouse).endswith("EMIT CHANGES LIMIT 5")


def test_ksql_window_renders_before_where() -> None:
    select = select_of(parse_one(EXTRA["window_after_where"]))
    assert select.args["ksql_window"].args["size"] == interval("100", "MILLISECOND")
    assert select.sql(dialect=StreamHouse) == (
        "SELECT k, COUNT(*) FROM s WINDOW TUMBLING (SIZE 100 MILLISECOND) WHERE x > 1 GROUP BY k"
    )


@pytest.mark.parametrize("name", ["named_window", "named_window_called_session"])
def test_sql_named_windows_still_work(name: str) -> None:
    select = select_of(parse_one(EXTRA[name]))
    assert select.args.get("ksql_window") is None
    (named,) = select.args["windows"]
    assert isinstance(named, exp.Window)


def test_partition_by_rekeying() -> None:
    select = select_of(parse_one(EXTRA["partition_by"]))
    clause = select.args["partition_by"]
    assert isinstance(clause, PartitionByClause)
    assert clause.expressions == [exp.column("customer_id"), exp.column("region")]


def test_within_before_after_and_grace() -> None:
    select = select_of(parse_one(EXTRA["within_before_after"]))
    (join,) = select.args["joins"]
    assert (join.side, join.kind) == ("LEFT", "OUTER")
    within = join.args["within"]
    assert within.this is None
    assert within.args["before"] == interval("1", "HOUR")
    assert within.args["after"] == interval("2", "HOUR")
    assert within.args["grace"] == interval("5", "MINUTE")
    assert select.args["emit"] == Emit(this="CHANGES")


def test_ksql_duration_equals_sql_interval() -> None:
    ksql = select_of(parse_one("SELECT * FROM a JOIN b WITHIN 1 HOUR ON a.k = b.k"))
    sql = select_of(parse_one("SELECT * FROM a JOIN b WITHIN INTERVAL '1' HOURS ON a.k = b.k"))
    assert ksql == sql
    full = select_of(parse_one(EXTRA["within_ksql"]))
    assert full.args["joins"][0].args["within"].this == interval("10", "SECOND")
    no_alias = select_of(parse_one(EXTRA["within_no_alias"]))
    join = no_alias.args["joins"][0]
    assert join.this.alias == ""
    assert join.args["within"].this == interval("2", "DAY")


def test_struct_field_arrow() -> None:
    select = select_of(parse_one(EXTRA["expressions"]))
    arrows = [e for e in select.expressions if isinstance(e, FieldAccess)]
    assert [a.sql(dialect=StreamHouse) for a in arrows] == ["addr->city", "addr->geo->lat"]
    nested = arrows[1]
    assert nested.expression == exp.to_identifier("lat")
    assert isinstance(nested.this, FieldAccess) and nested.this.this == exp.column("addr")
    assert select.find(exp.Column, bfs=False) is not None


def test_expression_shapes() -> None:
    select = select_of(parse_one(EXTRA["expressions"]))
    kinds = [type(e) for e in select.expressions]
    assert kinds[:3] == [exp.Alias, exp.Cast, exp.Cast]
    for node_type in (
        exp.Case,
        exp.In,
        exp.Between,
        exp.Like,
        exp.Is,
        exp.NullSafeEQ,
        exp.NullSafeNEQ,
        exp.Mod,
        exp.Neg,
        exp.Coalesce,
        exp.Upper,
    ):
        assert select.find(node_type) is not None, node_type
    dotted = next(e for e in select.expressions if isinstance(e, exp.Column) and e.name == "c")
    assert (dotted.text("db"), dotted.text("table")) == ("a", "b")
    star = next(e for e in select.expressions if isinstance(e, exp.Column) and e.is_star)
    assert star.table == "o"


def test_keywords_usable_as_column_names() -> None:
    select = select_of(parse_one(EXTRA["keywords_as_columns"]))
    names = [e.name for e in select.expressions]
    assert names == [
        "timestamp", "key", "window_start", "window_end", "size", "status", "name", "value",
        "emit", "within", "advance", "grace", "retention", "stream", "session", "hop", "tumble",
    ]  # fmt: skip
    assert all(isinstance(e, exp.Column) for e in select.expressions)


def test_keywords_usable_as_source_column_names() -> None:
    tree = parse_one(
        "CREATE STREAM s (key VARCHAR KEY, timestamp BIGINT, value STRING, size INT, "
        "window_start BIGINT, emit INT, stream INT, status VARCHAR) WITH (kafka_topic='s')"
    )
    assert [c.name for c in tree.args["columns"]] == [
        "key", "timestamp", "value", "size", "window_start", "emit", "stream", "status",
    ]  # fmt: skip


# -- Flink windowing TVFs ------------------------------------------------------------------------


def test_tumble_tvf() -> None:
    select = select_of(parse_one(EXTRA["flink_tumble_tvf"]))
    tvf = select.args["from_"].this
    assert isinstance(tvf, WindowTableFunction)
    assert tvf.args["kind"] == "TUMBLE"
    assert tvf.this == exp.to_table("orders")
    assert tvf.args["time_column"] == exp.column("created_at")
    assert tvf.args["size"] == interval("5", "MINUTE")
    assert tvf.args["partition_by"] == []
    assert tvf.args.get("alias") is None
    assert select.args["group"].expressions == [
        exp.column("window_start"),
        exp.column("window_end"),
    ]


def test_hop_tvf_with_alias() -> None:
    tvf = select_of(parse_one(EXTRA["flink_hop_tvf"])).args["from_"].this
    assert isinstance(tvf, WindowTableFunction)
    assert tvf.args["kind"] == "HOP"
    assert tvf.args["slide"] == interval("1", "MINUTE")
    assert tvf.args["size"] == interval("10", "MINUTE")
    assert isinstance(tvf.args["alias"], exp.TableAlias) and tvf.alias == "w"


def test_session_tvf_partition_by() -> None:
    tvf = select_of(parse_one(EXTRA["flink_session_tvf"])).args["from_"].this
    assert tvf.args["kind"] == "SESSION"
    assert tvf.args["partition_by"] == [exp.column("user_id")]
    assert tvf.args["gap"] == interval("30", "MINUTE")
    assert tvf.alias == "w"
    multi = select_of(parse_one(EXTRA["flink_session_tvf_multi_key"])).args["from_"].this
    assert multi.args["partition_by"] == [exp.column("a"), exp.column("b")]


def test_tvf_named_arguments_equal_positional() -> None:
    named = select_of(parse_one(EXTRA["flink_named_args"])).args["from_"].this
    positional = select_of(parse_one(EXTRA["flink_tumble_tvf"])).args["from_"].this
    assert named == positional


def test_tvf_in_join() -> None:
    select = select_of(parse_one(EXTRA["tvf_join"]))
    assert isinstance(select.args["from_"].this, WindowTableFunction)
    (join,) = select.args["joins"]
    assert isinstance(join.this, WindowTableFunction) and join.this.alias == "y"


# -- MATCH_RECOGNIZE and OVER --------------------------------------------------------------------


def test_match_recognize_all_clauses() -> None:
    match = select_of(parse_one(EXTRA["match_recognize_full"])).args["match"]
    assert match.args["rows"].name == "ONE ROW PER MATCH"
    assert match.args["after"].name == "AFTER MATCH SKIP TO LAST B"
    assert match.args["pattern"].name == "A B+? (C | D){1,3}"
    assert match.args["within"] == interval("10", "MINUTE")
    assert match.args["alias"].name == "mr"
    measures = [m.this.this for m in match.args["measures"]]
    assert measures[0] == exp.column("price", table="A")
    prev = measures[2]
    assert isinstance(prev, exp.Anonymous) and prev.name.upper() == "PREV"
    assert prev.expressions == [exp.column("price", table="B"), exp.Literal.number(1)]
    assert [d.alias for d in match.args["define"]] == ["B", "C"]


@pytest.mark.parametrize(
    ("name", "after"),
    [
        ("match_recognize_skip_next", "AFTER MATCH SKIP TO NEXT ROW"),
        ("match_recognize_skip_past", "AFTER MATCH SKIP PAST LAST ROW"),
        ("match_recognize_skip_first", "AFTER MATCH SKIP TO FIRST B"),
    ],
)
def test_match_recognize_after_match(name: str, after: str) -> None:
    match = select_of(parse_one(EXTRA[name])).args["match"]
    assert match.args["after"].name == after


def test_over_frames() -> None:
    select = select_of(parse_one(EXTRA["over_frames"]))
    specs = [e.this.args["spec"] for e in select.expressions]
    assert specs[0].args["start"] == interval("1", "HOUR")
    assert specs[0].args["end"] == "CURRENT ROW"
    assert specs[1].args["kind"] == "ROWS"
    assert specs[1].args["start"] == exp.Literal.number(10)
    assert (specs[2].args["start"], specs[2].args["start_side"]) == ("UNBOUNDED", "PRECEDING")


# -- other statements ----------------------------------------------------------------------------


def test_insert_into() -> None:
    tree = parse_one(EXTRA["insert_into"])
    assert isinstance(tree, InsertInto)
    assert tree.this == exp.to_identifier("high_value")
    assert isinstance(tree.expression, exp.Select)
    assert isinstance(parse_one(EXTRA["insert_into_cte"]).expression, exp.Select)


def test_drop() -> None:
    stream = parse_one(EXTRA["drop_stream"])
    assert isinstance(stream, DropSource)
    assert (stream.name, stream.args["kind"], stream.args["exists"]) == ("orders", "STREAM", True)
    table = parse_one(EXTRA["drop_table"])
    assert (table.name, table.args["kind"], table.args["exists"]) == ("customers", "TABLE", False)


def test_create_function_variants() -> None:
    tree = parse_one(EXTRA["create_function_python"])
    assert isinstance(tree, CreateFunction)
    assert tree.args["replace"] is True
    assert tree.args["language"] == "PYTHON"
    assert tree.args["params"][1].args["kind"] == exp.DataType.build("ARRAY<TEXT>")
    flink = parse_one(EXTRA["create_function_flink_order"])
    assert flink.args["params"] == []
    assert flink.args["language"] == "PYTHON"
    assert flink.args["returns"].this == exp.DType.VARCHAR


def test_multiple_statements_comments_and_semicolons() -> None:
    statements = parse_statements(
        """
        /* block comment */ DROP STREAM a;
        -- line comment
        SELECT 1 AS one; ;
        SELECT 2 AS two -- trailing comment without a semicolon
        """
    )
    assert [type(s) for s in statements] == [DropSource, exp.Select, exp.Select]
    assert parse_statements("SELECT 1; -- done") == [parse_one("SELECT 1")]
    assert parse_statements("") == []
    assert parse_statements("  -- nothing\n") == []


def test_plural_interval_units_are_normalised() -> None:
    select = select_of(parse_one("SELECT INTERVAL '5' MINUTES, INTERVAL '2 hours' FROM t"))
    assert select.expressions == [interval("5", "MINUTE"), interval("2", "HOUR")]


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "line", "col", "highlight", "fragment"),
    [
        # Missing comma (hence missing ')') inside WITH: points at the next property name.
        (
            "CREATE STREAM s (a INT)\nWITH (kafka_topic='s' value_format='JSON')",
            2,
            34,
            "value_format",
            "Expecting )",
        ),
        # Unclosed WITH at the end of input: points at the last token.
        ("CREATE STREAM s (a INT) WITH (kafka_topic='s'", 1, 45, "'s'", "Expecting )"),
        (
            "SELECT a, COUNT(*) FROM t\n  WINDOW TUMBLING (SIZE) GROUP BY a",
            2,
            24,
            ")",
            "Expected a duration",
        ),
        ("SELECT * FROM t EMIT SOMETIMES", 1, 30, "SOMETIMES", "CHANGES or FINAL"),
        ("SELECT * FROM a JOIN b WITHIN ON a.k = b.k", 1, 32, "ON", "Expected a duration"),
        ("SELECT * FROM a JOIN b WITHIN 5 FORTNIGHTS ON a.k = b.k", 1, 42, "FORTNIGHTS", "unit"),
        ("CREATE STREAM (a INT) WITH (kafka_topic='x')", 1, 15, "(", "stream name"),
        ("CREATE VIEW v AS SELECT 1", 1, 11, "VIEW", "STREAM, TABLE or FUNCTION"),
        ("UPDATE t SET a = 1", 1, 6, "UPDATE", "Expected CREATE, DROP"),
        ("SELECT 1;\nSHOW TABLES", 2, 4, "SHOW", "Expected CREATE, DROP"),
        ("CREATE STREAM s (a) WITH (x='y')", 1, 19, ")", "type for column"),
        ("CREATE STREAM s (a INT) WITH (x=y)", 1, 33, "y", "value for x"),
        ("CREATE STREAM s (a INT) WITH (x 'y')", 1, 35, "'y'", "'='"),
        ("SELECT * FROM t GROUP BY TUMBLE(ts, 5)", 1, 37, "5", "INTERVAL argument"),
        ("SELECT * FROM t GROUP BY HOP(ts, INTERVAL '1' MINUTE)", 1, 28, "HOP", "3 arguments"),
        (
            "SELECT * FROM t WINDOW HOPPING (SIZE 1 MINUTE) GROUP BY a",
            1,
            30,
            "HOPPING",
            "requires ADVANCE BY",
        ),
        (
            "SELECT * FROM t WINDOW TUMBLING (SIZE 1 MINUTE, SIZE 2 MINUTES) GROUP BY a",
            1,
            52,
            "SIZE",
            "Duplicate SIZE",
        ),
        (
            "SELECT * FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts)))",
            1,
            26,
            "TUMBLE",
            "Missing SIZE",
        ),
        ("CREATE FUNCTION f(x INT) RETURNS INT AS 'm:f'", 1, 45, "'m:f'", "LANGUAGE"),
        ("SELECT a->1 FROM t", 1, 11, "1", "field name"),
        ("DROP VIEW v", 1, 9, "VIEW", "STREAM or TABLE"),
        ("INSERT INTO s VALUES (1)", 1, 20, "VALUES", "SELECT query"),
        ("INSERT INTO s", 1, 13, "s", "SELECT query"),
        # Nothing but LIMIT may follow EMIT.
        ("SELECT * FROM t EMIT CHANGES WHERE x > 1", 1, 34, "WHERE", "Unexpected token"),
        ("SELECT * FROM t EMIT", 1, 20, "EMIT", "CHANGES or FINAL"),
        ("SELECT * FROM t WINDOW TUMBLING SIZE 5 MINUTES", 1, 36, "SIZE", "Expecting ("),
    ],
)
def test_syntax_errors_point_at_the_offending_token(
    sql: str, line: int, col: int, highlight: str, fragment: str
) -> None:
    error = parse_error(sql)
    assert (error["line"], error["col"], error["highlight"]) == (line, col, highlight)
    assert fragment in str(error["description"])


def test_bad_pattern_points_inside_the_pattern() -> None:
    sql = (
        "SELECT * FROM t MATCH_RECOGNIZE (\n  ORDER BY ts\n  PATTERN (A{3,1} B)\n"
        "  DEFINE A AS x > 0)"
    )
    error = parse_error(sql)
    assert (error["line"], error["col"], error["highlight"]) == (3, 13, "{")
    assert "max < min" in str(error["description"])
    error = parse_error("SELECT * FROM t MATCH_RECOGNIZE (ORDER BY ts PATTERN () DEFINE A AS x)")
    assert "empty pattern" in str(error["description"])
    error = parse_error("SELECT * FROM t MATCH_RECOGNIZE (ORDER BY ts PATTERN (A (B)")
    assert "Expecting ) to close PATTERN" in str(error["description"])


def test_unterminated_string_is_a_parse_error_with_position() -> None:
    error = parse_error("SELECT 1;\nSELECT 'abc FROM t")
    assert (error["line"], error["col"], error["highlight"]) == (2, 8, "'")
    error = parse_error("SELECT 1 /* never closed")
    assert (error["line"], error["col"]) == (1, 10)
