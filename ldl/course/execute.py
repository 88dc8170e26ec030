"""Execute every lesson notebook: executed copies, HTML pages and a readiness report.

This is ``make execute-all``, what an instructor runs the evening before class::

    python -m ldl.course execute-all --profile gpu
    python -m ldl.course execute-all --profile smoke --notebooks notebooks/01_data_augmentation.ipynb

It first reports what the machine has (GPU, datasets, pretrained weights), so that a
missing GPU or a broken download shows up before any training starts. Then it runs each
notebook with papermill, keeps going when one fails, and writes into ``build/``::

    build/notebooks/<name>.ipynb   executed copies (failed ones carry papermill's error banner)
    build/html/<name>.html         the same, as web pages
    build/metrics/<name>.json      what each notebook recorded with ldl.course.report.record
    build/report.json              everything, for machines
    build/report.md                everything, for people

Each notebook's entry gives its status, its seconds and its peak memory: the most anonymous
memory its kernel (and the kernel's workers) held, and their resident-set high-water mark,
measured by :class:`ldl.core.memory.PeakMemory`; the first is how each profile's ``memory_gib``
is known. The readiness report warns when the
machine, or the cgroup limit of its container, has less memory than the profile needs.

Kernel: the notebooks run in the ``python3`` kernel of the interpreter running this
module. ipykernel installs that kernelspec into ``sys.prefix`` (the virtualenv); when the
``python3`` spec Jupyter finds would start another interpreter, :func:`kernel_for_this_python`
installs one for this interpreter into ``sys.prefix`` (like ``python -m ipykernel install
--sys-prefix``). Nothing is registered for the user or system-wide.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ldl.course import readiness, report
from ldl.core.files import write_text_atomically
from ldl.core.memory import PeakMemory
from ldl.course.reference import compare_run, load_reference, save_reference
from ldl.course.run_report import write_reports
from ldl.profiles import PROFILE_ENV, concrete_name, profile_choices

# The profiles' own names, then "auto": a new profile is a choice here without an edit.
PROFILE_CHOICES = profile_choices()
DEFAULT_NOTEBOOK_GLOB = "notebooks/[0-9][0-9]_*.ipynb"
KERNEL_NAME = "python3"
# jupyter_client replaces a kernelspec command named like this with sys.executable.
_GENERIC_PYTHON_NAMES = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}


class CannotStart(RuntimeError):
    """The run cannot begin on this machine as configured; the message says what to change."""


# ---------------------------------------------------------------------------------------
# Kernel
# ---------------------------------------------------------------------------------------


def _spec_runs_this_python(argv: Sequence[str]) -> bool:
    """True when a kernelspec's command line starts the interpreter running this module."""
    if not argv:
        return False
    command = argv[0]
    if command in _GENERIC_PYTHON_NAMES:
        return True
    # Compare without resolving symlinks: a virtualenv's python is a link to the system one.
    return os.path.abspath(command) == os.path.abspath(sys.executable) or Path(command).parent == Path(
        sys.prefix, "bin"
    )


def kernel_for_this_python(kernel_name: str = KERNEL_NAME) -> str:
    """Return a kernel name whose kernelspec starts this interpreter.

    If Jupyter's ``kernel_name`` spec would start another Python (or is missing), a spec
    for ``sys.executable`` is installed into ``sys.prefix`` and checked again.

    Raises:
        RuntimeError: another ``kernel_name`` spec (e.g. in the user's Jupyter folder)
            still wins; the message says how to pick a kernel by hand.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    def spec_is_ours() -> bool:
        try:
            spec = KernelSpecManager().get_kernel_spec(kernel_name)
        except NoSuchKernel:
            return False
        return _spec_runs_this_python(spec.argv)

    if spec_is_ours():
        return kernel_name
    from ipykernel.kernelspec import install

    install(kernel_name=kernel_name, prefix=sys.prefix)
    if spec_is_ours():
        return kernel_name
    raise RuntimeError(
        f"The Jupyter kernel {kernel_name!r} does not start {sys.executable}. "
        "List kernels with `jupyter kernelspec list` and pass one that runs this "
        "environment with --kernel NAME."
    )


# ---------------------------------------------------------------------------------------
# Running one notebook
# ---------------------------------------------------------------------------------------


# Folders the kernel finds through the environment. It runs in the notebook's folder, so a
# relative path given on the command line (LDL_DATA=../shared/data) must be made absolute first.
PATH_VARIABLES = ("LDL_DATA", "LDL_CACHE", "LDL_DATASET")


def kernel_environment(profile: str, metrics_file: Path) -> dict[str, str]:
    """The variables a notebook's kernel gets: profile, metrics file, and absolute data/cache folders."""
    values = {PROFILE_ENV: profile, report.REPORT_ENV: str(metrics_file.resolve())}
    for name in PATH_VARIABLES:
        if os.environ.get(name):
            values[name] = str(Path(os.environ[name]).expanduser().resolve())
    return values


