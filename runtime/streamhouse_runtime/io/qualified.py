"""Rows of a source read under a qualifier: in a join every field is named `<alias>.<column>`
(`o.customer_id`), while the record's value and key hold the bare column names. These
serdes decode with the bare names and hand out rows with the qualified ones."""

from __future__ import annotations

from collections.abc import Sequence

from streamhouse_runtime.io.serde import KeySerde, ValueSerde
from streamhouse_runtime.plan.nodes import Source

ROWTIME = "ROWTIME"


def qualifier_of(source: Source) -> str:
    """The `alias.` prefix the source's fields carry ("" when they carry none)."""
    names = [f.name for f in source.schema.fields]
    if names and all("." in name for name in names):
        prefix = names[0].split(".", 1)[0] + "."
        if all(name.startswith(prefix) for name in names):
            return prefix
    return ""


class QualifiedValues:
    def __init__(self, inner: ValueSerde, qualifier: str) -> None:
        self.inner, self.qualifier = inner, qualifier

    def decode(self, data: bytes | None) -> dict[str, object] | None:
        row = self.inner.decode(data)
        if row is None:
            return None
        q = self.qualifier
        return {q + name: value for name, value in row.items()}

    def encode(self, row: dict[str, object] | None) -> bytes | None:
        if row is None:
            return self.inner.encode(None)
        raw = len(self.qualifier)
        return self.inner.encode({name[raw:]: value for name, value in row.items()})


class QualifiedKeys:
    def __init__(self, inner: KeySerde, qualifier: str) -> None:
        self.inner, self.qualifier = inner, qualifier

    def decode(self, data: bytes | None) -> dict[str, object]:
        q = self.qualifier
        return {q + name: value for name, value in self.inner.decode(data).items()}

    def encode(self, values: Sequence[object]) -> bytes | None:
        return self.inner.encode(values)
