"""User regular expressions, compiled by RE2 (`google-re2`): matching runs in linear time.

Python's `re` backtracks and holds the GIL while it does, so one pattern such as `(a+)+b`
on a long value would freeze the whole pod, health endpoints included. Every pattern a user
writes (a literal in the query, or a pattern carried by record data) goes through here. RE2
refuses back-references and look-around; the error says so instead of running something else.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print every refused pattern to stderr


class RegexError(ValueError):
    """A pattern RE2 does not accept."""


def compile_regex(pattern: str) -> Any:
    """The RE2 program of `pattern`, or RegexError naming what RE2 refused."""
    try:
        return re2.compile(pattern, options=_OPTIONS)
    except re2.error as error:
        detail = error.args[0] if error.args else error
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise RegexError(
            f"invalid regular expression '{pattern}': {detail} "
            "(patterns run on RE2: no back-references or look-around)"
        ) from None


@lru_cache(maxsize=256)
def cached_regex(pattern: str) -> Any:
    """`compile_regex` for patterns that arrive with records, cached."""
    return compile_regex(pattern)
