"""LIKE runs in linear time and agrees with a regular-expression reference; user regular
expressions run on RE2, and what RE2 refuses is a clear error."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamhouse_runtime.exec import functions as fx
from streamhouse_runtime.exec.like import ilike, like, like_matcher
from streamhouse_runtime.sql.regex import RegexError, compile_regex

pytestmark = pytest.mark.unit


def _reference(value: str, pattern: str) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


@settings(max_examples=2_000, deadline=None)
@given(
    st.text(alphabet="ab%_", max_size=8),
    st.text(alphabet="abc", max_size=12),
)
def test_like_agrees_with_a_regex_reference(pattern: str, value: str) -> None:
    assert like(value, pattern) is _reference(value, pattern)
    assert like_matcher(pattern)(value) is _reference(value, pattern)


def test_like_shapes() -> None:
    assert like("a+b", "a+b")
    assert not like("aab", "a+b")
    assert like("x[1]y", "x[_]%")
    assert like("ab\nc", "ab%")
    assert not like("abc", "ab")
    assert like("abcabd", "%ab_")
    assert not like("aba", "ab%ba")  # the first and the last segment may not overlap
    assert ilike("HeLLo", "h%O")
    assert like_matcher("H%o", case_insensitive=True)("hELLO")


def test_like_on_a_pathological_pattern_is_fast() -> None:
    # Python's re takes about 80 s for this on 200 characters (backtracking, GIL held).
    value = "a" * 20_000
    started = time.perf_counter()
    assert not like(value, "%a%a%a%a%a%b")
    assert not like_matcher("%a_a%a%a_%a%b")(value)
    assert time.perf_counter() - started < 1.0


def test_user_regexes_run_in_linear_time() -> None:
    started = time.perf_counter()
    assert fx.regexp_extract("a" * 50_000, "(a+)+b") is None
    assert fx.regexp_replace("a" * 50_000 + "c", "(a|aa)+c", "x") == "x"
    assert time.perf_counter() - started < 1.0


def test_regex_functions_keep_their_meaning_on_re2() -> None:
    assert fx.regexp_extract("order-123-x", r"(\d+)") == "123"
    assert fx.regexp_extract("order-123-x", r"(\d+)-(\w)", 2) == "x"
    assert fx.regexp_extract("abc", "z") is None
    assert fx.regexp_replace("a1b22", r"(\d+)", "<$1>") == "a<1>b<22>"


@pytest.mark.parametrize("pattern", [r"(a)\1", r"(?<=a)b", r"(?!a)b", "("])
def test_patterns_re2_refuses_are_clear_errors(pattern: str) -> None:
    with pytest.raises(RegexError, match="invalid regular expression"):
        compile_regex(pattern)
    # A pattern that arrives with a record is an error of that record (a ValueError).
    with pytest.raises(ValueError, match="RE2"):
        fx.regexp_extract("abc", pattern)
