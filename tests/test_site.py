"""The course website (``make site``): its pages from a run, and the built site in a real browser.

The first tests build pages from constructed runs (fast). The last one builds the whole site
from the session's smoke run of every lesson (``smoke_build`` in conftest.py), serves it on
127.0.0.1 and drives it in Debian's Chromium with Playwright, as tests/test_browser.py does:
the home page lists every lesson, each lesson page's images load and its links resolve, the
search finds "double descent", and the dashboard lists every claim and recorded number.
Screenshots go to ``build/test-artifacts/site-*.png``.
"""

from __future__ import annotations

import functools
import json
import threading
import urllib.error
import urllib.request
import warnings
from datetime import datetime, timezone
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import pytest

from ldl.course.claims import CLAIMS, DOES_NOT_HOLD, HOLDS, NOT_RECORDED, judge
from ldl.course.report import recording_cells
from ldl.course.reference import compare_run
from ldl.site.build import build_site
from ldl.site.dashboard import dashboard_page, format_measurement
from ldl.site.source import home_page, rewrite_links, stage_notebook
from tests.conftest import NOTEBOOKS, ROOT
from tests.test_browser import ARTIFACTS, CHROMIUM_FLAGS, chromium  # noqa: F401  (a fixture)

REFERENCE = json.loads((ROOT / "reference" / "smoke.json").read_text())
REPOSITORY = "https://github.com/ldl-course/ldl"


def run_from_reference(**changes: dict[str, object]) -> dict:
    """A run report whose lessons recorded the kept smoke reference's numbers, with ``changes`` per lesson."""
    notebooks = {}
    for name, entry in REFERENCE["notebooks"].items():
        metrics = {**entry["metrics"], **changes.get(name, {})}
        notebooks[name] = {"status": "ok", "seconds": entry["seconds"], "device": "cpu", "metrics": metrics,
                           "metric_cells": {metric: f"{name[:2]}-cell" for metric in metrics}}
    return {"profile": "smoke", "profile_used": "smoke", "environment": {"device": "cpu", "torch": "2.11.0"},
            "notebooks": notebooks, "total_seconds": 600.0}


# ---------------------------------------------------------------------------------------
# Claims and the dashboard
# ---------------------------------------------------------------------------------------


def test_every_claim_holds_on_the_kept_smoke_reference() -> None:
    verdicts = {claim.statement: judge(claim, REFERENCE["notebooks"][claim.notebook]["metrics"]) for claim in CLAIMS}
    assert set(verdicts.values()) == {HOLDS}, verdicts
    # every lesson makes at least one claim, and every claim belongs to a lesson
    assert {claim.notebook for claim in CLAIMS} == {path.stem for path in NOTEBOOKS}


def test_a_claim_fails_on_contrary_numbers_and_is_not_judged_without_them() -> None:
    augmentation = next(claim for claim in CLAIMS if claim.metric == "gap_change")
    # the gap narrowed by less than its spread: unclear, so the claim does not hold
    assert judge(augmentation, {"gap_change": -0.01, "gap_change_sd": 0.02}) == DOES_NOT_HOLD
    assert judge(augmentation, {"gap_change": -0.05, "gap_change_sd": 0.02}) == HOLDS
    assert judge(augmentation, {}) == NOT_RECORDED


def test_a_measurement_shows_its_spread_over_seeds() -> None:
    assert format_measurement({"acc": 0.74444, "acc_sd": 0.0101835}, "acc") == "0.744 ± 0.0102"
    assert format_measurement({"seeds": 3}, "seeds") == "3"
    assert format_measurement({"stopped": True}, "stopped") == "True"
    assert format_measurement({}, "acc") == "—"


def test_the_dashboard_lists_every_claim_and_number_with_its_verdict_and_cell() -> None:
    run = run_from_reference(**{"01_data_augmentation": {"gap_change": 0.1}})
    page = dashboard_page(run)
    assert page.count('<tr class="ldl-claim ') == len(CLAIMS)
    assert f"{len(CLAIMS) - 1} of {len(CLAIMS)} claims hold" in page
    augmentation_row = next(line for line in page.splitlines() if "gap_change</code>" in line)
    assert "does not hold" in augmentation_row and "ldl-fails" in augmentation_row
    # each claim links to the cell that recorded its number, on the lesson's page
    assert 'href="notebooks/01_data_augmentation.html#cell-01-cell"' in augmentation_row
    # every recorded number has a row (its _sd folded into the mean's)
    numbers = sum(1 for entry in REFERENCE["notebooks"].values() for name in entry["metrics"]
                  if not (name.endswith("_sd") and name[:-3] in entry["metrics"]))
    assert page.count('<tr class="ldl-metric ') == numbers
    assert "Profile **`smoke`** on **cpu**, torch 2.11.0" in page


