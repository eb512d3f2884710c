"""SQL LIKE in linear time: a pattern is split at `%` into segments matched left to right.

`%` matches any run of characters and `_` exactly one (no escape character). Matching the
first segment at the start, the last at the end and every other one at its leftmost place
is exact for such patterns (a later placement never leaves more room for what follows), so
no backtracking is needed: the cost is at most the value's length times the pattern's.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache


def _matches_at(value: str, segment: str, position: int) -> bool:
    for index, char in enumerate(segment):
        if char != "_" and value[position + index] != char:
            return False
    return True


def _find(value: str, segment: str, start: int, stop: int) -> int:
    """Leftmost position >= start where `segment` (with `_` wildcards) ends at or before
    `stop`; -1 if none."""
    if "_" not in segment:
        return value.find(segment, start, stop)
    last = stop - len(segment)
    # Look for the segment's longest literal piece first: str.find does the scanning.
    pieces = [piece for piece in segment.split("_") if piece]
    if not pieces:
        return start if start <= last else -1
    anchor = max(pieces, key=len)
    shift = segment.index(anchor)
    position = start
    while position <= last:
        found = value.find(anchor, position + shift, last + shift + len(anchor))
        if found < 0:
            return -1
        candidate = found - shift
        if _matches_at(value, segment, candidate):
            return candidate
        position = candidate + 1
    return -1


class LikePattern:
    """One compiled LIKE pattern."""

    __slots__ = ("first", "last", "middle", "minimum", "single")

    def __init__(self, pattern: str) -> None:
        segments = pattern.split("%")
        self.single = len(segments) == 1  # no `%`: the whole value must match
        self.first = segments[0]
        self.last = segments[-1]
        self.middle = [segment for segment in segments[1:-1] if segment]
        self.minimum = sum(len(segment) for segment in segments)

    def matches(self, value: str) -> bool:
        first, last = self.first, self.last
        if self.single:
            return len(value) == len(first) and _matches_at(value, first, 0)
        length = len(value)
        if length < self.minimum:
            return False
        if first and not _matches_at(value, first, 0):
            return False
        end = length - len(last)
        if last and not _matches_at(value, last, end):
            return False
        position = len(first)
        for segment in self.middle:
            found = _find(value, segment, position, end)
            if found < 0:
                return False
            position = found + len(segment)
        return True


@lru_cache(maxsize=256)
def like_pattern(pattern: str, case_insensitive: bool = False) -> LikePattern:
    return LikePattern(pattern.lower() if case_insensitive else pattern)


def like_matcher(pattern: str, case_insensitive: bool = False) -> Callable[[str], bool]:
    """A test of one string against a pattern known when the query compiles."""
    compiled = like_pattern(pattern, case_insensitive)
    if case_insensitive:
        return lambda value: compiled.matches(value.lower())
    return compiled.matches


def like(value: str, pattern: str) -> bool:
    """LIKE with a pattern that arrives with the record."""
    return like_pattern(pattern).matches(value)


def ilike(value: str, pattern: str) -> bool:
    return like_pattern(pattern, True).matches(value.lower())
