"""``make site``: the course website, built with Sphinx and MyST-NB from an executed run.

    python -m ldl.site --build build        # reads build/, writes build/site/index.html

Sphinx with MyST-NB renders the executed notebooks as they are (``nb_execution_mode="off"``:
nothing runs again), gives every page a client-side search that works offline, and
generates the API reference from the docstrings with autodoc; the Sphinx Book Theme adds the
lesson navigation and a Colab / Binder launch button on every lesson page. The settings are
passed to Sphinx here, in :func:`sphinx_settings`, rather than in a ``conf.py``, because the
source folder is generated afresh for every build (:mod:`ldl.site.source`).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ldl.core.files import write_text_atomically
from ldl.site.source import executed_notebooks, stage_source

SITE_TITLE = "Learning Deep Learning"
WARNINGS_FILE = "site-warnings.txt"


def sphinx_settings(repository: str, branch: str = "main") -> dict[str, Any]:
    """Sphinx's configuration for the course website (what a ``conf.py`` would set)."""
    return {
        "project": SITE_TITLE,
        # githubpages writes .nojekyll, so GitHub Pages serves the _static/ folder.
        "extensions": ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.githubpages"],
        # The executed notebooks are shown as they are; MyST-NB never runs a cell.
        "nb_execution_mode": "off",
        "nb_merge_streams": True,
        "myst_enable_extensions": ["dollarmath", "amsmath"],
        "myst_heading_anchors": 3,
        "source_suffix": {".md": "myst-nb", ".ipynb": "myst-nb"},
        "exclude_patterns": ["_build", "**.ipynb_checkpoints"],
        # Google-style "Args:" / "Returns:" sections, as the package's docstrings are written.
        "napoleon_google_docstring": True,
        "autodoc_member_order": "bysource",
        "autodoc_typehints": "description",
        "html_theme": "sphinx_book_theme",
        "html_title": SITE_TITLE,
        "html_static_path": ["_static"],
        "html_css_files": ["ldl.css"],
        "html_theme_options": {
            "repository_url": repository,
            "repository_branch": branch,
            "path_to_docs": "",
            "use_repository_button": True,
            "launch_buttons": {
                "colab_url": "https://colab.research.google.com",
                "binderhub_url": "https://mybinder.org",
                "notebook_interface": "jupyterlab",
            },
            "show_toc_level": 2,
        },
        # Every lesson's images sit inside its page's HTML; nothing is fetched at read time.
        "html_show_sourcelink": True,
        "suppress_warnings": ["myst.header"],
    }


def missing_tools() -> list[str]:
    """The site's packages that are not installed (they come with ``pip install -e '.[dev]'``)."""
    import importlib.util

    needed = {"sphinx": "sphinx", "myst_nb": "myst-nb", "sphinx_book_theme": "sphinx-book-theme"}
    return [package for module, package in needed.items() if importlib.util.find_spec(module) is None]


def build_site(build_dir: str | Path = "build", *, out_dir: str | Path | None = None, root: str | Path = ".",
               quiet: bool = False) -> Path:
    """Build the website from ``build_dir``'s executed run; return the home page's path.

    Args:
        build_dir: the folder ``make execute-all`` wrote (``report.json``, ``notebooks/``).
        out_dir: where the site goes (default: ``<build_dir>/site``); its ``index.html`` is
            the home page. Any static host serves the folder as it is.
        root: the repository (README, docs/, pyproject.toml, the ``ldl`` package).
        quiet: no Sphinx progress on stdout.

    Raises:
        FileNotFoundError: no executed run in ``build_dir`` (the message says what to run).
        RuntimeError: the site's packages are missing, or Sphinx failed.
    """
    build, root = Path(build_dir), Path(root)
    executed_notebooks(build)  # no run: say so before anything else
    missing = missing_tools()
    if missing:
        raise RuntimeError(f"The website needs {', '.join(missing)}: pip install -e '.[dev]' (make install).")
    from sphinx.application import Sphinx
    from sphinx.util.console import nocolor

    nocolor()  # plain text in the warnings file and in CI logs

    out = Path(out_dir) if out_dir is not None else build / "site"
    source = build / "site-source"
    staged = stage_source(build, source, root)
    warnings = io.StringIO()
    app = Sphinx(
        srcdir=str(source),
        confdir=None,
        outdir=str(out),
        doctreedir=str(build / "site-doctrees"),
        buildername="html",
        confoverrides=sphinx_settings(staged["repository"]),
        status=None if quiet else sys.stdout,
        warning=warnings,
        freshenv=True,
    )
    app.build()
    write_text_atomically(build / WARNINGS_FILE, warnings.getvalue())
    if app.statuscode:
        raise RuntimeError(f"Sphinx failed; its warnings are in {build / WARNINGS_FILE}.")
    return out / "index.html"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ldl.site``: 0 when the site was built, 2 when it could not be."""
    parser = argparse.ArgumentParser(prog="python -m ldl.site", description="Build the course website from an executed run.")
    parser.add_argument("--build", default="build", help="the folder make execute-all wrote (default: build)")
    parser.add_argument("--out", default=None, help="where the site goes (default: <build>/site)")
    parser.add_argument("--quiet", action="store_true", help="no Sphinx progress")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        index = build_site(args.build, out_dir=args.out, quiet=args.quiet)
    except (FileNotFoundError, RuntimeError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    warnings = (Path(args.build) / WARNINGS_FILE).read_text().count("WARNING")
    print(f"Site built in {time.perf_counter() - start:.0f} s: {index}  "
          f"({warnings} Sphinx warnings, listed in {Path(args.build) / WARNINGS_FILE}). "
          f"Browse it with: python -m http.server -d {index.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
