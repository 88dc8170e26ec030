"""docs/CROSSWALK.md: every lecture topic has a home (a lesson's section) or a reason why not."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CROSSWALK = ROOT / "docs" / "CROSSWALK.md"
SEED_TOPICS = ROOT.parent / "shared" / "SEED_TOPICS.md"
LINK = re.compile(r"\[(?P<lesson>\d+) · (?P<heading>[^\]]+)\]\(\.\./notebooks/(?P<file>[\w.-]+\.ipynb)\)")


def headings(notebook: Path) -> set[str]:
    """The text of every Markdown heading of a notebook, without its #'s."""
    cells = json.loads(notebook.read_text())["cells"]
    return {line.lstrip("#").strip() for cell in cells if cell["cell_type"] == "markdown"
            for line in "".join(cell["source"]).splitlines() if line.startswith("#")}


def sections(text: str) -> dict[str, list[str]]:
    """``{## heading: [its lines]}`` of a Markdown text."""
    found: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            found[current] = []
        elif current is not None:
            found[current].append(line)
    return found


def table_rows(lines: list[str]) -> list[list[str]]:
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| topic |")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows]


def test_every_link_opens_an_existing_lesson_at_an_existing_heading() -> None:
    links = list(LINK.finditer(CROSSWALK.read_text()))
    assert len(links) > 40
    wrong = []
    for link in links:
        notebook = ROOT / "notebooks" / link["file"]
        if not notebook.exists() or int(link["file"][:2]) != int(link["lesson"]):
            wrong.append(link.group(0))
        elif link["heading"] not in headings(notebook):
            wrong.append(f"{link['file']}: no heading {link['heading']!r}")
    assert not wrong, wrong


def test_every_row_is_taught_somewhere_or_says_why_not() -> None:
    for theme, lines in sections(CROSSWALK.read_text()).items():
        for topic, where, note in table_rows(lines):
            assert where == "not covered" or LINK.search(where), (theme, topic)
            if where == "not covered":
                assert len(note) > 20, f"{topic}: say why it is not covered"


def test_every_lesson_links_back_to_the_crosswalk() -> None:
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert "docs/CROSSWALK.md" in notebook.read_text(), notebook.name


@pytest.mark.skipif(not SEED_TOPICS.exists(), reason="needs ../shared/SEED_TOPICS.md beside the repository")
def test_every_lecture_topic_has_a_row() -> None:
    themes = sections(SEED_TOPICS.read_text())
    walked = sections(CROSSWALK.read_text())
    for theme, lines in themes.items():
        topics = [line for line in lines if line.startswith("- ")]
        assert theme in walked, f"theme {theme!r} is missing from the crosswalk"
        assert len(table_rows(walked[theme])) == len(topics), theme
