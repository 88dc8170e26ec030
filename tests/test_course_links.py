"""The repository's address is written once (pyproject.toml); README, badges and install cells follow it."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


links = _load(ROOT / "tools" / "course_links.py")


@pytest.fixture
def copy_of_the_course(tmp_path: Path) -> Path:
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return tmp_path


def test_every_notebook_and_the_readme_use_the_one_repository_address() -> None:
    assert links.repository_url() == "https://github.com/ldl-course/ldl"  # read from pyproject.toml
    assert links.problems() == []


def test_every_notebook_opens_on_a_gpu_runtime_in_colab() -> None:
    for path in links.notebook_paths():
        metadata = json.loads(path.read_text())["metadata"]
        assert metadata["accelerator"] == "GPU" and metadata["colab"]["gpuType"] == "T4", path.name


def test_a_link_to_another_repository_is_found(copy_of_the_course: Path) -> None:
    notebook = copy_of_the_course / "notebooks" / "03_initialization_and_gradients.ipynb"
    notebook.write_text(notebook.read_text().replace("git+https://github.com/ldl-course/ldl@main",
                                                     "git+https://github.com/someone/fork@main"))
    found = links.problems(copy_of_the_course)
    assert any(p.startswith("03_initialization_and_gradients.ipynb: its install cell") for p in found)
    assert any("links to someone/fork" in p for p in found)


def test_missing_colab_metadata_is_found(copy_of_the_course: Path) -> None:
    notebook = copy_of_the_course / "notebooks" / "00_recap_cnn_from_scratch.ipynb"
    content = json.loads(notebook.read_text())
    del content["metadata"]["colab"]
    notebook.write_text(json.dumps(content))
    assert links.problems(copy_of_the_course) == [
        "00_recap_cnn_from_scratch.ipynb: no Colab GPU type in its metadata (Colab would open a CPU runtime)"
    ]


def test_set_moves_every_link_to_a_new_address(copy_of_the_course: Path) -> None:
    links.rewrite("https://github.com/my-school/deep-course", copy_of_the_course)
    assert links.repository_url(copy_of_the_course) == "https://github.com/my-school/deep-course"
    assert links.problems(copy_of_the_course) == []
    everything = (copy_of_the_course / "README.md").read_text() + "".join(
        p.read_text() for p in (copy_of_the_course / "notebooks").glob("*.ipynb"))
    assert "ldl-course/ldl" not in everything and "git+https://github.com/my-school/deep-course@main" in everything


def test_an_address_that_is_not_a_github_repository_is_refused(copy_of_the_course: Path) -> None:
    pyproject = copy_of_the_course / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('Repository = "https://github.com/ldl-course/ldl"',
                                                       'Repository = "github.com/ldl"'))
    with pytest.raises(ValueError, match=r"pyproject\.toml.*OWNER/NAME"):
        links.repository_url(copy_of_the_course)