@contextmanager
def environment_variables(**values: str) -> Iterator[None]:
    """Set environment variables (which a papermill kernel inherits) and restore them after."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _source_cell_index(executed_cells: list, cell_index: int) -> int:
    """Index of a cell in the notebook as written, before papermill injected parameters."""
    injected_before = sum(
        "injected-parameters" in cell.get("metadata", {}).get("tags", []) for cell in executed_cells[:cell_index]
    )
    return cell_index - injected_before


def _error_summary(error: BaseException, output: Path) -> dict[str, object]:
    """What the report says about a failure: which cell, which exception, which message."""
    from papermill.exceptions import PapermillExecutionError

    if not isinstance(error, PapermillExecutionError):
        return {"ename": type(error).__name__, "evalue": str(error), "cell_index": None}
    summary: dict[str, object] = {
        "ename": error.ename,
        "evalue": error.evalue,
        # Index in the executed notebook (parameters injected, before papermill's banner).
        "cell_index": error.cell_index,
        "execution_count": error.exec_count,
        "source": error.source,
    }
    try:
        import nbformat

        # The executed copy has papermill's error banner at the top and an anchor cell.
        cells = [
            cell
            for cell in nbformat.read(output, as_version=4).cells
            if "papermill-error-cell-tag" not in cell.get("metadata", {}).get("tags", [])
        ]
        summary["source_cell_index"] = _source_cell_index(cells, error.cell_index)
    except (OSError, ValueError):
        summary["source_cell_index"] = None
    return summary


def run_notebook(
    notebook: Path,
    *,
    profile: str,
    build_dir: Path,
    cell_timeout: int,
    kernel_name: str,
    device: str,
) -> dict[str, object]:
    """Execute one notebook with papermill and say how it went (never raises on failure).

    Returns:
        ``{"status": "ok" | "failed", "seconds", "peak_memory_gib", "peak_rss_gib", "device",
        "metrics", "metric_cells", "error", "output", "html"}``; ``metric_cells`` names the
        cell that recorded each metric (:func:`ldl.course.report.recording_cells`);
        ``peak_memory_gib`` is the kernel's peak anonymous memory and ``peak_rss_gib`` its
        peak resident set, shared library pages
        included (both with its child processes; ``None`` where they cannot be measured, see
        :class:`ldl.core.memory.PeakMemory`); ``html`` is filled in by :func:`export_html`.
    """
    import papermill

    name = notebook.stem
    output = build_dir / "notebooks" / f"{name}.ipynb"
    metrics_file = build_dir / "metrics" / f"{name}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    metrics_file.parent.mkdir(parents=True, exist_ok=True)
    # Metrics from an earlier run must not pass for this run's.
    metrics_file.unlink(missing_ok=True)
    report.cells_file(metrics_file).unlink(missing_ok=True)
    output.unlink(missing_ok=True)

    error: dict[str, object] | None = None
    start = time.perf_counter()
    # The kernel is a child process of this one: PeakMemory finds and polls it.
    with environment_variables(**kernel_environment(profile, metrics_file)), PeakMemory() as memory:
        try:
            papermill.execute_notebook(
                str(notebook),
                str(output),
                parameters={"PROFILE": profile},
                request_save_on_cell_execute=False,
                autosave_cell_every=0,
                execution_timeout=cell_timeout,
                progress_bar=False,
                kernel_name=kernel_name,
                cwd=str(notebook.resolve().parent),
            )
        except Exception as exc:  # one broken notebook must not stop the others
            error = _error_summary(exc, output)
    seconds = time.perf_counter() - start
    try:
        metrics = report.load(metrics_file)
    except ValueError as exc:
        metrics = {}
        error = error or {"ename": type(exc).__name__, "evalue": str(exc), "cell_index": None}
    return {
        "status": "failed" if error else "ok",
        "seconds": round(seconds, 2),
        "peak_memory_gib": memory.peak_gib,
        "peak_rss_gib": memory.peak_rss_gib,
        "device": device,
        "metrics": metrics,
        "metric_cells": report.recording_cells(report.cells_file(metrics_file), output),
        "error": error,
        "output": str(output) if output.exists() else None,
        "html": None,
    }


def export_html(executed: Path, html_file: Path) -> None:
    """Write an executed notebook as a standalone HTML page (nbconvert's HTMLExporter)."""
    from nbconvert import HTMLExporter

    body, _resources = HTMLExporter().from_filename(str(executed))
    write_text_atomically(html_file, body)


# ---------------------------------------------------------------------------------------
# The whole course
# ---------------------------------------------------------------------------------------


def default_notebooks(root: Path = Path(".")) -> list[Path]:
    """The lesson notebooks ``notebooks/NN_*.ipynb`` under ``root``, in lesson order."""
    return sorted(root.glob(DEFAULT_NOTEBOOK_GLOB))


def execute_all(
    notebooks: Sequence[str | os.PathLike[str]],
    *,
    profile: str,
    build_dir: str | os.PathLike[str],
    cell_timeout: int,
    html: bool = True,
    kernel_name: str | None = None,
    check_network: bool = False,
    reference_dir: str | os.PathLike[str] | None = "reference",
) -> dict[str, object]:
    """Check readiness, run every notebook in order, write ``report.json`` and ``report.md``.

    Args:
        notebooks: paths of the notebooks, run in this order.
        profile: ``smoke``, ``cpu``, ``gpu`` or ``auto``; injected as the ``PROFILE``
            parameter and set as ``LDL_PROFILE`` for the kernel.
        build_dir: where executed copies, HTML, metrics and the reports go.
        cell_timeout: seconds one cell may run before it counts as failed.
        html: also export each executed notebook to HTML.
        kernel_name: Jupyter kernel to use; ``None``: the ``python3`` kernel of this
            interpreter (see :func:`kernel_for_this_python`).
        check_network: for missing datasets, check that their URLs answer.
        reference_dir: the folder of reference results (``<profile>.json``, see
            :mod:`ldl.course.reference`); tonight's metrics and times are compared with the
            profile's, in ``report.md``. ``None``: no comparison.

    Returns:
        The report (the content of ``report.json``).

    Raises:
        CannotStart: the build folder cannot be written or the data folder cannot be read
            (see :func:`ldl.course.readiness.folder_problems`); no notebook has run.
    """
    from tqdm.auto import tqdm

    if profile not in PROFILE_CHOICES:
        raise ValueError(f"Unknown profile {profile!r}. Choose one of: {', '.join(PROFILE_CHOICES)}.")
    paths = [Path(notebook) for notebook in notebooks]
    _check_notebook_paths(paths)
    build = Path(build_dir)
    # Before anything slow: a folder the run cannot use would otherwise end it with a
    # traceback at the first notebook, or fail every notebook with the same error.
    problems = readiness.folder_problems(build)
    if problems:
        raise CannotStart("Could not start:\n" + "\n".join(f"  - {problem}" for problem in problems))
    total_start = time.perf_counter()

    state = readiness.gather_readiness(profile, check_network=check_network)
    print(readiness.format_readiness(state["environment"], state["datasets"], state["weights"]))
    for line in [*state["errors"], *state["warnings"]]:
        print(f"WARNING: {line}")
    sys.stdout.flush()

    kernel = kernel_name or kernel_for_this_python()
    run_report: dict[str, object] = {
        "profile": profile,
        "profile_used": concrete_name(profile),
        "kernel": kernel,
        **state,
        "notebooks": {},
        "total_seconds": 0.0,
    }
    results: dict[str, dict[str, object]] = run_report["notebooks"]  # type: ignore[assignment]
    device = str(state["environment"]["device"])

    progress = tqdm(paths, desc="notebooks", unit="notebook")
    for notebook in progress:
        progress.set_postfix_str(notebook.name)
        tqdm.write(f"Running {notebook} (profile {profile}) ...")
        result = run_notebook(
            notebook, profile=profile, build_dir=build, cell_timeout=cell_timeout, kernel_name=kernel, device=device
        )
        if html and result["output"]:
            html_file = build / "html" / f"{notebook.stem}.html"
            try:
                export_html(Path(str(result["output"])), html_file)
                result["html"] = str(html_file)
            except Exception as exc:  # a page that cannot be rendered is reported, not fatal
                result["html_error"] = f"{type(exc).__name__}: {exc}"
        results[notebook.stem] = result
        tqdm.write(f"  {notebook.name}: {result['status']} in {result['seconds']:.1f} s, {_peak_text(result)}")
        # Written after every notebook, so an interrupted run still leaves a report.
        run_report["total_seconds"] = round(time.perf_counter() - total_start, 2)
        write_reports(run_report, build)
    progress.close()

    run_report["total_seconds"] = round(time.perf_counter() - total_start, 2)
    reference = load_reference(Path(reference_dir), str(run_report["profile_used"])) if reference_dir is not None else None
    if reference is not None:
        run_report["reference"] = compare_run(run_report, reference)
    write_reports(run_report, build)
    failed = [name for name, result in results.items() if result["status"] != "ok"]
    print(
        f"{len(results) - len(failed)} of {len(results)} notebooks ran; "
        + (f"failed: {', '.join(failed)}. " if failed else "")
        + f"Report: {build / 'report.md'}"
    )
    return run_report


def _peak_text(result: dict[str, object]) -> str:
    """``peak memory 1.23 GiB``, or that it could not be measured."""
    peak = result.get("peak_memory_gib")
    return "peak memory not measured" if peak is None else f"peak memory {peak:.2f} GiB"


def _check_notebook_paths(paths: list[Path]) -> None:
    """Fail before any work when a notebook is missing or two would overwrite each other."""
    if not paths:
        raise ValueError(
            f"No notebooks to run. Run from the repository root (it looks for {DEFAULT_NOTEBOOK_GLOB}) "
            "or pass --notebooks."
        )
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"Notebook(s) not found: {', '.join(missing)}")
    stems = [path.stem for path in paths]
    duplicated = sorted({stem for stem in stems if stems.count(stem) > 1})
    if duplicated:
        raise ValueError(f"Several notebooks are named {duplicated}: their executed copies would overwrite each other.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ldl.course", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("execute-all", help="run every notebook and write build/report.md")
    run.add_argument("--profile", choices=PROFILE_CHOICES, default="auto", help="default: auto")
    run.add_argument("--notebooks", nargs="+", metavar="NOTEBOOK", help=f"default: {DEFAULT_NOTEBOOK_GLOB}")
    run.add_argument("--build", default="build", help="output folder (default: build)")
    run.add_argument("--timeout", type=int, default=900, help="seconds one cell may run (default: 900)")
    run.add_argument("--no-html", action="store_true", help="skip the HTML export")
    run.add_argument("--check-network", action="store_true", help="check that missing datasets can be downloaded")
    run.add_argument("--kernel", default=None, help="Jupyter kernel name (default: python3 of this interpreter)")
    run.add_argument("--reference", default="reference",
                     help="folder of reference results to compare with (default: reference)")
    keep = commands.add_parser("reference", help="keep a run's metrics and times as its profile's reference")
    keep.add_argument("report", help="a run's report.json, e.g. build/report.json")
    keep.add_argument("--folder", default="reference", help="where <profile>.json goes (default: reference)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code.

    0: every notebook ran; 1: a notebook failed (the others still ran); 2: the run could not
    start or go on (a bad argument, a missing notebook, no kernel, a build folder that cannot
    be written, a data folder that cannot be read), with the reason on stderr.
    """
    args = build_parser().parse_args(argv)
    if args.command == "reference":
        try:
            path = save_reference(json.loads(Path(args.report).read_text()), Path(args.folder))
        except (ValueError, OSError, KeyError) as error:
            print(f"error: {args.report}: {error}", file=sys.stderr)
            return 2
        print(f"wrote {path}")
        return 0
    notebooks = args.notebooks if args.notebooks else default_notebooks()
    try:
        run_report = execute_all(
            notebooks,
            profile=args.profile,
            build_dir=args.build,
            cell_timeout=args.timeout,
            html=not args.no_html,
            kernel_name=args.kernel,
            check_network=args.check_network,
            reference_dir=args.reference,
        )
    except (ValueError, OSError, RuntimeError) as error:  # OSError: e.g. the disk filled up mid-run
        print(f"error: {error}", file=sys.stderr)
        return 2
    results: dict[str, dict[str, object]] = run_report["notebooks"]  # type: ignore[assignment]
    return 1 if any(result["status"] != "ok" for result in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
