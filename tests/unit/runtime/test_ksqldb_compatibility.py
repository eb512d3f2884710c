"""The ksqlDB compatibility mode (`--compatibility ksqldb`, `spec.compatibility: ksqldb`):
ksqlDB's names, keys, timestamps, emission and windowed keys, through the offline runner and
`streamhouse test`; and the mode reaching the CLI, the StreamQuery model and the pods."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
import yaml

from streamhouse_operator.handlers.admission import problem
from streamhouse_operator.models import streamquery as model
from streamhouse_runtime.cli import main
from streamhouse_runtime.config import load_config
from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.sql.compatibility import Compatibility
from streamhouse_runtime.sql.errors import SqlValidationError
from streamhouse_runtime.testing.runner import OfflineRun
from tests.unit.operator.spec_cases import BASE_SPEC
from tests.unit.operator.test_builders import context, env

pytestmark = pytest.mark.unit

KSQLDB = Compatibility.KSQLDB
DDL = (
    "CREATE STREAM s (k VARCHAR KEY, v BIGINT, `Mixed` INT, st STRUCT<f INT>) "
    "WITH (kafka_topic = 's', value_format = 'JSON');\n"
)


def _run(
    sql: str, inputs: list[dict[str, Any]], mode: Compatibility = KSQLDB
) -> list[dict[str, Any]]:
    run = OfflineRun(analyze(sql, compatibility=mode))
    run.feed(inputs)
    run.run()
    return [o for o in run.outputs() if o["topic"] != "s"]


def _row(key: str | None, timestamp: int, **value: Any) -> dict[str, Any]:
    return {"topic": "s", "key": key, "value": value, "timestamp": timestamp}


# --- names ---------------------------------------------------------------------------------


def test_unquoted_names_are_upper_cased_and_quoted_ones_keep_their_case() -> None:
    sql = DDL + "CREATE STREAM out AS SELECT k, v AS total, `Mixed`, v AS `lower` FROM s;"
    (statement,) = analyze(sql, compatibility=KSQLDB).persistent_queries
    assert statement.sink is not None
    assert [c.name for c in statement.sink.columns] == ["K", "TOTAL", "Mixed", "lower"]
    assert statement.sink.topic == "OUT"  # ksqlDB's default topic: the (upper-cased) name


def test_default_mode_keeps_names_as_written() -> None:
    program = analyze(DDL + "CREATE STREAM out AS SELECT k, v AS total, v + 1 FROM s;")
    (statement,) = program.persistent_queries
    assert statement.sink is not None
    assert [c.name for c in statement.sink.columns] == ["k", "total", "column_3"]
    assert statement.sink.topic == "out"


def test_unnamed_expressions_are_ksql_col_n_in_select_order() -> None:
    sql = DDL + "CREATE TABLE t AS SELECT k, COUNT(*), SUM(v) AS total, SUM(v), LCASE(k) FROM s "
    sql += "GROUP BY k;"
    (statement,) = analyze(sql, compatibility=KSQLDB).persistent_queries
    assert statement.sink is not None
    names = [c.name for c in statement.sink.columns]
    assert names == ["K", "KSQL_COL_0", "TOTAL", "KSQL_COL_1", "KSQL_COL_2"]


def test_ksql_col_numbers_skip_those_a_source_column_uses() -> None:
    sql = (
        "CREATE STREAM s (k VARCHAR KEY, ksql_col_0 BIGINT, ksql_col_2 BIGINT) "
        "WITH (kafka_topic = 's', value_format = 'JSON');\n"
        "CREATE STREAM out AS SELECT k, ksql_col_0 + 1, ksql_col_2 * 2, 5 FROM s;"
    )
    (statement,) = analyze(sql, compatibility=KSQLDB).persistent_queries
    assert statement.sink is not None
    assert [c.name for c in statement.sink.columns] == [
        "K",
        "KSQL_COL_1",
        "KSQL_COL_3",
        "KSQL_COL_4",
    ]


def test_a_struct_field_access_is_named_after_the_field() -> None:
    sql = DDL + "CREATE STREAM out AS SELECT k, st->f, st->f, v + 1 FROM s;"
    (statement,) = analyze(sql, compatibility=KSQLDB).persistent_queries
    assert statement.sink is not None
    assert [c.name for c in statement.sink.columns] == ["K", "F", "F_1", "KSQL_COL_0"]


# --- keys ----------------------------------------------------------------------------------


def test_group_by_key_is_not_repeated_in_the_value() -> None:
    sql = DDL + "CREATE TABLE t AS SELECT k, COUNT(*) AS n, SUM(v) FROM s GROUP BY k;"
    inputs = [_row("a", 1, v=1), _row("a", 2, v=2)]
    outputs = _run(sql, inputs)
    assert [(o["topic"], o["key"], o["value"]) for o in outputs] == [
        ("T", "a", {"N": 1, "KSQL_COL_0": 1}),
        ("T", "a", {"N": 2, "KSQL_COL_0": 3}),
    ]
    default = _run(sql, inputs, Compatibility.DEFAULT)
    assert default[0]["value"] == {"k": "a", "n": 1, "column_3": 1}


def test_key_columns_of_a_projection_and_of_partition_by_stay_in_the_key() -> None:
    projection = DDL + "CREATE STREAM p AS SELECT * FROM s;"
    (record,) = _run(projection, [_row("a", 1, v=1, Mixed=2)])
    assert record["key"] == "a"
    assert record["value"] == {"V": 1, "Mixed": 2, "ST": None}
    rekeyed = DDL + "CREATE STREAM r AS SELECT k, v FROM s PARTITION BY v;"
    run = OfflineRun(analyze(rekeyed, compatibility=KSQLDB))
    run.feed([_row("a", 1, v=42)])
    run.run()
    (written,) = run.topics["R"]
    assert struct.unpack(">q", written.key or b"") == (42,)
    assert json.loads(written.value or b"null") == {"K": "a"}


def test_insert_into_writes_the_targets_key_columns_to_the_key_only() -> None:
    sql = DDL + (
        "CREATE STREAM t (k VARCHAR KEY, v BIGINT) WITH (kafka_topic = 't', value_format = 'JSON');"
        "\nINSERT INTO t SELECT k, v FROM s;"
    )
    run = OfflineRun(analyze(sql, compatibility=KSQLDB))
    run.feed([_row("a", 1, v=1)])
    run.run()
    (record,) = run.topics["t"]
    assert (record.key, json.loads(record.value or b"null")) == (b"a", {"V": 1})


def test_records_with_a_null_group_key_are_dropped() -> None:
    sql = DDL + "CREATE TABLE t AS SELECT v, COUNT(*) FROM s GROUP BY v;"
    outputs = _run(sql, [_row("a", 1, v=None), _row("a", 2, v=7)])
    assert [(o["key"], o["value"]) for o in outputs] == [(7, {"KSQL_COL_0": 1})]


# --- the mode on the command line, in the StreamQuery and in the pod -------------------------


def _files(tmp_path: Path, sql: str, inputs: list[dict[str, Any]], outputs: Any) -> list[str]:
    (tmp_path / "q.sql").write_text(sql)
    (tmp_path / "in.json").write_text(json.dumps({"inputs": inputs}))
    (tmp_path / "out.json").write_text(json.dumps({"outputs": outputs}))
    return [
        *("-s", str(tmp_path / "q.sql")),
        *("-i", str(tmp_path / "in.json")),
        *("-o", str(tmp_path / "out.json")),
    ]


def test_streamhouse_test_takes_the_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sql = DDL + "CREATE TABLE t AS SELECT k, COUNT(*) FROM s GROUP BY k;"
    expected = [{"topic": "T", "key": "a", "value": {"KSQL_COL_0": 1}}]
    args = ["test", *_files(tmp_path, sql, [_row("a", 1, v=1)], expected)]
    assert main([*args, "--compatibility", "ksqldb"]) == 0
    assert "PASSED" in capsys.readouterr().out
    assert main(args) == 1  # the default names the topic, key and count otherwise
    assert "FAILED" in capsys.readouterr().out


def test_streamhouse_test_reads_the_mode_from_a_manifest(tmp_path: Path) -> None:
    sql = DDL + "CREATE TABLE t AS SELECT k, COUNT(*) FROM s GROUP BY k;"
    args = _files(tmp_path, sql, [_row("a", 1, v=1)], [{"topic": "T", "key": "a"}])
    manifest = {"kind": "StreamQuery", "spec": {**BASE_SPEC, "sql": sql, "compatibility": "ksqldb"}}
    (tmp_path / "q.yaml").write_text(yaml.safe_dump(manifest))
    args[1] = str(tmp_path / "q.yaml")
    assert main(["test", *args]) == 0


def test_validate_and_explain_take_the_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "q.sql"
    path.write_text(DDL + "CREATE STREAM out AS SELECT k, v + 1 FROM s;")
    assert main(["validate", "--compatibility", "ksqldb", str(path)]) == 0
    assert main(["explain", "--compatibility", "ksqldb", str(path)]) == 0
    assert "KSQL_COL_0" in capsys.readouterr().out
    assert main(["explain", str(path)]) == 0
    assert "KSQL_COL_0" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["validate", "--compatibility", "flink", str(path)])


def test_the_streamquery_field_defaults_to_today_and_accepts_ksqldb() -> None:
    assert model.StreamQuerySpec.model_validate(BASE_SPEC).compatibility is Compatibility.DEFAULT
    spec = model.StreamQuerySpec.model_validate({**BASE_SPEC, "compatibility": "ksqldb"})
    assert spec.compatibility is KSQLDB
    refused = problem({**BASE_SPEC, "compatibility": "flink"})
    assert refused is not None and refused.startswith("spec.compatibility")


def test_admission_validates_under_the_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamhouse_operator.handlers import admission
    from streamhouse_runtime.program import load_single_query as real

    seen: list[object] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("compatibility"))
        return real(*args, **kwargs)

    monkeypatch.setattr(admission, "load_single_query", spy)
    spec = {**BASE_SPEC, "sql": DDL + "CREATE STREAM out AS SELECT k, v + 1 FROM s;"}
    assert problem({**spec, "compatibility": "ksqldb"}) is None
    assert problem(spec) is None
    assert seen == [KSQLDB, Compatibility.DEFAULT]


def test_the_rest_api_reports_sql_problems_under_the_specs_mode() -> None:
    from streamhouse_operator.api.queries import spec_problems

    # Under ksqlDB's names the unnamed expression is KSQL_COL_0, clashing with the alias.
    sql = DDL + "CREATE STREAM out AS SELECT k, v AS ksql_col_0, v + 1 FROM s;"
    assert spec_problems({**BASE_SPEC, "sql": sql}) == []
    problems = spec_problems({**BASE_SPEC, "sql": sql, "compatibility": "ksqldb"})
    assert problems and problems[0].field == "spec.sql"


def test_the_pods_get_the_mode_in_their_environment() -> None:
    assert "STREAMHOUSE_COMPATIBILITY" not in env(context())  # unchanged pod template
    variables = env(context(compatibility="ksqldb"))
    assert variables["STREAMHOUSE_COMPATIBILITY"] == "ksqldb"
    config = load_config(None, {"STREAMHOUSE_COMPATIBILITY": "ksqldb"})
    assert config.compatibility == "ksqldb"


# --- timestamps and emission ---------------------------------------------------------------

WINDOWED = (
    "CREATE STREAM s (k VARCHAR KEY, v BIGINT) WITH (kafka_topic = 's', value_format = 'JSON');\n"
)


def test_an_unwindowed_aggregate_carries_the_largest_input_timestamp() -> None:
    sql = WINDOWED + "CREATE TABLE t AS SELECT k, COUNT(*) AS n FROM s GROUP BY k;"
    inputs = [_row("a", 5_000, v=1), _row("a", 3_000, v=1), _row("b", 1_000, v=1)]
    outputs = _run(sql, inputs)
    assert [(o["key"], o["value"]["N"], o["timestamp"]) for o in outputs] == [
        ("a", 1, 5_000),
        ("a", 2, 5_000),  # not the late record's 3000
        ("b", 1, 1_000),
    ]
    default = _run(sql, inputs, Compatibility.DEFAULT)
    assert [o["timestamp"] for o in default] == [5_000, 3_000, 1_000]


def test_a_windowed_aggregate_carries_the_largest_input_timestamp_not_the_window_end() -> None:
    sql = WINDOWED + (
        "CREATE TABLE t AS SELECT k, COUNT(*) AS n FROM s "
        "WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY k EMIT CHANGES;"
    )
    inputs = [_row("a", 2_000, v=1), _row("a", 1_000, v=1), _row("a", 61_000, v=1)]
    outputs = _run(sql, inputs)
    assert [(o["value"]["N"], o["timestamp"], o["window"]) for o in outputs] == [
        (1, 2_000, {"start": 0, "end": 60_000, "type": "time"}),
        (2, 2_000, {"start": 0, "end": 60_000, "type": "time"}),
        (1, 61_000, {"start": 60_000, "end": 120_000, "type": "time"}),
    ]
    default = _run(sql, inputs, Compatibility.DEFAULT)
    assert [o["timestamp"] for o in default] == [59_999, 59_999, 119_999]


def test_hopping_windows_each_carry_their_own_latest_input() -> None:
    sql = WINDOWED + (
        "CREATE TABLE t AS SELECT k, COUNT(*) AS n FROM s "
        "WINDOW HOPPING (SIZE 20 SECONDS, ADVANCE BY 10 SECONDS) GROUP BY k;"
    )
    outputs = _run(sql, [_row("a", 15_000, v=1), _row("a", 12_000, v=1)])
    assert [(o["window"]["start"], o["value"]["N"], o["timestamp"]) for o in outputs] == [
        (0, 1, 15_000),
        (10_000, 1, 15_000),
        (0, 2, 15_000),
        (10_000, 2, 15_000),
    ]


def test_emit_changes_emits_one_update_per_input_record_in_input_order() -> None:
    sql = WINDOWED + (
        "CREATE TABLE t AS SELECT k, SUM(v) AS total FROM s "
        "WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY k EMIT CHANGES;"
    )
    inputs = [_row("a", 1, v=1), _row("b", 2, v=10), _row("a", 3, v=2), _row("b", 4, v=20)]
    outputs = _run(sql, inputs)
    assert [(o["key"], o["value"]["TOTAL"]) for o in outputs] == [
        ("a", 1),
        ("b", 10),
        ("a", 3),
        ("b", 30),
    ]


def test_a_session_merge_emits_a_tombstone_per_merged_session_then_the_new_one() -> None:
    sql = WINDOWED + (
        "CREATE TABLE t AS SELECT k, COUNT(*) AS n FROM s WINDOW SESSION (60 SECONDS) GROUP BY k;"
    )
    inputs = [_row("a", 0, v=1), _row("a", 100_000, v=1), _row("a", 50_000, v=1)]
    outputs = _run(sql, inputs)
    shown = [
        (o["window"]["start"], o["window"]["end"], o["value"] and o["value"]["N"], o["timestamp"])
        for o in outputs
    ]
    assert shown == [
        (0, 0, 1, 0),
        (100_000, 100_000, 1, 100_000),
        (0, 0, None, 0),  # the merged sessions' tombstones, each stamped with its end
        (100_000, 100_000, None, 100_000),
        (0, 100_000, 3, 100_000),
    ]


# --- windowed keys -------------------------------------------------------------------------


def _keys(sql: str, inputs: list[dict[str, Any]]) -> list[bytes]:
    run = OfflineRun(analyze(sql, compatibility=KSQLDB))
    run.feed(inputs)
    run.run()
    return [r.key or b"" for r in run.topics["T"]]


@pytest.mark.parametrize(
    ("key_format", "key_type", "key", "inner"),
    [
        ("KAFKA", "VARCHAR", "a", b"a"),
        ("KAFKA", "INT", 7, struct.pack(">i", 7)),
        ("KAFKA", "BIGINT", 7, struct.pack(">q", 7)),
        ("JSON", "VARCHAR", "a", b'"a"'),
        ("JSON", "INT", 7, b"7"),
        ("DELIMITED", "VARCHAR", "a", b"a"),
    ],
)
def test_time_windowed_keys_are_the_key_then_the_window_start(
    key_format: str, key_type: str, key: object, inner: bytes
) -> None:
    sql = (
        f"CREATE STREAM s (k {key_type} KEY, v BIGINT) WITH (kafka_topic = 's', "
        f"value_format = 'JSON', key_format = '{key_format}');\n"
        "CREATE TABLE t AS SELECT k, COUNT(*) FROM s WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY k;"
    )
    (written,) = _keys(sql, [_row(key, 61_000, v=1)])  # type: ignore[arg-type]
    assert written == inner + struct.pack(">q", 60_000)


@pytest.mark.parametrize(("key_format", "inner"), [("KAFKA", b"a"), ("JSON", b'"a"')])
def test_session_windowed_keys_are_the_key_then_the_end_then_the_start(
    key_format: str, inner: bytes
) -> None:
    sql = (
        "CREATE STREAM s (k VARCHAR KEY, v BIGINT) WITH (kafka_topic = 's', "
        f"value_format = 'JSON', key_format = '{key_format}');\n"
        "CREATE TABLE t AS SELECT k, COUNT(*) FROM s WINDOW SESSION (60 SECONDS) GROUP BY k;"
    )
    written = _keys(sql, [_row("a", 1_000, v=1), _row("a", 5_000, v=1)])
    assert written == [
        inner + struct.pack(">qq", 1_000, 1_000),  # [1000, 1000]: end, then start
        inner + struct.pack(">qq", 1_000, 1_000),  # its tombstone: the same key
        inner + struct.pack(">qq", 5_000, 1_000),  # the merged session [1000, 5000]
    ]


def test_a_merged_session_tombstone_has_its_result_key_in_every_mode() -> None:
    sql = WINDOWED + (
        "CREATE TABLE t AS SELECT k, COUNT(*) FROM s WINDOW SESSION (60 SECONDS) GROUP BY k;"
    )
    run = OfflineRun(analyze(sql))
    run.feed([_row("a", 1_000, v=1), _row("a", 5_000, v=1)])
    run.run()
    first, tombstone, merged = run.topics["t"]
    assert tombstone.value is None and merged.value is not None
    assert tombstone.key == first.key  # it deletes what was written, on a compacted topic


# --- windowed sources ----------------------------------------------------------------------


def _windowed_source(window: str, key_format: str = "KAFKA") -> str:
    return (
        "CREATE STREAM w (k VARCHAR KEY, n BIGINT) WITH (kafka_topic = 'w', "
        f"value_format = 'JSON', key_format = '{key_format}', {window});\n"
    )


def _from_windowed(
    sql: str, window: dict[str, int], mode: Compatibility = KSQLDB
) -> list[dict[str, Any]]:
    run = OfflineRun(analyze(sql, compatibility=mode))
    run.feed([{"topic": "w", "key": "a", "value": {"n": 1}, "timestamp": 5, "window": window}])
    run.run()
    return run.outputs()


def test_a_tumbling_windowed_source_reads_its_bounds_from_the_key() -> None:
    sql = _windowed_source("window_type = 'TUMBLING', window_size = '30 SECONDS'")
    sql += "CREATE STREAM o AS SELECT k, WINDOWSTART AS ws, WINDOWEND, n FROM w;"
    run = OfflineRun(analyze(sql, compatibility=KSQLDB))
    run.feed([{"topic": "w", "key": "a", "value": {"n": 1}, "window": {"start": 30_000}}])
    (record,) = run.topics["w"]
    assert record.key == b"a" + struct.pack(">q", 30_000)  # Kafka Streams' layout
    run.run()
    (output,) = run.outputs()
    assert output["value"] == {"WS": 30_000, "WINDOWEND": 60_000, "N": 1}
    # The query keeps the windowed key: its output is windowed too.
    assert output["window"] == {"start": 30_000, "end": 60_000, "type": "time"}
    assert run.topics["O"][0].key == record.key


@pytest.mark.parametrize(
    ("mode", "bounds", "value"),
    [
        (KSQLDB, (9, 1), {"WS": 1, "WE": 9}),  # Kafka Streams: end, then start
        (Compatibility.DEFAULT, (1, 9), {"k": "a", "ws": 1, "we": 9}),
    ],
)
def test_a_session_windowed_source_reads_the_bounds_in_the_modes_layout(
    mode: Compatibility, bounds: tuple[int, int], value: dict[str, object]
) -> None:
    sql = _windowed_source("window_type = 'SESSION'", key_format="JSON")
    sql += "CREATE STREAM o AS SELECT k, WINDOWSTART AS ws, WINDOWEND AS we FROM w;"
    run = OfflineRun(analyze(sql, compatibility=mode))
    run.feed([{"topic": "w", "key": "a", "value": {"n": 1}, "window": {"start": 1, "end": 9}}])
    assert run.topics["w"][0].key == b'"a"' + struct.pack(">qq", *bounds)
    run.run()
    (output,) = run.outputs()
    assert output["value"] == value
    assert {k: v for k, v in output["window"].items() if k != "type"} == {"start": 1, "end": 9}


def test_windowed_source_bounds_stay_out_of_select_star() -> None:
    sql = _windowed_source("window_type = 'HOPPING', window_size = '1 MINUTE'")
    sql += "CREATE STREAM o AS SELECT * FROM w;"
    (output,) = _from_windowed(sql, {"start": 60_000})
    assert output["value"] == {"N": 1}
    assert output["window"] == {"start": 60_000, "end": 120_000, "type": "time"}


def test_a_windowed_aggregation_output_reads_back_as_a_windowed_source() -> None:
    sql = WINDOWED + (
        "CREATE TABLE c AS SELECT k, COUNT(*) AS n FROM s WINDOW TUMBLING (SIZE 10 SECONDS) "
        "GROUP BY k;\nCREATE STREAM o AS SELECT k, n, WINDOWSTART AS ws FROM c;"
    )
    run = OfflineRun(analyze(sql, compatibility=KSQLDB))
    run.feed([_row("a", 12_000, v=1)])
    run.run()
    (output,) = [o for o in run.outputs() if o["topic"] == "O"]
    assert output["value"] == {"N": 1, "WS": 10_000}


def test_window_properties_were_unknown_before_and_are_known_now() -> None:
    sql = _windowed_source("window_type = 'TUMBLING', window_size = '30 SECONDS'")
    (source,) = analyze(sql).catalog.sources.values()
    assert (source.window_type, source.window_size_ms) == ("TUMBLING", 30_000)


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ("window_type = 'SLIDING'", "window_type 'SLIDING' is not one of"),
        ("window_type = 'TUMBLING'", "needs WITH (window_size"),
        ("window_type = 'SESSION', window_size = '1 MINUTE'", "not set for SESSION"),
        ("window_size = '1 MINUTE'", "window_size needs window_type"),
        ("window_type = 'HOPPING', window_size = '10'", "a number and a time unit"),
        ("window_type = 'HOPPING', window_size = '10 FORTNIGHTS'", "unsupported interval unit"),
    ],
)
def test_windowed_source_properties_are_checked(window: str, message: str) -> None:
    from streamhouse_runtime.sql.errors import SqlValidationError

    sql = _windowed_source(window) + "CREATE STREAM o AS SELECT * FROM w;"
    with pytest.raises(SqlValidationError) as raised:
        analyze(sql)
    error = raised.value.errors[0]  # (the query then reads an unknown source)
    assert message in error.message
    expected = "E108" if "needs WITH" in message else "E109"  # missing / invalid property
    assert (error.code.value, error.line) == (expected, 1)


def test_streamhouse_run_takes_the_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    import streamhouse_runtime.app as app

    seen: list[str] = []

    def run(config: Any) -> int:
        seen.append(config.compatibility)
        return 0

    monkeypatch.setattr(app, "run", run)
    assert main(["run", "--query", "q.sql", "--compatibility", "ksqldb"]) == 0
    monkeypatch.delenv("STREAMHOUSE_COMPATIBILITY", raising=False)
    assert main(["run", "--query", "q.sql"]) == 0
    assert seen == ["ksqldb", "default"]


@pytest.mark.parametrize(
    "query",
    [
        "CREATE TABLE t AS SELECT COUNT(*) FROM s GROUP BY k;",
        "CREATE TABLE t AS SELECT k, COUNT(*) FROM s GROUP BY k, v;",
        "CREATE STREAM o AS SELECT k FROM s PARTITION BY v;",
    ],
)
def test_a_key_missing_from_the_projection_is_refused_as_in_ksqldb(query: str) -> None:
    from streamhouse_runtime.sql.errors import SqlValidationError

    analyze(DDL + query)  # the default mode writes such a key under an internal name
    with pytest.raises(SqlValidationError) as raised:
        analyze(DDL + query, compatibility=KSQLDB)
    (error,) = raised.value.errors
    assert error.code.value == "E301" and "key missing from projection" in error.message


def test_the_ksqldb_value_columns_flag_the_sinks_key_columns() -> None:
    from streamhouse_runtime.exec.pipeline import sink_value_columns
    from streamhouse_runtime.plan.nodes import Field, Schema
    from streamhouse_runtime.sql import types as t

    schema = Schema((Field("K", t.VARCHAR), Field("N", t.BIGINT)), ("K",))
    assert [c.key for c in sink_value_columns(schema, KSQLDB)] == [True, False]
    assert [c.key for c in sink_value_columns(schema, Compatibility.DEFAULT)] == [False, False]


def test_joining_a_windowed_source_is_refused() -> None:
    from streamhouse_runtime.sql.errors import SqlValidationError

    sql = _windowed_source("window_type = 'SESSION'") + (
        "CREATE TABLE u (k VARCHAR PRIMARY KEY, name VARCHAR) "
        "WITH (kafka_topic = 'u', value_format = 'JSON');\n"
        "CREATE STREAM o AS SELECT w.k, u.name FROM w JOIN u ON w.k = u.k;"
    )
    with pytest.raises(SqlValidationError) as raised:
        analyze(sql)
    (error,) = raised.value.errors
    assert error.code.value == "E403" and "windowed source w is not supported" in error.message


def test_windows_name_their_type_under_ksqldb_and_compare_ignores_what_is_left_out() -> None:
    from streamhouse_runtime.testing.runner import compare

    sql = WINDOWED + (
        "CREATE TABLE t AS SELECT k, COUNT(*) AS n FROM s WINDOW SESSION (60 SECONDS) GROUP BY k;"
    )
    (output,) = _run(sql, [_row("a", 1_000, v=1)])
    assert output["window"] == {"start": 1_000, "end": 1_000, "type": "session"}
    (default,) = _run(sql, [_row("a", 1_000, v=1)], Compatibility.DEFAULT)
    assert default["window"] == {"start": 1_000, "end": 1_000}
    expected = {"topic": "T", "window": {"start": 1_000, "end": 1_000}}
    assert compare([expected], [output]) == []
    assert compare([{**expected, "window": {"start": 1_000, "type": "time"}}], [output]) != []


def test_shared_declarations_are_read_as_the_pods_read_their_text_under_the_mode() -> None:
    """A pod runs the catalog's DDL text in front of the query; admission and reconcile, which
    resolve against the declarations themselves, must see the same names."""
    from streamhouse_runtime.plan.explain import explain_text
    from streamhouse_runtime.plan.planner import plan_statement
    from streamhouse_runtime.program import load_single_query
    from streamhouse_runtime.sql.declarations import catalog_of, load_catalog, prelude

    folder = Path(__file__).resolve().parents[3] / "examples" / "temperature-alerts"
    shared = catalog_of(load_catalog([folder / "catalog.yaml"]))
    sql = "CREATE STREAM hot AS SELECT sensor_id, temperature * 2 FROM sensor_readings;"
    program, statement = load_single_query(sql, shared, compatibility=KSQLDB)
    assert statement.sink is not None
    assert [c.name for c in statement.sink.columns] == ["SENSOR_ID", "KSQL_COL_0"]
    pod_text = prelude(shared, program.catalog.shared_used) + sql
    _, in_pod = load_single_query(pod_text, compatibility=KSQLDB)
    assert explain_text(plan_statement(in_pod)) == explain_text(plan_statement(statement))
    _, default = load_single_query(sql, shared)
    assert default.sink is not None and default.sink.columns[0].name == "sensor_id"


def test_a_windowed_output_registered_in_the_catalog_keeps_its_windowed_keys() -> None:
    from streamhouse_runtime.sql.declarations import render_ddl

    sql = WINDOWED + (
        "CREATE TABLE c AS SELECT k, COUNT(*) AS n FROM s WINDOW HOPPING (SIZE 1 MINUTE, "
        "ADVANCE BY 10 SECONDS) GROUP BY k;"
    )
    (statement,) = analyze(sql).persistent_queries
    assert statement.sink is not None
    text = render_ddl(statement.sink)
    assert "window_type = 'HOPPING'" in text
    (declared,) = analyze(text).catalog.sources.values()
    assert (declared.window_type, declared.window_size_ms) == ("HOPPING", 60_000)


# --- function conventions ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "ksqldb", "default"),
    [
        ("GREATEST(v, CAST(NULL AS BIGINT), 3)", 5, None),
        ("LEAST(v, CAST(NULL AS BIGINT), 3)", 3, None),
        ("GREATEST(CAST(NULL AS BIGINT), CAST(NULL AS BIGINT))", None, None),
        ("ARRAY_CONTAINS(CAST(NULL AS ARRAY<INT>), 1)", False, None),
        ("ARRAY_CONTAINS(ARRAY[1, 2], 2)", True, True),
    ],
)
def test_greatest_least_and_array_contains_follow_ksqldb_on_nulls(
    expression: str, ksqldb: object, default: object
) -> None:
    sql = DDL + f"CREATE STREAM out AS SELECT k, {expression} AS x FROM s;"
    for mode, wanted in ((KSQLDB, ksqldb), (Compatibility.DEFAULT, default)):
        (output,) = _run(sql, [_row("a", 1, v=5)], mode)
        assert output["value"]["X" if mode is KSQLDB else "x"] == wanted, mode


def test_regexp_extract_takes_the_pattern_first_under_ksqldb() -> None:
    rows = [{"topic": "s", "key": "a", "value": {"k2": "joe@example.com"}, "timestamp": 1}]
    ddl = "CREATE STREAM s (k VARCHAR KEY, k2 VARCHAR) WITH (kafka_topic='s', value_format='JSON');"
    ksqldb = ddl + "CREATE STREAM out AS SELECT k, REGEXP_EXTRACT('@(.*)', k2, 1) AS d FROM s;"
    default = ddl + "CREATE STREAM out AS SELECT k, REGEXP_EXTRACT(k2, '@(.*)', 1) AS d FROM s;"
    assert _run(ksqldb, rows)[0]["value"] == {"D": "example.com"}
    assert _run(default, rows, Compatibility.DEFAULT)[0]["value"]["d"] == "example.com"


@pytest.mark.parametrize("mode", list(Compatibility))
def test_a_grace_period_may_be_zero(mode: Compatibility) -> None:
    sql = DDL + (
        "CREATE TABLE out AS SELECT k, COUNT(*) AS n FROM s "
        "WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 0 SECONDS) GROUP BY k;"
    )
    assert analyze(sql, compatibility=mode).persistent_queries
    with pytest.raises(Exception, match="intervals must be positive"):
        analyze(sql.replace("SIZE 10 SECONDS", "SIZE 0 SECONDS"), compatibility=mode)


def test_plus_joins_strings_and_rowtime_is_a_bigint_under_ksqldb() -> None:
    sql = DDL + "CREATE STREAM out AS SELECT k, k + '-' + k AS kk, ROWTIME AS rt FROM s;"
    (output,) = _run(sql, [_row("a", 1234, v=5)])
    assert output["value"] == {"KK": "a-a", "RT": 1234}
    (statement,) = analyze(sql, compatibility=KSQLDB).persistent_queries
    assert statement.sink is not None
    assert [str(c.type) for c in statement.sink.columns][-1] == "BIGINT"
    with pytest.raises(SqlValidationError, match="needs numbers"):
        analyze(sql)
    where = DDL + "CREATE STREAM out AS SELECT k, v FROM s WHERE ROWTIME >= 100;"
    assert [o["key"] for o in _run(where, [_row("a", 99, v=1), _row("b", 100, v=2)])] == ["b"]
    with pytest.raises(SqlValidationError, match="cannot compare TIMESTAMP"):
        analyze(where)


def test_sum_of_only_nulls_is_zero_under_ksqldb_and_null_by_default() -> None:
    sql = DDL + "CREATE TABLE out AS SELECT k, SUM(st->f) AS total FROM s GROUP BY k;"
    rows = [_row("a", 1, v=1), _row("a", 2, v=1, st={"f": 4})]
    assert [o["value"]["TOTAL"] for o in _run(sql, rows)] == [0, 4]
    assert [o["value"]["total"] for o in _run(sql, rows, Compatibility.DEFAULT)] == [None, 4]


@pytest.mark.parametrize("mode", list(Compatibility))
@pytest.mark.parametrize(
    "query",
    [
        "SELECT UCASE(k) AS region, v FROM s PARTITION BY UCASE(k)",
        "SELECT k AS region, v FROM s PARTITION BY k",
    ],
)
def test_partition_by_an_expression_the_projection_renames_keys_the_output(
    mode: Compatibility, query: str
) -> None:
    """The re-key runs on the projected rows: it reads the key from the projected column."""
    (output,) = _run(DDL + f"CREATE STREAM out AS {query};", [_row("eu", 1, v=5)], mode)
    assert output["key"] == ("EU" if "UCASE" in query else "eu")


def test_round_sends_ties_up_under_ksqldb_and_away_from_zero_by_default() -> None:
    ddl = "CREATE STREAM s (k VARCHAR KEY, x DOUBLE) WITH (kafka_topic='s', value_format='JSON');"
    sql = ddl + "CREATE STREAM out AS SELECT k, ROUND(x) AS r, ROUND(x, 1) AS r1 FROM s;"
    rows = [{"topic": "s", "key": "a", "value": {"x": -2.5}, "timestamp": 1}]
    rows.append({"topic": "s", "key": "b", "value": {"x": -0.25}, "timestamp": 2})
    assert [o["value"] for o in _run(sql, rows)] == [{"R": -2, "R1": -2.5}, {"R": 0, "R1": -0.2}]
    default = [o["value"] for o in _run(sql, rows, Compatibility.DEFAULT)]
    assert [(v["r"], v["r1"]) for v in default] == [(-3, -2.5), (0, -0.3)]
