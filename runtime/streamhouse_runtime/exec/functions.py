"""The runtime library behind compiled expressions: built-in scalar functions, casts, dates.

Everything here works on the runtime value model (TIMESTAMP = int epoch milliseconds UTC, DATE
= int days since the epoch, TIME = int milliseconds of the day, DECIMAL = `decimal.Decimal`).
Functions in `NULL_PROPAGATING` receive no NULL argument: the expression compiler checks the
arguments inline before calling them, so the functions themselves stay free of None checks.
Errors are raised as plain `ValueError`/`TypeError`; the compiled evaluator wraps them into
`EvaluationError`.

Date/time patterns (TIMESTAMPTOSTRING, STRINGTOTIMESTAMP, DATE_FORMAT) and the text forms of
TIMESTAMP, DATE and TIME are those of `io/temporal.py`, the one Java DateTimeFormatter parser
the sources' `timestamp_format` uses too.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import random as _random
import re
import uuid as _uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_DOWN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    InvalidOperation,
)
from decimal import DivisionByZero as DecimalDivisionByZero
from decimal import Overflow as DecimalOverflow
from functools import lru_cache
from typing import Any, cast

from streamhouse_runtime.io import temporal
from streamhouse_runtime.sql.jsonpath import ENCODINGS as _ENCODINGS
from streamhouse_runtime.sql.jsonpath import json_path
from streamhouse_runtime.sql.regex import cached_regex
from streamhouse_runtime.sql.types import NULL as NULL_TYPE
from streamhouse_runtime.sql.types import SqlType, TypeKind

# The temporal text functions live in io/temporal.py, the one parser that sources use too;
# compiled expressions and tests reach them as fx.<name>.
EPOCH = temporal.EPOCH
MS_PER_DAY = temporal.MS_PER_DAY
TimestampFormatter = temporal.TimestampFormatter
TimestampParser = temporal.TimestampParser
parse_date = temporal.parse_date
parse_time = temporal.parse_time
parse_timestamp = temporal.parse_timestamp
timestamp_formatter = temporal.timestamp_formatter
timestamp_parser = temporal.timestamp_parser
zone = temporal.zone
_EPOCH_DATE = date(1970, 1, 1)

# Wide enough that no intermediate result of DECIMAL(38, s) arithmetic is rounded (a product
# of two 38-digit values has 76 digits) and that quantizing any result that fits DECIMAL(38)
# succeeds; the final quantize to the declared scale is the only rounding, half-up like SQL's.
# Digits cost only when a value has them, so the headroom is free for ordinary values.
DECIMAL_CONTEXT = Context(
    prec=100,
    rounding=ROUND_HALF_UP,
    Emax=999_999,
    Emin=-999_999,
    traps=[InvalidOperation, DecimalDivisionByZero, DecimalOverflow],
)

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


# -- decimals -------------------------------------------------------------------------------


def decimal_quantum(scale: int) -> Decimal:
    """The exponent `quantize` needs for `scale` digits after the point: 0.01 for 2."""
    return Decimal(1).scaleb(-scale)


def decimal_limit(precision: int, scale: int) -> Decimal:
    """Exclusive bound on the magnitude of a DECIMAL(precision, scale) value."""
    return Decimal(10) ** (precision - scale)


def decimal_remainder(dividend: Decimal | int, divisor: Decimal | int) -> Decimal:
    """DECIMAL %: the sign of the dividend; a zero divisor is a division by zero (Decimal
    reports it as an invalid operation)."""
    if not divisor:
        raise ZeroDivisionError("division by zero")
    return DECIMAL_CONTEXT.remainder(dividend, divisor)


def decimal_overflow(value: Decimal, precision: int, scale: int) -> Decimal:
    """Raise for a result that does not fit its declared DECIMAL type (called rarely)."""
    raise ValueError(f"decimal overflow: {value} does not fit DECIMAL({precision},{scale})")


def to_decimal(value: object, precision: int, scale: int) -> Decimal:
    """Convert a number (or numeric text) to DECIMAL(precision, scale), rounding half-up."""
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, bool):
        number = Decimal(int(value))
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot convert {value} to DECIMAL({precision},{scale})")
        # repr() is the shortest text that round-trips: 2.675 rounds to 2.68, as users expect,
        # rather than from its binary expansion 2.67499999...
        number = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"cannot cast '{value}' to DECIMAL({precision},{scale})") from None
        if not number.is_finite():
            raise ValueError(f"cannot cast '{value}' to DECIMAL({precision},{scale})")
    else:
        raise TypeError(f"cannot convert {type(value).__name__} to DECIMAL({precision},{scale})")
    result = DECIMAL_CONTEXT.quantize(number, decimal_quantum(scale))
    # Through the wide context: the builtin abs() would round to the default 28 digits.
    if DECIMAL_CONTEXT.abs(result) >= decimal_limit(precision, scale):
        decimal_overflow(result, precision, scale)
    return result


# -- text forms of values -------------------------------------------------------------------


def format_timestamp(ms: int) -> str:
    """TIMESTAMP as text: 'YYYY-MM-DD HH:MM:SS.fff' (UTC)."""
    moment = EPOCH + timedelta(milliseconds=ms)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{ms % 1000:03d}"


def format_date(days: int) -> str:
    return (_EPOCH_DATE + timedelta(days=days)).isoformat()


def format_time(ms: int) -> str:
    seconds, millis = divmod(ms % MS_PER_DAY, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}"


def to_string(value: object) -> str:
    """SQL text of a non-NULL value whose type is not known statically (CONCAT, `||`)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


