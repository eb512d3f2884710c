"""What a SQL text declares: streams, tables and functions, with their columns and Kafka settings.

Names are case-insensitive (stored lower-case) unless quoted in the SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from streamhouse_runtime.sql.types import SqlType


class SourceKind(StrEnum):
    STREAM = "STREAM"
    TABLE = "TABLE"


class Format(StrEnum):
    JSON = "JSON"
    AVRO = "AVRO"
    DELIMITED = "DELIMITED"
    KAFKA = "KAFKA"


@dataclass(frozen=True)
class Column:
    name: str
    type: SqlType
    key: bool = False  # part of the Kafka message key (ksqlDB KEY / PRIMARY KEY)


@dataclass(frozen=True)
class Source:
    """A stream or table: a schema over a Kafka topic."""

    name: str
    kind: SourceKind
    columns: tuple[Column, ...]
    topic: str
    value_format: Format = Format.JSON
    key_format: Format = Format.KAFKA
    key_columns: tuple[str, ...] = ()
    timestamp_column: str | None = None
    timestamp_format: str | None = None
    partitions: int | None = None
    replicas: int | None = None
    derived: bool = False  # defined by CREATE ... AS SELECT

    def column(self, name: str) -> Column | None:
        lowered = name.lower()
        for column in self.columns:
            if column.name.lower() == lowered:
                return column
        return None

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


@dataclass(frozen=True)
class Function:
    """A user-defined scalar function (`CREATE FUNCTION ... LANGUAGE PYTHON`)."""

    name: str
    parameters: tuple[Column, ...]
    returns: SqlType
    target: str  # "module:callable", or a `streamhouse.udfs` entry point name
    line: int = 1  # where the definition string is, for errors when it is loaded
    column: int = 1


@dataclass
class Catalog:
    sources: dict[str, Source] = field(default_factory=dict)
    functions: dict[str, Function] = field(default_factory=dict)

    def source(self, name: str) -> Source | None:
        return self.sources.get(name.lower())

    def add_source(self, source: Source) -> None:
        self.sources[source.name.lower()] = source

    def drop_source(self, name: str) -> None:
        self.sources.pop(name.lower(), None)

    def function(self, name: str) -> Function | None:
        return self.functions.get(name.lower())

    def add_function(self, function: Function) -> None:
        self.functions[function.name.lower()] = function
