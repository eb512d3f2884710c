"""Temporal text: the one parser and formatter of Java DateTimeFormatter patterns, and the
ISO forms of TIMESTAMP, DATE and TIME text.

Used by the sources' `timestamp_format` (io/serde.py) and by the SQL functions
(TIMESTAMPTOSTRING, STRINGTOTIMESTAMP, DATE_FORMAT, CASTs in exec/functions.py), so a pattern
and a text mean the same thing everywhere.

Patterns follow Java's `DateTimeFormatter` for these letters: `y`/`u` (year: `yyyy` four
digits, `yy` the two-digit reduced year with base 2000, so `99` is 2099 as in Java; `y` or
`yyy` any number of digits), `M` (M, MM, MMM = Jan, MMMM = January), `d`, `D` (day of year),
`H`, `h` (1-12), `a` (AM/PM), `m`, `s`, `S` (fraction, exactly one digit per letter), `E`
(EEE = Mon, EEEE = Monday), `Z` (+0000), `X`/`XX`/`XXX` (Z or +01 / +0100 / +01:00) and
`x`/`xx`/`xxx` (the same without `Z` for zero); an offset is read in any of `Z`, `+01`,
`+0100` and `+01:00`. Text in single quotes is literal (`''` is a quote) and other non-letters
are literal. Any other letter is rejected when the pattern is compiled. No zone in the text
means the zone given (UTC unless a function names one).

DATE text (CAST, DATE columns of JSON/DELIMITED/AVRO sources): a text of digits is days since
the epoch (the number ksqlDB writes); `yyyy-MM-dd`; or a timestamp text (`2024-01-02T03:00:00`,
`2024-01-02 03:00:00+01:00`), which gives the UTC date of that instant.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MS_PER_DAY: Final = 86_400_000
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DATE: Final = date(1970, 1, 1)
_ONE_MS: Final = timedelta(milliseconds=1)
_DIGITS: Final = re.compile(r"[+-]?\d+")


# -- ISO text ------------------------------------------------------------------------------


def _epoch_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // _ONE_MS


def parse_timestamp(text: str) -> int:
    """ISO-8601 'YYYY-MM-DD[( |T)HH:MM[:SS[.fff]]][Z|±HH:MM]' to epoch ms; no zone means UTC."""
    try:
        return _epoch_ms(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise ValueError(f"cannot parse '{text}' as a TIMESTAMP") from None


def parse_date(text: str) -> int:
    """DATE text to days since the epoch: digits are the days themselves, 'YYYY-MM-DD', or a
    timestamp text, whose instant's UTC date it is."""
    stripped = text.strip()
    if _DIGITS.fullmatch(stripped):
        return int(stripped)
    try:
        if len(stripped) == 10:
            return (date.fromisoformat(stripped) - _EPOCH_DATE).days
        return _epoch_ms(datetime.fromisoformat(stripped)) // MS_PER_DAY
    except ValueError:
        raise ValueError(f"cannot parse '{text}' as a DATE") from None


_TIME_TEXT = re.compile(r"\s*(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?\s*")


def parse_time(text: str) -> int:
    """'HH:MM[:SS[.fff]]' to milliseconds of the day."""
    match = _TIME_TEXT.fullmatch(text)
    if match is None:
        raise ValueError(f"cannot parse '{text}' as a TIME")
    hour, minute = int(match[1]), int(match[2])
    second = int(match[3] or 0)
    millis = int((match[4] or "0").ljust(3, "0")[:3])
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"cannot parse '{text}' as a TIME")
    return ((hour * 60 + minute) * 60 + second) * 1000 + millis


# -- Java patterns -------------------------------------------------------------------------


@lru_cache(maxsize=128)
def zone(name: str) -> tzinfo:
    """A time zone by IANA name ('Europe/Paris'), 'UTC'/'Z', or fixed offset ('+02:00')."""
    text = name.strip()
    if text.upper() in ("UTC", "Z", "GMT"):
        return UTC
    offset = re.fullmatch(r"(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?", text)
    if offset:
        minutes = int(offset[2]) * 60 + int(offset[3] or 0)
        return timezone(timedelta(minutes=-minutes if offset[1] == "-" else minutes))
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone '{name}'") from None


_MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
]  # fmt: skip
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_SUPPORTED_LETTERS = "yuMdDHhamsSEZXx"


