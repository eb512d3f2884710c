"""ksqlDB-behaviour cases in ksqlDB's test-runner format (`ksqldb_cases/*.json`: statements,
inputs, expected outputs, grouped by feature), run under the ksqlDB compatibility mode
exactly as `streamhouse test --compatibility ksqldb` runs a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.sql.compatibility import Compatibility
from streamhouse_runtime.testing.runner import DEAD_LETTER_TOPIC, OfflineRun, compare

pytestmark = pytest.mark.unit

CASES = Path(__file__).parent / "ksqldb_cases"


def _cases() -> list[Any]:
    found = []
    for path in sorted(CASES.glob("*.json")):
        for case in json.loads(path.read_text())["tests"]:
            found.append(pytest.param(case, id=f"{path.stem}: {case['name']}"))
    return found


@pytest.mark.parametrize("case", _cases())
def test_ksqldb_case(case: dict[str, Any]) -> None:
    run = OfflineRun(analyze("\n".join(case["statements"]), compatibility=Compatibility.KSQLDB))
    run.feed(case["inputs"])
    run.run()
    actual = [o for o in run.outputs() if o["topic"] != DEAD_LETTER_TOPIC]
    assert compare(case["outputs"], actual) == []
    assert len(actual) == len(case["outputs"])


def test_the_cases_can_fail() -> None:
    (case,) = [c.values[0] for c in _cases() if "KSQL_COL_0, KSQL_COL_1" in c.values[0]["name"]]
    run = OfflineRun(analyze("\n".join(case["statements"])))  # the default mode
    run.feed(case["inputs"])
    run.run()
    assert compare(case["outputs"], run.outputs()) != []
