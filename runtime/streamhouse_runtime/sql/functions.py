"""Built-in function signatures: argument counts, argument type checks and result types.

The analyzer checks calls against these; the runtime's expression compiler implements the same
names. Aggregates are listed separately because they change a query's shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from streamhouse_runtime.sql import types as t
from streamhouse_runtime.sql.types import SqlType, TypeKind

ArgCheck = Callable[[Sequence[SqlType]], str | None]
ResultRule = Callable[[Sequence[SqlType]], SqlType]


@dataclass(frozen=True)
class Signature:
    name: str
    min_args: int
    max_args: int | None  # None: variadic
    check: ArgCheck
    result: ResultRule
    aggregate: bool = False


def _all(predicate: Callable[[SqlType], bool], what: str) -> ArgCheck:
    def check(args: Sequence[SqlType]) -> str | None:
        for position, arg in enumerate(args, 1):
            if not (arg.is_null or predicate(arg)):
                return f"argument {position} must be {what}, got {arg}"
        return None

    return check


def _each(*rules: tuple[Callable[[SqlType], bool], str]) -> ArgCheck:
    """Per-position checks; positions past the last rule reuse the last one."""

    def check(args: Sequence[SqlType]) -> str | None:
        for position, arg in enumerate(args, 1):
            predicate, what = rules[min(position, len(rules)) - 1]
            if not (arg.is_null or predicate(arg)):
                return f"argument {position} must be {what}, got {arg}"
        return None

    return check


def _any(_: Sequence[SqlType]) -> str | None:
    return None


def _same_type(args: Sequence[SqlType]) -> str | None:
    common = args[0]
    for position, arg in enumerate(args[1:], 2):
        merged = t.common_supertype(common, arg)
        if merged is None:
            return f"argument {position} has type {arg}, incompatible with {common}"
        common = merged
    return None


def _fixed(result: SqlType) -> ResultRule:
    return lambda _: result


def _first(args: Sequence[SqlType]) -> SqlType:
    return args[0] if args else t.NULL


def _supertype(args: Sequence[SqlType]) -> SqlType:
    common = args[0]
    for arg in args[1:]:
        common = t.common_supertype(common, arg) or common
    return common


def _is_string(x: SqlType) -> bool:
    return x.kind is TypeKind.VARCHAR


def _is_numeric(x: SqlType) -> bool:
    return x.is_numeric


def _is_integer(x: SqlType) -> bool:
    return x.kind in (TypeKind.INTEGER, TypeKind.BIGINT)


def _is_time(x: SqlType) -> bool:
    return x.kind in (TypeKind.TIMESTAMP, TypeKind.BIGINT, TypeKind.DATE)


def _is_date(x: SqlType) -> bool:
    return x.kind is TypeKind.DATE


_timestamp = _fixed(t.TIMESTAMP)


def _is_array(x: SqlType) -> bool:
    return x.kind is TypeKind.ARRAY


def _is_collection(x: SqlType) -> bool:
    return x.kind in (TypeKind.ARRAY, TypeKind.MAP)


STRING = (_is_string, "a string")
NUMBER = (_is_numeric, "a number")
INTEGRAL = (_is_integer, "an integer")
ANYTHING: tuple[Callable[[SqlType], bool], str] = (lambda _: True, "any value")


def _round_result(args: Sequence[SqlType]) -> SqlType:
    value = args[0]
    if value.kind is TypeKind.DECIMAL and value.precision is not None:
        return t.decimal(value.precision, 0 if len(args) == 1 else value.scale or 0)
    return value


def _ceil_floor_result(args: Sequence[SqlType]) -> SqlType:
    """CEIL(x) keeps x's type (a DECIMAL keeps its scale); CEIL(x, scale) is typed like ROUND."""
    return args[0] if len(args) == 1 else _round_result(args)


def _element(args: Sequence[SqlType]) -> SqlType:
    collection = args[0]
    return collection.element or t.NULL


_varchar = _fixed(t.VARCHAR)


