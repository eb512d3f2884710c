"""`streamhouse validate`, admission and `streamhouse run` give one answer about a SQL file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from streamhouse_operator.handlers.admission import problem
from streamhouse_runtime.cli import main

pytestmark = pytest.mark.unit

DDL = "CREATE STREAM orders (order_id BIGINT, amount INT) WITH (kafka_topic='orders');\n"
TWO_QUERIES = (
    DDL
    + "CREATE STREAM big AS SELECT * FROM orders WHERE amount > 10;\n"
    + "CREATE STREAM small AS SELECT * FROM orders WHERE amount <= 10;\n"
)


def _three_answers(tmp_path: Path, sql: str) -> tuple[list[str], str | None, list[str]]:
    """Error lines of validate, admission's message and error lines of run, for `sql`."""
    path = tmp_path / "query.sql"
    path.write_text(sql)
    validate = subprocess.run(
        [sys.executable, "-m", "streamhouse_runtime.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    run = subprocess.run(
        [sys.executable, "-m", "streamhouse_runtime.cli", "run", "--query", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in validate.stderr + run.stderr
    admission = problem({"sql": sql, "kafka": {"bootstrapServers": "kafka:9092"}})
    assert (validate.returncode == 0) == (admission is None)
    assert run.returncode != 0 or admission is None

    def codes(stderr: str) -> list[str]:
        prefix = f"{path}:"
        return [line.removeprefix(prefix) for line in stderr.splitlines() if ": error[" in line]

    return codes(validate.stderr), admission, codes(run.stderr)


def test_two_persistent_queries_are_refused_alike(tmp_path: Path) -> None:
    validate, admission, run = _three_answers(tmp_path, TWO_QUERIES)
    assert validate == run
    assert len(validate) == 1 and validate[0].startswith("3:1: error[E406]")
    assert admission == f"spec.sql:{validate[0]}"


def test_no_persistent_query_is_refused_alike(tmp_path: Path) -> None:
    validate, admission, run = _three_answers(tmp_path, DDL)
    assert validate == run
    assert len(validate) == 1 and "error[E405]" in validate[0]
    assert admission == f"spec.sql:{validate[0]}"


def test_a_query_the_runtime_cannot_execute_is_refused_alike(tmp_path: Path) -> None:
    sql = DDL + (
        "CREATE TABLE a (id BIGINT PRIMARY KEY, x INT) WITH (kafka_topic='a');\n"
        "CREATE TABLE b (id BIGINT PRIMARY KEY, y INT) WITH (kafka_topic='b');\n"
        "CREATE TABLE j AS SELECT a.id, a.x, b.y FROM a JOIN b\n"
        "  ON a.x = b.id;\n"
    )
    validate, admission, run = _three_answers(tmp_path, sql)
    assert validate == run
    assert len(validate) == 1 and "error[E403]" in validate[0]
    assert admission == f"spec.sql:{validate[0]}"


def test_library_mode_checks_each_statement_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "library.sql"
    path.write_text(TWO_QUERIES)
    assert main(["validate", "--library", str(path)]) == 0
    assert main(["validate", str(path)]) == 1
    assert "error[E406]" in capsys.readouterr().err
