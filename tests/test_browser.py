"""The augmentation playground in a real browser: JupyterLab + headless Chromium (Playwright).

The test starts JupyterLab on 127.0.0.1, opens the lesson notebook (or, until lesson 1
exists, a fixture of the same shape) cut after the cell tagged ``playground``, runs it,
waits for the grid picture, moves the rotation slider with the keyboard and checks that
the picture changed. Screenshots go to ``build/test-artifacts/``.

Needs Debian's ``chromium`` (``apt-get install chromium``) and the ``playwright`` package;
it drives the system Chromium (``playwright install`` would download a browser).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import ROOT, samples_or_skip

LESSON = ROOT / "notebooks" / "01_data_augmentation.ipynb"
FIXTURE = ROOT / "tests" / "fixtures" / "browser" / "playground.ipynb"
ARTIFACTS = ROOT / "build" / "test-artifacts"
PLAYGROUND_TAG = "playground"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_SECONDS = 60
CELLS_RUN_SECONDS = 90  # kernel start, imports of torch and torchvision, the first grid
REDRAW_SECONDS = 30
GRID = "img.ldl-grid"
DEGREES_HANDLE = ".ldl-control-degrees .noUi-handle"  # ipywidgets 8 sliders are noUiSlider
KEY_PRESSES = 10  # one slider step (1 degree) each

pytestmark = pytest.mark.notebook


def skip_or_fail(reason: str) -> None:
    """Missing tools: a failure under CI (which installs them), a skip elsewhere."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        skip_or_fail("needs Debian's chromium: apt-get update && apt-get install -y chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        skip_or_fail("needs the playwright package: pip install -e '.[dev]'")
    return str(path)


# ---------------------------------------------------------------------------------------
# The notebook and the server
# ---------------------------------------------------------------------------------------


def notebook_up_to_the_playground(source: Path, destination: Path) -> Path:
    """Copy ``source`` without outputs, keeping only the cells up to the one tagged ``playground``."""
    notebook = json.loads(source.read_text())
    tags = [cell.get("metadata", {}).get("tags", []) for cell in notebook["cells"]]
    tagged = [index for index, cell_tags in enumerate(tags) if PLAYGROUND_TAG in cell_tags]
    assert len(tagged) == 1, f"{source.name}: expected one cell tagged {PLAYGROUND_TAG!r}, found {len(tagged)}"
    notebook["cells"] = notebook["cells"][: tagged[0] + 1]
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    notebook["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = destination / source.name
    path.write_text(json.dumps(notebook, indent=1))
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def log_tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no log)"


