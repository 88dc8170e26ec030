"""pyproject.toml, environment.yml and binder/ must list the same packages and bounds."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 has no tomllib; the files agree or not whatever the Python, so 3.11+ checks them
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from PyPI's
CONDA_NAMES = {"torch": "pytorch"}
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$")


def parse(requirement: str) -> tuple[str, str]:
    """'torch>=2.1' -> ('torch', '>=2.1'), names normalised as PyPI does."""
    match = REQUIREMENT.match(requirement)
    assert match, f"cannot parse requirement {requirement!r}"
    name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
    return name, match.group(2).replace(" ", "")


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def conda_packages(path: Path) -> dict[str, str]:
    """Every package of a conda environment file (conda and pip sections) -> its bound."""
    spec = yaml.safe_load(path.read_text())
    packages: dict[str, str] = {}
    for entry in spec["dependencies"]:
        items = entry["pip"] if isinstance(entry, dict) else [entry]
        for item in items:
            name, bound = parse(item.replace("=", "==", 1) if re.match(r"^[\w.-]+=[^=]", item) else item)
            packages[name] = bound
    return packages


def expected(groups: list[str]) -> dict[str, str]:
    project = pyproject()["project"]
    requirements = list(project["dependencies"])
    for group in groups:
        requirements += project["optional-dependencies"][group]
    result = {}
    for requirement in requirements:
        name, bound = parse(requirement)
        result[CONDA_NAMES.get(name, name)] = bound
    return result


@pytest.mark.parametrize(
    ("path", "groups"),
    [("environment.yml", ["weights", "dev"]), ("binder/environment.yml", ["weights"])],
)
def test_environment_file_matches_pyproject(path: str, groups: list[str]) -> None:
    found = conda_packages(ROOT / path)
    for name, bound in expected(groups).items():
        assert name in found, f"{path} lacks {name} (pyproject.toml lists it)"
        assert found[name] == bound, f"{path}: {name}{found[name]} but pyproject.toml says {name}{bound}"


def test_only_lower_bounds() -> None:
    """An upper bound on torch would make Colab reinstall its own torch; allow none anywhere."""
    project = pyproject()["project"]
    requirements = project["dependencies"] + sum(project["optional-dependencies"].values(), [])
    for requirement in requirements:
        _, bound = parse(requirement)
        assert bound.startswith(">="), f"{requirement}: use a lower bound only"
        assert "<" not in bound and "==" not in bound, requirement


def test_binder_installs_the_package() -> None:
    post_build = (ROOT / "binder" / "postBuild").read_text()
    assert post_build.splitlines()[1:] and "set -e" in post_build
    assert "pip install" in post_build and " -e ." in post_build
    python = [d for d in yaml.safe_load((ROOT / "binder/environment.yml").read_text())["dependencies"]
              if isinstance(d, str) and d.startswith("python")]
    assert python == ["python=3.11"], "pin Python inside environment.yml (repo2docker ignores runtime.txt)"


def test_binder_can_proxy_tensorboard() -> None:
    """On Binder, %tensorboard's iframe only reaches the server through jupyter-server-proxy."""
    found = conda_packages(ROOT / "binder/environment.yml")
    assert "jupyter-server-proxy" in found, "binder/environment.yml lacks jupyter-server-proxy"
    assert found["jupyter-server-proxy"].startswith(">="), "use a lower bound only"
