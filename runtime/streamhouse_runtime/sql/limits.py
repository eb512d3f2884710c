"""Checks that run before the parser sees a SQL text, so hostile input fails fast and cleanly.

sqlglot's parser is recursive: each nesting level costs a dozen Python frames, so a deep
enough text would hit RecursionError. The scan below is linear and allocation-free.
"""

from __future__ import annotations

import re

from streamhouse_runtime.sql.errors import ErrorCode, SqlError

MAX_SQL_BYTES = 262_144  # the CRD's spec.sql maxLength
MAX_NESTING = 32


def small_int(text: str, max_digits: int = 18) -> int | None:
    """`text` as an int when it is at most `max_digits` ASCII digits, else None.

    Not str.isdigit() + int(): that accepts superscripts int() rejects, and int() refuses
    (ValueError) strings of more than 4,300 digits.
    """
    if 0 < len(text) <= max_digits and text.isascii() and text.isdigit():
        return int(text)
    return None


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of a character offset. Lines end at \r\n, \n or a lone \r,
    as the tokenizer counts them, so every error of one text uses the same lines."""
    offset = max(0, min(offset, len(text)))
    line, start = 1, 0
    for found in _LINE_BREAK.finditer(text, 0, offset):
        line, start = line + 1, found.end()
    return line, offset - start + 1


def check_limits(text: str) -> SqlError | None:
    """The first limit the text breaks, or None."""
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_SQL_BYTES:
        return SqlError(
            ErrorCode.INPUT_TOO_LARGE,
            f"SQL text is {size} bytes; the limit is {MAX_SQL_BYTES}",
            1,
            1,
        )
    if not text.strip():
        return SqlError(ErrorCode.EMPTY_INPUT, "no SQL statement found", 1, 1)
    for offset, char in enumerate(text):
        if char == "\x00" or "\ud800" <= char <= "\udfff" or char == "\ufffd":
            line, column = position(text, offset)
            return SqlError(
                ErrorCode.INVALID_CHARACTERS,
                f"invalid character U+{ord(char):04X} (the text is not valid UTF-8 SQL)",
                line,
                column,
            )
    return _check_nesting(text)


def _check_nesting(text: str) -> SqlError | None:
    depth = 0
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if char in "'\"`":
            end = text.find(char, index + 1)
            index = length if end < 0 else end + 1
            continue
        if char == "-" and text.startswith("--", index):
            end = text.find("\n", index)
            index = length if end < 0 else end + 1
            continue
        if char == "/" and text.startswith("/*", index):
            end = text.find("*/", index + 2)
            index = length if end < 0 else end + 2
            continue
        if char in "([{":
            depth += 1
            if depth > MAX_NESTING:
                line, column = position(text, index)
                return SqlError(
                    ErrorCode.NESTING_TOO_DEEP,
                    f"expression nested deeper than {MAX_NESTING} levels",
                    line,
                    column,
                )
        elif char in ")]}":
            depth = max(0, depth - 1)
        index += 1
    return None
