"""Every example under examples/ passes `streamhouse test` against its expected output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamhouse_runtime.cli import main

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NAMES = sorted(p.name for p in EXAMPLES.iterdir() if (p / "streamquery.yaml").exists())


def test_the_design_examples_are_all_present() -> None:
    assert NAMES == [
        "avg-order-value",
        "cleanse-customers",
        "customer-totals",
        "enriched-orders",
        "error-rate-spike",
        "full-order-details",
        "high-value-orders",
        "ksqldb-pageviews",
        "order-counts",
        "order-shipments",
        "order-summary",
        "orders-with-fee",
        "rekey-orders",
        "route-eu-orders",
        "temperature-alerts",
        "user-sessions",
    ]
    for name in NAMES:  # each a worked example: manifest, input, expected output, README
        for part in ("streamquery.yaml", "input.json", "expected.json", "README.md"):
            assert (EXAMPLES / name / part).exists(), f"{name}/{part}"


@pytest.mark.parametrize("name", NAMES)
def test_example_output_matches(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder = EXAMPLES / name
    catalog = ["-c", str(folder / "catalog.yaml")] if (folder / "catalog.yaml").exists() else []
    code = main(
        [
            "test", *catalog,
            "-s", str(folder / "streamquery.yaml"),
            "-i", str(folder / "input.json"),
            "-o", str(folder / "expected.json"),
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "PASSED" in out


def test_a_mismatch_prints_a_diff_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = EXAMPLES / "high-value-orders"
    expected = json.loads((folder / "expected.json").read_text())
    expected["outputs"][0]["value"]["amount"] = 1500.51
    wrong = tmp_path / "expected.json"
    wrong.write_text(json.dumps(expected))
    code = main(
        ["test", "-s", str(folder / "streamquery.yaml"), "-i", str(folder / "input.json"),
         "-o", str(wrong)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1
    assert '-{"key": "2"' in out and '"amount": 1500.51' in out
    assert '+{"key": "2"' in out and '"amount": 1500.5,' in out


def test_windows_close_at_the_end_of_input_and_record_writes_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = EXAMPLES / "order-counts"
    recorded = tmp_path / "recorded.json"
    code = main(
        ["test", "-s", str(folder / "streamquery.yaml"), "-i", str(folder / "input.json"),
         "--record", str(recorded)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "end of input closed 3 open window(s) (bounded source)" in out
    outputs = json.loads(recorded.read_text())["outputs"]
    assert [o["window"]["end"] - o["window"]["start"] for o in outputs] == [300_000] * 3
    assert [o["value"]["order_count"] for o in outputs] == [4, 4, 4]


def test_a_malformed_input_lands_in_the_dead_letter_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = EXAMPLES / "high-value-orders"
    inputs = json.loads((folder / "input.json").read_text())
    inputs["inputs"].insert(1, {"topic": "orders", "key": "x", "value": {"order_id": "abc"}})
    data = tmp_path / "input.json"
    data.write_text(json.dumps(inputs))
    recorded = tmp_path / "recorded.json"
    code = main(
        ["test", "-s", str(folder / "streamquery.yaml"), "-i", str(data),
         "--record", str(recorded)]
    )  # fmt: skip
    capsys.readouterr()
    assert code == 0
    outputs = json.loads(recorded.read_text())["outputs"]
    dead = [o for o in outputs if o["topic"] == "streamhouse-test-dlq"]
    assert len(dead) == 1 and "order_id" in dead[0]["reason"]
    assert len(outputs) == 6  # the five good results still came out