def test_the_dashboard_says_whether_the_run_is_normal_against_the_reference() -> None:
    normal = run_from_reference()
    normal["reference"] = compare_run(normal, REFERENCE)
    assert "**Normal:**" in dashboard_page(normal)

    metrics = REFERENCE["notebooks"]["00_recap_cnn_from_scratch"]["metrics"]
    far = metrics["test_acc"] - 5 * metrics["test_acc_sd"]
    unusual = run_from_reference(**{"00_recap_cnn_from_scratch": {"test_acc": far}})
    unusual["reference"] = compare_run(unusual, REFERENCE)
    page = dashboard_page(unusual)
    assert "**Normal:**" not in page and "`test_acc`" in page
    flagged = next(line for line in page.splitlines() if ">test_acc</a>" in line)
    assert "ldl-outside" in flagged and "outside 2 sds" in flagged

    without = run_from_reference()
    assert "No reference is kept for profile `smoke`" in dashboard_page(without)


def test_a_lesson_that_did_not_run_leaves_its_claims_unjudged() -> None:
    run = run_from_reference()
    del run["notebooks"]["06_generalisation"]
    page = dashboard_page(run)
    lesson6 = [line for line in page.splitlines() if 'ldl-claim ' in line and "06_generalisation" in line]
    assert lesson6 and all("not recorded" in line for line in lesson6)


# ---------------------------------------------------------------------------------------
# The site's source
# ---------------------------------------------------------------------------------------


def test_links_point_at_the_site_or_at_github() -> None:
    pages = {"docs/CROSSWALK.md": "crosswalk.md", "notebooks/06_generalisation.ipynb": "notebooks/06_generalisation.ipynb",
             "docs/instructor/06_generalisation.md": "instructor/06_generalisation.md"}
    text = ("[lesson 6](../notebooks/06_generalisation.ipynb) [notes](instructor/06_generalisation.md#time) "
            "[setup](../compat/README.md) [web](https://example.org/a) [here](#top) [x](../notebooks/99_gone.ipynb)")
    rewritten = rewrite_links(text, "docs/CROSSWALK.md", pages, REPOSITORY)
    assert "](notebooks/06_generalisation.ipynb)" in rewritten
    assert "](instructor/06_generalisation.md#time)" in rewritten
    assert f"]({REPOSITORY}/blob/main/compat/README.md)" in rewritten
    assert f"]({REPOSITORY}/blob/main/notebooks/99_gone.ipynb)" in rewritten
    assert "](https://example.org/a)" in rewritten and "](#top)" in rewritten
    # from a page one folder down, a site page is reached relatively
    back = rewrite_links("[crosswalk](../CROSSWALK.md)", "docs/instructor/06_generalisation.md", pages, REPOSITORY)
    assert back == "[crosswalk](../crosswalk.md)"


def test_the_home_page_is_the_readmes_table_and_lists_every_lesson() -> None:
    readme = (ROOT / "README.md").read_text()
    lessons = [path.stem for path in NOTEBOOKS]
    pages = {f"notebooks/{lesson}.ipynb": f"notebooks/{lesson}.ipynb" for lesson in lessons}
    home = home_page(readme, pages, REPOSITORY, lessons)
    for lesson in lessons:
        assert f"](notebooks/{lesson}.ipynb)" in home  # the README's table, linked to the site's pages
        assert f"\nnotebooks/{lesson}\n" in home       # and in the navigation
    assert "## Quickstart" not in home


def test_a_staged_notebook_anchors_recording_cells_and_drops_live_widget_views(tmp_path: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    recorder = nbformat.v4.new_code_cell("report.record('acc', 0.9)")
    recorder["id"] = "lesson9-03"
    progress = nbformat.v4.new_code_cell("fit()")
    progress.outputs = [nbformat.v4.new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2, "version_minor": 0},
        "text/plain": "epochs: 100%"})]
    notebook.cells = [nbformat.v4.new_markdown_cell("# Lesson 9"), progress, recorder]
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nbformat.write(notebook, tmp_path / "in.ipynb")

    stage_notebook(tmp_path / "in.ipynb", tmp_path / "out" / "lesson.ipynb", {"lesson9-03"})
    staged = nbformat.read(tmp_path / "out" / "lesson.ipynb", as_version=4)
    nbformat.validate(staged)
    assert "widgets" not in staged.metadata
    assert list(staged.cells[1].outputs[0]["data"]) == ["text/plain"]
    assert staged.cells[2].source == '<div id="cell-lesson9-03"></div>' and staged.cells[3]["id"] == "lesson9-03"