def _is_code_point(x: SqlType) -> bool:
    return _is_integer(x) or _is_string(x)


# MASK_LEFT(s, n [, upper, lower, digit, other]) and its kin.
MASKS = ("MASK_LEFT", "MASK_RIGHT", "MASK_KEEP_LEFT", "MASK_KEEP_RIGHT")

# Functions of one number with a DOUBLE result (trigonometric, hyperbolic, angles, roots).
DOUBLE_FUNCTIONS = (
    *("SIN", "COS", "TAN", "COT", "ASIN", "ACOS", "ATAN", "SINH", "COSH", "TANH"),
    *("DEGREES", "RADIANS", "CBRT"),
)

ARRAY = (_is_array, "an array")
MAP = (lambda x: x.kind is TypeKind.MAP, "a map")
FLAG = (lambda x: x.kind is TypeKind.BOOLEAN, "a boolean")
ARRAY_SETS = ("ARRAY_EXCEPT", "ARRAY_INTERSECT", "ARRAY_UNION")
_NESTED = (TypeKind.ARRAY, TypeKind.MAP, TypeKind.STRUCT)


def _two_arrays(args: Sequence[SqlType]) -> str | None:
    problem = _each(ARRAY)(args)
    # The same element type (as ksqlDB): the result's values keep their runtime types.
    if problem is None and not any(a.is_null for a in args) and args[0] != args[1]:
        return f"argument 2 has type {args[1]}, not {args[0]} like argument 1"
    return problem


def _same_array(args: Sequence[SqlType]) -> SqlType:
    arrays = [a for a in args if not a.is_null]
    return arrays[0] if arrays else t.array(t.NULL)


def _two_maps(args: Sequence[SqlType]) -> str | None:
    problem = _each(MAP, MAP)(args)
    if problem is None and not any(a.is_null for a in args) and args[0] != args[1]:
        return f"argument 2 has type {args[1]}, not {args[0]} like argument 1"
    return problem


def _same_map(args: Sequence[SqlType]) -> SqlType:
    maps = [a for a in args if not a.is_null]
    return maps[0] if maps else t.map_of(t.VARCHAR, t.NULL)


def _entries_result(args: Sequence[SqlType]) -> SqlType:
    entry = t.struct([("K", args[0].key or t.VARCHAR), ("V", args[0].element or t.NULL)])
    return t.array(entry)


def _series_result(args: Sequence[SqlType]) -> SqlType:
    return t.array(t.BIGINT if any(a.kind is TypeKind.BIGINT for a in args) else t.INTEGER)


def _array_and_element(args: Sequence[SqlType]) -> str | None:
    problem = _each(ARRAY)(args[:1])
    if problem is None and not args[0].is_null and not args[1].is_null:
        element = args[0].element or t.NULL
        if t.common_supertype(element, args[1]) is None:
            return f"argument 2 has type {args[1]}, incompatible with the elements ({element})"
    return problem


def _primitive_array(what: str) -> ArgCheck:
    def check(args: Sequence[SqlType]) -> str | None:
        array = args[0]
        if array.is_null:
            return None
        if not _is_array(array) or (array.element and array.element.kind in _NESTED):
            return f"argument 1 must be an array of {what}, got {array}"
        return None

    return check


_comparable_array = _primitive_array("comparable values")


def _sortable_array(args: Sequence[SqlType]) -> str | None:
    return _primitive_array("comparable values")(args) or _each(ANYTHING, STRING)(args)


def _array_join_check(args: Sequence[SqlType]) -> str | None:
    return _primitive_array("primitive values")(args) or _each(ANYTHING, STRING)(args)


def _as_map_check(args: Sequence[SqlType]) -> str | None:
    """AS_MAP(keys ARRAY<VARCHAR>, values ARRAY<T>), as ksqlDB's AsMap."""
    keys = args[0]
    if not keys.is_null and not (
        _is_array(keys) and (keys.element or t.NULL).kind in (TypeKind.VARCHAR, TypeKind.NULL)
    ):
        return f"argument 1 must be an array of strings, got {keys}"
    return _each(ANYTHING, ARRAY)(args)


