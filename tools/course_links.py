"""Keep every link to the course's repository, and every notebook's Colab settings, in step.

The repository's address is written in one place: ``[project.urls] Repository`` in
``pyproject.toml``. The README's clone command, each notebook's "Open in Colab" and Binder
badges and each notebook's Colab install cell are derived from it. After a fork or a move:

    python tools/course_links.py --set https://github.com/OWNER/NAME   # writes pyproject, README, notebooks
    python tools/course_links.py --check                               # what tests/test_course_links.py asserts

``--set`` (and ``--fix``, which keeps the address) also gives every notebook the metadata that
makes Colab open it on a GPU runtime, since the gpu profile is the one Colab students get.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BRANCH = "main"
# Colab opens a notebook on a GPU runtime only when its metadata asks for one.
COLAB_METADATA = {"accelerator": "GPU", "colab": {"gpuType": "T4", "provenance": []}}

# Any GitHub repository named in the places we rewrite: (owner/name) in each URL form we use.
END = r"""(?=\.git\b|[@/)\s'"\]]|$)"""  # what may follow OWNER/NAME in a URL
GITHUB_FORMS = (
    r"github\.com/(?P<repo>[\w.-]+/[\w.-]+?)" + END,  # clone, pip's git+, Colab's /github/...
    r"colab\.research\.google\.com/github/(?P<repo>[\w.-]+/[\w.-]+?)" + END,  # Colab badges
    r"mybinder\.org/v2/gh/(?P<repo>[\w.-]+/[\w.-]+?)" + END,  # Binder badges
)


def repository_url(root: Path = ROOT) -> str:
    """``https://github.com/OWNER/NAME`` from ``pyproject.toml``'s ``[project.urls] Repository``."""
    # A regular expression, not tomllib: the course supports Python 3.10, which lacks it.
    match = re.search(r'^Repository = "([^"]*)"', (root / "pyproject.toml").read_text(), re.M)
    url = match.group(1) if match else None
    if not url or not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ValueError(
            f"{root / 'pyproject.toml'}: [project.urls] Repository must be https://github.com/OWNER/NAME; got {url!r}."
        )
    return url


def owner_and_name(url: str) -> str:
    """``OWNER/NAME`` of a GitHub URL."""
    return url.removeprefix("https://github.com/")


def notebook_paths(root: Path = ROOT) -> list[Path]:
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def badges(url: str, notebook: str) -> str:
    """The two badge lines of a notebook's title cell (Markdown)."""
    repo = owner_and_name(url)
    colab = f"https://colab.research.google.com/github/{repo}/blob/{BRANCH}/notebooks/{notebook}"
    binder = f"https://mybinder.org/v2/gh/{repo}/{BRANCH}?labpath=notebooks%2F{notebook}"
    return (
        f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab})\n"
        f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder})"
    )


def pip_source(url: str) -> str:
    """What the Colab install cells give pip: ``git+https://github.com/OWNER/NAME@main``."""
    return f"git+{url}@{BRANCH}"


def repositories_named(text: str) -> set[str]:
    """Every ``OWNER/NAME`` that ``text`` links to on GitHub, Colab or Binder."""
    found = set()
    for pattern in GITHUB_FORMS:
        found.update(match.group("repo") for match in re.finditer(pattern, text))
    found.discard("assets/colab-badge.svg")
    return found


def problems(root: Path = ROOT) -> list[str]:
    """What disagrees with ``pyproject.toml``'s repository; empty when everything is in step."""
    url = repository_url(root)
    repo = owner_and_name(url)
    found: list[str] = []
    readme = (root / "README.md").read_text()
    if f"git clone {url}.git" not in readme:
        found.append(f"README.md: no `git clone {url}.git`")
    for other in sorted(repositories_named(readme) - {repo}):
        found.append(f"README.md links to {other}, not {repo}")
    for path in notebook_paths(root):
        notebook = json.loads(path.read_text())
        text = "".join("".join(cell["source"]) for cell in notebook["cells"])
        if badges(url, path.name) not in text:
            found.append(f"{path.name}: its Colab and Binder badges do not point at {repo}/{BRANCH}/notebooks/{path.name}")
        if pip_source(url) not in text:
            found.append(f"{path.name}: its install cell does not install from {pip_source(url)}")
        for other in sorted(repositories_named(text) - {repo}):
            found.append(f"{path.name} links to {other}, not {repo}")
        metadata = notebook.get("metadata", {})
        if metadata.get("accelerator") != COLAB_METADATA["accelerator"]:
            found.append(f"{path.name}: metadata 'accelerator' is not {COLAB_METADATA['accelerator']!r}")
        if metadata.get("colab", {}).get("gpuType") != COLAB_METADATA["colab"]["gpuType"]:
            found.append(f"{path.name}: no Colab GPU type in its metadata (Colab would open a CPU runtime)")
    return found


def rewrite(url: str, root: Path = ROOT) -> None:
    """Point pyproject, README and every notebook at ``url``; give notebooks Colab's GPU metadata."""
    old = repository_url(root)
    old_repo, new_repo = owner_and_name(old), owner_and_name(url)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(f'Repository = "{old}"', f'Repository = "{url}"'))
    readme = root / "README.md"
    readme.write_text(readme.read_text().replace(old_repo, new_repo))
    for path in notebook_paths(root):
        notebook = json.loads(path.read_text())
        for cell in notebook["cells"]:
            source = "".join(cell["source"]).replace(old_repo, new_repo)
            cell["source"] = source.splitlines(keepends=True)
        metadata = notebook.setdefault("metadata", {})
        metadata["accelerator"] = COLAB_METADATA["accelerator"]
        colab = metadata.setdefault("colab", {})
        colab.setdefault("provenance", [])
        colab["gpuType"] = COLAB_METADATA["colab"]["gpuType"]
        # Jupyter's own layout (one-space indent, UTF-8, final newline): small diffs.
        path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true", help="list what is out of step (exit 1 if anything)")
    action.add_argument("--fix", action="store_true", help="rewrite everything from pyproject.toml's address")
    action.add_argument("--set", metavar="URL", help="a new address: https://github.com/OWNER/NAME")
    args = parser.parse_args(argv)
    if args.check:
        found = problems()
        print("\n".join(found) or f"Every link points at {repository_url()}.")
        return 1 if found else 0
    url = args.set or repository_url()
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        parser.error(f"--set takes https://github.com/OWNER/NAME; got {url!r}")
    rewrite(url)
    found = problems()
    print("\n".join(found) or f"Every link points at {url}.")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
