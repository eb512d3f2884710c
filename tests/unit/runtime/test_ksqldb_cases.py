"""ksqlDB-behaviour cases in ksqlDB's test-runner format (`ksqldb_cases/*.json`: statements,
inputs, expected outputs, one file per feature), each run through the real command,
`streamhouse test --compatibility ksqldb`, with the case's parts written to files.

`known_differences.json` holds cases where StreamHouse still differs from ksqlDB: they are
run too, and must still differ, so that a fix is noticed (then move the case to its feature
file). The README's "Coming from ksqlDB" part lists them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from streamhouse_runtime import cli
from streamhouse_runtime.sql.analyzer import analyze
from streamhouse_runtime.sql.compatibility import Compatibility
from streamhouse_runtime.testing.runner import DEAD_LETTER_TOPIC, OfflineRun, compare

pytestmark = pytest.mark.unit

CASES = Path(__file__).parent / "ksqldb_cases"
KNOWN_DIFFERENCES = "known_differences"
MINIMUM_CASES_PER_FEATURE = 5


def _load(path: Path) -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = json.loads(path.read_text())["tests"]
    return tests


def _features() -> dict[str, list[dict[str, Any]]]:
    return {p.stem: _load(p) for p in sorted(CASES.glob("*.json")) if p.stem != KNOWN_DIFFERENCES}


def _params(features: dict[str, list[dict[str, Any]]]) -> list[Any]:
    return [
        pytest.param(case, id=f"{feature}: {case['name']}")
        for feature, cases in features.items()
        for case in cases
    ]


def _run_cli(case: dict[str, Any], directory: Path) -> tuple[int, list[dict[str, Any]]]:
    """`streamhouse test --compatibility ksqldb` over the case; its exit status and the
    records it produced (dead letters left out: ksqlDB logs such records and moves on)."""
    statements, inputs = directory / "statements.sql", directory / "inputs.json"
    expected, recorded = directory / "outputs.json", directory / "recorded.json"
    statements.write_text("\n".join(case["statements"]) + "\n")
    inputs.write_text(json.dumps({"inputs": case["inputs"]}))
    expected.write_text(json.dumps({"outputs": case["outputs"]}))
    status = cli.main(
        [
            *("--log-level", "WARNING", "test", "--compatibility", "ksqldb"),
            *("-s", str(statements), "-i", str(inputs), "-o", str(expected)),
            *("--record", str(recorded)),
        ]
    )
    produced = json.loads(recorded.read_text())["outputs"] if recorded.exists() else []
    return status, [r for r in produced if r["topic"] != DEAD_LETTER_TOPIC]


def _differences(case: dict[str, Any], directory: Path) -> list[str]:
    status, actual = _run_cli(case, directory)
    if not actual and not case["outputs"] and status != 0:
        return [f"streamhouse test exited {status}"]
    diff = compare(case["outputs"], actual)
    if len(actual) != len(case["outputs"]):
        diff.append(f"{len(actual)} record(s), expected {len(case['outputs'])}")
    return diff


@pytest.mark.parametrize("case", _params(_features()))
def test_ksqldb_case(case: dict[str, Any], tmp_path: Path) -> None:
    assert _differences(case, tmp_path) == []


@pytest.mark.parametrize(
    "case", _params({KNOWN_DIFFERENCES: _load(CASES / f"{KNOWN_DIFFERENCES}.json")})
)
def test_known_difference_still_differs(case: dict[str, Any], tmp_path: Path) -> None:
    assert case.get("difference"), "say how StreamHouse differs"
    assert _differences(case, tmp_path) != [], "this case now passes: move it to its feature file"


def test_pass_count_per_feature(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every feature has cases, all pass, and the README's table of them is current."""
    features = _features()
    passed: Counter[str] = Counter()
    for feature, cases in features.items():
        for number, case in enumerate(cases):
            directory = tmp_path / f"{feature}-{number}"
            directory.mkdir()
            passed[feature] += not _differences(case, directory)
    with capsys.disabled():
        print("\nksqlDB cases passed per feature:")
        for feature, cases in features.items():
            print(f"  {feature}: {passed[feature]}/{len(cases)}")
        total = sum(len(cases) for cases in features.values())
        print(f"  total: {sum(passed.values())}/{total}")
    assert all(len(cases) >= MINIMUM_CASES_PER_FEATURE for cases in features.values())
    assert total >= 150
    assert all(passed[feature] == len(cases) for feature, cases in features.items())
    names = [c["name"] for cases in features.values() for c in cases]
    assert len(names) == len(set(names)), "case names are unique"
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    for feature, cases in features.items():
        row = f"| {feature.replace('_', ' ')} | {len(cases)} | {passed[feature]} |"
        assert row in readme, f"README's ksqlDB-behaviour table lacks {row}"


def test_the_cli_path_matches_the_offline_run(tmp_path: Path) -> None:
    (case,) = [c for c in _features()["keys"] if c["name"] == "group by key is not in the value"]
    run = OfflineRun(analyze("\n".join(case["statements"]), compatibility=Compatibility.KSQLDB))
    run.feed(case["inputs"])
    run.run()
    offline = [o for o in run.outputs() if o["topic"] != DEAD_LETTER_TOPIC]
    status, through_cli = _run_cli(case, tmp_path)
    assert status == 0
    assert compare(offline, through_cli) == [] and len(offline) == len(through_cli)


def test_the_cases_can_fail(tmp_path: Path) -> None:
    (case,) = [c for c in _features()["names"] if "KSQL_COL_0, KSQL_COL_1" in c["name"]]
    wrong = dict(case, outputs=[dict(case["outputs"][0], value={"WRONG": 1})])
    assert _differences(wrong, tmp_path) != []
    status, _ = _run_cli(wrong, tmp_path)
    assert status == 1
