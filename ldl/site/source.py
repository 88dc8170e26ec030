"""The website's source folder, staged from an executed build and the repository's pages.

Sphinx reads one folder; :func:`stage_source` fills it (it never runs a notebook)::

    index.md                 home: the README's opening and its lesson table
    notebooks/<lesson>.ipynb the executed copies from build/notebooks/, outputs in place
    dashboard.md             the claims dashboard (ldl.site.dashboard) from build/report.json
    crosswalk.md             docs/CROSSWALK.md, the slides-to-cells crosswalk
    instructor/              docs/instructor/: the instructor's notes, one page per lesson
    running.md               the whole README: running the course, profiles, data
    architecture.md          docs/ARCHITECTURE.md
    api/<wing>.md            the ldl API reference, generated from the docstrings (autodoc)

Links between the repository's pages are rewritten to their place on the site; a link to a
file the site does not carry goes to the file on GitHub, so no link is broken.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import nbformat

from ldl.site.dashboard import cell_anchor, dashboard_page

# Repository page -> its page on the site (notebooks are added per run).
PAGES = {
    "README.md": "running.md",
    "docs/CROSSWALK.md": "crosswalk.md",
    "docs/ARCHITECTURE.md": "architecture.md",
    "docs/instructor/README.md": "instructor/index.md",
}
INSTRUCTOR_FOLDER = "docs/instructor"
# A Markdown link's target: the "(...)" right after "]".
LINK = re.compile(r"\]\(([^()\s]+)\)")
# The crosswalk's links: "[6 · 6. Double descent](../notebooks/06_generalisation.ipynb)".
SECTION_LINK = re.compile(r"\[(\d+) · ([^\]]+)\]\(([^()#\s]+\.ipynb)\)")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
STYLESHEET = """\
/* The claims dashboard: a verdict reads at a glance. */
table.ldl-claims, table.ldl-metrics, table.ldl-runs { font-size: 0.9em; border-collapse: collapse; margin: 0.5em 0 1.5em; }
table.ldl-claims td, table.ldl-metrics td, table.ldl-runs td,
table.ldl-claims th, table.ldl-metrics th, table.ldl-runs th { padding: 0.3em 0.6em; border-bottom: 1px solid #d0d7de; vertical-align: top; }
tr.ldl-holds .ldl-verdict { color: #1a7f37; font-weight: 600; }
tr.ldl-fails .ldl-verdict { color: #cf222e; font-weight: 600; }
tr.ldl-missing .ldl-verdict, tr.ldl-failed td { color: #9a6700; }
tr.ldl-outside td, tr.ldl-changed td { background: #fff8c5; }
"""


def repository_url(root: Path) -> str:
    """``https://github.com/OWNER/NAME``: ``[project.urls] Repository`` in ``pyproject.toml``."""
    match = re.search(r'^Repository = "(https://github\.com/[^"/]+/[^"/]+)"', (root / "pyproject.toml").read_text(), re.M)
    if match is None:
        raise ValueError(f"{root / 'pyproject.toml'}: [project.urls] needs Repository = \"https://github.com/OWNER/NAME\".")
    return match.group(1)


def rewrite_links(text: str, page: str, site_pages: dict[str, str], repository: str, branch: str = "main") -> str:
    """Point ``text``'s relative links, written for the repository file ``page``, at the site.

    Args:
        text: Markdown.
        page: the repository path of the file ``text`` comes from, e.g. ``docs/CROSSWALK.md``.
        site_pages: repository path -> site path of every page the site carries.
        repository: ``https://github.com/OWNER/NAME``, for the files the site does not carry.
    """
    here = site_pages.get(page, page)

    def rewrite(match: re.Match[str]) -> str:
        target = match.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith(("#", "/")):
            return match.group(0)  # a web address, an anchor on this page, or a site-absolute path
        path, _, fragment = target.partition("#")
        in_repository = os.path.normpath(os.path.join(os.path.dirname(page), path)).replace(os.sep, "/")
        if in_repository in site_pages:
            new = os.path.relpath(site_pages[in_repository], os.path.dirname(here) or ".").replace(os.sep, "/")
        else:
            new = f"{repository}/blob/{branch}/{in_repository}"
        return f"]({new}{'#' + fragment if fragment else ''})"

    return LINK.sub(rewrite, text)


def heading_anchor(heading: str) -> str:
    """The anchor MyST gives a heading (``myst_heading_anchors``), as GitHub does:
    ``"6. Double descent"`` -> ``"6-double-descent"``."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def link_sections(text: str) -> str:
    """Make each "[N · HEADING](lesson.ipynb)" link open the lesson at that heading."""
    return SECTION_LINK.sub(lambda m: f"[{m[1]} · {m[2]}]({m[3]}#{heading_anchor(m[2])})", text)


def home_page(readme: str, site_pages: dict[str, str], repository: str, lessons: list[str]) -> str:
    """The README's opening (title, introduction, lesson table) and the site's table of contents."""
    opening = readme.split("\n## ", 1)[0].rstrip()
    lines = [
        rewrite_links(opening, "README.md", site_pages, repository),
        "",
        "## Around the lessons",
        "",
        "- [Claims dashboard](dashboard.md): every claim the lessons make, measured in the run this site "
        "shows, and whether it holds; and whether the run is normal against the kept reference.",
        "- [Slides-to-cells crosswalk](crosswalk.md): where each lecture topic is taught.",
        "- [Instructor's notes](instructor/index.md): times per profile, what to run live, what to say "
        "when a run surprises, the exercises' answers.",
        "- [Running the course](running.md): installing, profiles, data, `make execute-all` and `make site`.",
        "- [API reference](api/index.md) of the `ldl` package, and [its layout](architecture.md).",
        "",
        "```{toctree}",
        ":hidden:",
        ":caption: Lessons",
        "",
        *[f"notebooks/{lesson}" for lesson in lessons],
        "```",
        "",
        "```{toctree}",
        ":hidden:",
        ":caption: The course",
        "",
        "dashboard",
        "crosswalk",
        "instructor/index",
        "running",
        "architecture",
        "api/index",
        "```",
        "",
    ]
    return "\n".join(lines)


def stage_notebook(executed: Path, destination: Path, recording_cells: set[str]) -> None:
    """Copy an executed notebook for the site: anchors before the cells that recorded a metric,
    and no live-widget views (their JavaScript needs the network, and the lessons already show
    a static picture beside each playground)."""
    notebook = nbformat.read(executed, as_version=4)
    notebook.metadata.pop("widgets", None)
    cells = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data and len(data) > 1:
                del data[WIDGET_VIEW]
        if cell.get("id") in recording_cells:
            anchor = nbformat.v4.new_markdown_cell(f'<div id="{cell_anchor(cell["id"])}"></div>')
            anchor["id"] = f"anchor-{cell['id']}"
            cells.append(anchor)
        cells.append(cell)
    notebook.cells = cells
    destination.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, destination)


def is_forwarding_module(path: Path) -> bool:
    """An old import path kept for one release (it forwards to the module's new home)."""
    return "from ldl._moved import forward" in path.read_text(encoding="utf-8")


def api_pages(root: Path) -> dict[str, str]:
    """``{"api/<wing>.md": page}`` for every wing of ``ldl``, and ``api/index.md``."""
    package = root / "ldl"
    wings = sorted(path.name for path in package.iterdir() if (path / "__init__.py").exists())
    pages = {}
    for wing in wings:
        modules = sorted(
            ".".join(path.relative_to(root).with_suffix("").parts)
            for path in (package / wing).rglob("*.py")
            if path.name not in ("__init__.py", "__main__.py") and not is_forwarding_module(path)
        )
        lines = [f"# `ldl.{wing}`", "", "```{eval-rst}", f".. automodule:: ldl.{wing}", "```", ""]
        for module in modules:
            lines += [f"## `{module}`", "", "```{eval-rst}", f".. automodule:: {module}", "   :members:", "```", ""]
        pages[f"api/{wing}.md"] = "\n".join(lines)
    index = ["# API reference", "",
             "Generated from the docstrings of the `ldl` package, one page per wing, lowest first in "
             "[the layout](../architecture.md).", "",
             "```{toctree}", ":maxdepth: 1", "", *wings, "```", ""]
    pages["api/index.md"] = "\n".join(index)
    return pages


def executed_notebooks(build_dir: Path) -> list[Path]:
    """The executed lessons of ``build_dir``'s run, in order.

    Raises:
        FileNotFoundError: no ``report.json`` or no executed notebook; the message says to
            run ``make execute-all`` first.
    """
    report_file = build_dir / "report.json"
    executed = sorted((build_dir / "notebooks").glob("*.ipynb"))
    if not report_file.is_file() or not executed:
        raise FileNotFoundError(
            f"{build_dir} holds no executed run ({report_file} or {build_dir / 'notebooks'}/*.ipynb is missing). "
            "The site shows executed lessons and never runs them: run `make execute-all` first "
            "(PROFILE=smoke for a quick one), then `make site`."
        )
    return executed


def stage_source(build_dir: Path, source_dir: Path, root: Path) -> dict[str, Any]:
    """Fill ``source_dir`` (emptied first) from ``build_dir``'s executed run and ``root``'s pages.

    Returns:
        ``{"lessons": [notebook stems], "repository": url}``.

    Raises:
        FileNotFoundError: ``build_dir`` has no ``report.json`` or no executed notebook; the
            message says to run ``make execute-all`` first.
    """
    executed = executed_notebooks(build_dir)
    run_report = json.loads((build_dir / "report.json").read_text())
    repository = repository_url(root)
    if source_dir.exists():
        shutil.rmtree(source_dir)
    source_dir.mkdir(parents=True)

    lessons = [path.stem for path in executed]
    site_pages = dict(PAGES)
    site_pages.update({f"notebooks/{lesson}.ipynb": f"notebooks/{lesson}.ipynb" for lesson in lessons})
    instructor = root / INSTRUCTOR_FOLDER
    notes = sorted(note.stem for note in instructor.glob("*.md") if note.name != "README.md")
    site_pages.update({f"{INSTRUCTOR_FOLDER}/{note}.md": f"instructor/{note}.md" for note in notes})

    results = run_report.get("notebooks", {})
    for path in executed:
        cells = set(dict(results.get(path.stem, {}).get("metric_cells", {})).values())
        stage_notebook(path, source_dir / "notebooks" / path.name, cells)

    texts = {page: (root / page).read_text(encoding="utf-8") for page in site_pages
             if not page.endswith(".ipynb") and (root / page).is_file()}
    for page, original in texts.items():
        text = rewrite_links(link_sections(original), page, site_pages, repository)
        if page == "README.md":
            # The home page carries the README's title; this page is the rest of it.
            text = re.sub(r"\A# .*", "# Running the course", text, count=1)
        if page == f"{INSTRUCTOR_FOLDER}/README.md":
            text += "\n```{toctree}\n:hidden:\n\n" + "\n".join(notes) + "\n```\n"
        (source_dir / site_pages[page]).parent.mkdir(parents=True, exist_ok=True)
        (source_dir / site_pages[page]).write_text(text, encoding="utf-8")

    readme = texts["README.md"]
    (source_dir / "index.md").write_text(home_page(readme, site_pages, repository, lessons), encoding="utf-8")
    (source_dir / "dashboard.md").write_text(dashboard_page(run_report), encoding="utf-8")
    for page, text in api_pages(root).items():
        (source_dir / page).parent.mkdir(parents=True, exist_ok=True)
        (source_dir / page).write_text(text, encoding="utf-8")
    (source_dir / "_static").mkdir()
    (source_dir / "_static" / "ldl.css").write_text(STYLESHEET, encoding="utf-8")
    return {"lessons": lessons, "repository": repository}