# -- casts (argument never NULL) ------------------------------------------------------------

_TRUE_TEXT = frozenset({"true", "t", "yes", "y", "1"})
_FALSE_TEXT = frozenset({"false", "f", "no", "n", "0"})


def cast_boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE_TEXT:
            return True
        if lowered in _FALSE_TEXT:
            return False
        raise ValueError(f"cannot cast '{value}' to BOOLEAN")
    if isinstance(value, int | float | Decimal):
        return value != 0
    raise TypeError(f"cannot cast {type(value).__name__} to BOOLEAN")


def _cast_integral(value: object, name: str, bounds: tuple[int, int]) -> int:
    if isinstance(value, bool):
        result = int(value)
    elif isinstance(value, int):
        result = value
    elif isinstance(value, float | Decimal):
        try:
            result = int(value)  # SQL casts truncate toward zero
        except (ValueError, OverflowError):  # NaN, infinities
            raise ValueError(f"cannot cast {value} to {name}") from None
    elif isinstance(value, str):
        text = value.strip()
        try:
            result = int(text)
        except ValueError:
            raise ValueError(f"cannot cast '{value}' to {name}") from None
    else:
        raise TypeError(f"cannot cast {type(value).__name__} to {name}")
    if not bounds[0] <= result <= bounds[1]:
        raise ValueError(f"{result} is out of range for {name}")
    return result


def cast_integer(value: object) -> int:
    return _cast_integral(value, "INTEGER", INT32)


def cast_bigint(value: object) -> int:
    return _cast_integral(value, "BIGINT", INT64)


def cast_double(value: object) -> float:
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise ValueError(f"cannot cast '{value}' to DOUBLE") from None
    if isinstance(value, int | float | Decimal):
        return float(value)
    raise TypeError(f"cannot cast {type(value).__name__} to DOUBLE")


def cast_timestamp(value: object) -> int:
    if isinstance(value, str):
        return parse_timestamp(value)
    if isinstance(value, bool):
        raise TypeError("cannot cast BOOLEAN to TIMESTAMP")
    if isinstance(value, int | float | Decimal):
        return int(value)
    raise TypeError(f"cannot cast {type(value).__name__} to TIMESTAMP")


def cast_date(value: object) -> int:
    if isinstance(value, str):
        return parse_date(value)
    raise TypeError(f"cannot cast {type(value).__name__} to DATE")


def cast_time(value: object) -> int:
    if isinstance(value, str):
        return parse_time(value)
    raise TypeError(f"cannot cast {type(value).__name__} to TIME")


def cast_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"cannot cast {type(value).__name__} to BYTES")


