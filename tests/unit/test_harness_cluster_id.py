"""The test broker's cluster id is one Kafka's storage tool accepts: never an option-like
`-...` (one random id in 64 started with `-` and made `StorageTool format` fail)."""

from __future__ import annotations

import pytest

from tests.harness.kafka import _cluster_id

pytestmark = pytest.mark.unit


def test_a_cluster_id_never_starts_with_a_dash() -> None:
    ids = [_cluster_id() for _ in range(5_000)]
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(i) == 22 for i in ids)
