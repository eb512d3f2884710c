"""The StreamSource CRD is generated from its models, committed current, and its printer
columns say what a declaration declares and who reads it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from streamhouse_operator import crd
from streamhouse_operator.models import streamsource
from streamhouse_runtime.cli import main

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_committed_catalog_crds_match_the_models() -> None:
    for folder in (REPO_ROOT / "crds", REPO_ROOT / "helm" / "streamhouse" / "crds"):
        committed = (folder / "streamsource.yaml").read_text()
        assert committed == crd.render_catalog(), f"{folder} is stale: run `make crds`"


def test_the_catalog_crd_has_a_short_name_status_and_printer_columns(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["crd", "--catalog"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["metadata"]["name"] == "streamsources.streamhouse.io"
    assert printed["spec"]["names"]["shortNames"] == streamsource.SHORT_NAMES == ["ss"]
    version = printed["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Used by"] == ".status.usedBy"
    assert columns["Declares"] == ".status.declares"
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["required"] == ["sql"]
    assert spec["properties"]["sql"]["minLength"] == 1
