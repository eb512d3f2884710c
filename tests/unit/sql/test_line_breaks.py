"""Every error position counts lines the same way as the tokenizer: \\r\\n, \\n and a lone \\r
each end a line (found by the admission fuzz: a tokenizer error after a lone \\r pointed into
a line that did not exist)."""

from __future__ import annotations

import pytest

from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.sql.errors import SqlValidationError
from streamhouse_runtime.sql.limits import position

pytestmark = pytest.mark.unit


def _error_at(sql: str) -> tuple[int, int]:
    with pytest.raises(SqlValidationError) as caught:
        analyze(sql)
    error = caught.value.errors[0]
    return error.line, error.column


def test_position_counts_every_line_break() -> None:
    assert position("a\rb\r\nc\nd", 0) == (1, 1)
    assert position("a\rb\r\nc\nd", 2) == (2, 1)
    assert position("a\rb\r\nc\nd", 5) == (3, 1)
    assert position("a\rb\r\nc\nd", 7) == (4, 1)


@pytest.mark.parametrize("newline", ["\r", "\n", "\r\n"])
def test_an_unterminated_quote_after_a_line_break_points_at_the_quote(newline: str) -> None:
    assert _error_at(f"SELECT 1;{newline}`CREATE STREAM s") == (2, 1)


@pytest.mark.parametrize("newline", ["\r", "\n", "\r\n"])
def test_an_invalid_character_after_a_line_break_points_at_it(newline: str) -> None:
    assert _error_at(f"SELECT 1;{newline}  \x00") == (2, 3)


def test_a_token_missing_at_the_end_points_just_after_the_text() -> None:
    # sqlglot puts "Expecting )" on the line after the last one when the text ends in "\n".
    sql = (
        "CREATE STREAM s (x INT) WITH (kafka_topic='s', value_format='JSON');\n"
        "CREATE STREAM o AS SELECT AVG(x) AS($ y\nFROM s;\n"
    )
    assert _error_at(sql) == (3, len("FROM s;") + 1)
