"""Lesson metrics: the numbers a notebook records so that tests and the report can read them.

A lesson ends with its measured claim, e.g. "augmentation narrows the gap between
training and validation accuracy". The notebook records the numbers behind it:

>>> from ldl import report
>>> report.record("val_accuracy_augmented", 0.81)
>>> report.recorded()["val_accuracy_augmented"]
0.81

When the environment variable ``LDL_REPORT`` names a JSON file (``make execute-all`` and
the notebook tests set it), every call also merges ``{name: value}`` into that file, so the
metrics outlive the kernel. The file is rewritten atomically: a crash half-way never
leaves a truncated JSON file behind. It also notes when each metric was recorded, in a
second file beside it (:func:`cells_file`): papermill stamps each executed cell with its
start and end time, so :func:`recording_cells` finds the cell that recorded each metric, and
the course website links each claim to the cell that shows it.
"""

from __future__ import annotations

import json
import math
import os
import time
from datetime import datetime, timezone
from pathlib import Path

from ldl.core.files import write_json_atomically
from ldl.core.tables import html_table

REPORT_ENV = "LDL_REPORT"

MetricValue = float | int | str | bool

# Metrics recorded in this Python process (one notebook kernel), in recording order.
_METRICS: dict[str, MetricValue] = {}
# The notebook each metric was recorded for, when the caller said so.
_NOTEBOOKS: dict[str, str] = {}


def _plain_value(name: str, value: object) -> MetricValue:
    """Return ``value`` as a plain JSON value, or raise a TypeError that says what to pass.

    numpy scalars and one-element torch tensors have ``.item()``; it returns the Python
    number they hold, which ``json`` can write.
    """
    if isinstance(value, (bool, int, float, str)):
        return value
    item = getattr(value, "item", None)
    if callable(item):
        try:
            plain = item()
        except (ValueError, RuntimeError) as error:  # e.g. a tensor with many elements
            raise TypeError(
                f"Metric {name!r}: cannot turn {type(value).__name__} into one number "
                f"({error}). Record a single number, e.g. tensor.mean().item()."
            ) from error
        if isinstance(plain, (bool, int, float, str)):
            return plain
    raise TypeError(
        f"Metric {name!r} must be a float, int, str or bool (numpy and torch scalars are "
        f"converted with .item()), not {type(value).__name__}. Record each number under "
        "its own name, e.g. record('val_accuracy', float(acc))."
    )


def record(name: str, value: float | int | str | bool, *, notebook: str | None = None) -> None:
    """Keep one metric, and merge it into the ``LDL_REPORT`` JSON file when that is set.

    Args:
        name: the metric's name, e.g. ``"val_accuracy_augmented"``. Recording the same
            name again replaces the value.
        value: a float, int, str or bool; numpy scalars and one-element tensors are
            converted with ``.item()``.
        notebook: the notebook the metric belongs to (shown by :func:`show`).

    Raises:
        TypeError: ``name`` is not a string or ``value`` is not a single plain value.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"A metric name must be a non-empty string, not {name!r}.")
    plain = _plain_value(name, value)
    _METRICS[name] = plain
    if notebook is not None:
        _NOTEBOOKS[name] = notebook
    path = os.environ.get(REPORT_ENV, "").strip()
    if path:
        _merge_into_file(Path(path), {name: plain})
        _merge_into_file(cells_file(path), {name: time.time()})


def cells_file(report_path: str | os.PathLike[str]) -> Path:
    """Where the times ``report_path``'s metrics were recorded are kept: ``<stem>.cells.json`` beside it.

    It maps each metric to the Unix time of its last :func:`record` call.
    """
    report_path = Path(report_path)
    return report_path.with_name(f"{report_path.stem}.cells.json")


def recording_cells(cells_file: Path, executed: Path) -> dict[str, str]:
    """The id of the executed cell that recorded each metric: ``{metric name: cell id}``.

    ``cells_file`` holds the time each metric was recorded (:func:`cells_file`); papermill
    stamps every executed cell with its start and end (``metadata.papermill``), so the
    recording cell is the code cell whose run spans that time. The kernel runs on the
    machine that stamps the cells, so both clocks are the same. Metrics whose cell cannot be
    found (no file, a notebook not run by papermill, a cell without an id) are left out.
    """
    if not cells_file.exists() or not executed.exists():
        return {}
    import nbformat

    try:
        times = load(cells_file)
        cells = nbformat.read(executed, as_version=4).cells
    except (ValueError, OSError):
        return {}
    spans = []
    for cell in cells:
        stamps = cell.get("metadata", {}).get("papermill", {})
        if cell.get("cell_type") != "code" or not cell.get("id") or not stamps.get("start_time") or not stamps.get("end_time"):
            continue
        start, end = (_epoch_seconds(stamps[key]) for key in ("start_time", "end_time"))
        spans.append((start, end, cell["id"]))
    found = {}
    for name, recorded_at in times.items():
        cell_id = next((cell_id for start, end, cell_id in spans if start <= float(recorded_at) <= end), None)
        if cell_id is not None:
            found[name] = cell_id
    return found


def _epoch_seconds(stamp: str) -> float:
    """Unix time of papermill's ISO stamp (with its UTC offset; one without is UTC)."""
    moment = datetime.fromisoformat(stamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def recorded() -> dict[str, MetricValue]:
    """Return a copy of the metrics recorded in this process, by name."""
    return dict(_METRICS)


def clear() -> None:
    """Forget the metrics recorded in this process (the ``LDL_REPORT`` file is kept)."""
    _METRICS.clear()
    _NOTEBOOKS.clear()


def load(path: str | os.PathLike[str]) -> dict[str, MetricValue]:
    """Read a metrics file written by :func:`record`.

    A file that does not exist yet means no metric was recorded: ``{}`` is returned.

    Raises:
        ValueError: the file is not a JSON object (its path is in the message).
    """
    path = Path(path)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path} is not valid JSON ({error}). Delete it and run the notebook again."
        ) from error
    if not isinstance(data, dict):
        raise ValueError(f"{path} should hold a JSON object of metrics, found {type(data).__name__}.")
    return data


def _merge_into_file(path: Path, metrics: dict[str, MetricValue]) -> None:
    """Read the metrics file, update it with ``metrics``, write it back atomically."""
    merged = load(path)
    merged.update(metrics)
    write_json_atomically(path, merged)


def _format_value(value: MetricValue) -> str:
    """Numbers with 4 significant digits, the rest as is."""
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4g}"
    return str(value)


def _running_in_ipython() -> bool:
    """True inside an IPython kernel or shell, where rich display works."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def show() -> None:
    """Display the metrics recorded in this process as a small table.

    In a notebook this is an HTML table (IPython.display); elsewhere a text table.
    """
    if not _METRICS:
        print("No metrics recorded yet: call ldl.course.report.record(name, value).")
        return
    columns = ["metric", "value"] + (["notebook"] if _NOTEBOOKS else [])
    rows = [
        [name, _format_value(value)] + ([_NOTEBOOKS.get(name, "")] if _NOTEBOOKS else [])
        for name, value in _METRICS.items()
    ]
    if _running_in_ipython():
        from IPython.display import HTML, display

        display(HTML(html_table(columns, rows)))
        return
    widths = [max(len(row[i]) for row in [columns, *rows]) for i in range(len(columns))]
    for row in [columns, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
