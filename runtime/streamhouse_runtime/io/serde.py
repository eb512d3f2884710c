"""Record keys and values to and from bytes, for the four formats a source can declare.

The runtime's value model (one row is a `dict[str, object]` keyed by column name):
NULL None, BOOLEAN bool, INTEGER/BIGINT int, DOUBLE float, DECIMAL decimal.Decimal (at the
column's scale), VARCHAR str, BYTES bytes, TIMESTAMP int epoch milliseconds UTC, DATE int days
since 1970-01-01, TIME int milliseconds of the day, ARRAY list, MAP dict, STRUCT dict.

Decoding is the hottest code in the runtime, so every decoder checks each declared column with a
single `type(value) is <expected type>` test and only calls a coercion function when that fails
(a JSON string in a BIGINT column, a float in a DECIMAL column, a missing field...). Decoded rows
always hold every declared column; a row decoded from JSON or AVRO may also hold the record's
other fields, which queries never see because they only read declared columns.

Formats:
- JSON: one JSON object per record. Declared types are coerced: DECIMAL from a number or a string
  (numbers are exact whenever the column's precision is at most 15 digits, see `_JsonCodec`),
  TIMESTAMP from epoch ms, an ISO-8601 string or the source's TIMESTAMP_FORMAT, DOUBLE from an
  integer, BIGINT from a string of digits, BYTES from base64. Field names match exactly first and
  then case-insensitively. Written with DECIMAL as an exact JSON number, TIMESTAMP/DATE/TIME as
  numbers (as ksqlDB does) and BYTES as base64.
- DELIMITED: one CSV line, columns in declared order; an empty field is NULL.
- KAFKA: Kafka's primitive serializers for a single column (VARCHAR UTF-8, INTEGER 4 bytes,
  BIGINT 8 bytes, DOUBLE IEEE-754, all big-endian; BYTES as is).
- AVRO: Confluent's wire format (magic byte 0, 4-byte big-endian schema id, Avro binary), with
  writer schemas looked up in a Confluent-compatible registry by id.

Columns flagged `key` travel in the message key, as in ksqlDB: `value_serde` leaves them out.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import re
import struct
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any, Final, NamedTuple, Protocol

import fastavro
import orjson

from streamhouse_runtime.io import temporal
from streamhouse_runtime.io.registry import SchemaRegistry, SchemaRegistryError
from streamhouse_runtime.sql.catalog import Column, Format
from streamhouse_runtime.sql.types import SqlType, TypeKind

Row = dict[str, object]
Coerce = Callable[[object], object]


class DeserializationError(Exception):
    """Bytes that cannot be decoded; str(e) is the reason shown in the dead-letter headers."""


class SerializationError(Exception):
    """A row that cannot be written in the sink's format."""


class ValueSerde(Protocol):
    """Record values: a row, or None for a tombstone."""

    def decode(self, data: bytes | None) -> dict[str, object] | None: ...

    def encode(self, row: dict[str, object] | None) -> bytes | None: ...


class KeySerde(Protocol):
    """Record keys: `{key column: value}` one way, the key columns' values in order the other."""

    def decode(self, data: bytes | None) -> dict[str, object]: ...

    def encode(self, values: Sequence[object]) -> bytes | None: ...


# --------------------------------------------------------------------------------------------
# Coercion of decoded values to the runtime's value model
# --------------------------------------------------------------------------------------------


class _Never:
    """A type no value has: a column whose every non-null value must go through its coercer."""


class _Missing:
    """Marks a field the record does not have (None would be a JSON null)."""


_MISSING: Final = _Missing()
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_MS: Final = timedelta(milliseconds=1)
_INT32: Final = 2**31
_INT64: Final = 2**63
_EXACT_FLOAT_INT: Final = 2**53  # integers up to this convert between float and int exactly
# DECIMAL arithmetic: enough digits that quantizing a DECIMAL(38, s) never overflows the context
# (the default context has 28), and the rounding SQL casts use.
_DECIMAL_CONTEXT: Final = Context(prec=100, rounding=ROUND_HALF_UP, Emax=10**6, Emin=-(10**6))
# A decimal literal of at most this many significant digits survives a trip through a double
# (DBL_DIG), so repr(float) gives back exactly the digits the JSON record had.
_FLOAT_EXACT_DIGITS: Final = 15
_DIGITS: Final = re.compile(r"[+-]?\d+")


class _BadValue(ValueError):
    pass


def _describe(value: object) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


def _bad(value: object, expected: str) -> _BadValue:
    return _BadValue(f"expected {expected}, got {_describe(value)}")


def _to_boolean(value: object) -> object:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
    raise _bad(value, "BOOLEAN")


def _to_bigint(value: object) -> int:
    if isinstance(value, bool):
        raise _bad(value, "an integer")
    if isinstance(value, int):
        result = value
    elif isinstance(value, float):
        # JavaScript producers write 1e3; orjson also turns integers past 64 bits into floats,
        # which the 2**53 bound rejects rather than silently rounding.
        if not (value.is_integer() and abs(value) <= _EXACT_FLOAT_INT):
            raise _bad(value, "an integer")
        result = int(value)
    elif (isinstance(value, str) and _DIGITS.fullmatch(value.strip())) or (
        isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value()
    ):
        result = int(value)
    else:
        raise _bad(value, "an integer")
    if not -_INT64 <= result < _INT64:
        raise _BadValue(f"{result} is out of range for BIGINT")
    return result


