"""The audit page in a real headless browser (Debian's Chromium) at 200 updates: pages, filters, no script error.

The history is made up in code (tests/support/synthetic_history.py: 200 updates, every
7th failed, every 10th a refresh) because no test deploys 200 times; the page
of real updates on PostgreSQL is rendered in test_audit_postgres.py. Each view is
read back from the DOM after the page's script ran, and a screenshot is taken
(`.state/audit/screenshot-200.png`, and in the test's folder).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from audit.page import PAGE_SIZE, report_html
from tests.e2e.browser import body_attributes, dump_dom, png_facts, screenshot, visible_updates
from tests.support.engine import ROOT
from tests.support.synthetic_history import synthetic_history

STABLE_SCREENSHOT = ROOT / ".state" / "audit" / "screenshot-200.png"


def test_200_updates_page_filter_and_render_without_script_errors(tmp_path: Path) -> None:
    history = synthetic_history(200)
    page = tmp_path / "audit-synthetic.html"
    page.write_text(report_html(history))
    failed = sorted((u.number for u in history.updates if u.result != "succeeded"), reverse=True)

    first = dump_dom(page.as_uri())
    attrs = body_attributes(first)
    assert "data-script-errors" not in attrs, f"the page's script failed: {re.findall(r'<pre id=.script-errors.*?</pre>', first)}"
    assert attrs.get("data-ready") == "yes" and attrs["data-pages"] == str(200 // PAGE_SIZE), attrs
    assert visible_updates(first) == list(range(200, 200 - PAGE_SIZE, -1)), "page 1: the newest 50, newest first"
    assert re.findall(r'<a href="#page=\d+"[^>]*>([^<]+)</a>', first) == ["200\u2013151", "150\u2013101", "100\u201351", "50\u20131"]

    last = dump_dom(page.as_uri() + "#page=4")
    assert body_attributes(last)["data-page"] == "4" and visible_updates(last) == list(range(50, 0, -1))

    only_failed = dump_dom(page.as_uri() + "#filter=failed")
    assert visible_updates(only_failed) == failed[:PAGE_SIZE] and body_attributes(only_failed)["data-filter"] == "failed"

    shot = screenshot(page.as_uri(), tmp_path / "screenshot-200.png")
    width, height, colours = png_facts(shot)
    assert (width, height) == (1280, 1600) and colours > 20, f"the screenshot looks blank: {colours} colours"
    STABLE_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(shot, STABLE_SCREENSHOT)
    print(f"screenshot: {shot} and {STABLE_SCREENSHOT}")


def test_a_script_error_on_the_page_shows_in_its_dom(tmp_path: Path) -> None:
    """The check above can fail: a broken script is recorded where the test reads."""
    page = tmp_path / "broken.html"
    page.write_text(report_html(synthetic_history(3)).replace("</body>", "<script>undefinedFunction();</script></body>"))
    dom = dump_dom(page.as_uri())
    assert body_attributes(dom).get("data-script-errors") == "1", body_attributes(dom)
    assert "undefinedFunction is not defined" in dom
