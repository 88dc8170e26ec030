"""docs/instructor/: one note per lesson, in the agreed shape, in step with the notebooks.

Each note ``docs/instructor/<stem>.md`` belongs to ``notebooks/<stem>.ipynb`` and has four
level-2 sections in a fixed order; its Time table copies the smoke minutes from
``reference/smoke.json`` and the cpu minutes from README's cpu table; and every exercise of the
notebook has a ``###`` heading whose answer is collapsed in a ``<details>`` block, with Python
that parses. The notebooks are read as JSON: nothing here imports torch or runs a lesson.

An exercise is found the way the notebooks mark it: after the markdown heading
``## N. Exercise`` (or ``Exercises``), each markdown paragraph that opens with a bold label
(``**A. Match the grid.**``, ``**1.**``) is one exercise; a section without such labels is a
single exercise named by the heading itself (``7. Exercise``). The number found must equal the
number of ``check_*(...)`` calls in that section, so that a change in how exercises are marked
fails here instead of passing unnoticed.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTES = ROOT / "docs" / "instructor"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
STEMS = [notebook.stem for notebook in NOTEBOOKS]

SECTIONS = ["Time", "Run live, show executed", 'When a run contradicts "What you should see"',
            "Exercises: answers"]
EXERCISE_HEADING = re.compile(r"^## (\d+\. Exercises?)[ \t]*$", re.M)
EXERCISE_LABEL = re.compile(r"^\*\*((?:[A-Z]|\d+)\.[^*]*)\*\*", re.M)
CHECK_CALL = re.compile(r"\bcheck_\w+\(")
PYTHON_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
DETAILS = re.compile(r"\A\s*<details>\s*<summary>(?P<summary>[^\n]*?)</summary>[ \t]*\n[ \t]*\n"
                     r"(?P<content>.*?)\n[ \t]*\n</details>\s*\Z", re.S)


def cell_text(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def notebook_cells(stem: str) -> list[dict]:
    return json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text(encoding="utf-8"))["cells"]


def note_text(stem: str) -> str:
    path = NOTES / f"{stem}.md"
    assert path.is_file(), f"no instructor note for notebooks/{stem}.ipynb: write docs/instructor/{stem}.md"
    return path.read_text(encoding="utf-8")


def split_headings(text: str, marker: str) -> list[tuple[str, str]]:
    """``(heading, body)`` for each line starting with ``marker`` outside fenced code, in order."""
    parts: list[tuple[str, list[str]]] = []
    in_fence = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        if not in_fence and line.startswith(marker):
            parts.append((line[len(marker):].strip(), []))
        elif parts:
            parts[-1][1].append(line)
    return [(heading, "\n".join(body)) for heading, body in parts]


def sections(stem: str) -> dict[str, str]:
    return dict(split_headings(note_text(stem), "## "))


def exercises(stem: str) -> tuple[list[str], int]:
    """The notebook's exercise labels and the number of check_*() calls in its exercise section."""
    cells = notebook_cells(stem)
    starts = [i for i, cell in enumerate(cells)
              if cell["cell_type"] == "markdown" and EXERCISE_HEADING.match(cell_text(cell))]
    if not starts:
        return [], 0
    start = starts[0]
    heading = EXERCISE_HEADING.match(cell_text(cells[start])).group(1)
    labels: list[str] = []
    checks = 0
    for offset, cell in enumerate(cells[start:]):
        text = cell_text(cell)
        if offset and cell["cell_type"] == "markdown" and text.startswith("## "):
            break  # the next section (Summary)
        if cell["cell_type"] == "markdown":
            labels += [match.group(1).strip() for match in EXERCISE_LABEL.finditer(text)]
        else:
            checks += len(CHECK_CALL.findall(text))
    return labels or [heading], checks


def readme_lessons() -> dict[str, tuple[int, str]]:
    """README's lesson table: notebook stem -> (lesson number, title)."""
    rows = re.findall(r"^\| (\d+) \| \[(.+?)\]\(notebooks/(\d\d_[^)]+)\.ipynb\)", (ROOT / "README.md").read_text(), re.M)
    return {stem: (int(number), title) for number, title, stem in rows}


def readme_cpu_minutes() -> dict[str, float]:
    """README's cpu table ('| 00 recap CNN | 1.2 | ...'): two-digit lesson number -> minutes."""
    text = (ROOT / "README.md").read_text()
    header = text.index("| notebook | minutes |")
    table = text[header:].split("\n\n", 1)[0]
    rows = re.findall(r"^\| (\d\d) [^|]*\| ([0-9.]+) \|", table, re.M)
    return {number: float(minutes) for number, minutes in rows}


def smoke_seconds() -> dict[str, float]:
    reference = json.loads((ROOT / "reference" / "smoke.json").read_text())
    return {name: entry["seconds"] for name, entry in reference["notebooks"].items()}


def table_value(time_section: str, profile: str) -> str:
    match = re.search(rf"^\| {profile} \| ([^|]+?) \|", time_section, re.M)
    assert match, f"the Time table has no '| {profile} |' row"
    return match.group(1)