def _as_map_result(args: Sequence[SqlType]) -> SqlType:
    return t.map_of(t.VARCHAR, args[1].element or t.NULL)


SCALARS: dict[str, Signature] = {
    s.name: s
    for s in [
        # strings
        Signature("UPPER", 1, 1, _all(*STRING), _fixed(t.VARCHAR)),
        Signature("LOWER", 1, 1, _all(*STRING), _fixed(t.VARCHAR)),
        Signature("INITCAP", 1, 1, _all(*STRING), _fixed(t.VARCHAR)),
        Signature("TRIM", 1, 1, _all(*STRING), _fixed(t.VARCHAR)),
        Signature("LTRIM", 1, 1, _all(*STRING), _fixed(t.VARCHAR)),
        Signature("RTRIM", 1, 1, _all(*STRING), _fixed(t.VARCHAR)),
        Signature("LENGTH", 1, 1, _all(*STRING), _fixed(t.INTEGER)),
        Signature("SUBSTRING", 2, 3, _each(STRING, INTEGRAL), _fixed(t.VARCHAR)),
        Signature("CONCAT", 1, None, _any, _fixed(t.VARCHAR)),
        Signature("CONCAT_WS", 2, None, _each(STRING, ANYTHING), _fixed(t.VARCHAR)),
        Signature("REPLACE", 3, 3, _all(*STRING), _fixed(t.VARCHAR)),
        Signature("LPAD", 3, 3, _each(STRING, INTEGRAL, STRING), _fixed(t.VARCHAR)),
        Signature("RPAD", 3, 3, _each(STRING, INTEGRAL, STRING), _fixed(t.VARCHAR)),
        Signature("SPLIT", 2, 2, _all(*STRING), _fixed(t.array(t.VARCHAR))),
        Signature("INSTR", 2, 4, _each(STRING, STRING, INTEGRAL), _fixed(t.INTEGER)),
        Signature("CHR", 1, 1, _each((_is_code_point, "an integer or a string")), _varchar),
        Signature("MASK", 1, 5, _all(*STRING), _varchar),
        *(Signature(name, 2, 6, _each(STRING, INTEGRAL, STRING), _varchar) for name in MASKS),
        Signature("UUID", 0, 0, _any, _varchar),
        Signature("ENCODE", 3, 3, _all(*STRING), _varchar),
        Signature("SPLIT_TO_MAP", 3, 3, _all(*STRING), _fixed(t.map_of(t.VARCHAR, t.VARCHAR))),
        Signature("REGEXP_EXTRACT", 2, 3, _each(STRING, STRING, INTEGRAL), _fixed(t.VARCHAR)),
        Signature("REGEXP_REPLACE", 3, 3, _all(*STRING), _fixed(t.VARCHAR)),
        Signature(
            "REGEXP_EXTRACT_ALL", 2, 3, _each(STRING, STRING, INTEGRAL), _fixed(t.array(t.VARCHAR))
        ),
        Signature("REGEXP_SPLIT_TO_ARRAY", 2, 2, _all(*STRING), _fixed(t.array(t.VARCHAR))),
        # math
        Signature("ABS", 1, 1, _all(*NUMBER), _first),
        Signature("CEIL", 1, 2, _each(NUMBER, INTEGRAL), _ceil_floor_result),
        Signature("FLOOR", 1, 2, _each(NUMBER, INTEGRAL), _ceil_floor_result),
        Signature("ROUND", 1, 2, _each(NUMBER, INTEGRAL), _round_result),
        Signature("TRUNC", 1, 2, _each(NUMBER, INTEGRAL), _round_result),
        Signature("SQRT", 1, 1, _all(*NUMBER), _fixed(t.DOUBLE)),
        Signature("POWER", 2, 2, _all(*NUMBER), _fixed(t.DOUBLE)),
        Signature("EXP", 1, 1, _all(*NUMBER), _fixed(t.DOUBLE)),
        Signature("LN", 1, 1, _all(*NUMBER), _fixed(t.DOUBLE)),
        Signature("LOG", 1, 2, _all(*NUMBER), _fixed(t.DOUBLE)),  # LOG(x) is base 10
        *(Signature(name, 1, 1, _all(*NUMBER), _fixed(t.DOUBLE)) for name in DOUBLE_FUNCTIONS),
        Signature("ATAN2", 2, 2, _all(*NUMBER), _fixed(t.DOUBLE)),
        Signature("PI", 0, 0, _any, _fixed(t.DOUBLE)),
        Signature("RANDOM", 0, 0, _any, _fixed(t.DOUBLE)),
        Signature("SIGN", 1, 1, _all(*NUMBER), _fixed(t.INTEGER)),
        Signature("MOD", 2, 2, _all(*NUMBER), _supertype),
        Signature("GREATEST", 1, None, _same_type, _supertype),
        Signature("LEAST", 1, None, _same_type, _supertype),
        # conditional
        Signature("COALESCE", 1, None, _same_type, _supertype),
        Signature("IFNULL", 2, 2, _same_type, _supertype),
        Signature("NULLIF", 2, 2, _same_type, _first),
        # time: TIMESTAMP values are epoch milliseconds at run time
        Signature("UNIX_TIMESTAMP", 1, 1, _each((_is_time, "a timestamp")), _fixed(t.BIGINT)),
        Signature("FROM_UNIXTIME", 1, 1, _all(*INTEGRAL), _fixed(t.TIMESTAMP)),
        Signature(
            "TIMESTAMPTOSTRING", 2, 3, _each((_is_time, "a timestamp"), STRING), _fixed(t.VARCHAR)
        ),
        Signature("STRINGTOTIMESTAMP", 2, 3, _all(*STRING), _fixed(t.TIMESTAMP)),
        Signature("DATE_FORMAT", 2, 2, _each((_is_time, "a timestamp"), STRING), _fixed(t.VARCHAR)),
        *(
            Signature(name, 3, 3, _each(STRING, INTEGRAL, (_is_time, "a timestamp")), _timestamp)
            for name in ("TIMESTAMPADD", "TIMESTAMPSUB")
        ),
        *(
            Signature(name, 3, 3, _each(STRING, INTEGRAL, (_is_date, "a date")), _fixed(t.DATE))
            for name in ("DATEADD", "DATESUB")
        ),
        Signature("UNIX_DATE", 1, 1, _each((_is_date, "a date")), _fixed(t.INTEGER)),
        Signature("FROM_DAYS", 1, 1, _all(*INTEGRAL), _fixed(t.DATE)),
        Signature("PARSE_DATE", 2, 2, _all(*STRING), _fixed(t.DATE)),
        Signature("FORMAT_DATE", 2, 2, _each((_is_date, "a date"), STRING), _fixed(t.VARCHAR)),
        Signature(
            "CONVERT_TZ",
            3,
            3,
            _each((_is_time, "a timestamp"), STRING, STRING),
            _fixed(t.TIMESTAMP),
        ),
        # collections
        Signature(
            "CARDINALITY", 1, 1, _each((_is_collection, "an array or map")), _fixed(t.INTEGER)
        ),
        Signature(
            "ELEMENT_AT", 2, 2, _each((_is_collection, "an array or map"), ANYTHING), _element
        ),
        Signature(
            "ARRAY_CONTAINS", 2, 2, _each((_is_array, "an array"), ANYTHING), _fixed(t.BOOLEAN)
        ),
        Signature("ARRAY_DISTINCT", 1, 1, _each(ARRAY), _first),
        *(Signature(name, 2, 2, _two_arrays, _same_array) for name in ARRAY_SETS),
        Signature("ARRAY_JOIN", 1, 2, _array_join_check, _varchar),
        Signature("ARRAY_MAX", 1, 1, _comparable_array, _element),
        Signature("ARRAY_MIN", 1, 1, _comparable_array, _element),
        Signature("ARRAY_REMOVE", 2, 2, _array_and_element, _first),
        Signature("ARRAY_SORT", 1, 2, _sortable_array, _first),
        Signature("SLICE", 3, 3, _each(ARRAY, INTEGRAL), _first),
        Signature("MAP_KEYS", 1, 1, _each(MAP), lambda a: t.array(a[0].key or t.NULL)),
        Signature("IS_JSON_STRING", 1, 1, _all(*STRING), _fixed(t.BOOLEAN)),
        Signature("JSON_ARRAY_LENGTH", 1, 1, _all(*STRING), _fixed(t.INTEGER)),
        Signature("JSON_KEYS", 1, 1, _all(*STRING), _fixed(t.array(t.VARCHAR))),
        Signature("JSON_CONCAT", 2, None, _all(*STRING), _varchar),
        Signature("TO_JSON_STRING", 1, 1, _any, _varchar),
        Signature("EXTRACTJSONFIELD", 2, 2, _all(*STRING), _varchar),
        Signature("MAP_VALUES", 1, 1, _each(MAP), lambda a: t.array(a[0].element or t.NULL)),
        Signature("MAP_UNION", 2, 2, _two_maps, _same_map),
        Signature("ENTRIES", 2, 2, _each(MAP, FLAG), _entries_result),
        Signature("GENERATE_SERIES", 2, 3, _each(INTEGRAL, INTEGRAL, INTEGRAL), _series_result),
        Signature("JSON_RECORDS", 1, 1, _all(*STRING), _fixed(t.map_of(t.VARCHAR, t.VARCHAR))),
        # constructors (ARRAY[...], MAP(k := v), STRUCT(f := v) are bound in constructors.py)
        Signature("AS_MAP", 2, 2, _as_map_check, _as_map_result),
        Signature("AS_VALUE", 1, 1, _any, _first),
    ]
}

