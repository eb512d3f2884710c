"""docs/ stays true: the generated references match the code, every error code is explained,
and every relative link resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from scripts import docs

from streamhouse_runtime.sql import functions
from streamhouse_runtime.sql.errors import ErrorCode

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([\w./-]+)(#[\w-]*)?\)")


@pytest.mark.parametrize("name", sorted(docs.GENERATED))
def test_generated_references_are_current(name: str) -> None:
    committed = (ROOT / "docs" / name).read_text()
    assert committed == docs.GENERATED[name](), f"docs/{name} is stale: run `make docs`"


def test_every_function_is_described() -> None:
    assert set(docs.DESCRIPTIONS) == {*functions.SCALARS, *functions.AGGREGATES}


def test_every_error_code_is_in_troubleshooting() -> None:
    text = (ROOT / "docs" / "troubleshooting.md").read_text()
    documented = set(re.findall(r"^\| (E\d{3}) \|", text, re.M))
    assert documented == {code.value for code in ErrorCode}


@pytest.mark.parametrize(
    "page", [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"], ids=lambda p: p.name
)
def test_relative_links_resolve(page: Path) -> None:
    for target, _ in LINK.findall(page.read_text()):
        if "://" in target:
            continue
        assert (page.parent / target).exists(), f"{page.name}: {target}"


def test_the_readme_links_the_docs() -> None:
    readme = (ROOT / "README.md").read_text()
    for page in (
        "docs/README.md",
        "docs/sql-reference.md",
        "docs/operations.md",
        "docs/troubleshooting.md",
        "docs/crd-reference.md",
        "docs/functions.md",
    ):
        assert f"]({page})" in readme, page
