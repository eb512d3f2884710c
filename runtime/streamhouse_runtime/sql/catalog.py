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
    # A windowed source (ksqlDB's WINDOW_TYPE / WINDOW_SIZE): its keys carry window bounds,
    # read as the WINDOWSTART / WINDOWEND columns. TUMBLING, HOPPING or SESSION.
    window_type: str | None = None
    window_size_ms: int | None = None  # TUMBLING and HOPPING: WINDOWEND = WINDOWSTART + size

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

    @property
    def shared_used(self) -> frozenset[str]:
        """Shared declarations the text used (none: see SharedCatalog)."""
        return frozenset()


class SharedCatalog(Catalog):
    """A catalog seeded with the namespace's shared declarations (StreamSource objects).

    The text's own declarations replace shared ones of the same name; `shared_used` holds the
    shared names the text looked up and did not replace, i.e. the declarations a deployed
    query needs in front of its own SQL."""

    def __init__(self, shared: dict[str, Source]) -> None:
        super().__init__(sources={name.lower(): s for name, s in shared.items()})
        self._shared = set(self.sources)
        self._looked_up: set[str] = set()

    def source(self, name: str) -> Source | None:
        lowered = name.lower()
        if lowered in self._shared:
            self._looked_up.add(lowered)
        return super().source(name)

    def override(self, source: Source) -> bool:
        """Replace a shared declaration by the text's own; False when the name is not shared."""
        lowered = source.name.lower()
        if lowered not in self._shared:
            return False
        self._shared.discard(lowered)
        self._looked_up.discard(lowered)
        self.add_source(source)
        return True

    def drop_source(self, name: str) -> None:
        self._shared.discard(name.lower())
        super().drop_source(name)

    @property
    def shared_used(self) -> frozenset[str]:
        return frozenset(self._looked_up & self._shared)