def _to_integer(value: object) -> object:
    result = _to_bigint(value)
    if not -_INT32 <= result < _INT32:
        raise _BadValue(f"{result} is out of range for INTEGER")
    return result


def _to_double(value: object) -> object:
    if isinstance(value, bool):
        raise _bad(value, "DOUBLE")
    if isinstance(value, int | Decimal):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise _bad(value, "DOUBLE")


class _DecimalFastPath(NamedTuple):
    """Exact DECIMAL(p, s) from a double read from JSON, without going through text.

    A double read from a JSON literal of at most 15 significant digits identifies that literal
    (DBL_DIG), so when `value` is the double nearest to some integer m times 10**-s (that is,
    round(value * factor) / factor == value), m * 10**-s is exactly what the record said.
    Powers of ten are exact doubles, so the bound check on the float is exact too."""

    limit: float  # |value| < limit
    factor: int  # 10**s
    quantum: Decimal  # 10**-s


def _decimal_fast_path(precision: int, scale: int) -> _DecimalFastPath | None:
    """None for columns too wide for a double to be exact: those take the repr path."""
    if precision > _FLOAT_EXACT_DIGITS:
        return None
    return _DecimalFastPath(float(10 ** (precision - scale)), 10**scale, Decimal(1).scaleb(-scale))


def _decimal_coercer(precision: int, scale: int) -> Coerce:
    quantum = Decimal(1).scaleb(-scale)
    limit = Decimal(10) ** (precision - scale)
    fast = _decimal_fast_path(precision, scale)
    fast_limit, factor = (fast.limit, fast.factor) if fast is not None else (0.0, 1)
    multiply = _DECIMAL_CONTEXT.multiply  # context methods: keyword arguments are slow
    quantize = _DECIMAL_CONTEXT.quantize
    described = f"DECIMAL({precision},{scale})"

    def coerce(value: object) -> object:
        if type(value) is float:
            if -fast_limit < value < fast_limit:
                scaled = round(value * factor)
                if scaled / factor == value:
                    return multiply(Decimal(scaled), quantum)
            # More digits than the scale (to round), or too wide for a double to be exact:
            # repr gives the shortest digits that read back as this double.
            result = Decimal(repr(value))
        elif isinstance(value, Decimal):
            result = value
        elif isinstance(value, int) and not isinstance(value, bool):
            result = Decimal(value)
        elif isinstance(value, str):
            try:
                result = Decimal(value.strip())
            except ArithmeticError:  # decimal.InvalidOperation, with an unreadable message
                raise _BadValue(f"'{value[:100]}' is not a number for {described}") from None
        else:
            raise _bad(value, described)
        if not result.is_finite():
            raise _bad(value, described)
        result = quantize(result, quantum)
        if not -limit < result < limit:
            raise _BadValue(f"{value} is out of range for {described}")
        return result

    return coerce


