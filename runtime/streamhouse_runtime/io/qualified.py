"""Rows of a source read under a qualifier: in a join every field is named `<alias>.<column>`
(`o.customer_id`), while the record's value and key hold the bare column names. These
serdes decode with the bare names and hand out rows with the qualified ones."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from streamhouse_runtime.io.serde import KeySerde, ValueSerde
from streamhouse_runtime.plan.nodes import Source

ROWTIME = "ROWTIME"
Row = dict[str, object]


def qualifier_of(source: Source) -> str:
    """The `alias.` prefix the source's fields carry ("" when they carry none)."""
    names = [f.name for f in source.schema.fields]
    if names and all("." in name for name in names):
        prefix = names[0].split(".", 1)[0] + "."
        if all(name.startswith(prefix) for name in names):
            return prefix
    return ""


def _renamer(names: Sequence[str], qualifier: str) -> Callable[[dict[str, object]], Row]:
    """A generated function that copies the declared columns under their qualified names (a
    dict display of fixed keys: much cheaper than renaming in a loop)."""
    items = ", ".join(f"{qualifier + name!r}: get({name!r})" for name in names)
    namespace: dict[str, object] = {}
    exec(f"def rename(row):\n    get = row.get\n    return {{{items}}}\n", namespace)
    return namespace["rename"]  # type: ignore[return-value]


class QualifiedValues:
    def __init__(self, inner: ValueSerde, qualifier: str, names: Sequence[str]) -> None:
        self.inner, self.qualifier = inner, qualifier
        self.rename = _renamer(names, qualifier)

    def decode(self, data: bytes | None) -> dict[str, object] | None:
        row = self.inner.decode(data)
        return None if row is None else self.rename(row)

    def encode(self, row: dict[str, object] | None) -> bytes | None:
        if row is None:
            return self.inner.encode(None)
        raw = len(self.qualifier)
        return self.inner.encode({name[raw:]: value for name, value in row.items()})


class QualifiedKeys:
    def __init__(self, inner: KeySerde, qualifier: str, names: Sequence[str]) -> None:
        self.inner, self.qualifier = inner, qualifier
        self.rename = _renamer(names, qualifier)

    def decode(self, data: bytes | None) -> dict[str, object]:
        return self.rename(self.inner.decode(data))

    def encode(self, values: Sequence[object]) -> bytes | None:
        return self.inner.encode(values)
