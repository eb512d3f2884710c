"""The runtime function library on its own: patterns, parsing, padding, casts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamhouse_runtime.exec import functions as fx
from streamhouse_runtime.exec.like import ilike, like

pytestmark = pytest.mark.unit

TS = 1_700_000_000_005  # 2023-11-14 22:13:20.005 UTC


@pytest.mark.parametrize(
    ("pattern", "zone", "expected"),
    [
        ("yyyy-MM-dd HH:mm:ss.SSS", "UTC", "2023-11-14 22:13:20.005"),
        ("yyyy-MM-dd'T'HH:mm:ssXXX", "UTC", "2023-11-14T22:13:20Z"),
        ("yyyy-MM-dd'T'HH:mm:ssXXX", "Europe/Paris", "2023-11-14T23:13:20+01:00"),
        ("yy/M/d h:mm a", "UTC", "23/11/14 10:13 PM"),
        ("EEE, dd MMM yyyy HH:mm:ss Z", "UTC", "Tue, 14 Nov 2023 22:13:20 +0000"),
        ("EEEE MMMM", "UTC", "Tuesday November"),
        ("'at' HH 'o''clock'", "UTC", "at 22 o'clock"),
        ("''yyyy''", "UTC", "'2023'"),
        ("D S SS", "UTC", "318 0 00"),
        ("HH:mm X", "-05:30", "16:43 -0530"),
        ("HH:mm XX", "+05:30", "03:43 +0530"),
    ],
)
def test_timestamp_formatting(pattern: str, zone: str, expected: str) -> None:
    assert fx.timestamp_to_string(TS, pattern, zone) == expected


@pytest.mark.parametrize(
    ("text", "pattern", "zone", "expected"),
    [
        ("2023-11-14 22:13:20.005", "yyyy-MM-dd HH:mm:ss.SSS", None, TS),
        ("2023-11-14T23:13:20.005+01:00", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX", None, TS),
        ("2023-11-14 23:13:20.005", "yyyy-MM-dd HH:mm:ss.SSS", "Europe/Paris", TS),
        ("14 Nov 23 10:13:20.005 pm", "dd MMM yy hh:mm:ss.SSS a", None, TS),
        ("2023318", "yyyyD", None, 1_699_920_000_000),
        ("2023-11-14", "yyyy-MM-dd", None, 1_699_920_000_000),
    ],
)
def test_timestamp_parsing(text: str, pattern: str, zone: str | None, expected: int) -> None:
    assert fx.string_to_timestamp(text, pattern, zone) == expected


def test_pattern_errors() -> None:
    with pytest.raises(ValueError, match="unsupported letter 'G'"):
        fx.timestamp_formatter("G yyyy")
    with pytest.raises(ValueError, match="unterminated quote"):
        fx.timestamp_formatter("yyyy 'oops")
    with pytest.raises(ValueError, match="cannot parse '2023-13-01'"):
        fx.string_to_timestamp("2023-13-01", "yyyy-MM-dd")
    with pytest.raises(ValueError, match="unknown time zone"):
        fx.zone("Nowhere/Special")


@settings(max_examples=200, deadline=None)
@given(
    # From 1920: before that, zones had offsets in seconds that XXX cannot print.
    st.integers(-1_577_923_200_000, 253_402_300_799_999 - 86_400_000),
    st.sampled_from(["UTC", "Europe/Paris", "+05:30", "America/Sao_Paulo"]),
)
def test_format_then_parse_round_trips(ms: int, zone: str) -> None:
    pattern = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"
    text = fx.timestamp_to_string(ms, pattern, zone)
    assert fx.string_to_timestamp(text, pattern) == ms


def test_iso_parsing_and_text_forms() -> None:
    assert fx.parse_timestamp("1970-01-01") == 0
    assert fx.parse_timestamp("1970-01-01 00:00:01.5") == 1_500
    assert fx.parse_timestamp("1970-01-01T01:00:00+01:00") == 0
    assert fx.parse_timestamp("1969-12-31 23:59:59.999") == -1
    assert fx.parse_date("1970-01-02") == 1
    assert fx.parse_date("1969-12-31 12:00:00") == -1
    assert fx.parse_time("01:02:03.4") == 3_723_400
    assert fx.parse_time("01:02") == 3_720_000
    with pytest.raises(ValueError):
        fx.parse_time("25:00")
    assert fx.format_timestamp(-1) == "1969-12-31 23:59:59.999"
    assert fx.format_date(-1) == "1969-12-31"
    assert fx.format_time(3_723_400) == "01:02:03.400"
    assert datetime.fromtimestamp(0, UTC) == fx.EPOCH


def test_padding_and_substrings() -> None:
    assert fx.lpad("ab", 5, "xy") == "xyxab"
    assert fx.rpad("ab", 5, "xy") == "abxyx"
    assert fx.lpad("abcdef", 3, "x") == "abc"
    assert fx.lpad("ab", -1, "x") is None
    assert fx.lpad("ab", 5, "") is None
    assert fx.lpad("ab", 2, "") == "ab"
    assert fx.substring("hello", 2, 0) == ""
    assert fx.substring("hello", -10) == "hello"
    assert fx.initcap("mIXED case\ttabs") == "Mixed Case\tTabs"


def test_java_replacement_syntax() -> None:
    assert fx.java_replacement("$1-$2") == "\\g<1>-\\g<2>"
    assert fx.java_replacement("${name}") == "\\g<name>"
    assert fx.java_replacement("\\$5") == "$5"
    assert fx.java_replacement("a\\\\b") == "a\\\\b"
    assert fx.regexp_replace("2023-11-14", r"(\d+)-(\d+)-(\d+)", "$3/$2/$1") == "14/11/2023"
    assert fx.regexp_replace("a.b", r"\.", "\\\\") == "a\\b"
    with pytest.raises(ValueError, match="illegal group reference"):
        fx.java_replacement("$x")


def test_casts() -> None:
    assert fx.cast_integer("  12 ") == 12
    assert fx.cast_integer(-2.9) == -2
    assert fx.cast_bigint(Decimal("9.99")) == 9
    with pytest.raises(ValueError, match="out of range for INTEGER"):
        fx.cast_integer(2**31)
    with pytest.raises(ValueError, match="cannot cast nan to BIGINT"):
        fx.cast_bigint(float("nan"))
    assert fx.cast_boolean(" Yes ") is True
    assert fx.cast_boolean(0) is False
    assert fx.to_decimal(1.005, 5, 2) == Decimal("1.01")  # from the shortest repr, half up
    assert fx.to_decimal("-0.005", 5, 2) == Decimal("-0.01")
    with pytest.raises(ValueError, match="cannot cast 'NaN'"):
        fx.to_decimal("NaN", 5, 2)
    with pytest.raises(ValueError, match="decimal overflow"):
        fx.to_decimal(1000, 5, 2)
    with pytest.raises(ValueError, match="not valid UTF-8"):
        fx.cast_varchar_from_bytes(b"\xff")


def test_math_edges() -> None:
    assert fx.round_half_up(-2.5) == -3.0
    assert fx.round_half_up(Decimal("-2.5")) == Decimal("-3")
    assert fx.round_half_up(15, -1) == 20
    assert fx.round_half_up(-15, -1) == -20
    assert fx.mod(-7, 2) == -1
    assert fx.mod(7, -2) == 1
    assert fx.mod(-7.5, 2) == -1.5
    assert fx.mod(Decimal("-7.5"), 2) == Decimal("-1.5")
    with pytest.raises(ZeroDivisionError):
        fx.mod(Decimal(1), 0)
    with pytest.raises(ArithmeticError, match="out of the range of DOUBLE"):
        fx.power(10, 400)
    with pytest.raises(ArithmeticError, match="out of the range of DOUBLE"):
        fx.exp(1000)
    with pytest.raises(ArithmeticError, match="SQRT of a negative number"):
        fx.sqrt(-1)
    with pytest.raises(ArithmeticError, match="not positive"):
        fx.ln(0)
    assert fx.log(2, 1024) == 10.0
    assert fx.sign(Decimal("-0.1")) == -1
    assert fx.ceil(float("inf")) == float("inf")


def test_like_regex_escapes_metacharacters() -> None:
    assert like("a+b", "a+b")
    assert not like("aab", "a+b")
    assert like("x[1]y", "x[_]%")
    assert ilike("HeLLo", "h%O")
    assert not like("ab\nc", "ab")


def test_element_at_and_collections() -> None:
    assert fx.element_at([1, 2, 3], -3) == 1
    assert fx.element_at([1, 2, 3], -4) is None
    assert fx.element_at({"a": 1}, "b") is None
    with pytest.raises(TypeError):
        fx.element_at("text", 1)
    assert fx.cardinality({"a": 1, "b": 2}) == 2
    assert fx.array_contains([None, 1], 1)
    assert fx.concat("a", None, 1, True, Decimal("1.50")) == "a1true1.50"
    assert fx.concat_ws(None, "a") is None
    assert fx.greatest(1, 3, 2) == 3
    assert fx.least("b", "a") == "a"


def test_ksqldb_collection_json_regex_and_zone_functions() -> None:
    assert fx.map_union({"a": 1, "b": 2}, {"b": 20}) == {"a": 1, "b": 20}
    assert fx.map_union(None, {"b": 2}) == {"b": 2}
    assert fx.map_union({"a": 1}, None) == {"a": 1}
    assert fx.map_union(None, None) is None
    assert fx.generate_series(1, 3) == [1, 2, 3]
    assert fx.generate_series(3, 1) == [3, 2, 1]
    assert fx.generate_series(0, 10, 5) == [0, 5, 10]
    assert fx.generate_series(0, 9, 5) == [0, 5]
    assert fx.generate_series(2, 2) == [2]
    for start, end, step in ((1, 3, 0), (1, 3, -1), (3, 1, 1)):
        with pytest.raises(ValueError, match="GENERATE_SERIES"):
            fx.generate_series(start, end, step)
    assert fx.json_records('{"a": 1, "b": {"c": [true]}}') == {"a": "1", "b": '{"c":[true]}'}
    assert fx.json_records("[1]") is None
    assert fx.json_records("not json") is None
    assert fx.regexp_extract_all("a1b22", "[0-9]+") == ["1", "22"]
    assert fx.regexp_extract_all("k=1 j=2", "(\\w)=(\\d)", 2) == ["1", "2"]
    assert fx.regexp_extract_all("abc", "[0-9]") == []
    assert fx.regexp_extract_all("abc", "(b)", 5) == []
    assert fx.regexp_split_to_array("a1b22c", "[0-9]+") == ["a", "b", "c"]
    assert fx.regexp_split_to_array("1a1", "1") == ["", "a", ""]
    noon = 1600000000000  # 2020-09-13 12:26:40 UTC
    assert fx.convert_tz(noon, "UTC", "Asia/Kolkata") == noon + 5 * 3600000 + 30 * 60000
    assert fx.convert_tz(noon, "America/Los_Angeles", "UTC") == noon + 7 * 3600000
    assert fx.convert_tz(noon + 7, "UTC", "UTC") == noon + 7


def test_ksqldb_timestamp_and_date_arithmetic() -> None:
    noon = 1600000000000  # 2020-09-13 12:26:40 UTC
    assert fx.timestamp_add("SECONDS", 10, noon) == noon + 10_000
    assert fx.timestamp_add("minute", 2, noon) == noon + 120_000
    assert fx.timestamp_sub("DAYS", 1, noon) == noon - 86_400_000
    assert fx.timestamp_add("MONTHS", 1, noon) == 1602592000000  # 2020-10-13 12:26:40
    jan31 = 1706659200123  # 2024-01-31 00:00:00.123
    assert fx.timestamp_add("MONTHS", 1, jan31) == 1709164800123  # 2024-02-29, the last day
    assert fx.timestamp_add("YEARS", -1, jan31) == jan31 - 365 * 86_400_000
    assert fx.timestamp_add("MONTHS", -1, -86_400_000) == -32 * 86_400_000  # 1969-11-30
    with pytest.raises(ValueError, match="unknown time unit"):
        fx.timestamp_add("FORTNIGHTS", 1, noon)
    jan2 = 19724  # 2024-01-02
    assert fx.date_add("DAYS", 30, jan2) == jan2 + 30
    assert fx.date_add("MONTHS", 1, jan2) == jan2 + 31
    assert fx.date_sub("WEEKS", 1, jan2) == jan2 - 7
    with pytest.raises(ValueError, match="DATEADD"):
        fx.date_add("HOURS", 1, jan2)
    assert fx.parse_date_pattern("02.01.2024", "dd.MM.yyyy") == jan2
    assert fx.format_date_pattern(jan2, "yyyy/MM/dd") == "2024/01/02"
    assert fx.format_date_pattern(-1, "yyyy-MM-dd") == "1969-12-31"
    assert fx.unix_date(jan2) == fx.from_days(jan2) == jan2


def test_ksqldb_round_sends_ties_toward_positive_infinity() -> None:
    assert [fx.round_half_ceiling(x) for x in (2.5, -2.5, -2.6, 2.4)] == [3.0, -2.0, -3.0, 2.0]
    assert fx.round_half_ceiling(Decimal("-1.5")) == Decimal(-1)
    assert fx.round_half_ceiling(Decimal("1.5")) == Decimal(2)
    assert fx.round_half_ceiling(Decimal("-1.45"), 1) == Decimal("-1.4")
    assert fx.round_half_ceiling(-15, -1) == -10
    assert fx.round_half_ceiling(15, -1) == 20
    assert fx.round_half_ceiling(-16, -1) == -20
    assert fx.round_half_ceiling(123.456, 2) == 123.46
    assert fx.round_half_up(-2.5) == -3.0  # the default mode's SQL rule: away from zero


def test_entries_are_key_value_structs() -> None:
    assert fx.entries({"b": 2, "a": 1}, True) == [{"K": "a", "V": 1}, {"K": "b", "V": 2}]
    assert fx.entries({"b": 2, "a": None}, False) == [{"K": "b", "V": 2}, {"K": "a", "V": None}]
    assert fx.entries({}, None) == []
