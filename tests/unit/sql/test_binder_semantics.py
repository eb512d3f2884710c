"""Binder details where sqlglot's tree shape could silently change a query's meaning."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from streamhouse_runtime.exec.compiler import compile_projection
from streamhouse_runtime.sql.analyzer import analyze

pytestmark = pytest.mark.unit

DDL = (
    "CREATE STREAM t (arr ARRAY<INT>, s VARCHAR, m MAP<VARCHAR, INT>, n INT) "
    "WITH (kafka_topic='t');\n"
)


def _evaluate(select: str, row: Mapping[str, object]) -> dict[str, object]:
    query = analyze(DDL + f"SELECT {select} FROM t").statements[1].query
    assert query is not None
    return compile_projection(query.select)(dict(row))


def test_negations_that_sqlglot_folds_into_the_node_are_kept() -> None:
    row = {"s": "xyz", "n": None}
    assert _evaluate("s NOT LIKE 'x%' AS a, s LIKE 'x%' AS b", row) == {"a": False, "b": True}
    assert _evaluate("n IS NOT NULL AS a, n IS NULL AS b", row) == {"a": False, "b": True}
    assert _evaluate(
        "n NOT IN (1, 2) AS a, s NOT BETWEEN 'a' AND 'b' AS b", {"n": 3, "s": "c"}
    ) == {
        "a": True,
        "b": True,
    }


def test_array_subscripts_are_one_based_as_written() -> None:
    assert _evaluate("arr[1] AS first, arr[3] AS third", {"arr": [10, 20, 30]}) == {
        "first": 10,
        "third": 30,
    }
    assert _evaluate("m['k'] AS v", {"m": {"k": 7}}) == {"v": 7}


def test_trim_sides() -> None:
    assert _evaluate("LTRIM(s) AS l, RTRIM(s) AS r, TRIM(s) AS b", {"s": "  x  "}) == {
        "l": "x  ",
        "r": "  x",
        "b": "x",
    }