ALIASES = {
    "LEN": "LENGTH",
    "LOG10": "LOG",
    "CHAR_LENGTH": "LENGTH",
    "CHARACTER_LENGTH": "LENGTH",
    "SUBSTR": "SUBSTRING",
    "CEILING": "CEIL",
    "POW": "POWER",
    "UCASE": "UPPER",
    "LCASE": "LOWER",
    "ARRAY_LENGTH": "CARDINALITY",
    "ARRAY_SIZE": "CARDINALITY",
    "SIZE": "CARDINALITY",
    "ARRAY_AGG": "COLLECT_LIST",
    "LIST": "COLLECT_LIST",
    "STDDEV_SAMPLE": "STDDEV_SAMP",  # ksqlDB 0.25's name for the standard deviation
    "VAR_SAMP": "VARIANCE",
    "CORR": "CORRELATION",
    "PARSE_TIMESTAMP": "STRINGTOTIMESTAMP",  # ksqlDB's names for the TIMESTAMP type's functions
    "FORMAT_TIMESTAMP": "TIMESTAMPTOSTRING",
}


def _sum_result(args: Sequence[SqlType]) -> SqlType:
    value = args[0]
    if value.kind is TypeKind.DECIMAL and value.scale is not None:
        return t.decimal(t.MAX_DECIMAL_PRECISION, value.scale)
    if value.kind in (TypeKind.INTEGER, TypeKind.BIGINT):
        return t.BIGINT
    return value


