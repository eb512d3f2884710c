"""Hostile input gets a clean, coded error: never a crash, a hang or a traceback."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.sql.errors import SqlValidationError
from streamhouse_runtime.sql.limits import MAX_NESTING, MAX_SQL_BYTES

pytestmark = pytest.mark.unit

FUZZ_SECONDS = 30.0

PRELUDE = (
    "CREATE STREAM orders (order_id BIGINT, amount DECIMAL(10,2), status VARCHAR, "
    "created_at TIMESTAMP) WITH (kafka_topic='orders', timestamp='created_at');\n"
)


def _error_code(text: str) -> str | None:
    """None when valid; else the first error's code. Any other exception fails the test."""
    try:
        analyze(text)
    except SqlValidationError as invalid:
        first = invalid.errors[0]
        assert first.line >= 1 and first.column >= 1
        assert first.message
        return first.code.value
    return None


def test_ten_thousand_nested_parentheses() -> None:
    text = PRELUDE + "SELECT " + "(" * 10_000 + "amount" + ")" * 10_000 + " FROM orders"
    assert _error_code(text) == "E003"


def test_nesting_just_inside_the_limit_is_analyzed() -> None:
    depth = MAX_NESTING - 1
    text = PRELUDE + "SELECT " + "(" * depth + "amount" + ")" * depth + " AS a FROM orders"
    assert _error_code(text) is None


def test_one_megabyte_statement() -> None:
    text = "SELECT " + ", ".join(["amount"] * 150_000) + " FROM orders"
    assert len(text.encode()) > 1_000_000
    assert _error_code(text) == "E002"


def test_long_operator_chains_without_parentheses() -> None:
    chain = " + ".join(["amount"] * 20_000)
    assert len(chain) < MAX_SQL_BYTES
    assert _error_code(PRELUDE + f"SELECT {chain} AS s FROM orders") == "E003"
    assert _error_code(PRELUDE + "SELECT " + "NOT " * 20_000 + "TRUE AS b FROM orders") == "E003"


@pytest.mark.parametrize("seed", range(20))
def test_random_bytes(seed: int) -> None:
    data = random.Random(seed).randbytes(4096)
    assert _error_code(data.decode("utf-8", errors="replace")) is not None


def test_nul_and_control_characters() -> None:
    assert _error_code(PRELUDE + "SELECT amount\x00 FROM orders") == "E004"
    assert _error_code("   \n\t ") == "E005"


def test_validate_cli_on_random_bytes_prints_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "garbage.sql"
    path.write_bytes(random.Random(7).randbytes(2048))
    result = subprocess.run(
        [sys.executable, "-m", "streamhouse_runtime.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"{path}:")


TOKENS = [
    "SELECT", "FROM", "WHERE", "GROUP", "BY", "HAVING", "JOIN", "LEFT", "ON", "WITHIN", "AS",
    "CREATE", "STREAM", "TABLE", "WITH", "INSERT", "INTO", "DROP", "EMIT", "CHANGES", "FINAL",
    "WINDOW", "TUMBLING", "HOPPING", "SESSION", "SIZE", "ADVANCE", "GRACE", "PERIOD",
    "TUMBLE", "HOP", "TUMBLE_START", "DESCRIPTOR", "MATCH_RECOGNIZE", "PATTERN", "DEFINE",
    "MEASURES", "PARTITION", "ORDER", "OVER", "RANGE", "ROWS", "PRECEDING", "CURRENT", "ROW",
    "INTERVAL", "'5'", "MINUTE", "MINUTES", "HOUR", "CASE", "WHEN", "THEN", "ELSE", "END",
    "CAST", "INT", "DECIMAL", "ARRAY", "<", ">", "MAP", "STRUCT", "NULL", "IS", "NOT", "IN",
    "BETWEEN", "LIKE", "AND", "OR", "DISTINCT", "COUNT", "SUM", "AVG", "(", ")", ",", ";", "*",
    "+", "-", "/", "=", "<>", ".", "->", "{", "}", "|", "?", "1", "3", "0.5", "'x'", "orders",
    "amount", "status", "created_at", "order_id", "o", "x", "\n", "--", "/*", "*/", "'", '"',
]  # fmt: skip


@settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(st.sampled_from(TOKENS), max_size=60), st.booleans())
def _fuzz_once(tokens: list[str], with_prelude: bool) -> None:
    text = " ".join(tokens)
    _error_code((PRELUDE if with_prelude else "") + text)


def test_token_soup_never_escapes_as_an_unhandled_exception() -> None:
    """Hypothesis token soup for FUZZ_SECONDS: each round draws fresh random examples."""
    deadline = time.monotonic() + FUZZ_SECONDS
    rounds = 0
    while time.monotonic() < deadline:
        _fuzz_once()
        rounds += 1
    assert rounds >= 1
