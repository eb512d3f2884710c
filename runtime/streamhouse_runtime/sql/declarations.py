"""The shared catalog: one `CREATE STREAM` or `CREATE TABLE` declaration per StreamSource, read
by every query of the namespace (ksqlDB's metastore and Flink's catalogs, kept as Kubernetes
objects as Hoptimator does).

Pure functions over text: the operator feeds them the StreamSource objects of a namespace,
`streamhouse validate|test -c` the manifests of a folder. A query's SQL is analyzed with the
catalog seeded (`analyze(sql, shared)`), so its errors keep their own line:column; what a pod
runs is `prelude(...)` + the query's SQL, a text that stands alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlglot import exp

from streamhouse_runtime.sql import nodes
from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.sql.catalog import Column, Format, Source, SourceKind
from streamhouse_runtime.sql.dialect import parse_statements
from streamhouse_runtime.sql.errors import ErrorCode, SqlError, SqlValidationError
from streamhouse_runtime.sql.query import StatementKind
from streamhouse_runtime.sql.types import SqlType, TypeKind

CATALOG_KIND = "StreamSource"


@dataclass(frozen=True)
class Declaration:
    """One shared stream or table: its SQL and where it came from (object or file name)."""

    origin: str
    sql: str
    source: Source

    @property
    def name(self) -> str:
        return self.source.name.lower()


def parse_declaration(sql: str, origin: str) -> Declaration:
    """The one CREATE STREAM|TABLE declaration `sql` must hold (E430 otherwise)."""
    program = analyze(sql)
    kinds = [s.kind for s in program.statements]
    if kinds != [StatementKind.CREATE_SOURCE]:
        line = program.statements[1].line if len(kinds) > 1 else program.statements[0].line
        raise SqlValidationError(
            [
                SqlError(
                    ErrorCode.NOT_A_DECLARATION,
                    "a StreamSource holds exactly one CREATE STREAM|TABLE declaration with "
                    "columns (no AS SELECT, INSERT or other statements)",
                    line,
                    1,
                )
            ]
        )
    (source,) = program.catalog.sources.values()
    return Declaration(origin, sql, source)


def catalog_of(declarations: Iterable[Declaration]) -> dict[str, Source]:
    """The shared catalog by lower-case name; two declarations of one name are refused (E431)."""
    found: dict[str, Declaration] = {}
    for declaration in declarations:
        other = found.get(declaration.name)
        if other is not None:
            raise SqlValidationError(
                [
                    SqlError(
                        ErrorCode.DUPLICATE_DECLARATION,
                        f"{declaration.source.kind.value} {declaration.source.name} is declared "
                        f"by both {other.origin} and {declaration.origin}",
                        1,
                        1,
                    )
                ]
            )
        found[declaration.name] = declaration
    return {name: d.source for name, d in found.items()}


def referenced_names(sql: str) -> set[str]:
    """Names of streams and tables `sql` reads or writes into but does not declare itself:
    the shared declarations it depends on. Unparsable SQL references nothing."""
    try:
        statements = [s for s in parse_statements(sql) if s is not None]
    except Exception:  # validation reports it; here it only means "no users"
        return set()
    declared: set[str] = set()
    read: set[str] = set()
    for statement in statements:
        if isinstance(statement, nodes.CreateSource | nodes.CreateAs):
            declared.add(statement.this.name.lower())
        if isinstance(statement, nodes.InsertInto):
            read.add(statement.this.name.lower())
        for table in statement.find_all(exp.Table):
            if table.name and not isinstance(table.parent, nodes.CreateSource | nodes.CreateAs):
                read.add(table.name.lower())
    return read - declared


def render_type(sql_type: SqlType) -> str:
    if sql_type.kind is TypeKind.STRUCT:
        return "STRUCT<" + ", ".join(f"{n} {render_type(t)}" for n, t in sql_type.fields) + ">"
    return str(sql_type)


def render_ddl(source: Source) -> str:
    """A CREATE STREAM|TABLE statement that declares `source` as it is (a query's output,
    registered in the catalog so other queries read it by name)."""
    keys = {k.lower() for k in source.key_columns}
    marker = "PRIMARY KEY" if source.kind is SourceKind.TABLE else "KEY"
    columns = ", ".join(
        f"{c.name} {render_type(c.type)}" + (f" {marker}" if c.name.lower() in keys else "")
        for c in source.columns
    )
    props: list[tuple[str, object]] = [
        ("kafka_topic", source.topic),
        ("value_format", source.value_format.value),
    ]
    if keys:
        props.append(("key_format", source.key_format.value))
    if source.timestamp_column:
        props.append(("timestamp", source.timestamp_column))
    if source.timestamp_format:
        props.append(("timestamp_format", source.timestamp_format))
    for name in ("partitions", "replicas"):
        value = getattr(source, name)
        if value is not None:
            props.append((name, value))
    if source.window_type is not None:  # a windowed query's output has windowed keys
        props.append(("window_type", source.window_type))
        if source.window_size_ms is not None:
            props.append(("window_size", f"{source.window_size_ms} MILLISECONDS"))
    rendered = ", ".join(f"{k} = {v}" if isinstance(v, int) else f"{k} = '{v}'" for k, v in props)
    return f"CREATE {source.kind.value} {source.name} ({columns})\n  WITH ({rendered});\n"


def prelude(shared: Mapping[str, Source], used: Iterable[str]) -> str:
    """The declarations a query uses, as SQL to put in front of its own."""
    return "".join(f"-- from the catalog\n{render_ddl(shared[name])}" for name in sorted(used))


def manifests_in(path: Path) -> list[Path]:
    """A manifest file, or every .yaml/.yml file under a folder (sorted)."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
    return [path]


