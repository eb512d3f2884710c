"""The web console in a real browser (Debian's headless chromium, driven by Playwright) against
`streamhouse api`, the operator, the control plane, the node agent and the broker: sign in,
paste SQL with a typo and see the error marked at its line and column, fix it, explain,
create, see it RUNNING (live, from the event stream), read its results, delete it.

A screenshot of each step is saved under test-output/console/ (or $STREAMHOUSE_TEST_OUTPUT).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.e2e.conftest import Queries, editor_token
from tests.e2e.test_api_e2e import SQL, produce
from tests.harness.api import ApiServer
from tests.harness.kafka import KafkaBroker
from tests.harness.kube import ControlPlane
from tests.harness.processes import REPO_ROOT, wait_until

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 180_000


def _output_folder() -> Path:
    folder = Path(os.environ.get("STREAMHOUSE_TEST_OUTPUT", REPO_ROOT / "test-output")) / "console"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return folder


def test_console_sign_in_typo_fix_create_results_delete(
    api_server: ApiServer,
    queries: Queries,
    control_plane: ControlPlane,
    kafka_broker: KafkaBroker,
    make_topic: Callable[..., str],
    namespace: str,
) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: run scripts/install-browser.sh (make browser)"
    source = make_topic("orders", partitions=2)
    output = f"{source}-totals"
    good_sql = SQL.format(source=source, output=output)
    # Line 4, column 42: `amout` for `amount` in SUM(...).
    typo_sql = good_sql.replace("SUM(amount)", "SUM(amout)")
    token = editor_token(control_plane, namespace)
    wait_until(
        lambda: api_server.call("GET", f"/api/v1/queries?namespace={namespace}", token=token)
        .status == 200,
        15,
        "the editor role",
    )  # fmt: skip
    shots = _output_folder()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page: Page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(30_000)
        try:
            page.goto(api_server.url + "/")
            expect(page.locator("#sign-in")).to_be_visible()
            page.screenshot(path=shots / "01-sign-in.png", full_page=True)

            # A wrong token is refused, a good one signs in (kept in sessionStorage only).
            page.fill("#token", "not-a-token")
            page.fill("#namespace", namespace)
            page.click("#sign-in-button")
            expect(page.locator("#sign-in-error")).to_contain_text("UNAUTHENTICATED")
            page.fill("#token", token)
            page.click("#sign-in-button")
            expect(page.locator("#console")).to_be_visible()
            expect(page.locator("#live")).to_have_text("live")
            assert page.evaluate("sessionStorage.getItem('streamhouse.token')") == token
            assert page.evaluate("localStorage.length") == 0
            page.screenshot(path=shots / "02-signed-in.png", full_page=True)

            # The typo: marked where the analyzer says, on the offending token.
            page.fill("#sql", typo_sql)
            mark = page.locator("mark.sql-error")
            expect(mark).to_have_count(1)
            expect(mark).to_have_text("amout")
            assert (mark.get_attribute("data-line"), mark.get_attribute("data-column")) == (
                "4",
                "42",
            )
            assert mark.get_attribute("data-code") == "E102"
            expect(page.locator("#sql-errors li").first).to_contain_text(
                "4:42: error[E102]: unknown column 'amout'"
            )
            # Drawn on the fourth line of the editor, under the text it marks.
            editor = page.locator("#sql").bounding_box()
            box = mark.bounding_box()
            line_px = page.evaluate(
                "parseFloat(getComputedStyle(document.querySelector('#sql')).lineHeight)"
            )
            assert editor and box
            row = (box["y"] - editor["y"]) / line_px
            assert 3 <= row < 4, row  # rows 0-2 above it, then a little padding
            page.screenshot(path=shots / "03-typo-marked.png", full_page=True)

            page.fill("#sql", good_sql)
            expect(page.locator("#sql-ok")).to_contain_text("valid TABLE")
            expect(page.locator("mark.sql-error")).to_have_count(0)
            page.click("#explain-button")
            expect(page.locator("#explain-tree .operator").first).to_have_text("Sink")
            expect(page.locator("#explain-tree")).to_contain_text("Aggregate")
            page.screenshot(path=shots / "04-fixed-and-explained.png", full_page=True)

            page.fill("#query-name", "console-totals")
            page.fill("#query-parallelism", "2")
            page.click("#create-button")
            row_state = page.locator("#queries tr[data-name='console-totals'] .badge")
            expect(row_state).to_have_text("RUNNING", timeout=TIMEOUT_MS)
            expect(page.locator("#detail-state")).to_have_text("RUNNING")
            page.screenshot(path=shots / "05-running.png", full_page=True)

            reference = produce(kafka_broker.bootstrap, source, range(0, 200))

            def click_and_load(button: str) -> None:
                """Click, then wait until the results view has loaded once more."""
                before = int(page.locator("#results").get_attribute("data-loads") or 0)
                page.click(button)
                page.wait_for_function(
                    f"Number(document.querySelector('#results').dataset.loads || 0) > {before}"
                )

            def rows_shown() -> dict[str, tuple[int, Decimal]]:
                click_and_load("#all-button")
                shown: dict[str, tuple[int, Decimal]] = {}
                while True:
                    for line in page.locator("#result-rows tbody tr").all():
                        cells = line.locator("td").all_inner_texts()
                        shown[cells[0]] = (int(cells[1]), Decimal(cells[2]))
                    if page.locator("#next-page").is_disabled():
                        return shown
                    click_and_load("#next-page")

            expected = {k: (int(r["n"]), Decimal(r["total"])) for k, r in reference.items()}
            wait_until(lambda: rows_shown() == expected, 90, "the results in the console")
            page.fill("#result-key", "c3")
            click_and_load("#lookup-button")
            expect(page.locator("#result-rows tbody tr")).to_have_count(1)
            expect(page.locator("#result-rows tbody tr td").first).to_have_text("c3")
            page.screenshot(path=shots / "06-results.png", full_page=True)
            click_and_load("#all-button")
            click_and_load("#next-page")
            page.screenshot(path=shots / "06b-results-page-2.png", full_page=True)

            page.click("#delete-button")
            expect(page.locator("#queries tr[data-name='console-totals']")).to_have_count(
                0, timeout=TIMEOUT_MS
            )
            expect(page.locator("#detail-card")).to_be_hidden()
            page.screenshot(path=shots / "07-deleted.png", full_page=True)
        finally:
            page.screenshot(path=shots / "last.png", full_page=True)
            browser.close()
    wait_until(lambda: queries.get("console-totals") is None, 60, "deleted")
    assert len(list(shots.glob("0*.png"))) == 8