def test_there_are_lessons_and_notes() -> None:
    assert STEMS, "no notebooks/NN_*.ipynb found"
    assert (NOTES / "README.md").is_file(), "docs/instructor/README.md, the index of the notes, is missing"


@pytest.mark.parametrize("stem", STEMS)
def test_every_lesson_has_a_note_linked_from_the_index(stem: str) -> None:
    note_text(stem)
    index = (NOTES / "README.md").read_text(encoding="utf-8")
    assert f"]({stem}.md)" in index, f"docs/instructor/README.md does not link {stem}.md"


def test_every_note_belongs_to_a_lesson() -> None:
    stale = [path.name for path in NOTES.glob("[0-9][0-9]_*.md") if path.stem not in STEMS]
    assert not stale, f"notes without a notebook (renamed or removed lesson?): {stale}"


@pytest.mark.parametrize("stem", STEMS)
def test_note_title_names_the_lesson_as_readme_does(stem: str) -> None:
    lessons = readme_lessons()
    assert stem in lessons, f"README's lesson table has no row for {stem}"
    number, title = lessons[stem]
    first_line = note_text(stem).splitlines()[0]
    assert first_line == f"# Lesson {number} · {title} — instructor notes"


@pytest.mark.parametrize("stem", STEMS)
def test_note_has_the_four_sections_in_order(stem: str) -> None:
    found = [heading for heading, _ in split_headings(note_text(stem), "## ")]
    assert found == SECTIONS, f"{stem}.md: level-2 headings {found}, expected exactly {SECTIONS}"
    assert all(body.strip() for body in sections(stem).values()), f"{stem}.md has an empty section"


@pytest.mark.parametrize("stem", STEMS)
def test_time_table_matches_the_measurements(stem: str) -> None:
    time = sections(stem)["Time"]
    seconds = smoke_seconds()
    assert stem in seconds, f"reference/smoke.json has no seconds for {stem}"
    assert float(table_value(time, "smoke")) == pytest.approx(round(seconds[stem] / 60, 1), abs=1e-9)
    cpu = readme_cpu_minutes()
    assert stem[:2] in cpu, f"README's cpu table has no row for lesson {stem[:2]}"
    assert float(table_value(time, "cpu")) == pytest.approx(cpu[stem[:2]], abs=1e-9)
    assert table_value(time, "gpu") == "not yet measured"
    assert "make execute-all" in time, "the Time section says what to run the evening before"


@pytest.mark.parametrize("stem", STEMS)
def test_exercises_are_found_as_the_notebook_marks_them(stem: str) -> None:
    labels, checks = exercises(stem)
    if labels:
        assert len(labels) == checks, (
            f"{stem}: {len(labels)} exercise label(s) {labels} but {checks} check_*() call(s) in the exercise section")


@pytest.mark.parametrize("stem", STEMS)
def test_every_exercise_has_a_collapsed_answer(stem: str) -> None:
    labels, _ = exercises(stem)
    answers = split_headings(sections(stem)["Exercises: answers"], "### ")
    if not labels:
        assert not answers and sections(stem)["Exercises: answers"].strip(), \
            f"{stem} has no exercises: say so under the heading, with no ### answers"
        return
    assert len(answers) == len(labels), f"{stem}.md: {len(answers)} answers for the exercises {labels}"
    for label, (heading, body) in zip(labels, answers):
        assert heading.startswith(label), f"{stem}.md: answer heading {heading!r} should start with {label!r}"
        match = DETAILS.match(body)
        assert match, (f"{stem}.md, {heading!r}: the answer must be one <details> block with <summary>, a blank "
                       "line, the answer and a blank line before </details>")
        assert match.group("summary").strip(), f"{stem}.md, {heading!r}: empty <summary>"
        assert match.group("content").strip(), f"{stem}.md, {heading!r}: empty answer"
        assert PYTHON_BLOCK.search(match.group("content")), f"{stem}.md, {heading!r}: no python block with the code"


@pytest.mark.parametrize("stem", STEMS)
def test_python_in_the_note_parses(stem: str) -> None:
    blocks = PYTHON_BLOCK.findall(note_text(stem))
    assert blocks, f"{stem}.md: no python block, so no answer shows its code"
    for block in blocks:
        try:
            tree = ast.parse(block)
        except SyntaxError as error:
            pytest.fail(f"{stem}.md: a python block does not parse ({error}):\n{block}")
        assert tree.body, f"{stem}.md: an empty python block"


@pytest.mark.parametrize("stem", STEMS)
def test_every_what_you_should_see_has_a_bullet(stem: str) -> None:
    statements = sum(cell_text(cell).count("What you should see")
                     for cell in notebook_cells(stem) if cell["cell_type"] == "markdown")
    bullets = re.findall(r"^- \*\*", sections(stem)['When a run contradicts "What you should see"'], re.M)
    assert len(bullets) >= statements, (
        f"{stem}.md: {statements} 'What you should see' statements in the notebook, {len(bullets)} bullets")