def cast_varchar_from_bytes(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("cannot cast BYTES to VARCHAR: not valid UTF-8") from None


# -- strings --------------------------------------------------------------------------------

_WORD = re.compile(r"\S+")


def initcap(value: str) -> str:
    """Upper-case the first letter of every whitespace-separated word, lower-case the rest."""
    return _WORD.sub(lambda m: m.group(0)[:1].upper() + m.group(0)[1:].lower(), value)


def substring(value: str, position: int, length: int | None = None) -> str | None:
    """1-based SUBSTRING; a negative position counts from the end, 0 behaves like 1."""
    if position > 0:
        start = position - 1
    elif position < 0:
        start = max(len(value) + position, 0)
    else:
        start = 0
    if length is None:
        return value[start:]
    if length < 0:
        return None
    return value[start : start + length]


def concat(*values: object) -> str:
    """ksqlDB CONCAT: NULL arguments are skipped (treated as empty text)."""
    return "".join(to_string(v) for v in values if v is not None)


def concat_ws(separator: str | None, *values: object) -> str | None:
    """CONCAT_WS: NULL when the separator is NULL, NULL values are skipped."""
    if separator is None:
        return None
    return separator.join(to_string(v) for v in values if v is not None)


def lpad(value: str, length: int, padding: str) -> str | None:
    if length < 0 or (not padding and length > len(value)):
        return None
    if length <= len(value):
        return value[:length]
    missing = length - len(value)
    return (padding * (missing // len(padding) + 1))[:missing] + value


def rpad(value: str, length: int, padding: str) -> str | None:
    if length < 0 or (not padding and length > len(value)):
        return None
    if length <= len(value):
        return value[:length]
    missing = length - len(value)
    return value + (padding * (missing // len(padding) + 1))[:missing]


def split(value: str, delimiter: str) -> list[str]:
    """SPLIT: an empty delimiter splits into characters (ksqlDB)."""
    if not delimiter:
        return list(value)
    return value.split(delimiter)


def instr(value: str, search: str, position: int = 1, occurrence: int = 1) -> int:
    """INSTR(s, sub [, position [, occurrence]]): 1-based position of the `occurrence`-th
    `sub` from `position`; a negative position counts from the end and searches backward.
    0 when absent (or for a position of 0 or an occurrence below 1)."""
    if position == 0 or occurrence < 1:
        return 0
    if position > 0:
        found = position - 2
        for _ in range(occurrence):
            found = value.find(search, found + 1)
            if found < 0:
                return 0
        return found + 1
    end = len(value) + position  # 0-based index of the first character the search may start at
    if end < 0:
        return 0
    found = end + 1
    for _ in range(occurrence):
        found = value.rfind(search, 0, found - 1 + len(search))
        if found < 0:
            return 0
    return found + 1


def chr_of(code: int | str) -> str | None:
    """CHR(75) or CHR('\\u004b'): the character of a Unicode code point; NULL when invalid."""
    if isinstance(code, int):
        return chr(code) if 0 <= code <= 0x10FFFF else None
    if re.fullmatch(r"(\\u[0-9a-fA-F]{4}){1,2}", code) is None:
        return None
    units = [int(code[i + 2 : i + 6], 16) for i in range(0, len(code), 6)]
    text = "".join(map(chr, units)).encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text if len(text) == 1 and text != "\ufffd" else None


MASK_DEFAULTS = ("X", "x", "n", "-")


def _mask(value: str, replacements: Sequence[str | None]) -> str:
    """ksqlDB's masker: upper-case letters, lower-case letters, digits and every other
    character each become their replacement; a NULL replacement leaves those unmasked."""
    chosen: list[str | None] = [r if r is None else r[:1] for r in replacements]
    chosen.extend(MASK_DEFAULTS[len(chosen) :])
    upper, lower, digit, other = chosen
    out: list[str] = []
    for char in value:
        if char.isupper():
            replacement = upper
        elif char.islower():
            replacement = lower
        elif char.isdigit():
            replacement = digit
        else:
            replacement = other
        out.append(char if replacement is None else replacement)
    return "".join(out)


def mask(value: str, *replacements: str | None) -> str:
    """MASK(s [, upper, lower, digit, other]): every character masked."""
    return _mask(value, replacements)


def _mask_count(count: int) -> int:
    if count < 0:
        raise ValueError(f"the number of characters to mask or keep must be >= 0, got {count}")
    return count


def mask_left(value: str, count: int, *replacements: str | None) -> str:
    """MASK_LEFT(s, n, ...): the first n characters masked."""
    count = _mask_count(count)
    return _mask(value[:count], replacements) + value[count:]


def mask_right(value: str, count: int, *replacements: str | None) -> str:
    """MASK_RIGHT(s, n, ...): the last n characters masked."""
    cut = max(len(value) - _mask_count(count), 0)
    return value[:cut] + _mask(value[cut:], replacements)


def mask_keep_left(value: str, count: int, *replacements: str | None) -> str:
    """MASK_KEEP_LEFT(s, n, ...): all but the first n characters masked."""
    count = _mask_count(count)
    return value[:count] + _mask(value[count:], replacements)


def mask_keep_right(value: str, count: int, *replacements: str | None) -> str:
    """MASK_KEEP_RIGHT(s, n, ...): all but the last n characters masked."""
    cut = max(len(value) - _mask_count(count), 0)
    return _mask(value[:cut], replacements) + value[cut:]


def uuid() -> str:
    """UUID(): a random (version 4) UUID in its 36-character text form."""
    return str(_uuid.uuid4())


def _decode_text(value: str, encoding: str) -> bytes:
    if encoding == "hex":
        digits = value[2:] if value[:2] in ("0x", "0X") else value
        return bytes.fromhex(("0" + digits) if len(digits) % 2 else digits)
    if encoding == "utf8":
        return value.encode("utf-8")
    if encoding == "ascii":
        return value.encode("ascii")
    return base64.b64decode(value, validate=True)


def _encode_bytes(data: bytes, encoding: str) -> str:
    if encoding == "hex":
        return data.hex()
    if encoding == "utf8":
        return data.decode("utf-8")
    if encoding == "ascii":
        return data.decode("ascii")
    return base64.b64encode(data).decode("ascii")


def encode(value: str, input_encoding: str, output_encoding: str) -> str:
    """ENCODE(s, from, to): text re-encoded between hex, utf8, ascii and base64."""
    source, target = input_encoding.lower(), output_encoding.lower()
    for name in (source, target):
        if name not in _ENCODINGS:
            raise ValueError(
                f"ENCODE: unknown encoding '{name[:40]}' (one of {', '.join(_ENCODINGS)})"
            )
    try:
        return _encode_bytes(_decode_text(value, source), target)
    except (ValueError, UnicodeError, binascii.Error):
        raise ValueError(f"ENCODE: the input is not valid {source} for {target}") from None


def split_to_map(value: str, entry_delimiter: str, kv_delimiter: str) -> dict[str, str] | None:
    """SPLIT_TO_MAP(s, entry, kv): entries without the kv delimiter are skipped, a repeated
    key keeps its last value; empty delimiters give NULL."""
    if not entry_delimiter or not kv_delimiter:
        return None
    result: dict[str, str] = {}
    for entry in value.split(entry_delimiter):
        key, found, item = entry.partition(kv_delimiter)
        if found:
            result[key] = item
    return result


def regex(pattern: str) -> Any:
    """Compiled RE2 pattern, cached: for patterns that are not literals of the query."""
    return cached_regex(pattern)


def regexp_extract_compiled(compiled: Any, value: str, group: int = 0) -> str | None:
    match = compiled.search(value)
    if match is None or not 0 <= group <= compiled.groups:
        return None
    found: str | None = match.group(group)
    return found


def regexp_extract(value: str, pattern: str, group: int = 0) -> str | None:
    """First match of `pattern` in `value` (or its `group`); NULL when nothing matches."""
    return regexp_extract_compiled(regex(pattern), value, group)


def regexp_extract_all(value: str, pattern: str, group: int = 0) -> list[str | None]:
    """REGEXP_EXTRACT_ALL: every match of `pattern` in `value` (or of its `group`), in order;
    an empty array when nothing matches."""
    compiled = regex(pattern)
    if not 0 <= group <= compiled.groups:
        return []
    return [match.group(group) for match in compiled.finditer(value)]


def regexp_split_to_array(value: str, pattern: str) -> list[str]:
    """REGEXP_SPLIT_TO_ARRAY(s, pattern): the parts of `s` between matches (empty parts kept)."""
    parts: list[str] = regex(pattern).split(value)
    return parts


@lru_cache(maxsize=256)
def java_replacement(replacement: str) -> str:
    """Java's replacement syntax ($1, ${name}, \\$) as a Python `re.sub` template."""
    out: list[str] = []
    index = 0
    while index < len(replacement):
        char = replacement[index]
        if char == "\\" and index + 1 < len(replacement):
            out.append(replacement[index + 1].replace("\\", "\\\\"))
            index += 2
            continue
        if char == "$":
            named = re.match(r"\{(\w+)\}", replacement[index + 1 :])
            if named:
                out.append(f"\\g<{named[1]}>")
                index += 1 + named.end()
                continue
            digits = re.match(r"\d+", replacement[index + 1 :])
            if digits:
                out.append(f"\\g<{digits[0]}>")
                index += 1 + digits.end()
                continue
            raise ValueError(f"illegal group reference in replacement '{replacement}'")
        out.append("\\\\" if char == "\\" else char)
        index += 1
    return "".join(out)


def regexp_replace_compiled(compiled: Any, value: str, replacement: str) -> str:
    replaced: str = compiled.sub(java_replacement(replacement), value)
    return replaced


def regexp_replace(value: str, pattern: str, replacement: str) -> str:
    """Replace every match; the replacement uses Java's `$1` group references."""
    return regexp_replace_compiled(regex(pattern), value, replacement)


# -- math -----------------------------------------------------------------------------------

Number = int | float | Decimal


def ceil(value: Number) -> Number:
    if isinstance(value, Decimal):
        return value.to_integral_value(rounding=ROUND_CEILING)
    if isinstance(value, float):
        return float(math.ceil(value)) if math.isfinite(value) else value
    return value


def floor(value: Number) -> Number:
    if isinstance(value, Decimal):
        return value.to_integral_value(rounding=ROUND_FLOOR)
    if isinstance(value, float):
        return float(math.floor(value)) if math.isfinite(value) else value
    return value


def round_half_ceiling(value: Number, digits: int = 0) -> Number:
    """ksqlDB's ROUND: a tie goes toward positive infinity (ROUND(-2.5) is -2, ROUND(2.5) 3),
    for every numeric type (its `Math.round`, HALF_UP above 0 and HALF_DOWN below)."""
    if isinstance(value, bool):
        raise TypeError("cannot ROUND a BOOLEAN")
    if isinstance(value, int):
        if digits >= 0:
            return value
        unit: int = 10**-digits
        return (value + unit // 2) // unit * unit
    if isinstance(value, float):
        if not math.isfinite(value):
            return value
        return float(round_half_ceiling(Decimal(repr(value)), digits))
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and digits >= -exponent:
        return value
    mode = ROUND_HALF_UP if value > 0 else ROUND_HALF_DOWN
    result: Decimal = value.quantize(
        Decimal(1).scaleb(-digits), rounding=mode, context=DECIMAL_CONTEXT
    )
    return result


def round_half_up(value: Number, digits: int = 0) -> Number:
    """SQL ROUND: half away from zero for every numeric type (Python's round() is banker's)."""
    if isinstance(value, bool):
        raise TypeError("cannot ROUND a BOOLEAN")
    if isinstance(value, int):
        if digits >= 0:
            return value
        unit: int = 10**-digits
        rounded = (abs(value) + unit // 2) // unit * unit
        return rounded if value >= 0 else -rounded
    if isinstance(value, float):
        if not math.isfinite(value):
            return value
        return float(round_half_up(Decimal(repr(value)), digits))
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and digits >= -exponent:
        return value  # no digit to drop (and no quantize to a huge number of places)
    result: Decimal = DECIMAL_CONTEXT.quantize(value, Decimal(1).scaleb(-digits))
    return result


# One rule for every numeric function, as for arithmetic (standard SQL's data exceptions): an
# argument outside the function's domain, or a result no finite DOUBLE holds, is an error of
# the record (dead-lettered with the reason), never a NaN or an infinity in the output.
def _finite(value: float, what: str) -> float:
    if math.isfinite(value):
        return value
    raise ArithmeticError(f"{what} is out of the range of DOUBLE")


def sqrt(value: Number) -> float:
    number = float(value)
    if number < 0:
        raise ArithmeticError(f"SQRT of a negative number ({value})")
    return math.sqrt(number)


def power(base: Number, exponent: Number) -> float:
    try:
        result = math.pow(float(base), float(exponent))
    except OverflowError:
        raise ArithmeticError(f"POWER({base}, {exponent}) is out of the range of DOUBLE") from None
    except (ValueError, ZeroDivisionError):  # a negative base with a fractional exponent, 0^-1
        raise ArithmeticError(f"POWER({base}, {exponent}) is undefined") from None
    return _finite(result, f"POWER({base}, {exponent})")


def exp(value: Number) -> float:
    try:
        return _finite(math.exp(float(value)), f"EXP({value})")
    except OverflowError:
        raise ArithmeticError(f"EXP({value}) is out of the range of DOUBLE") from None


def ln(value: Number) -> float:
    number = float(value)
    if number > 0:
        return _finite(math.log(number), f"LN({value})")
    raise ArithmeticError(f"LN of a number that is not positive ({value})")


def log(first: Number, second: Number | None = None) -> float:
    """LOG(x) is base 10; LOG(base, x) takes the base first."""
    if second is None:
        number = float(first)
        if number > 0:
            return _finite(math.log10(number), f"LOG({first})")
        raise ArithmeticError(f"LOG of a number that is not positive ({first})")
    base = float(first)
    if base == 10:  # exact for powers of ten, unlike ln(x) / ln(10)
        return log(second)
    if base <= 0 or base == 1:
        raise ArithmeticError(f"LOG with base {first}")
    if base == 2 and float(second) > 0:
        return math.log2(float(second))
    return ln(second) / ln(first)


def _double(name: str, function: Callable[[float], float]) -> Callable[[Number], float]:
    """A DOUBLE function of one number: out of its domain, or beyond DOUBLE, is an error."""

    def call(value: Number) -> float:
        try:
            result = function(float(value))
        except OverflowError:
            raise ArithmeticError(f"{name}({value}) is out of the range of DOUBLE") from None
        except (ValueError, ZeroDivisionError):
            raise ArithmeticError(f"{name}({value}) is undefined") from None
        return _finite(result, f"{name}({value})")

    call.__name__ = name.lower()
    return call


def _cot(value: float) -> float:
    tangent = math.tan(value)
    if tangent == 0:
        raise ZeroDivisionError
    return 1 / tangent


sin = _double("SIN", math.sin)
cos = _double("COS", math.cos)
tan = _double("TAN", math.tan)
cot = _double("COT", _cot)
asin = _double("ASIN", math.asin)  # math raises ValueError outside [-1, 1]
acos = _double("ACOS", math.acos)
atan = _double("ATAN", math.atan)
sinh = _double("SINH", math.sinh)
cosh = _double("COSH", math.cosh)
tanh = _double("TANH", math.tanh)
degrees = _double("DEGREES", math.degrees)
radians = _double("RADIANS", math.radians)


def _cbrt(value: float) -> float:
    root = math.cbrt(value)
    nearest = round(root)  # libm's cube root can miss an exact one: cbrt(27) = 3.0000000000000004
    return float(nearest) if nearest**3 == value else root


cbrt = _double("CBRT", _cbrt)


def atan2(y: Number, x: Number) -> float:
    """ATAN2(y, x): the angle of the point (x, y), in radians (ATAN2(0, 0) is 0, as in Java)."""
    return math.atan2(float(y), float(x))


def pi() -> float:
    return math.pi


def random() -> float:
    """RANDOM(): a DOUBLE in [0.0, 1.0), drawn for every record."""
    return _random.random()


def _scaled(value: Number, digits: int, rounding: str) -> Number:
    """CEIL/FLOOR/TRUNC to `digits` places (negative: to tens, hundreds...)."""
    if isinstance(value, bool):
        raise TypeError("cannot round a BOOLEAN")
    if isinstance(value, int):
        if digits >= 0:
            return value
        return int(Decimal(value).scaleb(digits).to_integral_value(rounding).scaleb(-digits))
    if isinstance(value, float):
        if not math.isfinite(value):
            return value
        scaled = float(_scaled(Decimal(repr(value)), digits, rounding))
        return _finite(scaled, f"{value} to {digits} decimal places")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and digits >= -exponent:
        return value  # no digit to drop (and no quantize to a huge number of places)
    quantum = Decimal(1).scaleb(-digits)
    result: Decimal = value.quantize(quantum, rounding=rounding, context=DECIMAL_CONTEXT)
    return result


def ceil_scaled(value: Number, digits: int) -> Number:
    return _scaled(value, digits, ROUND_CEILING)


def floor_scaled(value: Number, digits: int) -> Number:
    return _scaled(value, digits, ROUND_FLOOR)


def trunc(value: Number, digits: int = 0) -> Number:
    """TRUNC(x[, scale]): toward zero, to `scale` places."""
    return _scaled(value, digits, ROUND_DOWN)


def integer_overflow(value: int, type_name: str) -> int:
    """Called by generated code when an INTEGER or BIGINT result leaves its type."""
    raise ArithmeticError(f"integer overflow: {value} is out of the range of {type_name}")


def double_overflow(value: float) -> float:
    """Called by generated code when a DOUBLE result is not a finite number."""
    if math.isnan(value):
        raise ArithmeticError("the DOUBLE result is not a number")
    raise ArithmeticError("DOUBLE overflow: the result is out of the range of DOUBLE")


def sign(value: Number) -> int:
    return (value > 0) - (value < 0)


def mod(dividend: Number, divisor: Number) -> Number:
    """MOD / %: the result has the sign of the dividend; a zero divisor is an error."""
    if isinstance(dividend, float) or isinstance(divisor, float):
        if divisor == 0:
            raise ZeroDivisionError("division by zero")
        return math.fmod(float(dividend), float(divisor))
    if isinstance(dividend, Decimal) or isinstance(divisor, Decimal):
        return decimal_remainder(dividend, divisor)
    remainder = abs(dividend) % abs(divisor)
    return remainder if dividend >= 0 else -remainder


# -- time -----------------------------------------------------------------------------------


def timestamp_to_string(ms: int, pattern: str, tz: str | None = None) -> str:
    """TIMESTAMPTOSTRING(ts, pattern[, zone]): format epoch ms with a Java pattern."""
    return timestamp_formatter(pattern)(ms, UTC if tz is None else zone(tz))


_DAY_MS = 86_400_000
_UNIT_MS = {
    "MILLISECOND": 1,
    "SECOND": 1000,
    "MINUTE": 60_000,
    "HOUR": 3_600_000,
    "DAY": _DAY_MS,
    "WEEK": 7 * _DAY_MS,
}
_UNIT_MONTHS = {"MONTH": 1, "QUARTER": 3, "YEAR": 12}


def _unit(name: str, function: str) -> str:
    unit = name.strip().upper()
    unit = unit[:-1] if unit.endswith("S") else unit
    if unit not in _UNIT_MS and unit not in _UNIT_MONTHS:
        known = "MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS, WEEKS, MONTHS, QUARTERS, YEARS"
        raise ValueError(f"{function}: unknown time unit '{name[:20]}' (one of {known})")
    return unit


def _plus_months(ms: int, months: int) -> int:
    moment = datetime.fromtimestamp(ms // 1000, UTC)
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    days_in_month = (following - date(year, month, 1)).days
    moved = moment.replace(year=year, month=month, day=min(moment.day, days_in_month))
    return int(moved.timestamp()) * 1000 + ms % 1000


def timestamp_add(unit: str, amount: int, ms: int) -> int:
    """TIMESTAMPADD(unit, n, ts): ts moved by n units (a month or year keeps the day of the
    month where it exists, else the month's last day)."""
    name = _unit(unit, "TIMESTAMPADD")
    if name in _UNIT_MONTHS:
        return _plus_months(ms, amount * _UNIT_MONTHS[name])
    return ms + amount * _UNIT_MS[name]


def timestamp_sub(unit: str, amount: int, ms: int) -> int:
    """TIMESTAMPSUB(unit, n, ts): TIMESTAMPADD(unit, -n, ts)."""
    return timestamp_add(unit, -amount, ms)


def date_add(unit: str, amount: int, days: int) -> int:
    """DATEADD(unit, n, date): the date moved by n days, weeks, months or years (DATE values
    are days since the epoch)."""
    name = _unit(unit, "DATEADD")
    if name not in _UNIT_MONTHS and _UNIT_MS[name] < _DAY_MS:
        raise ValueError(f"DATEADD: a date moves by days, weeks, months or years, not {unit}")
    return timestamp_add(unit, amount, days * _DAY_MS) // _DAY_MS


def date_sub(unit: str, amount: int, days: int) -> int:
    """DATESUB(unit, n, date): DATEADD(unit, -n, date)."""
    return date_add(unit, -amount, days)


def unix_date(days: int) -> int:
    """UNIX_DATE(date): days since 1970-01-01."""
    return days


def from_days(days: int) -> int:
    """FROM_DAYS(n): the DATE n days after 1970-01-01."""
    return days


def parse_date_pattern(text: str, pattern: str) -> int:
    """PARSE_DATE(s, pattern): a Java-pattern date as days since the epoch."""
    return string_to_timestamp(text, pattern, "UTC") // _DAY_MS


def format_date_pattern(days: int, pattern: str) -> str:
    """FORMAT_DATE(date, pattern): the date written with a Java pattern."""
    return timestamp_to_string(days * _DAY_MS, pattern, "UTC")


def convert_tz(ms: int, from_zone: str, to_zone: str) -> int:
    """CONVERT_TZ(ts, from, to): the wall-clock time `ts` shows in zone `from`, as it reads in
    zone `to` (epoch ms of that local time, as ksqlDB's timestamps carry no zone)."""
    instant = datetime.fromtimestamp(ms / 1000, UTC).replace(tzinfo=zone(from_zone))
    local = instant.astimezone(zone(to_zone)).replace(tzinfo=UTC)
    return round(local.timestamp() * 1000)


def string_to_timestamp(text: str, pattern: str, tz: str | None = None) -> int:
    """STRINGTOTIMESTAMP(text, pattern[, zone]): parse with a Java pattern into epoch ms."""
    return timestamp_parser(pattern)(text, UTC if tz is None else zone(tz))


def date_format(ms: int, pattern: str) -> str:
    """DATE_FORMAT(ts, pattern) in UTC."""
    return timestamp_formatter(pattern)(ms, UTC)


# -- collections ----------------------------------------------------------------------------


def element_at(collection: object, key: object) -> object:
    """ELEMENT_AT: 1-based array index (negative counts from the end, out of range is NULL)
    or a map key (absent is NULL)."""
    if isinstance(collection, dict):
        return collection.get(key)
    if isinstance(collection, list | tuple) and isinstance(key, int):
        size = len(collection)
        if 0 < key <= size:
            return collection[key - 1]
        if -size <= key < 0:
            return collection[key]
        return None
    raise TypeError(f"ELEMENT_AT needs an array and an integer or a map, got {type(collection)}")


def cardinality(collection: Sequence[object] | dict[object, object]) -> int:
    return len(collection)


def array_contains(array: Sequence[object], value: object) -> bool:
    return value in array


def _distinct(values: Iterable[object]) -> list[object]:
    """First occurrence of each value, in order (NULL included once); values of the types
    that SQL compares are hashable, the others are compared one by one."""
    seen: set[object] = set()
    unhashable: list[object] = []
    out: list[object] = []
    for item in values:
        try:
            if item in seen:
                continue
            seen.add(item)
        except TypeError:
            if item in unhashable:
                continue
            unhashable.append(item)
        out.append(item)
    return out


def array_distinct(array: Sequence[object]) -> list[object]:
    """ARRAY_DISTINCT: each value once, in order of first appearance."""
    return _distinct(array)


def array_except(array: Sequence[object], other: Sequence[object]) -> list[object]:
    """ARRAY_EXCEPT(a, b): the distinct values of a that are not in b, in a's order."""
    return [item for item in _distinct(array) if item not in other]


def array_intersect(array: Sequence[object], other: Sequence[object]) -> list[object]:
    """ARRAY_INTERSECT(a, b): the distinct values of a that are also in b, in a's order."""
    return [item for item in _distinct(array) if item in other]


def array_union(array: Sequence[object], other: Sequence[object]) -> list[object]:
    """ARRAY_UNION(a, b): the distinct values of a, then those of b, in order."""
    return _distinct([*array, *other])


def array_remove(array: Sequence[object], value: object) -> list[object]:
    """ARRAY_REMOVE(a, v): a without any v (a NULL v removes the NULLs)."""
    if value is None:
        return [item for item in array if item is not None]
    return [item for item in array if item is None or item != value]


def array_max(array: Sequence[Any]) -> object:
    """ARRAY_MAX: the largest non-NULL value; NULL for an empty or all-NULL array."""
    present = [item for item in array if item is not None]
    return max(present) if present else None


def array_min(array: Sequence[Any]) -> object:
    """ARRAY_MIN: the smallest non-NULL value; NULL for an empty or all-NULL array."""
    present = [item for item in array if item is not None]
    return min(present) if present else None


def array_sort(array: Sequence[Any], direction: str = "ASC") -> list[object] | None:
    """ARRAY_SORT(a [, 'ASC' | 'DESC']): NULLs last either way; another direction is NULL."""
    order = direction.upper()
    if order not in ("ASC", "DESC"):
        return None
    present = sorted((item for item in array if item is not None), reverse=order == "DESC")
    return [*present, *(None for item in array if item is None)]


def array_join(
    array: Sequence[object], delimiter: str, text: Callable[[Any], str] = to_string
) -> str:
    """ARRAY_JOIN(a [, delimiter]): the values as text joined (',' by default), NULL as 'null'."""
    return delimiter.join("null" if item is None else text(item) for item in array)


def slice_of(array: Sequence[object], start: int | None, end: int | None) -> list[object] | None:
    """SLICE(a, from, to): 1-based and inclusive; a NULL bound is the array's own end, and a
    range outside the array is NULL (as ksqlDB's subList)."""
    first = 0 if start is None else start - 1
    last = len(array) if end is None else end
    if first < 0 or last > len(array) or first > last:
        return None
    return list(array[first:last])


def map_union(
    first: dict[object, object] | None, second: dict[object, object] | None
) -> dict[object, object] | None:
    """MAP_UNION(a, b): the entries of both, b's value winning for a key in both; a NULL map
    counts as empty, and the result is NULL only when both are."""
    if first is None and second is None:
        return None
    return {**(first or {}), **(second or {})}


def entries(value: dict[object, object], sort: bool | None) -> list[dict[str, object]]:
    """ENTRIES(map, sorted): the entries as structs {K, V}, by key when `sorted`, else in the
    map's order."""
    keys = sorted(value, key=str) if sort else list(value)  # map keys are strings
    return [{"K": k, "V": value[k]} for k in keys]


def generate_series(start: int, end: int, step: int | None = None) -> list[int]:
    """GENERATE_SERIES(start, end [, step]): start to end inclusive; the step defaults to 1
    (-1 when end < start). A zero step, or one that moves away from end, is an error."""
    if step is None:
        step = 1 if end >= start else -1
    if step == 0 or (end - start) * step < 0:
        raise ValueError(f"GENERATE_SERIES: step {step} cannot go from {start} to {end}")
    count = (end - start) // step + 1
    if count > 1_000_000:
        raise ValueError(f"GENERATE_SERIES: {count} elements is more than 1000000")
    return list(range(start, end + (1 if step > 0 else -1), step))


def map_keys(value: dict[object, object]) -> list[object]:
    return list(value)


def map_values(value: dict[object, object]) -> list[object]:
    return list(value.values())


def as_map(keys: list[object], values: list[object]) -> dict[object, object]:
    """AS_MAP(keys, values), as ksqlDB's AsMap: a key past the values' end maps to NULL,
    values past the keys' end are dropped, a repeated key keeps its last value. A NULL key
    is left out (a map key cannot be NULL)."""
    return {
        key: values[index] if index < len(values) else None
        for index, key in enumerate(keys)
        if key is not None
    }


def reduce_array(
    function: Callable[[object, object], object], array: list[object] | None, state: object
) -> object:
    """REDUCE(array, state, (s, x) => ...), as ksqlDB's Reduce: a NULL state is NULL, a NULL
    array leaves the state as it is."""
    if state is None or array is None:
        return state
    for item in array:
        state = function(state, item)
    return state


def reduce_map(
    function: Callable[[object, object, object], object],
    entries: dict[object, object] | None,
    state: object,
) -> object:
    """REDUCE(map, state, (s, k, v) => ...): as reduce_array, entry by entry."""
    if state is None or entries is None:
        return state
    for key, value in entries.items():
        state = function(state, key, value)
    return state


def map_of_entries(*keys_and_values: object) -> dict[object, object]:
    """MAP(k1 := v1, ...): the last value of a repeated key wins; a NULL key is left out."""
    pairs = zip(keys_and_values[::2], keys_and_values[1::2], strict=True)
    return {key: value for key, value in pairs if key is not None}


# -- JSON ------------------------------------------------------------------------------------


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _loads(text: str) -> object:
    """Strict JSON: NaN and Infinity (which Python's parser accepts) are not JSON; nesting too
    deep to parse counts as invalid too."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None


def _compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _parse_json(text: str, function: str) -> object:
    try:
        return _loads(text)
    except ValueError:
        raise ValueError(f"{function}: the input is not valid JSON") from None


def is_json_string(text: str | None) -> bool:
    """IS_JSON_STRING: TRUE for valid JSON text; FALSE for anything else, NULL included."""
    if text is None:
        return False
    try:
        _loads(text)
    except ValueError:
        return False
    return True


def json_array_length(text: str) -> int | None:
    """JSON_ARRAY_LENGTH: the top-level length of a JSON array; NULL when it is not one."""
    parsed = _parse_json(text, "JSON_ARRAY_LENGTH")
    return len(parsed) if isinstance(parsed, list) else None


def json_keys(text: str) -> list[str] | None:
    """JSON_KEYS: the top-level keys of a JSON object; NULL when it is not one."""
    parsed = _parse_json(text, "JSON_KEYS")
    return list(parsed) if isinstance(parsed, dict) else None


def json_records(text: str) -> dict[str, str] | None:
    """JSON_RECORDS: each top-level key of a JSON object mapped to its value as JSON text;
    NULL when the input is not an object (or not valid JSON)."""
    try:
        parsed = _loads(text)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    return {str(k): _compact(v) for k, v in parsed.items()}


def json_concat(*texts: str) -> str | None:
    """JSON_CONCAT: objects merged (a later key wins, shallowly); otherwise one array of
    every input, arrays spliced in. NULL when an input is invalid JSON or JSON null."""
    values: list[object] = []
    for text in texts:
        try:
            parsed = _loads(text)
        except ValueError:
            return None
        if parsed is None:
            return None
        values.append(parsed)
    if all(isinstance(v, dict) for v in values):
        merged: dict[str, object] = {}
        for item in values:
            merged.update(cast(dict[str, object], item))
        return _compact(merged)
    joined: list[object] = []
    for item in values:
        joined.extend(item if isinstance(item, list) else [item])
    return _compact(joined)


def extract_json_field(text: str, path: str) -> str | None:
    """EXTRACTJSONFIELD(json, path): the value at the path, a string as itself and anything
    else as JSON text; NULL when the path is absent or the input is not JSON."""
    steps = json_path(path)
    try:
        current: object = _loads(text)
    except ValueError:
        return None
    for step in steps:
        if isinstance(current, list) and isinstance(step, int) and step < len(current):
            current = current[step]
            continue
        if not (isinstance(current, dict) and isinstance(step, str) and step in current):
            return None
        current = current[step]
    if current is None:
        return None
    return current if isinstance(current, str) else _compact(current)


def to_json_text(value: object, sql_type: SqlType) -> str:
    """TO_JSON_STRING: a value as compact JSON, by its SQL type (NULL is `null`; DECIMAL a
    number; TIMESTAMP, DATE and TIME their text forms; BYTES base64)."""
    if value is None:
        return "null"
    kind = sql_type.kind
    if kind is TypeKind.ARRAY:
        element = sql_type.element or NULL_TYPE
        items = cast(Sequence[object], value)
        return "[" + ",".join(to_json_text(item, element) for item in items) + "]"
    if kind is TypeKind.MAP:
        element = sql_type.element or NULL_TYPE
        entries = cast(dict[object, object], value).items()
        return (
            "{"
            + ",".join(f"{_compact(to_string(k))}:{to_json_text(v, element)}" for k, v in entries)
            + "}"
        )
    if kind is TypeKind.STRUCT:
        record = cast(dict[str, object], value)
        return (
            "{"
            + ",".join(
                f"{_compact(name)}:{to_json_text(record.get(name), field)}"
                for name, field in sql_type.fields
            )
            + "}"
        )
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if kind is TypeKind.TIMESTAMP:
        return _compact(format_timestamp(cast(int, value)))
    if kind is TypeKind.DATE:
        return _compact(format_date(cast(int, value)))
    if kind is TypeKind.TIME:
        return _compact(format_time(cast(int, value)))
    if isinstance(value, bytes):
        return _compact(base64.b64encode(value).decode("ascii"))
    if isinstance(value, int | float | str):
        return _compact(value)
    return _compact(to_string(value))


def greatest(*values: object) -> object:
    return max(values)  # type: ignore[type-var]


def least(*values: object) -> object:
    return min(values)  # type: ignore[type-var]
