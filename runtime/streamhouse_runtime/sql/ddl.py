"""DDL to catalog: column types and WITH properties of CREATE STREAM/TABLE, with exact errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

from sqlglot import exp
from sqlglot.expressions.datatypes import DType

from streamhouse_runtime.sql import nodes
from streamhouse_runtime.sql import types as t
from streamhouse_runtime.sql.catalog import Column, Format, Source, SourceKind
from streamhouse_runtime.sql.errors import ErrorCode, suggestion
from streamhouse_runtime.sql.limits import small_int
from streamhouse_runtime.sql.topics import MAX_PARTITIONS, MAX_REPLICAS, topic_problem
from streamhouse_runtime.sql.types import SqlType, TypeKind

# Raises the user-facing error for a node; never returns.
Fail = Callable[[ErrorCode, str, exp.Expr | None], NoReturn]

SOURCE_PROPERTIES = {
    "kafka_topic",
    "value_format",
    "key_format",
    "format",
    "key",
    "timestamp",
    "timestamp_format",
    "partitions",
    "replicas",
    "value_delimiter",
    "window_type",
    "window_size",
}
WINDOW_TYPES = ("TUMBLING", "HOPPING", "SESSION")

_SIMPLE_TYPES: dict[DType, SqlType] = {
    exp.DataType.Type.BOOLEAN: t.BOOLEAN,
    exp.DataType.Type.TINYINT: t.INTEGER,
    exp.DataType.Type.SMALLINT: t.INTEGER,
    exp.DataType.Type.INT: t.INTEGER,
    exp.DataType.Type.BIGINT: t.BIGINT,
    exp.DataType.Type.FLOAT: t.DOUBLE,
    exp.DataType.Type.DOUBLE: t.DOUBLE,
    exp.DataType.Type.VARCHAR: t.VARCHAR,
    exp.DataType.Type.NVARCHAR: t.VARCHAR,
    exp.DataType.Type.CHAR: t.VARCHAR,
    exp.DataType.Type.NCHAR: t.VARCHAR,
    exp.DataType.Type.TEXT: t.VARCHAR,
    exp.DataType.Type.TIMESTAMP: t.TIMESTAMP,
    exp.DataType.Type.TIMESTAMPTZ: t.TIMESTAMP,
    exp.DataType.Type.TIMESTAMPLTZ: t.TIMESTAMP,
    exp.DataType.Type.TIMESTAMP_MS: t.TIMESTAMP,
    exp.DataType.Type.DATETIME: t.TIMESTAMP,
    exp.DataType.Type.DATE: t.DATE,
    exp.DataType.Type.TIME: t.TIME,
    exp.DataType.Type.VARBINARY: t.BYTES,
    exp.DataType.Type.BINARY: t.BYTES,
    exp.DataType.Type.BLOB: t.BYTES,
}


class UnsupportedType(Exception):
    def __init__(self, node: exp.Expr) -> None:
        super().__init__(node.sql())
        self.node = node


def sql_type(node: exp.DataType) -> SqlType:
    """Our type for a parsed data type; raises UnsupportedType for anything else."""
    kind = node.this
    if kind in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[kind]
    params = node.expressions
    if kind in (exp.DataType.Type.DECIMAL, exp.DataType.Type.BIGDECIMAL):
        numbers = [
            (small_int(p.this.name) or 0) if isinstance(p.this, exp.Literal) else 0 for p in params
        ]
        precision = numbers[0] if numbers else 10
        scale = numbers[1] if len(numbers) > 1 else 0
        if not 1 <= precision <= t.MAX_DECIMAL_PRECISION or not 0 <= scale <= precision:
            raise UnsupportedType(node)
        return t.decimal(precision, scale)
    if kind == exp.DataType.Type.ARRAY and len(params) == 1:
        element = params[0]
        if isinstance(element, exp.DataType):
            return t.array(sql_type(element))
    if kind == exp.DataType.Type.MAP and len(params) == 2:
        key, value = params
        if isinstance(key, exp.DataType) and isinstance(value, exp.DataType):
            return t.map_of(sql_type(key), sql_type(value))
    if kind == exp.DataType.Type.STRUCT and params:
        fields: list[tuple[str, SqlType]] = []
        for field in params:
            if isinstance(field, exp.ColumnDef) and isinstance(
                field.args.get("kind"), exp.DataType
            ):
                fields.append((field.name, sql_type(field.args["kind"])))
            else:
                raise UnsupportedType(field)
        return t.struct(fields)
    raise UnsupportedType(node)


def property_map(
    properties: list[exp.Expr], allowed: set[str], fail: Fail
) -> dict[str, tuple[object, exp.Expr]]:
    """WITH (...) as {name: (python value, node)}; unknown or repeated names are errors."""
    result: dict[str, tuple[object, exp.Expr]] = {}
    for prop in properties:
        name = prop.name.lower()
        if name not in allowed:
            fail(
                ErrorCode.UNKNOWN_PROPERTY,
                f"unknown property '{name}'{suggestion(name, sorted(allowed))}",
                prop,
            )
        if name in result:
            fail(ErrorCode.INVALID_PROPERTY, f"property '{name}' given twice", prop)
        value_node = prop.args.get("value")
        value: object = None
        if isinstance(value_node, exp.Boolean):
            value = bool(value_node.this)
        elif isinstance(value_node, exp.Literal):
            text = value_node.name
            number = None if value_node.is_string else small_int(text, max_digits=30)
            value = number if number is not None else text
        elif isinstance(value_node, exp.Expr):
            value = value_node.name
        result[name] = (value, value_node if isinstance(value_node, exp.Expr) else prop)
    return result


def _format(value: object, node: exp.Expr, name: str, fail: Fail) -> Format:
    try:
        return Format(str(value).upper())
    except ValueError:
        options = ", ".join(f.value for f in Format)
        fail(ErrorCode.INVALID_PROPERTY, f"{name} '{value}' is not one of {options}", node)


def _positive(value: object, node: exp.Expr, name: str, fail: Fail) -> int:
    if isinstance(value, int) and value > 0:
        return value
    fail(ErrorCode.INVALID_PROPERTY, f"{name} must be a positive integer", node)


_UPPER_BOUNDS = {"partitions": MAX_PARTITIONS, "replicas": MAX_REPLICAS}


def topic_setting(props: dict[str, tuple[object, exp.Expr]], name: str, fail: Fail) -> int | None:
    """`partitions` or `replicas` from WITH, a positive integer within Kafka's bounds."""
    if name not in props:
        return None
    value, node = props[name]
    count = _positive(value, node, name, fail)
    if count > _UPPER_BOUNDS[name]:
        fail(
            ErrorCode.OUT_OF_RANGE,
            f"{name} = {count} is out of range: at most {_UPPER_BOUNDS[name]}",
            node,
        )
    return count


