"""Shared test settings: the smoke profile, a headless plot backend, the sample photos."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Set before anything imports matplotlib or starts a kernel: nbval and papermill kernels
# inherit this process's environment, so notebooks run in the smoke profile.
os.environ.setdefault("LDL_PROFILE", "smoke")
os.environ.setdefault("LDL_CACHE", str(ROOT / "build" / "test-cache"))
os.environ.setdefault("TQDM_MININTERVAL", "10")


def samples_or_skip(name: str = "cats_and_dogs_sample") -> Path:
    """The real sample photos in ``$LDL_DATA/<name>``.

    Missing: a failure under CI (where they must be there), a skip elsewhere with a
    message that says how to provide them.
    """
    folder = Path(os.environ.get("LDL_DATA", "")) / name
    if os.environ.get("LDL_DATA") and (folder / "train").is_dir():
        return folder
    message = (
        f"needs the sample photos {name}/: set LDL_DATA to a folder that holds it "
        "(e.g. LDL_DATA=../shared/data make test)"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def cats_and_dogs_sample() -> Path:
    return samples_or_skip("cats_and_dogs_sample")


# nbval waits only 5 s for a cell's output messages after the cell has finished, a fixed
# value with no command-line option. On a loaded 2-core CI machine the kernel's output
# thread can lag longer behind a cell that printed many progress bars, and a cell that
# ran fine fails as "Timeout of 5 seconds exceeded waiting for output".
NBVAL_OUTPUT_TIMEOUT_S = 60


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if type(item).__name__ == "IPyNbCell" and hasattr(item, "output_timeout"):
            item.output_timeout = NBVAL_OUTPUT_TIMEOUT_S


# ---------------------------------------------------------------------------------------
# Every lesson in the smoke profile, run once per session (tests/test_notebooks.py checks
# its claims, tests/test_site.py builds the website from it).
# ---------------------------------------------------------------------------------------

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="session")
def smoke_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The build folder of ``make execute-all PROFILE=smoke`` over every lesson."""
    from ldl.course.execute import execute_all

    build = tmp_path_factory.mktemp("build")
    execute_all(NOTEBOOKS, profile="smoke", build_dir=build, cell_timeout=600, html=True)
    return build


@pytest.fixture(scope="session")
def smoke_report(smoke_build: Path) -> dict:
    """That run's ``report.json``."""
    return json.loads((smoke_build / "report.json").read_text())