def load_catalog(paths: Iterable[Path]) -> list[Declaration]:
    """Every StreamSource manifest in these files or folders, parsed (other kinds skipped)."""
    declarations = []
    for path in paths:
        for file in manifests_in(path):
            for document in yaml.safe_load_all(file.read_text()):
                if isinstance(document, dict) and document.get("kind") == CATALOG_KIND:
                    name = (document.get("metadata") or {}).get("name", "?")
                    sql = str((document.get("spec") or {}).get("sql", ""))
                    try:
                        declarations.append(parse_declaration(sql, f"{file} ({name})"))
                    except SqlValidationError as invalid:
                        raise CatalogFileError(file, name, invalid) from None
    return declarations


class CatalogFileError(ValueError):
    """A StreamSource manifest whose declaration is invalid."""

    def __init__(self, file: Path, name: str, invalid: SqlValidationError) -> None:
        self.file, self.name, self.errors = file, name, invalid.errors
        super().__init__(f"{file}: StreamSource {name}: {invalid}")


# -- import from a schema registry subject (AVRO) --------------------------------------------

_AVRO_PRIMITIVES: dict[str, SqlType] = {
    "boolean": SqlType(TypeKind.BOOLEAN),
    "int": SqlType(TypeKind.INTEGER),
    "long": SqlType(TypeKind.BIGINT),
    "float": SqlType(TypeKind.DOUBLE),
    "double": SqlType(TypeKind.DOUBLE),
    "string": SqlType(TypeKind.VARCHAR),
    "bytes": SqlType(TypeKind.BYTES),
}
_AVRO_LOGICAL: dict[str, SqlType] = {
    "timestamp-millis": SqlType(TypeKind.TIMESTAMP),
    "timestamp-micros": SqlType(TypeKind.TIMESTAMP),
    "date": SqlType(TypeKind.DATE),
    "time-millis": SqlType(TypeKind.TIME),
}


def sql_type_of_avro(avro: Any) -> SqlType:
    """The SQL type of an Avro schema (a nullable union is its non-null branch)."""
    if isinstance(avro, list):
        branches = [b for b in avro if b != "null"]
        if len(branches) != 1:
            raise ValueError(f"unions other than [null, T] have no SQL type: {avro}")
        return sql_type_of_avro(branches[0])
    if isinstance(avro, str):
        if avro in _AVRO_PRIMITIVES:
            return _AVRO_PRIMITIVES[avro]
        raise ValueError(f"Avro type {avro!r} has no SQL type")
    logical = avro.get("logicalType")
    if logical == "decimal":
        return SqlType(TypeKind.DECIMAL, int(avro["precision"]), int(avro.get("scale", 0)))
    if logical in _AVRO_LOGICAL:
        return _AVRO_LOGICAL[logical]
    kind = avro.get("type")
    if kind == "array":
        return SqlType(TypeKind.ARRAY, element=sql_type_of_avro(avro["items"]))
    if kind == "map":
        return SqlType(
            TypeKind.MAP, key=SqlType(TypeKind.VARCHAR), element=sql_type_of_avro(avro["values"])
        )
    if kind == "record":
        fields = tuple((f["name"], sql_type_of_avro(f["type"])) for f in avro["fields"])
        return SqlType(TypeKind.STRUCT, fields=fields)
    if kind == "enum":
        return SqlType(TypeKind.VARCHAR)
    return sql_type_of_avro(kind)


def declaration_from_avro(
    schema_text: str,
    name: str,
    topic: str,
    kind: SourceKind = SourceKind.STREAM,
    key: str | None = None,
    timestamp: str | None = None,
) -> str:
    """A CREATE STREAM|TABLE for the Avro record schema of a registry subject (E434 when the
    schema is not a record of SQL-typed fields)."""
    try:
        schema = json.loads(schema_text)
        if not isinstance(schema, dict) or schema.get("type") != "record":
            raise ValueError("the subject's schema is not an Avro record")
        columns = tuple(Column(f["name"], sql_type_of_avro(f["type"])) for f in schema["fields"])
    except (ValueError, KeyError, TypeError) as error:
        raise SqlValidationError(
            [SqlError(ErrorCode.SCHEMA_IMPORT, f"cannot import {name}: {error}", 1, 1)]
        ) from None
    keys = (key,) if key else ()
    source = Source(
        name=name,
        kind=kind,
        columns=columns,
        topic=topic,
        value_format=Format.AVRO,
        key_format=Format.KAFKA,
        key_columns=keys,
        timestamp_column=timestamp,
    )
    ddl = render_ddl(source)
    parse_declaration(ddl, name)  # the rendered declaration must itself be valid
    return ddl


def manifest(name: str, sql: str, namespace: str | None = None) -> dict[str, Any]:
    """A StreamSource manifest holding `sql`."""
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "streamhouse.io/v1alpha1",
        "kind": CATALOG_KIND,
        "metadata": metadata,
        "spec": {"sql": sql},
    }