def check_topic(topic: str, node: exp.Expr, written: bool, fail: Fail, what: str = "") -> None:
    """Refuse a topic name Kafka or StreamHouse would refuse, at the node that names it."""
    problem = topic_problem(topic, written)
    if problem is not None:
        code, message = problem
        fail(code, f"{what}{message}", node)


def _columns(statement: nodes.CreateSource, fail: Fail) -> tuple[list[Column], list[str]]:
    """The declared columns and, in order, those marked PRIMARY KEY or KEY."""
    columns: list[Column] = []
    keys: list[str] = []
    seen: set[str] = set()
    for column_def in statement.args.get("columns") or []:
        column_name = column_def.name
        if column_name.lower() in seen:
            fail(ErrorCode.DUPLICATE_COLUMN, f"column '{column_name}' defined twice", column_def)
        seen.add(column_name.lower())
        kind_node = column_def.args.get("kind")
        if not isinstance(kind_node, exp.DataType):
            fail(ErrorCode.SYNTAX, f"column '{column_name}' needs a type", column_def)
        try:
            column_type = sql_type(kind_node)
        except UnsupportedType as unsupported:
            fail(
                ErrorCode.UNSUPPORTED,
                f"type {unsupported.node.sql()} of column '{column_name}' is not supported",
                kind_node,
            )
        constraints = column_def.args.get("constraints") or []
        key_kinds = (exp.PrimaryKeyColumnConstraint, nodes.KeyColumnConstraint)
        if any(isinstance(c.args.get("kind"), key_kinds) for c in constraints):
            keys.append(column_name)
        columns.append(Column(column_name, column_type))
    return columns, keys


def _timestamp(
    props: dict[str, tuple[object, exp.Expr]],
    by_name: dict[str, Column],
    source: str,
    fail: Fail,
) -> str | None:
    if "timestamp" not in props:
        return None
    value, node = props["timestamp"]
    column = by_name.get(str(value).lower())
    if column is None:
        fail(
            ErrorCode.UNKNOWN_COLUMN,
            f"timestamp column '{value}' is not a column of {source}"
            + suggestion(str(value), [c.name for c in by_name.values()]),
            node,
        )
    if column.type.kind is TypeKind.VARCHAR and "timestamp_format" not in props:
        fail(
            ErrorCode.TIMESTAMP_REQUIRED,
            f"timestamp column '{column.name}' is VARCHAR: add timestamp_format",
            node,
        )
    if column.type.kind not in (TypeKind.TIMESTAMP, TypeKind.BIGINT, TypeKind.VARCHAR):
        fail(
            ErrorCode.TYPE_MISMATCH,
            f"timestamp column '{column.name}' must be TIMESTAMP, BIGINT (epoch ms) "
            f"or VARCHAR with timestamp_format, not {column.type}",
            node,
        )
    return column.name