def _avg_result(args: Sequence[SqlType]) -> SqlType:
    value = args[0]
    if value.kind is TypeKind.DECIMAL and value.scale is not None:
        return t.decimal(t.MAX_DECIMAL_PRECISION, max(value.scale, 6))
    return t.DOUBLE


def _comparable(args: Sequence[SqlType]) -> str | None:
    if args and args[0].kind in (TypeKind.ARRAY, TypeKind.MAP, TypeKind.STRUCT):
        return f"argument 1 must be comparable, got {args[0]}"
    return None


def _primitive(args: Sequence[SqlType]) -> str | None:
    if args and args[0].kind in _NESTED:
        return f"argument 1 must be a primitive value, got {args[0]}"
    return None


def _rankable(args: Sequence[SqlType]) -> str | None:
    """TOPK(x, k): x a number, string or time (ksqlDB's TOPK types), k an integer."""
    value = args[0]
    rankable = value.is_numeric or value.is_temporal or value.kind is TypeKind.VARCHAR
    if not (value.is_null or rankable):
        return f"argument 1 must be a number, string or time, got {value}"
    return _each(ANYTHING, INTEGRAL)(args)


BOOLEAN = (lambda x: x.kind is TypeKind.BOOLEAN, "a boolean")


def _by_offset_check(args: Sequence[SqlType]) -> str | None:
    """EARLIEST_BY_OFFSET(x [, ignore_nulls]) or (x, n [, ignore_nulls])."""
    if len(args) == 3:
        return _each(ANYTHING, INTEGRAL, BOOLEAN)(args)
    if len(args) == 2 and not (args[1].is_null or _is_integer(args[1])):
        return _each(ANYTHING, BOOLEAN)(args)
    return None