def _to_varchar(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    raise _bad(value, "VARCHAR")


def _to_bytes(value: object) -> object:
    if isinstance(value, str):
        return base64.b64decode(value, validate=True)  # binascii.Error is a ValueError
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise _bad(value, "BYTES (base64)")


def _datetime_ms(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # no zone means UTC, as in ksqlDB
    return (value - _EPOCH) // _MS


def _to_timestamp(value: object) -> object:
    if isinstance(value, bool):
        raise _bad(value, "TIMESTAMP")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return math.floor(value)
    if isinstance(value, str):
        text = value.strip()
        if _DIGITS.fullmatch(text):
            return int(text)
        try:
            return _datetime_ms(datetime.fromisoformat(text))
        except ValueError:
            raise _bad(value, "TIMESTAMP (epoch ms or ISO-8601)") from None
    if isinstance(value, datetime):
        return _datetime_ms(value)
    if isinstance(value, date):
        return (value.toordinal() - _EPOCH_ORDINAL) * 86_400_000
    raise _bad(value, "TIMESTAMP")


def _timestamp_with_pattern(parse: Callable[[str], int]) -> Coerce:
    def coerce(value: object) -> object:
        if isinstance(value, str):
            return parse(value)
        return _to_timestamp(value)

    return coerce


def _to_date(value: object) -> object:
    if isinstance(value, str):
        try:
            return temporal.parse_date(value)  # the rule of CAST(... AS DATE) too
        except ValueError:
            raise _bad(value, "DATE (days since the epoch, yyyy-MM-dd or a timestamp)") from None
    if isinstance(value, datetime):
        return _datetime_ms(value) // 86_400_000
    if isinstance(value, date):
        return value.toordinal() - _EPOCH_ORDINAL
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _bad(value, "DATE")


def _time_ms(value: time) -> int:
    return ((value.hour * 60 + value.minute) * 60 + value.second) * 1000 + value.microsecond // 1000


def _to_time(value: object) -> object:
    if isinstance(value, str):
        text = value.strip()
        if _DIGITS.fullmatch(text):
            return int(text)
        try:
            return _time_ms(time.fromisoformat(text))
        except ValueError:
            raise _bad(value, "TIME (HH:mm:ss)") from None
    if isinstance(value, time):
        return _time_ms(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _bad(value, "TIME")


def _to_null(value: object) -> object:
    return None


def _lookup_folded(record: dict[Any, object], name: str) -> object:
    """A field by case-insensitive name, for producers that spell names differently (ksqlDB
    upper-cases unquoted names). Only reached when the exact name is missing."""
    lowered = name.lower()
    for key, value in record.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return None


Conform = Callable[[dict[Any, object]], Row]


def _conformer(
    fields: Sequence[tuple[str, SqlType]], timestamp: tuple[str, Coerce] | None
) -> Conform:
    """A function that coerces a decoded record's declared fields in place and returns the
    record as the row (see `_conform_lines`)."""
    namespace: dict[str, Any] = {}
    lines = [
        "def conform(record):",
        *_conform_lines(fields, timestamp, namespace),
        "    return record",
    ]
    exec(compile("\n".join(lines), "<streamhouse-conform>", "exec"), namespace)
    conform: Conform = namespace["conform"]
    return conform


def _conform_lines(
    fields: Sequence[tuple[str, SqlType]],
    timestamp: tuple[str, Coerce] | None,
    namespace: dict[str, Any],
) -> list[str]:
    """The generated body (indented one level) that conforms the dict `record` in place,
    adding what it refers to to `namespace`.

    Generated for the columns, like compiled expressions: one `type(value) is <type>` test
    per column with the name as a constant, and the exact float-to-DECIMAL fast path inline.
    Anything else (a missing or NULL field, a value needing coercion, an error) goes through
    `_conform_field`."""
    namespace.update(
        _MISSING=_MISSING,
        _conform_field=_conform_field,
        _Decimal=Decimal,
        _multiply=_DECIMAL_CONTEXT.multiply,
    )
    lines = ["    get = record.get"]
    for index, (name, sql_type) in enumerate(fields):
        fast, coerce = _coercer(sql_type)
        if timestamp is not None and name == timestamp[0] and sql_type.kind is TypeKind.TIMESTAMP:
            coerce = timestamp[1]
        namespace[f"_fast{index}"] = fast
        namespace[f"_coerce{index}"] = coerce
        literal = repr(name)
        slow = (
            f"record[{literal}] = "
            f"_conform_field(record, {literal}, value, _fast{index}, _coerce{index})"
        )
        lines.append(f"    value = get({literal}, _MISSING)")
        decimal = (
            _decimal_fast_path(sql_type.precision, sql_type.scale)
            if sql_type.kind is TypeKind.DECIMAL
            and sql_type.precision is not None
            and sql_type.scale is not None
            else None
        )
        if decimal is None:
            lines += [f"    if type(value) is not _fast{index}:", f"        {slow}"]
            continue
        namespace[f"_limit{index}"] = decimal.limit
        namespace[f"_factor{index}"] = decimal.factor
        namespace[f"_quantum{index}"] = decimal.quantum
        lines += [
            f"    if type(value) is float and -_limit{index} < value < _limit{index} and "
            f"(scaled := round(value * _factor{index})) / _factor{index} == value:",
            f"        record[{literal}] = _multiply(_Decimal(scaled), _quantum{index})",
            "    else:",
            f"        {slow}",
        ]
    return lines


def _conform_field(
    record: dict[Any, object], name: str, value: object, fast: type, coerce: Coerce
) -> object:
    """The value of field `name` once conformed; `value` is what the record holds under that
    exact name (_MISSING if nothing)."""
    if value is _MISSING:
        value = _lookup_folded(record, name)
    if value is None or type(value) is fast:
        return value
    try:
        return coerce(value)
    except (ValueError, TypeError, ArithmeticError) as e:
        raise DeserializationError(f"column {name!r}: {e}") from None


def _coercer(sql_type: SqlType) -> tuple[type, Coerce]:
    """The type a decoded value of `sql_type` usually already has, and the coercion otherwise."""
    kind = sql_type.kind
    if kind is TypeKind.DECIMAL:
        assert sql_type.precision is not None and sql_type.scale is not None
        return _Never, _decimal_coercer(sql_type.precision, sql_type.scale)
    if kind is TypeKind.ARRAY:
        assert sql_type.element is not None
        return _Never, _array_coercer(*_coercer(sql_type.element))
    if kind is TypeKind.MAP:
        assert sql_type.key is not None and sql_type.element is not None
        key_coerce = None if sql_type.key.kind is TypeKind.VARCHAR else _coercer(sql_type.key)[1]
        return _Never, _map_coercer(key_coerce, *_coercer(sql_type.element))
    if kind is TypeKind.STRUCT:
        names = tuple(name for name, _ in sql_type.fields)
        return _Never, _struct_coercer(names, _conformer(sql_type.fields, None))
    return _SCALARS[kind]


_SCALARS: Final[dict[TypeKind, tuple[type, Coerce]]] = {
    TypeKind.NULL: (_Never, _to_null),
    TypeKind.BOOLEAN: (bool, _to_boolean),
    TypeKind.INTEGER: (_Never, _to_integer),  # every value: the 32-bit range needs checking
    TypeKind.BIGINT: (int, _to_bigint),
    TypeKind.DOUBLE: (float, _to_double),
    TypeKind.VARCHAR: (str, _to_varchar),
    TypeKind.BYTES: (bytes, _to_bytes),
    TypeKind.TIMESTAMP: (int, _to_timestamp),
    TypeKind.DATE: (int, _to_date),
    TypeKind.TIME: (int, _to_time),
    TypeKind.INTERVAL: (int, _to_bigint),
}


def _array_coercer(fast: type, coerce: Coerce) -> Coerce:
    def coerce_array(value: object) -> object:
        if type(value) is not list:
            if not isinstance(value, tuple):
                raise _bad(value, "ARRAY")
            value = list(value)
        for index, element in enumerate(value):
            if element is not None and type(element) is not fast:
                value[index] = coerce(element)  # the list is ours: decoded for this record
        return value

    return coerce_array


def _map_coercer(key_coerce: Coerce | None, fast: type, coerce: Coerce) -> Coerce:
    def coerce_map(value: object) -> object:
        if not isinstance(value, dict):
            raise _bad(value, "MAP")
        if key_coerce is None:
            for key, element in value.items():
                if element is not None and type(element) is not fast:
                    value[key] = coerce(element)  # same keys: safe while iterating
            return value
        return {
            key_coerce(key): element
            if element is None or type(element) is fast
            else coerce(element)
            for key, element in value.items()
        }

    return coerce_map


def _struct_coercer(names: tuple[str, ...], conform: Conform) -> Coerce:
    def coerce_struct(value: object) -> object:
        if not isinstance(value, dict):
            raise _bad(value, "STRUCT")
        try:
            conformed = conform(value)
        except DeserializationError as e:
            raise _BadValue(str(e).replace("column", "field", 1)) from None
        # A STRUCT value holds its declared fields only: it is compared and written as a whole.
        return {name: conformed[name] for name in names}

    return coerce_struct


def timestamp_parser(pattern: str) -> Callable[[str], int]:
    """A parser from text in a Java DateTimeFormatter pattern ('yyyy-MM-dd HH:mm:ss',
    "yyyy-MM-dd'T'HH:mm:ss.SSSX", ...) to epoch milliseconds; no zone in the text means UTC.

    The one parser of `io/temporal.py`, which the SQL functions use too. An unsupported
    letter raises ValueError here, when the source is declared, rather than on the first record.
    """
    try:
        parse = temporal.timestamp_parser(pattern)
    except ValueError as e:
        raise ValueError(f"timestamp format {pattern!r}: {e}") from None

    def parse_utc(text: str) -> int:
        try:
            return parse(text, UTC)
        except ValueError:
            raise _BadValue(f"{text!r} does not match timestamp format {pattern!r}") from None

    return parse_utc


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def _json_default(value: object) -> object:
    """What orjson cannot write itself: DECIMAL as an exact JSON number, BYTES as base64."""
    if type(value) is Decimal and value.is_finite():
        # str() is exact and always a valid JSON number ('1234.56', '1E-7'); format(value, "f")
        # would avoid the exponent but costs three times as long.
        return orjson.Fragment(str(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot write {_describe(value)} as JSON")


def _max_decimal_precision(sql_type: SqlType) -> int:
    if sql_type.kind is TypeKind.DECIMAL:
        return sql_type.precision or 0
    nested = [t for t in (sql_type.element, sql_type.key) if t is not None]
    nested += [t for _, t in sql_type.fields]
    return max((_max_decimal_precision(t) for t in nested), default=0)


def _json_loader(types: Sequence[SqlType]) -> Callable[[bytes], object]:
    """orjson reads JSON numbers with a fraction as doubles. A double keeps 15 significant digits
    exactly, so DECIMAL columns up to DECIMAL(15, s) read exactly through repr(float); wider
    ones would lose digits, so their sources parse numbers straight to Decimal with the
    standard library (about 10x slower, paid only by such sources)."""
    if max((_max_decimal_precision(t) for t in types), default=0) > _FLOAT_EXACT_DIGITS:
        return _exact_loads
    return orjson.loads


def _dump_option(types: Sequence[SqlType]) -> int:
    """OPT_NON_STR_KEYS (for MAP<INTEGER, ...> and the like) only where needed: it is slower."""
    return orjson.OPT_NON_STR_KEYS if any(_has_non_string_key(t) for t in types) else 0


def _has_non_string_key(sql_type: SqlType) -> bool:
    key = sql_type.key
    if sql_type.kind is TypeKind.MAP and key is not None and key.kind is not TypeKind.VARCHAR:
        return True
    nested = [t for t in (sql_type.element, sql_type.key) if t is not None]
    nested += [t for _, t in sql_type.fields]
    return any(_has_non_string_key(t) for t in nested)


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _exact_loads(data: bytes) -> object:
    """JSON with exact DECIMALs. json.loads recurses per nesting level: a deeply nested
    value is a bad record, never a RecursionError escaping the record's handling; NaN and
    Infinity (which json accepts and JSON does not have) are refused like orjson does."""
    try:
        return json.loads(data, parse_float=Decimal, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError("JSON value nested too deeply") from None


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


class _JsonValueSerde:
    """JSON objects. Decoding returns the parsed object itself with declared columns coerced in
    place (copying it into a fresh dict would cost a third of the decode time); writing emits
    exactly the declared columns, in order."""

    decode: Callable[[bytes | None], Row | None]

    def __init__(self, columns: Sequence[Column], timestamp: tuple[str, Coerce] | None) -> None:
        self._names = tuple(c.name for c in columns)
        self._name_set = frozenset(self._names)
        self._dump_option = _dump_option([c.type for c in columns])
        # Parsing and conforming in one generated function: a call is a noticeable share of
        # a ~1 µs decode.
        namespace: dict[str, Any] = {
            "_loads": _json_loader([c.type for c in columns]),
            "_DeserializationError": DeserializationError,
            "_json_kind": _json_kind,
        }
        conform = _conform_lines([(c.name, c.type) for c in columns], timestamp, namespace)
        lines = [
            "def decode(data):",
            "    if data is None:",
            "        return None",
            "    try:",
            "        record = _loads(data)",
            "    except ValueError as e:  # orjson.JSONDecodeError, UnicodeDecodeError",
            '        raise _DeserializationError(f"invalid JSON: {e}") from None',
            "    if type(record) is not dict:",
            "        raise _DeserializationError(",
            '            f"expected a JSON object, got {_json_kind(record)}"',
            "        )",
            *conform,
            "    return record",
        ]
        exec(compile("\n".join(lines), "<streamhouse-json-decode>", "exec"), namespace)
        self.decode = namespace["decode"]

    def encode(self, row: Row | None) -> bytes | None:
        if row is None:
            return None
        if row.keys() != self._name_set:  # a third of the cost of always copying
            get = row.get
            row = {name: get(name) for name in self._names}
        try:
            return orjson.dumps(row, default=_json_default, option=self._dump_option)
        except TypeError as e:  # orjson.JSONEncodeError is a TypeError
            raise SerializationError(f"cannot write JSON: {e}") from None


class _JsonKeySerde:
    """JSON keys. One key column is written as a bare JSON value (`123`, `"abc"`), several as
    an object, as ksqlDB does; a single column's key is also read from `{"column": value}`."""

    def __init__(self, columns: Sequence[Column]) -> None:
        self._names = tuple(c.name for c in columns)
        self._conform = _conformer([(c.name, c.type) for c in columns], None)
        self._loads = _json_loader([c.type for c in columns])
        self._dump_option = _dump_option([c.type for c in columns])
        only = columns[0] if len(columns) == 1 else None
        # A bare object is the wrapper only if it could not be the STRUCT key's own value.
        self._wrapped_name = (
            only.name.lower()
            if only is not None
            and (only.type.kind is not TypeKind.STRUCT or only.type.field(only.name) is None)
            else None
        )

    def decode(self, data: bytes | None) -> Row:
        if data is None:
            return dict.fromkeys(self._names)
        try:
            record = self._loads(data)
        except ValueError as e:
            raise DeserializationError(f"invalid JSON key: {e}") from None
        if self._wrapped_name is None or not _is_wrapper(record, self._wrapped_name):
            if len(self._names) == 1:
                record = {self._names[0]: record}
            elif not isinstance(record, dict):
                raise DeserializationError(f"expected a JSON object, got {_json_kind(record)}")
        assert isinstance(record, dict)
        conformed = self._conform(record)
        return {name: conformed[name] for name in self._names}

    def encode(self, values: Sequence[object]) -> bytes | None:
        if len(values) != len(self._names):
            raise SerializationError(f"expected {len(self._names)} key values, got {len(values)}")
        value: object = (
            values[0] if len(values) == 1 else dict(zip(self._names, values, strict=True))
        )
        if value is None:
            return None
        try:
            return orjson.dumps(value, default=_json_default, option=self._dump_option)
        except TypeError as e:
            raise SerializationError(f"cannot write JSON key: {e}") from None


def _is_wrapper(record: object, lowered_name: str) -> bool:
    return (
        isinstance(record, dict)
        and len(record) == 1
        and isinstance(key := next(iter(record)), str)
        and key.lower() == lowered_name
    )


# --------------------------------------------------------------------------------------------
# DELIMITED
# --------------------------------------------------------------------------------------------

_DELIMITER_NAMES: Final = {"TAB": "\t", "SPACE": " ", "COMMA": ",", "PIPE": "|", "SEMICOLON": ";"}


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")  # never scientific notation
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, int | float):
        return repr(value)
    raise SerializationError(f"cannot write {_describe(value)} in a DELIMITED field")


class _DelimitedSerde:
    """One CSV line (csv module quoting), columns in declared order; an empty field is NULL,
    so an empty VARCHAR reads back as NULL (as in ksqlDB)."""

    def __init__(
        self,
        columns: Sequence[Column],
        delimiter: str,
        timestamp: tuple[str, Coerce] | None = None,
    ) -> None:
        delimiter = _DELIMITER_NAMES.get(delimiter.upper(), delimiter)
        if len(delimiter) != 1:
            raise ValueError(f"a DELIMITED delimiter is one character, got {delimiter!r}")
        for column in columns:
            if column.type.kind in (TypeKind.ARRAY, TypeKind.MAP, TypeKind.STRUCT):
                raise ValueError(f"DELIMITED cannot hold {column.type} column {column.name!r}")
        self._delimiter = delimiter
        self._names = tuple(c.name for c in columns)
        self._conform = _conformer([(c.name, c.type) for c in columns], timestamp)

    def decode(self, data: bytes | None) -> Row | None:
        if data is None:
            return None
        try:
            fields = next(csv.reader((data.decode("utf-8"),), delimiter=self._delimiter), [])
        except (UnicodeDecodeError, csv.Error) as e:
            raise DeserializationError(f"invalid DELIMITED record: {e}") from None
        if len(fields) != len(self._names):
            raise DeserializationError(
                f"expected {len(self._names)} DELIMITED fields, got {len(fields)}"
            )
        record: dict[str, object] = {
            name: field or None for name, field in zip(self._names, fields, strict=True)
        }
        return self._conform(record)

    def encode(self, row: Row | None) -> bytes | None:
        if row is None:
            return None
        return self.encode_values([row.get(name) for name in self._names])

    def encode_values(self, values: Sequence[object]) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=self._delimiter, lineterminator="")
        try:
            writer.writerow([_text(value) for value in values])
        except csv.Error as e:
            raise SerializationError(f"cannot write DELIMITED record: {e}") from None
        return buffer.getvalue().encode("utf-8")


class _DelimitedKeySerde:
    def __init__(self, columns: Sequence[Column], delimiter: str) -> None:
        self._names = tuple(c.name for c in columns)
        self._values = _DelimitedSerde(columns, delimiter)

    def decode(self, data: bytes | None) -> Row:
        if data is None:
            return dict.fromkeys(self._names)
        row = self._values.decode(data)
        assert row is not None
        return row

    def encode(self, values: Sequence[object]) -> bytes | None:
        if len(values) != len(self._names):
            raise SerializationError(f"expected {len(self._names)} key values, got {len(values)}")
        if all(value is None for value in values):
            return None
        return self._values.encode_values(values)


# --------------------------------------------------------------------------------------------
# KAFKA (the primitive serializers of the Java client)
# --------------------------------------------------------------------------------------------

_STRUCTS: Final = {
    TypeKind.INTEGER: struct.Struct(">i"),
    TypeKind.BIGINT: struct.Struct(">q"),
    TypeKind.DOUBLE: struct.Struct(">d"),
}
_KAFKA_KINDS: Final = (*_STRUCTS, TypeKind.VARCHAR, TypeKind.BYTES)


class _KafkaCodec:
    """One value, as Kafka's StringSerializer, IntegerSerializer, LongSerializer,
    DoubleSerializer or ByteArraySerializer writes it."""

    def __init__(self, columns: Sequence[Column]) -> None:
        if len(columns) != 1:
            raise ValueError(
                f"the KAFKA format holds exactly one column, got {len(columns)}: "
                + ", ".join(c.name for c in columns)
            )
        column = columns[0]
        if column.type.kind not in _KAFKA_KINDS:
            raise ValueError(
                f"the KAFKA format has no serializer for {column.type} column {column.name!r} "
                "(VARCHAR, INTEGER, BIGINT, DOUBLE or BYTES)"
            )
        self.name = column.name
        self.kind = column.type.kind
        self._struct = _STRUCTS.get(self.kind)

    def decode(self, data: bytes) -> object:
        if self.kind is TypeKind.VARCHAR:
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DeserializationError(f"column {self.name!r}: invalid UTF-8: {e}") from None
        if self._struct is None:
            return bytes(data)
        if len(data) != self._struct.size:
            raise DeserializationError(
                f"column {self.name!r}: a KAFKA {self.kind} is {self._struct.size} bytes, "
                f"got {len(data)}"
            )
        return self._struct.unpack(data)[0]

    def encode(self, value: object) -> bytes | None:
        if value is None:
            return None
        if self.kind is TypeKind.VARCHAR:
            if not isinstance(value, str):
                raise SerializationError(f"column {self.name!r}: expected str, got {value!r}")
            return value.encode("utf-8")
        if self._struct is None:
            if not isinstance(value, bytes | bytearray | memoryview):
                raise SerializationError(f"column {self.name!r}: expected bytes, got {value!r}")
            return bytes(value)
        try:
            return self._struct.pack(value)
        except struct.error as e:
            raise SerializationError(f"column {self.name!r}: {e}: {value!r}") from None


class _KafkaValueSerde:
    def __init__(self, columns: Sequence[Column]) -> None:
        self._codec = _KafkaCodec(columns)

    def decode(self, data: bytes | None) -> Row | None:
        if data is None:
            return None
        return {self._codec.name: self._codec.decode(data)}

    def encode(self, row: Row | None) -> bytes | None:
        if row is None:
            return None
        return self._codec.encode(row.get(self._codec.name))


class _KafkaKeySerde:
    def __init__(self, columns: Sequence[Column]) -> None:
        self._codec = _KafkaCodec(columns)

    def decode(self, data: bytes | None) -> Row:
        return {self._codec.name: None if data is None else self._codec.decode(data)}

    def encode(self, values: Sequence[object]) -> bytes | None:
        if len(values) != 1:
            raise SerializationError(f"expected 1 key value, got {len(values)}")
        return self._codec.encode(values[0])


# --------------------------------------------------------------------------------------------
# AVRO (Confluent wire format)
# --------------------------------------------------------------------------------------------

AVRO_NAMESPACE: Final = "io.streamhouse.avro"
_AVRO_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAGIC: Final = 0


def avro_schema(name: str, columns: Sequence[Column]) -> dict[str, Any]:
    """The Avro record schema for `columns`: every field a nullable union with a null default
    (so readers of older records get NULL for fields added later), DECIMAL as bytes with the
    decimal logical type, TIMESTAMP as timestamp-millis, DATE as date, TIME as time-millis,
    ARRAY/MAP with nullable elements, MAP keys VARCHAR only, STRUCT as a nested record."""
    return _avro_record(name, [(c.name, c.type) for c in columns], AVRO_NAMESPACE)


def _avro_record(
    name: str, fields: Sequence[tuple[str, SqlType]], namespace: str | None = None
) -> dict[str, Any]:
    record_fields = []
    for field_name, field_type in fields:
        if not _AVRO_NAME.fullmatch(field_name):
            raise ValueError(f"{field_name!r} is not a valid Avro field name")
        nested_name = f"{name}_{field_name}"
        record_fields.append(
            {
                "name": field_name,
                "type": _nullable(_avro_type(field_type, nested_name)),
                "default": None,
            }
        )
    schema: dict[str, Any] = {"type": "record", "name": name, "fields": record_fields}
    if namespace:
        schema["namespace"] = namespace
    return schema


def _nullable(avro_type: object) -> list[object]:
    return ["null", avro_type]


def _avro_type(sql_type: SqlType, name: str) -> object:
    kind = sql_type.kind
    simple = _AVRO_SIMPLE.get(kind)
    if simple is not None:
        return simple
    if kind is TypeKind.DECIMAL:
        return {
            "type": "bytes",
            "logicalType": "decimal",
            "precision": sql_type.precision,
            "scale": sql_type.scale,
        }
    if kind is TypeKind.ARRAY:
        assert sql_type.element is not None
        return {"type": "array", "items": _nullable(_avro_type(sql_type.element, name))}
    if kind is TypeKind.MAP:
        assert sql_type.key is not None and sql_type.element is not None
        if sql_type.key.kind is not TypeKind.VARCHAR:
            raise ValueError(f"Avro maps have string keys; cannot hold {sql_type}")
        return {"type": "map", "values": _nullable(_avro_type(sql_type.element, name))}
    if kind is TypeKind.STRUCT:
        return _avro_record(re.sub(r"\W", "_", name), sql_type.fields)
    raise ValueError(f"no Avro type for {sql_type}")


_AVRO_SIMPLE: Final[dict[TypeKind, object]] = {
    TypeKind.BOOLEAN: "boolean",
    TypeKind.INTEGER: "int",
    TypeKind.BIGINT: "long",
    TypeKind.DOUBLE: "double",
    TypeKind.VARCHAR: "string",
    TypeKind.BYTES: "bytes",
    TypeKind.TIMESTAMP: {"type": "long", "logicalType": "timestamp-millis"},
    TypeKind.DATE: {"type": "int", "logicalType": "date"},
    TypeKind.TIME: {"type": "int", "logicalType": "time-millis"},
}

# Logical types whose underlying int/long already is our value: reading them raw skips
# fastavro's conversion to datetime objects and back. Others (timestamp-micros, ...) are
# converted by fastavro and coerced from datetime/time objects.
_RAW_LOGICAL: Final = frozenset(
    {"timestamp-millis", "local-timestamp-millis", "date", "time-millis", "uuid"}
)


def _without_raw_logical(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_without_raw_logical(s) for s in schema]
    if isinstance(schema, dict):
        return {
            key: _without_raw_logical(value)
            for key, value in schema.items()
            if not (key == "logicalType" and value in _RAW_LOGICAL)
        }
    return schema


def _wire_prefix(schema_id: int) -> bytes:
    return bytes([_MAGIC]) + schema_id.to_bytes(4, "big")


class _AvroCodec:
    """Shared by AVRO keys and values: writer schemas by id, and our own schema's registration."""

    def __init__(
        self, schema: object, registry: SchemaRegistry | None, subject: str | None
    ) -> None:
        if registry is None:
            raise ValueError("the AVRO format needs a schema registry")
        self.registry = registry
        self.subject = subject
        self.schema_text = json.dumps(schema, separators=(",", ":"))
        self._parsed = fastavro.parse_schema(schema)  # type: ignore[arg-type]
        self._prefix: bytes | None = None
        self._readers: dict[int, Any] = {}

    def read(self, data: bytes) -> object:
        if len(data) < 5 or data[0] != _MAGIC:
            raise DeserializationError("not Confluent AVRO: no magic byte 0 and schema id")
        schema_id = int.from_bytes(data[1:5], "big")
        reader = self._readers.get(schema_id)
        if reader is None:
            reader = self._reader(schema_id)
        try:
            return fastavro.schemaless_reader(io.BytesIO(data[5:]), reader)
        except Exception as e:  # corrupt Avro makes fastavro fail in many ways: all are bad data
            raise DeserializationError(
                f"invalid AVRO for schema id {schema_id}: {type(e).__name__}: {e}"
            ) from None

    def _reader(self, schema_id: int) -> Any:
        try:
            text = self.registry.get_schema(schema_id)
        except SchemaRegistryError as e:
            if e.status == 404:  # a record naming an id that does not exist is bad data
                raise DeserializationError(f"unknown AVRO schema id {schema_id}") from None
            raise  # the registry is down: not the record's fault, so not dead-lettered
        try:
            reader = fastavro.parse_schema(_without_raw_logical(json.loads(text)))
        except Exception as e:
            raise DeserializationError(f"unusable AVRO schema id {schema_id}: {e}") from None
        self._readers[schema_id] = reader
        return reader

    def write(self, datum: object) -> bytes:
        prefix = self._prefix
        if prefix is None:
            prefix = self._register()
        buffer = io.BytesIO()
        buffer.write(prefix)
        try:
            fastavro.schemaless_writer(buffer, self._parsed, datum)
        except Exception as e:  # fastavro raises ValueError, TypeError, AttributeError...
            raise SerializationError(f"cannot write AVRO: {type(e).__name__}: {e}") from None
        return buffer.getvalue()

    def _register(self) -> bytes:
        if self.subject is None:
            raise SerializationError("writing AVRO needs a registry subject")
        schema_id = self.registry.register(self.subject, self.schema_text)
        self._prefix = _wire_prefix(schema_id)
        # Our own records need no second parse to read back.
        reader = fastavro.parse_schema(_without_raw_logical(json.loads(self.schema_text)))
        self._readers.setdefault(schema_id, reader)
        return self._prefix


class _AvroValueSerde:
    """AVRO values: fields are matched to columns by name (exact, then case-insensitive);
    columns the writer's schema lacks read as NULL, so older records decode after a column is
    added. Writing registers (once) the schema `avro_schema` makes, under `subject`."""

    def __init__(
        self,
        columns: Sequence[Column],
        registry: SchemaRegistry | None,
        subject: str | None,
        timestamp: tuple[str, Coerce] | None,
    ) -> None:
        self._codec = _AvroCodec(avro_schema("StreamHouseValue", columns), registry, subject)
        self._conform = _conformer([(c.name, c.type) for c in columns], timestamp)
        self.schema = self._codec.schema_text

    def decode(self, data: bytes | None) -> Row | None:
        if data is None:
            return None
        record = self._codec.read(data)
        if not isinstance(record, dict):
            raise DeserializationError(f"expected an AVRO record, got {_describe(record)}")
        return self._conform(record)

    def encode(self, row: Row | None) -> bytes | None:
        if row is None:
            return None
        return self._codec.write(row)


class _AvroKeySerde:
    """AVRO keys: one key column is written as a bare Avro value (schema "string", "long", ...),
    several as a record, as ksqlDB does; both shapes are read."""

    def __init__(
        self, columns: Sequence[Column], registry: SchemaRegistry | None, subject: str | None
    ) -> None:
        self._names = tuple(c.name for c in columns)
        self._conform = _conformer([(c.name, c.type) for c in columns], None)
        schema: object = (
            _avro_type(columns[0].type, "StreamHouseKey")
            if len(columns) == 1
            else avro_schema("StreamHouseKey", columns)
        )
        self._codec = _AvroCodec(schema, registry, subject)
        self._record_key = len(columns) > 1 or columns[0].type.kind is TypeKind.STRUCT
        self.schema = self._codec.schema_text

    def decode(self, data: bytes | None) -> Row:
        if data is None:
            return dict.fromkeys(self._names)
        record = self._codec.read(data)
        if len(self._names) == 1 and not (isinstance(record, dict) and not self._record_key):
            record = {self._names[0]: record}
        if not isinstance(record, dict):
            raise DeserializationError(f"expected an AVRO record key, got {_describe(record)}")
        conformed = self._conform(record)
        return {name: conformed[name] for name in self._names}

    def encode(self, values: Sequence[object]) -> bytes | None:
        if len(values) != len(self._names):
            raise SerializationError(f"expected {len(self._names)} key values, got {len(values)}")
        if len(values) == 1:
            if values[0] is None:
                return None
            return self._codec.write(values[0])
        return self._codec.write(dict(zip(self._names, values, strict=True)))


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


class _NoKey:
    """Sources without key columns: every key decodes to {} and none is written."""

    def decode(self, data: bytes | None) -> Row:
        return {}

    def encode(self, values: Sequence[object]) -> bytes | None:
        return None


class _NoValueColumns:
    """A source whose columns are all key columns: a value is a row with no columns."""

    def decode(self, data: bytes | None) -> Row | None:
        return None if data is None else {}

    def encode(self, row: Row | None) -> bytes | None:
        return None


def value_serde(
    fmt: Format,
    columns: Sequence[Column],
    *,
    timestamp_column: str | None = None,
    timestamp_format: str | None = None,
    delimiter: str = ",",
    registry: SchemaRegistry | None = None,
    subject: str | None = None,
) -> ValueSerde:
    """The (de)serializer of a source's or sink's record values.

    `columns` are the source's columns; those flagged `key` are left out (they travel in the
    key). `timestamp_format` (a Java DateTimeFormatter pattern) is how string values of the
    TIMESTAMP column `timestamp_column` are written; a timestamp column of another type is left
    as is (use `timestamp_parser` on it). AVRO needs `registry`, and `subject` to write
    (Confluent's convention is `<topic>-value`). Raises ValueError for a format that cannot hold
    these columns.
    """
    value_columns = [c for c in columns if not c.key]
    timestamp: tuple[str, Coerce] | None = None
    if timestamp_format is not None and timestamp_column is not None:
        folded = timestamp_column.lower()
        for column in value_columns:
            if column.name.lower() == folded:
                parser = timestamp_parser(timestamp_format)
                timestamp = (column.name, _timestamp_with_pattern(parser))
    if fmt is Format.JSON:
        return _JsonValueSerde(value_columns, timestamp)
    if fmt is Format.DELIMITED:
        return _DelimitedSerde(value_columns, delimiter, timestamp)
    if fmt is Format.KAFKA:
        if not value_columns and columns:
            return _NoValueColumns()  # every column is in the key; the value is not read
        return _KafkaValueSerde(value_columns)
    if fmt is Format.AVRO:
        return _AvroValueSerde(value_columns, registry, subject, timestamp)
    raise ValueError(f"unknown value format {fmt}")


def key_serde(
    fmt: Format,
    columns: Sequence[Column],
    *,
    registry: SchemaRegistry | None = None,
    subject: str | None = None,
    delimiter: str = ",",
) -> KeySerde:
    """The (de)serializer of a source's or sink's record keys.

    `columns` are the key columns, in key order. With none, every key decodes to {} and
    encodes to None. A single key
    column is written bare in every format (KAFKA primitive, JSON value, Avro primitive); JSON
    and AVRO keys read both bare and wrapped shapes. AVRO needs `registry`, and `subject` to
    write (Confluent's convention is `<topic>-key`).
    """
    key_columns = list(columns)
    if not key_columns:
        return _NoKey()
    if fmt is Format.KAFKA:
        return _KafkaKeySerde(key_columns)
    if fmt is Format.JSON:
        return _JsonKeySerde(key_columns)
    if fmt is Format.DELIMITED:
        return _DelimitedKeySerde(key_columns, delimiter)
    if fmt is Format.AVRO:
        return _AvroKeySerde(key_columns, registry, subject)
    raise ValueError(f"unknown key format {fmt}")