def source_from_ddl(statement: nodes.CreateSource, fail: Fail) -> Source:
    """Build a catalog Source from CREATE STREAM/TABLE name (columns) WITH (...)."""
    name = statement.this.name
    kind = SourceKind(statement.args["kind"])
    columns, key_columns = _columns(statement, fail)
    props = property_map(statement.args.get("properties") or [], SOURCE_PROPERTIES, fail)
    if "kafka_topic" not in props:
        fail(
            ErrorCode.MISSING_PROPERTY,
            f"{kind.value} {name} needs WITH (kafka_topic = '...')",
            statement.this,
        )
    value_format, key_format = Format.JSON, Format.KAFKA
    if "format" in props:
        value_format = key_format = _format(*props["format"], "format", fail)
    if "value_format" in props:
        value_format = _format(*props["value_format"], "value_format", fail)
    if "key_format" in props:
        key_format = _format(*props["key_format"], "key_format", fail)

    by_name = {c.name.lower(): c for c in columns}
    if "key" in props:
        value, node = props["key"]
        for key_name in (k.strip() for k in str(value).split(",")):
            if key_name.lower() not in by_name:
                fail(
                    ErrorCode.UNKNOWN_COLUMN,
                    f"key column '{key_name}' is not a column of {name}"
                    + suggestion(key_name, [c.name for c in columns]),
                    node,
                )
            canonical = by_name[key_name.lower()].name
            if canonical not in key_columns:
                key_columns.append(canonical)
    if kind is SourceKind.TABLE and not key_columns:
        fail(
            ErrorCode.MISSING_PROPERTY,
            f"TABLE {name} needs a PRIMARY KEY column (or WITH (key = '...'))",
            statement.this,
        )
    if key_format is Format.KAFKA and len(key_columns) > 1:
        where = props.get("key_format") or props.get("format")
        fail(
            ErrorCode.INVALID_PROPERTY,
            f"key_format KAFKA holds one key column; {name} has {len(key_columns)} "
            f"({', '.join(key_columns)}): use key_format JSON, DELIMITED or AVRO",
            where[1] if where is not None else statement.this,
        )
    timestamp_format = str(props["timestamp_format"][0]) if "timestamp_format" in props else None
    window_type, window_size_ms = _windowed_key(props, statement, fail)
    partitions = topic_setting(props, "partitions", fail)
    replicas = topic_setting(props, "replicas", fail)
    check_topic(str(props["kafka_topic"][0]), props["kafka_topic"][1], False, fail)
    return Source(
        name=name,
        kind=kind,
        columns=tuple(Column(c.name, c.type, key=c.name in key_columns) for c in columns),
        topic=str(props["kafka_topic"][0]),
        value_format=value_format,
        key_format=key_format,
        key_columns=tuple(key_columns),
        timestamp_column=_timestamp(props, by_name, name, fail),
        timestamp_format=timestamp_format,
        partitions=partitions,
        replicas=replicas,
        window_type=window_type,
        window_size_ms=window_size_ms,
    )


def _windowed_key(
    props: dict[str, tuple[object, exp.Expr]], statement: nodes.CreateSource, fail: Fail
) -> tuple[str | None, int | None]:
    """ksqlDB's windowed sources: WINDOW_TYPE = 'TUMBLING' | 'HOPPING' | 'SESSION', with
    WINDOW_SIZE = '<number> <unit>' for the time windows (and not for SESSION, whose key holds
    both bounds)."""
    if "window_type" not in props:
        if "window_size" in props:
            fail(
                ErrorCode.INVALID_PROPERTY,
                "window_size needs window_type (TUMBLING or HOPPING)",
                props["window_size"][1],
            )
        return None, None
    value, node = props["window_type"]
    window_type = str(value).strip().upper()
    if window_type not in WINDOW_TYPES:
        fail(
            ErrorCode.INVALID_PROPERTY,
            f"window_type '{value}' is not one of {', '.join(WINDOW_TYPES)}",
            node,
        )
    if window_type == "SESSION":
        if "window_size" in props:
            fail(
                ErrorCode.INVALID_PROPERTY,
                "window_size is not set for SESSION windows (the key holds both bounds)",
                props["window_size"][1],
            )
        return window_type, None
    if "window_size" not in props:
        fail(
            ErrorCode.MISSING_PROPERTY,
            f"a {window_type} windowed source needs WITH (window_size = '<number> <unit>')",
            node,
        )
    from streamhouse_runtime.sql.binder import interval_ms  # the binder imports this module

    size_value, size_node = props["window_size"]
    text = str(size_value).strip()
    if len(text.split()) != 2:
        fail(
            ErrorCode.INVALID_PROPERTY,
            f"window_size '{text}' should be a number and a time unit, e.g. '10 SECONDS'",
            size_node,
        )

    def at_size(_code: ErrorCode, message: str, _node: exp.Expr | None) -> NoReturn:
        fail(ErrorCode.INVALID_PROPERTY, f"window_size: {message}", size_node)

    return window_type, interval_ms(exp.Interval(this=exp.Literal.string(text)), at_size)