def _by_offset_result(args: Sequence[SqlType]) -> SqlType:
    """One value, or an ARRAY of the first or last n when a count is given."""
    return t.array(args[0]) if len(args) > 1 and _is_integer(args[1]) else args[0]


def _array_of_first(args: Sequence[SqlType]) -> SqlType:
    return t.array(args[0])


_double = _fixed(t.DOUBLE)

AGGREGATES: dict[str, Signature] = {
    s.name: s
    for s in [
        Signature("COUNT", 0, 1, _any, _fixed(t.BIGINT), aggregate=True),
        Signature("SUM", 1, 1, _all(*NUMBER), _sum_result, aggregate=True),
        Signature("AVG", 1, 1, _all(*NUMBER), _avg_result, aggregate=True),
        Signature("MIN", 1, 1, _comparable, _first, aggregate=True),
        Signature("MAX", 1, 1, _comparable, _first, aggregate=True),
        Signature("COLLECT_LIST", 1, 1, _any, _array_of_first, aggregate=True),
        Signature("COLLECT_SET", 1, 1, _any, _array_of_first, aggregate=True),
        Signature("EARLIEST_BY_OFFSET", 1, 3, _by_offset_check, _by_offset_result, aggregate=True),
        Signature("LATEST_BY_OFFSET", 1, 3, _by_offset_check, _by_offset_result, aggregate=True),
        Signature("COUNT_DISTINCT", 1, 1, _primitive, _fixed(t.BIGINT), aggregate=True),
        Signature("TOPK", 2, 2, _rankable, _array_of_first, aggregate=True),
        Signature("TOPKDISTINCT", 2, 2, _rankable, _array_of_first, aggregate=True),
        Signature(
            "HISTOGRAM", 1, 1, _all(*STRING), _fixed(t.map_of(t.VARCHAR, t.BIGINT)), aggregate=True
        ),
        Signature("STDDEV_SAMP", 1, 1, _all(*NUMBER), _double, aggregate=True),
        Signature("STDDEV_POP", 1, 1, _all(*NUMBER), _double, aggregate=True),
        Signature("VARIANCE", 1, 1, _all(*NUMBER), _double, aggregate=True),
        Signature("CORRELATION", 2, 2, _all(*NUMBER), _double, aggregate=True),
        Signature("ATTR", 1, 1, _any, _first, aggregate=True),
    ]
}

# Aggregate arguments from this position on are constants (TOPK's k, the n and ignoreNulls
# of EARLIEST_BY_OFFSET): literals, read once when the query starts, as ksqlDB requires.
CONSTANT_ARGUMENTS_FROM = {
    "TOPK": 1,
    "TOPKDISTINCT": 1,
    "EARLIEST_BY_OFFSET": 1,
    "LATEST_BY_OFFSET": 1,
}


def lookup(name: str) -> Signature | None:
    upper = name.upper()
    upper = ALIASES.get(upper, upper)
    return SCALARS.get(upper) or AGGREGATES.get(upper)


def known_names() -> list[str]:
    return sorted({*SCALARS, *AGGREGATES, *ALIASES})