def test_the_recording_cell_is_the_one_whose_run_spans_the_recording_time(tmp_path: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("record"), nbformat.v4.new_code_cell("y")]
    # papermill's stamps: the first cell ran 10:00:00-10:00:05, the second 10:00:05-10:01:00 (UTC)
    spans = [("10:00:00", "10:00:05"), ("10:00:05.000100", "10:01:00"), (None, None)]
    for cell, cell_id, (start, end) in zip(cells, ["first", "second", "never-ran"], spans):
        cell["id"] = cell_id
        if start:
            cell.metadata["papermill"] = {"start_time": f"2026-12-07T{start}+00:00", "end_time": f"2026-12-07T{end}+00:00"}
    notebook.cells = cells
    nbformat.write(notebook, tmp_path / "run.ipynb")
    at = datetime(2026, 12, 7, 10, 0, 30, tzinfo=timezone.utc).timestamp()
    before = datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc).timestamp()
    (tmp_path / "run.cells.json").write_text(json.dumps({"acc": at, "lost": before}))
    assert recording_cells(tmp_path / "run.cells.json", tmp_path / "run.ipynb") == {"acc": "second"}
    assert recording_cells(tmp_path / "none.cells.json", tmp_path / "run.ipynb") == {}


def test_building_without_an_executed_run_says_to_run_execute_all_first(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run `make execute-all` first"):
        build_site(tmp_path / "empty-build", root=ROOT, quiet=True)


# ---------------------------------------------------------------------------------------
# The whole site, from the smoke run of every lesson, in Chromium
# ---------------------------------------------------------------------------------------


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture(scope="module")
def served_site(smoke_build: Path) -> Iterator[tuple[str, Path]]:
    """The site built from the smoke run, served on 127.0.0.1: ``(base address, site folder)``."""
    with warnings.catch_warnings():
        # Sphinx extensions' deprecation notices (thousands, one per docstring) are not ours to fix.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        index = build_site(smoke_build, out_dir=smoke_build / "site", root=ROOT, quiet=True)
    handler = functools.partial(QuietHandler, directory=str(index.parent))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", index.parent
    finally:
        server.shutdown()
        server.server_close()


def status_of(address: str) -> int:
    try:
        with urllib.request.urlopen(address, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


IMAGES_OF_THE_ARTICLE = """() => Array.from(document.querySelectorAll('article img'))
    .filter(img => img.src.startsWith(location.origin))
    .map(img => ({src: img.getAttribute('src'), loaded: img.complete && img.naturalWidth > 0}))"""
# The text of the first code cell after the element with this id (the anchor before a recording cell).
CODE_CELL_AFTER = """(id) => {
    const anchor = document.getElementById(id);
    if (!anchor) return null;
    const cell = document.evaluate("following::div[contains(concat(' ', normalize-space(@class), ' '), ' cell ')][1]",
        anchor, null, XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue;
    return cell ? cell.innerText : null;
}"""
LINKS_OF_THE_PAGE = "() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"


@pytest.mark.notebook
def test_the_built_site_in_a_browser(chromium: str, served_site: tuple[str, Path], smoke_report: dict,  # noqa: F811
                                     tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    base, _ = served_site
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    lessons = [path.stem for path in NOTEBOOKS]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=chromium, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000})
        # Offline: only the site itself answers (badges and MathJax come from the web when published).
        browser.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base) else route.abort())
        try:
            page = browser.new_page()

            page.goto(f"{base}/index.html")
            page.screenshot(path=str(ARTIFACTS / "site-home.png"), full_page=True)
            for lesson in lessons:
                assert page.locator(f'article a[href="notebooks/{lesson}.html"]').count() >= 1, lesson

            checked: set[str] = set()
            for lesson in lessons:
                page.goto(f"{base}/notebooks/{lesson}.html")
                page.wait_for_load_state("load")
                images = page.evaluate(IMAGES_OF_THE_ARTICLE)
                assert images, f"{lesson}: no figure on its page"
                assert all(image["loaded"] for image in images), [image for image in images if not image["loaded"]]
                launch = page.locator(f'a[href*="colab.research.google.com/github/ldl-course/ldl/blob/main/notebooks/{lesson}.ipynb"]')
                assert launch.count() >= 1, f"{lesson}: no launch-in-Colab link"
                assert page.locator('a[href*="mybinder.org/v2/gh/ldl-course/ldl/main"]').count() >= 1, lesson
                if lesson.startswith("06"):
                    page.locator("article img").last.scroll_into_view_if_needed()
                    page.screenshot(path=str(ARTIFACTS / "site-lesson.png"), full_page=False)
                for address in page.evaluate(LINKS_OF_THE_PAGE):
                    address = address.split("#")[0]
                    if address.startswith(base) and address not in checked:
                        checked.add(address)
                        assert status_of(address) == 200, f"{lesson}: broken link {address}"

            page.goto(f"{base}/search.html?q=double+descent")
            results = page.locator("#search-results li")
            results.first.wait_for(timeout=20_000)
            page.screenshot(path=str(ARTIFACTS / "site-search.png"), full_page=False)
            found = page.evaluate("() => Array.from(document.querySelectorAll('#search-results li a')).map(a => a.href)")
            assert any("06_generalisation" in address for address in found), found

            # the crosswalk opens each lesson at the section it names
            page.goto(f"{base}/crosswalk.html")
            sections = {address for address in page.evaluate(LINKS_OF_THE_PAGE)
                        if address.startswith(f"{base}/notebooks/") and "#" in address}
            assert sections, "the crosswalk links to no lesson section"
            pages: dict[str, str] = {}
            for address in sorted(sections):
                lesson_page, anchor = address.split("#")
                if lesson_page not in pages:
                    with urllib.request.urlopen(lesson_page, timeout=10) as response:
                        pages[lesson_page] = response.read().decode("utf-8")
                assert f'id="{anchor}"' in pages[lesson_page], f"the crosswalk links to a missing section: {address}"

            page.goto(f"{base}/dashboard.html")
            page.screenshot(path=str(ARTIFACTS / "site-dashboard.png"), full_page=True)
            rows = page.locator("tr.ldl-claim")
            assert rows.count() == len(CLAIMS)
            for row, claim in zip(rows.all(), CLAIMS):
                text = row.inner_text()
                assert claim.statement in text
                metrics = smoke_report["notebooks"].get(claim.notebook, {}).get("metrics", {})
                assert format_measurement(metrics, claim.shown_metric(metrics)) in text, text
                assert judge(claim, metrics) in text
            recorded = sum(1 for result in smoke_report["notebooks"].values() for name in result["metrics"]
                           if not (name.endswith("_sd") and name[:-3] in result["metrics"]))
            assert page.locator("tr.ldl-metric").count() == recorded
            # each claim's link opens its lesson at the cell that recorded the number
            claim_links = [link.get_attribute("href") for link in page.locator("tr.ldl-claim a[href*='#cell-']").all()]
            assert claim_links
            for claim_link in claim_links:
                page.goto(f"{base}/{claim_link}")
                cell_text = page.evaluate(CODE_CELL_AFTER, claim_link.split("#")[1])
                assert cell_text is not None and "record" in cell_text, (claim_link, cell_text)
        finally:
            browser.close()


@pytest.mark.notebook
def test_the_site_carries_every_lesson_of_the_run(served_site: tuple[str, Path], smoke_report: dict) -> None:
    _, site = served_site
    for lesson in smoke_report["notebooks"]:
        assert (site / "notebooks" / f"{lesson}.html").is_file(), lesson
    assert (site / "searchindex.js").is_file() and (site / "api" / "train.html").is_file()
    # the playground, which needs a live kernel, is shown as its static grid of augmented photos
    staged = nbformat.read(site.parent / "site-source" / "notebooks" / "01_data_augmentation.ipynb", as_version=4)
    playground = next(cell for cell in staged.cells if "playground" in cell.get("metadata", {}).get("tags", []))
    assert any("image/png" in output.get("data", {}) for output in playground.outputs)
    # every number of every lesson that ran is linked to the cell that recorded it
    for lesson, result in smoke_report["notebooks"].items():
        if result["status"] != "ok":
            continue
        assert set(result["metric_cells"]) == set(result["metrics"]), lesson
        cells = {cell.get("id"): cell.source for cell in nbformat.read(result["output"], as_version=4).cells}
        for name, cell_id in result["metric_cells"].items():
            assert "record" in cells[cell_id], f"{lesson}: {name} is linked to a cell that records nothing"
