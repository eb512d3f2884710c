from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from streamhouse_operator import crd
from streamhouse_runtime import __version__
from streamhouse_runtime.cli import main

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_version_prints_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == f"streamhouse {__version__}"


def test_operator_subcommands_are_registered_through_entry_points(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["crd"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["kind"] == "CustomResourceDefinition"
    assert printed["metadata"]["name"] == "streamqueries.streamhouse.io"


def test_committed_crd_matches_the_models() -> None:
    committed = (REPO_ROOT / "crds" / "streamquery.yaml").read_text()
    assert committed == crd.render(), "crds/ is stale: run `make crds`"


def test_unknown_command_exits_with_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2
