"""The alert rules pass `promtool check rules` and `promtool test rules` (Prometheus' own
evaluator, built from the Go module proxy by scripts/build-promtool.sh): each alert fires on
the series that should trigger it and stays quiet on a healthy neighbour."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.harness.processes import run_build_script
from tests.monitoring_assets import RULES, alert_rules

pytestmark = pytest.mark.unit

RULE_TESTS = Path(__file__).with_name("prometheus-rules-test.yaml")
ALERTS = {
    "StreamHouseLagGrowing",
    "StreamHouseDeadLetterRate",
    "StreamHouseWatermarkStalled",
    "StreamHouseQueryNotReady",
    "StreamHouseQueryCrashLooping",
}


@pytest.fixture(scope="module")
def promtool() -> Path:
    return run_build_script("build-promtool.sh") / "promtool"


def _promtool(promtool: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(promtool), *args], capture_output=True, text=True, check=False)


def test_the_rules_file_is_valid(promtool: Path) -> None:
    checked = _promtool(promtool, "check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in checked.stdout


def test_every_alert_fires_when_it_should(promtool: Path) -> None:
    assert {rule["alert"] for rule in alert_rules()} == ALERTS
    tested = {
        case["alertname"]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert tested == ALERTS
    result = _promtool(promtool, "test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_threshold_fails_the_rule_tests(promtool: Path, tmp_path: Path) -> None:
    """The rule tests can fail: the dead-letter alert with a threshold above the bad rate."""
    rules = RULES.read_text().replace(
        "(rate(streamhouse_dead_letter_records_total[5m])) > 1",
        "(rate(streamhouse_dead_letter_records_total[5m])) > 100",
    )
    assert rules != RULES.read_text()
    (tmp_path / "rules.yaml").write_text(rules)
    tests = yaml.safe_load(RULE_TESTS.read_text())
    tests["rule_files"] = ["rules.yaml"]
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    result = _promtool(promtool, "test", "rules", str(tmp_path / "tests.yaml"))
    assert result.returncode != 0
    assert "StreamHouseDeadLetterRate" in result.stdout + result.stderr