def _tokens(pattern: str) -> list[tuple[str, int] | str]:
    """Split a Java pattern into (letter, count) fields and literal strings."""
    tokens: list[tuple[str, int] | str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "'":
            if pattern.startswith("''", index):  # '' outside quotes is a quote
                tokens.append("'")
                index += 2
                continue
            text: list[str] = []
            index += 1
            while True:
                if index >= len(pattern):
                    raise ValueError(f"unterminated quote in pattern '{pattern}'")
                if pattern[index] == "'":
                    if pattern.startswith("''", index):  # '' inside quotes too
                        text.append("'")
                        index += 2
                        continue
                    index += 1
                    break
                text.append(pattern[index])
                index += 1
            tokens.append("".join(text))
            continue
        if char.isascii() and char.isalpha():
            if char not in _SUPPORTED_LETTERS:
                raise ValueError(f"unsupported letter '{char}' in pattern '{pattern}'")
            count = 1
            while index + count < len(pattern) and pattern[index + count] == char:
                count += 1
            tokens.append(("y" if char == "u" else char, count))  # u: the proleptic year
            index += count
            continue
        tokens.append(char)
        index += 1
    return tokens


def _offset_text(moment: datetime, letter: str, count: int) -> str:
    delta = moment.utcoffset() or timedelta(0)
    minutes = int(delta.total_seconds()) // 60
    if letter == "X" and minutes == 0:
        return "Z"  # x writes +00 instead
    sign_char = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    if letter == "Z" or count == 2:
        return f"{sign_char}{hours:02d}{mins:02d}"
    if count == 1:
        return f"{sign_char}{hours:02d}" + (f"{mins:02d}" if mins else "")
    return f"{sign_char}{hours:02d}:{mins:02d}"


def _format_field(moment: datetime, millis: int, letter: str, count: int) -> str:
    if letter == "y":
        return f"{moment.year % 100:02d}" if count == 2 else f"{moment.year:0{count}d}"
    if letter == "M":
        if count >= 4:
            return _MONTHS[moment.month - 1]
        if count == 3:
            return _MONTHS[moment.month - 1][:3]
        return f"{moment.month:0{count}d}"
    if letter == "d":
        return f"{moment.day:0{count}d}"
    if letter == "D":
        return f"{moment.timetuple().tm_yday:0{count}d}"
    if letter == "H":
        return f"{moment.hour:0{count}d}"
    if letter == "h":
        return f"{(moment.hour % 12) or 12:0{count}d}"
    if letter == "a":
        return "AM" if moment.hour < 12 else "PM"
    if letter == "m":
        return f"{moment.minute:0{count}d}"
    if letter == "s":
        return f"{moment.second:0{count}d}"
    if letter == "S":
        return f"{millis:03d}".ljust(count, "0")[:count]
    if letter == "E":
        return _DAYS[moment.weekday()] if count >= 4 else _DAYS[moment.weekday()][:3]
    return _offset_text(moment, letter, count)  # Z, X, x


TimestampFormatter = Callable[[int, tzinfo], str]
TimestampParser = Callable[[str, tzinfo], int]


@lru_cache(maxsize=128)
def timestamp_formatter(pattern: str) -> TimestampFormatter:
    """Compile a Java date pattern once into a function (epoch ms, zone) -> text."""
    tokens = _tokens(pattern)

    def format_ms(ms: int, tz: tzinfo) -> str:
        moment = (EPOCH + timedelta(milliseconds=ms)).astimezone(tz)
        millis = ms % 1000
        return "".join(
            token if isinstance(token, str) else _format_field(moment, millis, *token)
            for token in tokens
        )

    return format_ms


def _field_regex(letter: str, count: int) -> str:
    if letter == "M" and count >= 3:
        return r"(?P<Mname>[A-Za-z]+)"
    if letter == "E":
        return r"[A-Za-z]+"
    if letter == "a":
        return r"(?P<a>[AaPp][Mm])"
    if letter in "ZXx":
        return r"(?P<Z>Z|[+-]\d{2}(?::?\d{2})?)"
    if letter == "S":
        return rf"(?P<S>\d{{{count}}})"
    if letter == "y" and count != 2:
        # yyyy takes exactly four digits so that a field may follow without a separator.
        return r"(?P<y>\d{4})" if count == 4 else r"(?P<y>[+-]?\d{1,9})"
    width = rf"\d{{{count}}}" if count >= 2 else r"\d{1,3}" if letter == "D" else r"\d{1,2}"
    return f"(?P<{letter}>{width})"


@lru_cache(maxsize=128)
def timestamp_parser(pattern: str) -> TimestampParser:
    """Compile a Java date pattern once into a function (text, default zone) -> epoch ms."""
    parts: list[str] = []
    seen: set[str] = set()
    for token in _tokens(pattern):
        if isinstance(token, str):
            parts.append(re.escape(token))
            continue
        letter, count = token
        group = "Mname" if letter == "M" and count >= 3 else "Z" if letter in "ZXx" else letter
        if group in seen and letter != "E":
            raise ValueError(f"pattern '{pattern}' repeats the field '{letter}'")
        seen.add(group)
        parts.append(_field_regex(letter, count))
    compiled = re.compile("".join(parts))
    months = {name[:3].lower(): number for number, name in enumerate(_MONTHS, 1)}

    def parse(text: str, tz: tzinfo) -> int:
        match = compiled.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"cannot parse '{text}' with pattern '{pattern}'")
        fields = match.groupdict()
        year = int(fields.get("y") or 1970)
        if "y" in fields and fields["y"] is not None and len(fields["y"]) == 2:
            year += 2000  # Java's reduced two-digit year: base 2000, so 99 is 2099
        month = int(fields.get("M") or 1)
        if fields.get("Mname"):
            month = months.get((fields["Mname"] or "")[:3].lower(), 0)
        hour = int(fields.get("H") or fields.get("h") or 0)
        if fields.get("h") is not None:
            hour %= 12
            if (fields.get("a") or "am").lower() == "pm":
                hour += 12
        fraction = fields.get("S") or "0"
        micros = int(fraction.ljust(6, "0")[:6])
        offset_text = fields.get("Z")
        moment_zone = zone(offset_text) if offset_text else tz
        try:
            if fields.get("D") is not None and fields.get("d") is None:
                day = datetime(year, 1, 1) + timedelta(days=int(fields["D"] or 1) - 1)
                month, day_of_month = day.month, day.day
            else:
                day_of_month = int(fields.get("d") or 1)
            moment = datetime(
                year,
                month,
                day_of_month,
                hour,
                int(fields.get("m") or 0),
                int(fields.get("s") or 0),
                micros,
            )
        except ValueError as error:
            raise ValueError(f"cannot parse '{text}' with pattern '{pattern}': {error}") from None
        return (moment.replace(tzinfo=moment_zone) - EPOCH) // _ONE_MS

    return parse
