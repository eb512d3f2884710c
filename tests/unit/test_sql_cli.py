from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamhouse_runtime.cli import main

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
DESIGN = REPO / "examples" / "sql" / "design.sql"


def test_validate_exits_zero_for_valid_files(capsys: pytest.CaptureFixture[str]) -> None:
    # The design file holds many queries: it is a library, not one deployable query.
    assert main(["validate", "--library", str(DESIGN)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""


def test_validate_prints_one_line_per_problem_with_file_line_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.sql"
    bad.write_text(
        "CREATE STREAM s (a INT) WITH (kafka_topic='s');\nSELECT b FROM s;\nSELECT a FROM t;\n"
    )
    good = tmp_path / "good.sql"
    good.write_text(
        "CREATE STREAM s (a INT) WITH (kafka_topic='s');\nCREATE STREAM t AS SELECT a FROM s;\n"
    )
    assert main(["validate", str(good), str(bad)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"{bad}:2:8: error[E102]: unknown column 'b' in s",
        f"{bad}:3:15: error[E101]: unknown stream or table 't'",
    ]


def test_validate_reports_an_unreadable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.sql"
    assert main(["validate", str(missing)]) == 1
    assert capsys.readouterr().err.startswith(f"{missing}:1:1: error[")


def test_explain_prints_each_query_plan(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(DESIGN)]) == 0
    out = capsys.readouterr().out
    assert "-- CREATE AS SELECT high_value_orders (line" in out
    assert "WindowAggregate window=TUMBLING(time=created_at, size=300000ms) emit=FINAL" in out


def test_explain_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--json", str(DESIGN)]) == 0
    documents = json.loads(capsys.readouterr().out)
    names = [d["name"] for d in documents]
    assert names[0] == "high_value_orders" and "anomalies" in names
    assert documents[0]["plan"]["operator"] == "Sink"


def test_explain_of_an_invalid_file_fails_like_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.sql"
    bad.write_text("SELECT * FROM nowhere")
    assert main(["explain", str(bad)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"{bad}:1:15: error[E101]: unknown stream or table 'nowhere'"
    )
