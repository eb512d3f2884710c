"""The stage graph built from a plan: stages end at repartition topics, join stages have one
port per input and are co-partitioned, edges say which stage feeds which port."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamhouse_runtime.cli import main
from streamhouse_runtime.exec.topology import NotExecutable, split_stages
from streamhouse_runtime.plan.nodes import (
    Filter,
    Join,
    MatchRecognize,
    OverAggregate,
    Project,
    Repartition,
    Sink,
    Source,
)
from streamhouse_runtime.plan.planner import plan_statement
from streamhouse_runtime.plan.stages import Edge, StageGraph, stage_graph
from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.sql.catalog import SourceKind

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
DESIGN = REPO / "examples" / "sql" / "design.sql"

DDL = """
CREATE STREAM orders (order_id BIGINT KEY, customer_id VARCHAR, product_id VARCHAR,
  amount DOUBLE, quantity INT) WITH (kafka_topic='orders', value_format='JSON');
CREATE TABLE customers (customer_id VARCHAR PRIMARY KEY, name VARCHAR, tier VARCHAR)
  WITH (kafka_topic='customers', value_format='JSON');
CREATE TABLE products (product_id VARCHAR PRIMARY KEY, name VARCHAR, price DOUBLE)
  WITH (kafka_topic='products', value_format='JSON');
CREATE STREAM shipments (order_id BIGINT, carrier VARCHAR)
  WITH (kafka_topic='shipments', value_format='JSON');
