"""One temporal parser: a source's `timestamp_format` and the SQL functions read Java
DateTimeFormatter patterns, and DATE text, the same way (io/temporal.py)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from streamhouse_runtime.exec import functions as fx
from streamhouse_runtime.io import temporal
from streamhouse_runtime.io.serde import DeserializationError, timestamp_parser, value_serde
from streamhouse_runtime.program import load_single_query
from streamhouse_runtime.sql.catalog import Column, Format
from streamhouse_runtime.sql.errors import SqlValidationError
from streamhouse_runtime.sql.types import DATE, TIMESTAMP

pytestmark = pytest.mark.unit


def _ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp() * 1000)


def _source(pattern: str, text: str) -> object:
    """What a JSON source with `timestamp_format = pattern` reads from `text`."""
    serde = value_serde(
        Format.JSON, [Column("ts", TIMESTAMP)], timestamp_column="ts", timestamp_format=pattern
    )
    row = serde.decode(json.dumps({"ts": text}).encode())
    assert row is not None
    return row["ts"]


CASES = [
    # Java's `yy` is the reduced year with base 2000: 2000..2099, so 99 is 2099 (not 1999).
    ("yy-MM-dd", "99-01-02", _ms(2099, 1, 2)),
    ("yy-MM-dd", "00-01-02", _ms(2000, 1, 2)),
    ("yyyy-MM-dd", "1999-01-02", _ms(1999, 1, 2)),
    # X reads Z, +01, +0100 and +01:00.
    ("yyyy-MM-dd HH:mmX", "2024-01-02 03:00+01", _ms(2024, 1, 2, 2)),
    ("yyyy-MM-dd HH:mmX", "2024-01-02 03:00Z", _ms(2024, 1, 2, 3)),
    ("yyyy-MM-dd HH:mmXX", "2024-01-02 03:00-0130", _ms(2024, 1, 2, 4, 30)),
    ("yyyy-MM-dd HH:mmXXX", "2024-01-02 03:00+01:00", _ms(2024, 1, 2, 2)),
    ("yyyy-MM-dd HH:mmx", "2024-01-02 03:00+01", _ms(2024, 1, 2, 2)),
    ("uuuu-MM-dd'T'HH:mm:ss.SSS", "2024-01-02T03:04:05.678", _ms(2024, 1, 2, 3, 4, 5) + 678),
    ("dd MMM yyyy hh:mm a", "02 Jan 2024 03:00 PM", _ms(2024, 1, 2, 15)),
    ("D yyyy", "32 2024", _ms(2024, 2, 1)),
]


@pytest.mark.parametrize(("pattern", "text", "expected"), CASES)
def test_the_source_and_the_functions_read_a_pattern_the_same_way(
    pattern: str, text: str, expected: int
) -> None:
    assert fx.string_to_timestamp(text, pattern) == expected  # STRINGTOTIMESTAMP / PARSE
    assert timestamp_parser(pattern)(text) == expected  # timestamp_format
    assert _source(pattern, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02", 19724),
        ("2024-01-02T03:00:00", 19724),  # a timestamp text: its UTC date
        ("2024-01-02 23:30:00-01:00", 19725),
        ("19724", 19724),  # digits: days since the epoch, as ksqlDB writes a DATE
        ("-1", -1),
    ],
)
def test_date_text_is_read_the_same_way_by_cast_and_by_a_source(text: str, expected: int) -> None:
    assert date(1970, 1, 1).toordinal() + 19724 == date(2024, 1, 2).toordinal()
    assert fx.cast_date(text) == expected  # CAST(text AS DATE)
    serde = value_serde(Format.JSON, [Column("d", DATE)])
    assert serde.decode(json.dumps({"d": text}).encode()) == {"d": expected}


def test_date_text_that_is_no_date_is_refused_by_both() -> None:
    with pytest.raises(ValueError, match="as a DATE"):
        fx.cast_date("2024-13-01")
    with pytest.raises(DeserializationError, match="DATE"):
        value_serde(Format.JSON, [Column("d", DATE)]).decode(b'{"d": "2024-13-01"}')


def test_text_that_does_not_match_is_refused_by_both() -> None:
    with pytest.raises(ValueError, match="cannot parse"):
        fx.string_to_timestamp("1999-01-02", "yy-MM-dd")
    with pytest.raises(DeserializationError, match="does not match timestamp format"):
        _source("yy-MM-dd", "1999-01-02")


def test_formatting_uses_the_same_letters() -> None:
    moment = _ms(2099, 1, 2, 3, 4, 5)
    assert fx.timestamp_to_string(moment, "yy-MM-dd HH:mm:ssX") == "99-01-02 03:04:05Z"
    assert fx.timestamp_to_string(moment, "uuuu-MM-dd HH:mmxxx") == "2099-01-02 03:04+00:00"
    assert temporal.timestamp_parser("yy-MM-dd HH:mm:ssX")("99-01-02 03:04:05Z", UTC) == moment


def test_a_source_timestamp_format_is_checked_at_validation() -> None:
    sql = (
        "CREATE STREAM t (id BIGINT, ts VARCHAR) WITH (kafka_topic='t', timestamp='ts',\n"
        "  timestamp_format='yyyy QQ');\n"
        "CREATE STREAM o WITH (kafka_topic='o') AS SELECT id FROM t;"
    )
    with pytest.raises(SqlValidationError) as caught:
        load_single_query(sql)
    (error,) = caught.value.errors
    assert (error.code.value, error.line, error.column) == ("E109", 2, 20)
    assert "unsupported letter 'Q'" in error.message
    load_single_query(sql.replace("yyyy QQ", "yy-MM-dd HH:mmX"))  # a good one passes