@contextmanager
def jupyter_lab(root: Path, state: Path, data: Path) -> Iterator[tuple[str, str]]:
    """JupyterLab serving ``root`` on a free local port; yields ``(base_url, token)``."""
    port, token = free_port(), secrets.token_hex(16)
    for folder in ("config", "runtime", "settings", "workspaces"):
        (state / folder).mkdir(parents=True, exist_ok=True)
    # No "get Jupyter news?" pop-up over the screenshots.
    notification = state / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True, exist_ok=True)
    notification.write_text(json.dumps({"fetchNews": "false"}))
    env = {
        **os.environ,
        "LDL_PROFILE": "smoke",
        "LDL_DATA": str(data),
        # The python3 kernel must be this interpreter, with torch and ldl.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        # Keep the user's Jupyter settings and state out of the test (and the test out of them).
        "JUPYTER_CONFIG_DIR": str(state / "config"),
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
        "MPLBACKEND": "Agg",
    }
    command = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--ServerApp.allow_root=True",  # CI runs as root; a test server on 127.0.0.1 only
        "--ServerApp.terminals_enabled=False",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: run cells without clicking menus
        f"--LabApp.user_settings_dir={state / 'settings'}", f"--LabApp.workspaces_dir={state / 'workspaces'}",
        "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    log = state / "jupyterlab.log"
    with log.open("w") as log_file:
        server = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=root)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for_server(f"{base}/api/status?token={token}", server, log)
            yield base, token
        finally:
            server.terminate()  # jupyter_server shuts its kernels down on SIGTERM
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def wait_for_server(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited with code {server.returncode}:\n{log_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer within {SERVER_START_SECONDS} s:\n{log_tail(log)}")


# ---------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------

RUN_ALL_CELLS = """async (seconds) => {
    const run = (async () => {
        const app = window.jupyterapp;
        await app.started;
        await app.restored;
        const panel = app.shell.currentWidget;
        await panel.context.ready;
        await panel.sessionContext.ready;  // the kernel has started
        await app.commands.execute('notebook:run-all-cells');
        return panel.sessionContext.session.kernel.name;
    })();
    const late = new Promise((_, reject) => setTimeout(
        () => reject(new Error(`no kernel to run the cells after ${seconds} s`)), seconds * 1000));
    return await Promise.race([run, late]);
}"""
NOTEBOOK_OPEN = """() => window.jupyterapp && window.jupyterapp.shell.currentWidget
    && window.jupyterapp.shell.currentWidget.sessionContext"""
KERNEL_IDLE = "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'"
WHAT_THE_PAGE_SHOWS = """() => Array.from(document.querySelectorAll('.jp-OutputArea-output, .jp-Dialog'))
    .map(e => e.innerText.trim()).filter(t => t).slice(-6).join('\\n---\\n')"""


def page_report(page, name: str) -> str:
    """A screenshot of the page and the last outputs it shows, for a failure message."""
    try:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        shown = page.evaluate(WHAT_THE_PAGE_SHOWS)
    except Exception as error:  # the page may be gone; still report what we can
        shown = f"(could not read the page: {error})"
    return f"screenshot: {ARTIFACTS / (name + '.png')}\nthe page shows:\n{shown[-3000:]}"


def wait_or_fail(page, what: str, wait, log: Path) -> None:
    from playwright.sync_api import Error as PlaywrightError

    try:
        wait()
    except PlaywrightError as error:
        pytest.fail(f"{what}: {error.message.splitlines()[0]}\n{page_report(page, 'failure')}\n"
                    f"JupyterLab log:\n{log_tail(log, 15)}")


def test_moving_a_slider_redraws_the_grid_in_jupyterlab(chromium: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    data = samples_or_skip("cats_and_dogs_sample").parent
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    root = tmp_path / "notebooks"
    root.mkdir()
    notebook = notebook_up_to_the_playground(LESSON if LESSON.exists() else FIXTURE, root)
    log = tmp_path / "state" / "jupyterlab.log"

    with jupyter_lab(root, tmp_path / "state", data) as (base, token), sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh --user-data-dir
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1600, "height": 1200},
        )
        try:
            page = browser.new_page()
            page.goto(f"{base}/lab/tree/{notebook.name}?token={token}")
            wait_or_fail(page, "JupyterLab did not open the notebook",
                         lambda: page.wait_for_function(NOTEBOOK_OPEN, timeout=SERVER_START_SECONDS * 1000), log)
            kernels: list[str] = []
            wait_or_fail(page, "JupyterLab could not run the cells",
                         lambda: kernels.append(page.evaluate(RUN_ALL_CELLS, SERVER_START_SECONDS)), log)
            assert kernels == ["python3"]

            grid = page.locator(GRID)
            wait_or_fail(page, f"no grid picture ({GRID}) after running {notebook.name}",
                         lambda: grid.wait_for(state="visible", timeout=CELLS_RUN_SECONDS * 1000), log)
            wait_or_fail(page, "the kernel stayed busy",
                         lambda: page.wait_for_function(KERNEL_IDLE, timeout=CELLS_RUN_SECONDS * 1000), log)
            grid.scroll_into_view_if_needed()
            before_src = grid.get_attribute("src")
            before = grid.screenshot(path=str(ARTIFACTS / "playground-before.png"))

            readout = page.locator(".ldl-control-degrees .widget-readout")
            target_degrees = round(float(readout.inner_text().strip())) + KEY_PRESSES
            handle = page.locator(DEGREES_HANDLE)
            handle.focus()
            for _ in range(KEY_PRESSES):
                handle.press("ArrowRight")
            wait_or_fail(page, f"the rotation slider did not move to {target_degrees}",
                         lambda: page.wait_for_function(
                             "([el, text]) => el.innerText.trim() === text",
                             arg=[readout.element_handle(), str(target_degrees)], timeout=REDRAW_SECONDS * 1000), log)
            code = page.locator(".ldl-code textarea")
            wait_or_fail(page, "the code box never showed the new rotation",
                         lambda: page.wait_for_function(
                             "([el, text]) => el.value.includes(text)",
                             arg=[code.element_handle(), f"degrees={target_degrees}"], timeout=REDRAW_SECONDS * 1000), log)
            wait_or_fail(page, "the kernel stayed busy after the slider moved",
                         lambda: page.wait_for_function(KERNEL_IDLE, timeout=REDRAW_SECONDS * 1000), log)
            page.wait_for_timeout(500)  # the last picture reaches the page after the kernel is idle
            after_src = grid.get_attribute("src")
            after = grid.screenshot(path=str(ARTIFACTS / "playground-after.png"))
            page.screenshot(path=str(ARTIFACTS / "playground-page.png"), full_page=True)

            assert after_src != before_src, f"the grid <img> kept its source\n{page_report(page, 'failure')}"
            assert after != before, f"the grid looks the same after rotating\n{page_report(page, 'failure')}"
        finally:
            browser.close()
