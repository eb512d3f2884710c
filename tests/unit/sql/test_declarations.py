"""The shared catalog: queries resolve names against StreamSource declarations (their own
declarations first), outputs render as declarations, and the CLI checks a folder offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from streamhouse_runtime.cli import main
from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.sql.catalog import SourceKind
from streamhouse_runtime.sql.declarations import (
    catalog_of,
    declaration_from_avro,
    manifest,
    parse_declaration,
    prelude,
    referenced_names,
    render_ddl,
)
from streamhouse_runtime.sql.errors import SqlValidationError

pytestmark = pytest.mark.unit

ORDERS = """CREATE STREAM orders (order_id BIGINT KEY, customer_id VARCHAR, amount DECIMAL(10,2),
  created_at TIMESTAMP) WITH (kafka_topic = 'orders', value_format = 'JSON',
  timestamp = 'created_at');"""
CUSTOMERS = """CREATE TABLE customers (id VARCHAR PRIMARY KEY, name VARCHAR)
  WITH (kafka_topic = 'customers', value_format = 'JSON');"""
CSAS = "CREATE STREAM big AS SELECT order_id, amount FROM orders WHERE amount > 1000;"


def shared() -> dict[str, object]:
    return dict(
        catalog_of([parse_declaration(ORDERS, "orders-src"), parse_declaration(CUSTOMERS, "cust")])
    )


def test_a_query_that_holds_only_its_csas_resolves_against_the_catalog() -> None:
    catalog = catalog_of([parse_declaration(ORDERS, "orders-src")])
    program = analyze(CSAS, catalog)
    assert program.persistent_queries[0].sink is not None
    assert program.catalog.shared_used == frozenset({"orders"})
    standalone = prelude(catalog, {"orders"}) + CSAS
    assert analyze(standalone).persistent_queries[0].name == "big"


def test_errors_keep_the_line_and_column_of_the_query_text() -> None:
    catalog = catalog_of([parse_declaration(ORDERS, "orders-src")])
    with pytest.raises(SqlValidationError) as invalid:
        analyze("\nCREATE STREAM big AS SELECT * FROM orders WHERE amout > 1;", catalog)
    error = invalid.value.errors[0]
    assert (error.code.value, error.line, error.column) == ("E102", 2, 49)
    with pytest.raises(SqlValidationError) as unknown:
        analyze("CREATE STREAM x AS SELECT * FROM nowhere;", catalog)
    assert unknown.value.errors[0].code.value == "E101"


def test_the_querys_own_declaration_takes_precedence() -> None:
    catalog = catalog_of([parse_declaration(ORDERS, "orders-src")])
    own = (
        "CREATE STREAM orders (order_id BIGINT, total DOUBLE) WITH (kafka_topic = 'mine');\n"
        "CREATE STREAM big AS SELECT * FROM orders WHERE total > 1;"
    )
    program = analyze(own, catalog)
    assert program.catalog.source("orders").topic == "mine"
    assert program.catalog.shared_used == frozenset()


def test_a_declaration_holds_exactly_one_create_stream_or_table() -> None:
    for sql in (ORDERS + "\n" + CSAS, CSAS, ORDERS + CUSTOMERS):
        with pytest.raises(SqlValidationError) as invalid:
            parse_declaration(sql, "x")
        assert invalid.value.errors[0].code.value in ("E430", "E101")
    with pytest.raises(SqlValidationError) as bad:
        parse_declaration("CREATE STREAM s (a BIGINT) WITH (kafka_topc = 't');", "x")
    assert bad.value.errors[0].code.value == "E107"


def test_two_declarations_of_one_name_are_refused() -> None:
    with pytest.raises(SqlValidationError) as duplicate:
        catalog_of([parse_declaration(ORDERS, "a"), parse_declaration(ORDERS, "b")])
    assert duplicate.value.errors[0].code.value == "E431"
    assert "a and b" in duplicate.value.errors[0].message


@pytest.mark.parametrize("ddl", [ORDERS, CUSTOMERS])
def test_a_rendered_declaration_declares_the_same_source(ddl: str) -> None:
    source = parse_declaration(ddl, "x").source
    assert parse_declaration(render_ddl(source), "y").source == source


def test_a_querys_output_renders_as_a_declaration_another_query_reads() -> None:
    catalog = catalog_of([parse_declaration(ORDERS, "orders-src")])
    sink = analyze(CSAS, catalog).persistent_queries[0].sink
    assert sink is not None
    output = parse_declaration(render_ddl(sink), "big-output")
    chained = catalog_of([parse_declaration(ORDERS, "orders-src"), output])
    program = analyze("CREATE STREAM huge AS SELECT * FROM big WHERE amount > 5000;", chained)
    assert program.catalog.shared_used == frozenset({"big"})


def test_referenced_names_are_those_not_declared_in_the_text() -> None:
    assert referenced_names(CSAS) == {"orders"}
    assert referenced_names(ORDERS + CSAS) == set()
    assert referenced_names("INSERT INTO big SELECT * FROM orders;") == {"big", "orders"}
    assert referenced_names("this is not SQL (") == set()


def test_an_avro_subject_becomes_a_declaration() -> None:
    schema = {
        "type": "record",
        "name": "Order",
        "fields": [
            {"name": "order_id", "type": "long"},
            {"name": "customer_id", "type": ["null", "string"], "default": None},
            {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal",
                                        "precision": 10, "scale": 2}},
            {"name": "created_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "tags", "type": {"type": "array", "items": "string"}},
        ],
    }  # fmt: skip
    ddl = declaration_from_avro(json.dumps(schema), "orders", "orders", timestamp="created_at")
    source = parse_declaration(ddl, "x").source
    assert [(c.name, str(c.type)) for c in source.columns] == [
        ("order_id", "BIGINT"),
        ("customer_id", "VARCHAR"),
        ("amount", "DECIMAL(10,2)"),
        ("created_at", "TIMESTAMP"),
        ("tags", "ARRAY<VARCHAR>"),
    ]
    assert (source.value_format.value, source.timestamp_column) == ("AVRO", "created_at")
    assert source.kind is SourceKind.STREAM
    with pytest.raises(SqlValidationError) as refused:
        declaration_from_avro('"string"', "s", "t")
    assert refused.value.errors[0].code.value == "E434"


def _write_catalog(folder: Path) -> None:
    folder.mkdir()
    (folder / "orders.yaml").write_text(yaml.safe_dump(manifest("orders", ORDERS)))
    (folder / "customers.yml").write_text(yaml.safe_dump(manifest("customers", CUSTOMERS)))


def test_validate_checks_queries_against_a_catalog_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_catalog(tmp_path / "catalog")
    query = tmp_path / "big.yaml"
    query.write_text(yaml.safe_dump({"kind": "StreamQuery", "spec": {"sql": CSAS}}))
    assert main(["validate", "-c", str(tmp_path / "catalog"), str(query)]) == 0
    assert main(["validate", str(query)]) == 1
    assert "error[E101]" in capsys.readouterr().err
    broken = tmp_path / "catalog" / "broken.yaml"
    broken.write_text(yaml.safe_dump(manifest("broken", CSAS)))
    assert main(["validate", "-c", str(tmp_path / "catalog"), str(query)]) == 1
    assert "broken" in capsys.readouterr().err


def test_streamhouse_test_runs_a_query_over_catalog_declarations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_catalog(tmp_path / "catalog")
    query = tmp_path / "big.sql"
    query.write_text(CSAS)
    inputs = {
        "inputs": [
            {"topic": "orders", "key": 1, "value": {"order_id": 1, "customer_id": "a",
             "amount": 1500.5, "created_at": 1000}, "timestamp": 1000},
            {"topic": "orders", "key": 2, "value": {"order_id": 2, "customer_id": "a",
             "amount": 10, "created_at": 2000}, "timestamp": 2000},
        ]
    }  # fmt: skip
    (tmp_path / "input.json").write_text(json.dumps(inputs))
    recorded = tmp_path / "out.json"
    args = ["test", "-c", str(tmp_path / "catalog"), "-s", str(query)]
    code = main([*args, "-i", str(tmp_path / "input.json"), "--record", str(recorded)])
    assert code == 0, capsys.readouterr()
    outputs = json.loads(recorded.read_text())["outputs"]
    assert [o["value"]["order_id"] for o in outputs] == [1]
