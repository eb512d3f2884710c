"""Micro-benchmark of the JSON value serde on a ~110-byte order record (the runtime's hot path).

Run: `.venv/bin/python bench/bench_serde.py [records]`. Prints records/s for decode and encode,
the median of 3 runs of `records` calls each (default 200,000).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

from streamhouse_runtime.io import value_serde
from streamhouse_runtime.sql.catalog import Column, Format
from streamhouse_runtime.sql.types import BIGINT, TIMESTAMP, VARCHAR, decimal

RECORD = (
    b'{"order_id": 123, "customer_id": "c-17", "amount": 1234.56, "status": "placed", '
    b'"created_at": 1700000000000}'
)
COLUMNS = [
    Column("order_id", BIGINT),
    Column("customer_id", VARCHAR),
    Column("amount", decimal(10, 2)),
    Column("status", VARCHAR),
    Column("created_at", TIMESTAMP),
]


def rate(call: Callable[[], object], records: int) -> float:
    """Median records/s over 3 runs of `records` calls."""
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(records):
            call()
        runs.append(records / (time.perf_counter() - start))
    return statistics.median(runs)


def main() -> None:
    records = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    serde = value_serde(Format.JSON, COLUMNS)
    row = serde.decode(RECORD)
    assert row is not None
    decoded = dict(row)

    def decode() -> object:
        return serde.decode(RECORD)

    def encode() -> object:
        return serde.encode(decoded)

    print(f"record: {len(RECORD)} bytes -> {serde.encode(decoded)!r}")
    for name, call in (("decode", decode), ("encode", encode)):
        per_second = rate(call, records)
        print(f"JSON {name}: {per_second:12,.0f} records/s ({1e6 / per_second:.2f} µs/record)")


if __name__ == "__main__":
    main()