"""


def graph_of(query: str) -> tuple[StageGraph, Sink]:
    program = analyze(DDL + query)
    (statement,) = program.persistent_queries
    plan = plan_statement(statement)
    assert isinstance(plan, Sink)
    return stage_graph(plan), plan


def test_stream_table_join_is_one_stage_with_a_repartitioned_stream_port_and_a_table_port() -> None:
    graph, _ = graph_of(
        "CREATE STREAM enriched AS SELECT o.order_id, c.name FROM orders o "
        "LEFT JOIN customers c ON o.customer_id = c.customer_id;"
    )
    first, join = graph.stages
    assert isinstance(first.ports[0].reads, Source) and first.ports[0].topic == "orders"
    assert isinstance(first.output, Repartition)
    assert first.output.topic_suffix == "join-1-left"
    stream, table = join.ports
    assert (stream.kind, stream.internal, stream.topic) == (
        SourceKind.STREAM,
        True,
        "<query>-join-1-left",
    )
    assert (table.kind, table.internal, table.topic) == (SourceKind.TABLE, False, "customers")
    assert stream.key == ("o.customer_id",) and table.key == ("c.customer_id",)
    assert join.copartitioned
    assert [type(n) for n in join.operators] == [Join, Project]
    assert [s.name for n in join.operators for s in n.state()] == ["join-1-right"]
    assert graph.edges == (Edge(0, 1, 0, "<query>-join-1-left"),)


def test_stream_stream_join_repartitions_only_the_side_not_keyed_by_the_join_key() -> None:
    graph, _ = graph_of(
        "CREATE STREAM shipped AS SELECT o.order_id, s.carrier FROM orders o "
        "JOIN shipments s WITHIN 1 HOUR ON o.order_id = s.order_id;"
    )
    feeder, join = graph.stages
    assert feeder.ports[0].topic == "shipments"
    assert [p.topic for p in join.ports] == ["orders", "<query>-join-1-right"]
    assert all(p.kind is SourceKind.STREAM for p in join.ports)
    assert sorted(s.name for n in join.operators for s in n.state()) == [
        "join-1-left",
        "join-1-right",
    ]
    assert graph.edges == (Edge(0, 1, 1, "<query>-join-1-right"),)


def test_three_way_join_with_different_keys_has_a_repartition_between_the_joins() -> None:
    graph, _ = graph_of(
        "CREATE STREAM details AS SELECT o.order_id, c.name AS customer, p.name AS product "
        "FROM orders o JOIN customers c ON o.customer_id = c.customer_id "
        "JOIN products p ON o.product_id = p.product_id;"
    )
    assert len(graph.stages) == 3
    assert [p.topic for p in graph.stages[1].ports] == ["<query>-join-1-left", "customers"]
    assert [p.topic for p in graph.stages[2].ports] == ["<query>-join-2-left", "products"]
    assert isinstance(graph.stages[1].output, Repartition)
    assert graph.edges == (
        Edge(0, 1, 0, "<query>-join-1-left"),
        Edge(1, 2, 0, "<query>-join-2-left"),
    )


def test_filters_before_an_aggregation_stay_on_the_port_and_partition_by_folds_into_the_sink() -> (
    None
):
    graph, _ = graph_of(
        "CREATE TABLE per_customer AS SELECT customer_id, COUNT(*) AS n FROM orders "
        "WHERE amount > 10 GROUP BY customer_id;"
    )
    feeder, aggregate = graph.stages
    assert isinstance(feeder.ports[0].operators[0], Filter)
    assert aggregate.ports[0].topic == "<query>-groupby"
    assert not aggregate.copartitioned
    rekeyed, _ = graph_of(
        "CREATE STREAM by_customer AS SELECT * FROM orders PARTITION BY customer_id;"
    )
    (only,) = rekeyed.stages
    assert only.rekey is not None and isinstance(only.output, Sink)


def test_the_executor_view_of_every_design_query_matches_its_graph() -> None:
    program = analyze(DESIGN.read_text())
    executable = 0
    for statement in program.persistent_queries:
        plan = plan_statement(statement)
        assert isinstance(plan, Sink)
        graph = stage_graph(plan)
        try:
            specs = split_stages(plan)
        except NotExecutable as refused:
            # Only stages the runtime does not run yet are refused, with E403.
            assert refused.error.code.value == "E403"
            assert any(
                len(stage.ports) > 1
                or any(isinstance(n, MatchRecognize | OverAggregate) for n in stage.operators)
                for stage in graph.stages
            )
            continue
        executable += 1
        assert [spec.input for spec in specs] == [stage.ports[0].reads for stage in graph.stages]
        assert [spec.output for spec in specs] == [stage.output for stage in graph.stages]
    assert executable >= 8


def test_explain_prints_stages_ports_and_repartitions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(DESIGN)]) == 0
    text = capsys.readouterr().out
    assert "port 1: table customers AS c topic=customers key=(c.customer_id)" in text
    assert "co-partitioned: ports 0, 1" in text
    assert "edge: stage 1 -> stage 2 port 0 via <query>-join-2-left" in text
    assert main(["explain", "--json", str(DESIGN)]) == 0
    documents = json.loads(capsys.readouterr().out)
    details = next(d for d in documents if d["name"] == "full_order_details")
    assert [len(stage["ports"]) for stage in details["stages"]["stages"]] == [1, 2, 2]
    assert details["stages"]["edges"][1] == {
        "from": 1,
        "to": 2,
        "port": 0,
        "topic": "<query>-join-2-left",
    }


def _validate(sql: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = tmp_path / "query.sql"
    path.write_text(sql)
    code = main(["validate", str(path)])
    return code, capsys.readouterr().err


def test_a_join_of_topics_with_different_declared_partition_counts_is_refused_at_validation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tables = (
        "CREATE STREAM views (page_id VARCHAR KEY, user_id VARCHAR) "
        "WITH (kafka_topic='views', value_format='JSON', partitions={views});\n"
        "CREATE TABLE pages (page_id VARCHAR PRIMARY KEY, title VARCHAR) "
        "WITH (kafka_topic='pages', value_format='JSON', partitions={pages});\n"
    )
    join = (
        "CREATE STREAM titled AS SELECT v.page_id, p.title FROM views v "
        "JOIN pages p ON v.page_id = p.page_id;\n"
    )
    code, err = _validate(tables.format(views=4, pages=6) + join, tmp_path, capsys)
    assert code == 1
    assert "query.sql:3:1: error[E416]" in err
    assert "views (4 partitions) and pages (6 partitions)" in err
    assert "partitions=6" in err
    # Same counts: no co-partitioning error.
    code, err = _validate(tables.format(views=6, pages=6) + join, tmp_path, capsys)
    assert code == 0 and "E416" not in err
    # A side that is re-keyed goes through an internal topic created with the other's count.
    rekeyed = join.replace("v.page_id = p.page_id", "v.user_id = p.page_id")
    code, err = _validate(tables.format(views=4, pages=6) + rekeyed, tmp_path, capsys)
    assert code == 0 and "E416" not in err
