"""Queries as ksqlDB and Flink SQL users write them validate unchanged."""

from __future__ import annotations

import pytest

from streamhouse_runtime.plan.explain import summary
from streamhouse_runtime.plan.planner import plan_statement
from streamhouse_runtime.sql.analyzer import analyze

pytestmark = pytest.mark.unit

KSQL_SOURCES = """
CREATE STREAM pageviews (viewtime BIGINT, userid VARCHAR KEY, pageid VARCHAR, regionid VARCHAR)
  WITH (KAFKA_TOPIC='pageviews', VALUE_FORMAT='DELIMITED', PARTITIONS=4);
CREATE TABLE users (userid VARCHAR PRIMARY KEY, registertime BIGINT, gender VARCHAR,
  regionid VARCHAR, address STRUCT<street VARCHAR, city VARCHAR>)
  WITH (KAFKA_TOPIC='users', VALUE_FORMAT='JSON');
"""

FLINK_SOURCES = """
CREATE STREAM Bid (bidtime TIMESTAMP, price DECIMAL(10, 2), item STRING, supplier_id STRING)
  WITH (kafka_topic = 'bids', value_format = 'JSON', timestamp = 'bidtime');
"""

KSQL_QUERIES = {
    "filter": "CREATE STREAM pageviews_female AS SELECT * FROM pageviews WHERE pageid LIKE "
    "'%_p' EMIT CHANGES;",
    "enrich": "CREATE STREAM enriched AS SELECT pv.userid AS userid, pv.pageid, u.gender, "
    "u.address->city AS city FROM pageviews pv LEFT JOIN users u ON pv.userid = u.userid "
    "EMIT CHANGES;",
    "tumbling": "CREATE TABLE views_per_region AS SELECT regionid, COUNT(*) AS numviews FROM "
    "pageviews WINDOW TUMBLING (SIZE 30 SECONDS, GRACE PERIOD 10 SECONDS) GROUP BY regionid "
    "EMIT CHANGES;",
    "hopping": "CREATE TABLE views_hopping AS SELECT regionid, COUNT(*) AS numviews, "
    "WINDOWSTART AS ws, WINDOWEND AS we FROM pageviews WINDOW HOPPING (SIZE 1 MINUTE, "
    "ADVANCE BY 10 SECONDS) GROUP BY regionid EMIT FINAL;",
    "session": "CREATE TABLE sessions AS SELECT userid, COUNT(*) AS n, "
    "LATEST_BY_OFFSET(pageid) AS last_page FROM pageviews WINDOW SESSION (60 SECONDS) "
    "GROUP BY userid;",
    "rekey": "CREATE STREAM by_page AS SELECT * FROM pageviews PARTITION BY pageid;",
    "distinct": "CREATE STREAM seen AS SELECT DISTINCT pageid FROM pageviews;",
    "having": "CREATE TABLE busy AS SELECT pageid, COUNT(*) AS n FROM pageviews "
    "GROUP BY pageid HAVING COUNT(*) > 10;",
}

FLINK_QUERIES = {
    "tvf-tumble": "INSERT INTO bid_totals SELECT window_start, window_end, SUM(price) AS total "
    "FROM TABLE(TUMBLE(TABLE Bid, DESCRIPTOR(bidtime), INTERVAL '10' MINUTES)) "
    "GROUP BY window_start, window_end;",
    "tvf-hop": "CREATE STREAM hop_totals AS SELECT window_start, window_end, SUM(price) AS "
    "total FROM TABLE(HOP(TABLE Bid, DESCRIPTOR(bidtime), INTERVAL '5' MINUTES, "
    "INTERVAL '10' MINUTES)) GROUP BY window_start, window_end;",
    "tvf-session": "CREATE STREAM supplier_sessions AS SELECT window_start, window_end, "
    "supplier_id, SUM(price) AS total FROM TABLE(SESSION(TABLE Bid PARTITION BY supplier_id, "
    "DESCRIPTOR(bidtime), INTERVAL '2' MINUTES)) GROUP BY window_start, window_end, supplier_id;",
    "group-window": "CREATE STREAM per_item AS SELECT item, TUMBLE_START(bidtime, INTERVAL '1' "
    "HOUR) AS hour_start, TUMBLE_END(bidtime, INTERVAL '1' HOUR) AS hour_end, MAX(price) AS "
    "top FROM Bid GROUP BY item, TUMBLE(bidtime, INTERVAL '1' HOUR);",
    "case-cast": "CREATE STREAM labelled AS SELECT item, CASE WHEN price > 100 THEN 'high' "
    "WHEN price BETWEEN 10 AND 100 THEN 'mid' ELSE 'low' END AS band, CAST(price AS DOUBLE) "
    "AS price_d, COALESCE(supplier_id, 'unknown') AS supplier FROM Bid "
    "WHERE item IS NOT NULL AND supplier_id IS DISTINCT FROM 'banned';",
}


@pytest.mark.parametrize("name", sorted(KSQL_QUERIES))
def test_ksqldb_queries_validate_and_plan(name: str) -> None:
    program = analyze(KSQL_SOURCES + KSQL_QUERIES[name])
    query = program.persistent_queries[-1]
    assert summary(plan_statement(query)).endswith("Sink")


@pytest.mark.parametrize("name", sorted(FLINK_QUERIES))
def test_flink_queries_validate_and_plan(name: str) -> None:
    target = (
        "CREATE STREAM bid_totals (window_start TIMESTAMP, window_end TIMESTAMP, "
        "total DECIMAL(38, 2)) WITH (kafka_topic = 'bid_totals');\n"
    )
    program = analyze(FLINK_SOURCES + target + FLINK_QUERIES[name])
    query = program.persistent_queries[-1]
    assert summary(plan_statement(query)).endswith("Sink")


def test_ksqldb_window_defaults_to_emit_changes_and_flink_to_final() -> None:
    ksql = analyze(KSQL_SOURCES + KSQL_QUERIES["tumbling"]).persistent_queries[-1].query
    flink = analyze(FLINK_SOURCES + FLINK_QUERIES["group-window"]).persistent_queries[-1].query
    assert ksql is not None and flink is not None
    assert (ksql.emit.value, flink.emit.value) == ("CHANGES", "FINAL")
    assert ksql.window is not None and ksql.window.grace_ms == 10_000


def test_struct_arrow_and_keys() -> None:
    query = analyze(KSQL_SOURCES + KSQL_QUERIES["enrich"]).persistent_queries[-1].query
    assert query is not None
    assert [(n, str(e.type)) for n, e in query.select] == [
        ("userid", "VARCHAR"),
        ("pageid", "VARCHAR"),
        ("gender", "VARCHAR"),
        ("city", "VARCHAR"),
    ]
