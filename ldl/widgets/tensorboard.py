"""Show a run's TensorBoard logs in the notebook, wherever the notebook runs.

>>> from ldl.widgets.tensorboard import show_tensorboard
>>> show_tensorboard("runs/lesson3_relu_he")     # after a fit with TensorBoardLogger("runs/lesson3_relu_he")

Where it runs decides how (see :func:`tensorboard_mode`):

- ``"colab"`` and ``"jupyter"`` (JupyterLab, Notebook, VS Code on one's own machine):
  ``%load_ext tensorboard`` and ``%tensorboard --logdir ...``, a live dashboard in the cell;
- ``"binder"`` (mybinder.org, or a JupyterHub with jupyter-server-proxy): the same, after
  pointing ``TENSORBOARD_PROXY_URL`` at ``<JUPYTERHUB_SERVICE_PREFIX>proxy/%PORT%/``. Without
  it the dashboard's iframe asks for localhost:6006 of the student's own computer, and
  stays blank; TensorBoard's notebook code reads the variable and puts the port for %PORT%;
- ``"static"`` (a script, or a notebook run by papermill / nbconvert / nbval, or
  ``LDL_STATIC_TENSORBOARD=1``): no server is started, since nobody could look at it;
  the same histograms are drawn with matplotlib (:func:`histogram_figure`) instead.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from tensorboard import data_compat
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator, HistogramValue
from tensorboard.compat.proto import summary_pb2
from tensorboard.util import tensor_util

Mode = Literal["colab", "binder", "jupyter", "static"]
STATIC_ENV = "LDL_STATIC_TENSORBOARD"  # "1": always the static figure, never a server
BINDER_ENV = ("BINDER_SERVICE_HOST", "BINDER_LAUNCH_HOST")  # set in every mybinder.org session
PROXY_ENV = "TENSORBOARD_PROXY_URL"  # read by tensorboard/notebook.py, %PORT% replaced by the port
BIN_COUNT = 30  # TensorBoard's histogram dashboard redraws every histogram on 30 equal bins
MOST_STATIC_PANELS = 12  # beyond this the static figure shows first, middle and last layers only
CMAPS = {"weights": "Blues", "grads": "Oranges"}  # TensorBoardLogger's tag groups; others: Greens


def tensorboard_mode() -> Mode:
    """How :func:`show_tensorboard` shows the logs here: ``"colab"``, ``"binder"``, ``"jupyter"`` or ``"static"``.

    The rule, first match wins:

    1. ``LDL_STATIC_TENSORBOARD=1`` -> ``"static"``;
    2. no person's front end asked for this cell -> ``"static"``: outside IPython, or in a
       kernel run headless (papermill, nbconvert --execute, nbval), told apart as the
       widget playgrounds do (``allow_stdin`` of the execute request, see
       :func:`ldl.widgets.display.front_end_is_interactive`);
    3. ``google.colab`` imported -> ``"colab"``;
    4. ``BINDER_SERVICE_HOST`` or ``BINDER_LAUNCH_HOST`` set, or ``JUPYTERHUB_SERVICE_PREFIX``
       set with ``jupyter_server_proxy`` importable -> ``"binder"``; on Binder without
       ``jupyter_server_proxy`` -> ``"static"``, since the dashboard could not be reached;
    5. otherwise -> ``"jupyter"``.
    """
    return _mode_and_reason()[0]


def show_tensorboard(log_dir: str | Path) -> None:
    """Open TensorBoard on ``log_dir`` in this cell, or draw its histograms where none can run.

    Args:
        log_dir: a folder written by ``TensorBoardLogger``, e.g. ``"runs/lesson3_relu_he"``;
            the live dashboard also takes a parent of several runs (``"runs"``).

    Raises:
        FileNotFoundError: ``log_dir`` does not exist, or holds no event files (train first).

    In ``"static"`` mode the figure of :func:`histogram_figure` is displayed (in IPython) or
    left open for ``plt.show()`` (in a script); call :func:`histogram_figure` to keep it.
    """
    folder = _checked_log_dir(log_dir)
    mode, reason = _mode_and_reason()
    if mode == "static":
        every_tag = list(read_histograms(folder))
        tags = overview_tags(every_tag)
        figure = histogram_figure(folder, tags)
        shown = "" if len(tags) == len(every_tag) else (
            f" Shown: {len(tags)} of its {len(every_tag)} histograms, the weight matrices of the first, middle and last "
            "layers; histogram_figure(log_dir, tags=[...]) draws any of them.")
        print(f"TensorBoard logs in {folder} (no live TensorBoard: {reason}); to browse them, run "
              f"`tensorboard --logdir {shlex.quote(str(folder))}` in a terminal and open http://localhost:6006.{shown}")
        _display(figure)
        return
    if mode == "binder":
        os.environ[PROXY_ENV] = binder_proxy_url()
    from IPython import get_ipython  # noqa: PLC0415 - only here: a live mode implies IPython

    shell = get_ipython()
    # %load_ext a second time prints "already loaded": only the first call loads it.
    if "tensorboard" not in getattr(getattr(shell, "extension_manager", None), "loaded", ()):
        shell.run_line_magic("load_ext", "tensorboard")
    # The magic's arguments go to the tensorboard program (shlex-split); it reuses the
    # server it started with the same arguments when the cell runs again.
    shell.run_line_magic("tensorboard", f"--logdir {shlex.quote(str(folder))}")


def overview_tags(tags: Sequence[str], *, most: int = MOST_STATIC_PANELS) -> list[str]:
    """At most ``most`` tags, so a deep network's static figure stays readable.

    All of them when they fit; otherwise the ``.weight`` tensors of the first, middle and last
    layers, each with its gradient, which is where vanishing or exploding gradients show.
    """
    if len(tags) <= most:
        return list(tags)
    weights = [tag for tag in tags if tag.startswith("weights/") and tag.endswith(".weight")] or [
        tag for tag in tags if tag.startswith("weights/")]
    if not weights:
        return list(tags[:most])
    picked = dict.fromkeys([weights[0], weights[len(weights) // 2], weights[-1]])
    chosen = []
    for tag in picked:
        gradient = "grads/" + tag.removeprefix("weights/")
        chosen += [tag, gradient] if gradient in tags else [tag]
    return chosen


def binder_proxy_url() -> str:
    """``<JUPYTERHUB_SERVICE_PREFIX>proxy/%PORT%/``, e.g. ``/user/ldl-course-ldl-x1y2/proxy/%PORT%/``.

    jupyter-server-proxy forwards ``<prefix>proxy/<port>/`` to ``localhost:<port>`` of the
    Binder machine; TensorBoard replaces ``%PORT%`` with the port its server got.
    """
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    return f"{prefix.rstrip('/')}/proxy/%PORT%/"


def histogram_figure(
    log_dir: str | Path,
    tags: Sequence[str] | None = None,
    *,
    columns: int = 4,
    panel_size: tuple[float, float] = (2.6, 1.3),
) -> Figure:
    """The histograms of ``log_dir`` as TensorBoard's *Histograms* tab draws them in "overlay" mode.

    One small panel per tag (``weights/<name>`` and ``grads/<name>`` side by side), each
    logged step a line of counts over TensorBoard's 30 equal bins (:func:`tensorboard_bins`),
    faint for the first step, strong for the last.

    Args:
        log_dir: one run's folder (the event files directly in it, as TensorBoard reads a run).
        tags: the tags to draw (default: all, in the order they were first written).
        columns: panels per row.
        panel_size: ``(width, height)`` of one panel, in inches.

    Raises:
        FileNotFoundError: ``log_dir`` does not exist or holds no event files.
        ValueError: it holds no histograms, or not one of ``tags``.
    """
    histograms = read_histograms(log_dir)
    folder = Path(log_dir)
    if not histograms:
        runs = sorted({str(path.parent) for path in folder.rglob("*tfevents*")} - {str(folder)})
        hint = f" It has run folders inside: pass one of {runs}." if runs else " Was histograms=False?"
        raise ValueError(f"No histograms in the TensorBoard logs of {folder}.{hint}")
    chosen = list(histograms) if tags is None else list(tags)
    missing = [tag for tag in chosen if tag not in histograms]
    if missing:
        raise ValueError(f"No histograms {missing} in {folder}; it has {list(histograms)}.")

    rows = -(-len(chosen) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(panel_size[0] * columns, panel_size[1] * rows + 0.6),
                                squeeze=False)
    steps = sorted({step for tag in chosen for step, _ in histograms[tag]})
    for ax, tag in zip(axes.flat, chosen):
        _draw_overlay(ax, tag, histograms[tag])
    for ax in axes.flat[len(chosen):]:
        figure.delaxes(ax)  # no empty frames: one axes per tag
    # Margins in inches, not fractions: the figure's height grows with the number of tags.
    # subplots_adjust, not a constrained layout: with 80 panels the latter takes seconds.
    height = figure.get_figheight()
    figure.suptitle(f"{folder}: histograms at steps {steps[0]}..{steps[-1]} (faint: first, strong: last)",
                    fontsize=10, y=1 - 0.15 / height, va="top")
    figure.subplots_adjust(left=0.04, right=0.99, bottom=0.35 / height, top=1 - 0.65 / height,
                           wspace=0.25, hspace=0.75)
    return figure


def read_histograms(log_dir: str | Path) -> dict[str, list[tuple[int, np.ndarray]]]:
    """Every histogram of one run: tag -> ``[(step, buckets (K, 3)), ...]``, sorted by step.

    ``buckets`` rows are ``(left edge, right edge, count)``, as TensorBoard's own conversion
    (``tensorboard.data_compat``) turns the written histograms into them; ``K`` may be 0.
    """
    folder = _checked_log_dir(log_dir)
    # size_guidance 0 keeps every event; the default keeps a random sample of 500 per tag.
    accumulator = EventAccumulator(str(folder), size_guidance={"histograms": 0})
    accumulator.Reload()
    # Sorted by step: event files are read in name order, and the names of files written in
    # the same second end in a counter (...9, ...10) that does not sort as numbers do.
    return {
        tag: sorted(((event.step, _buckets(tag, event.histogram_value)) for event in accumulator.Histograms(tag)),
                    key=lambda step_buckets: step_buckets[0])
        for tag in accumulator.Tags()["histograms"]
    }


def tensorboard_bins(histograms: Sequence[np.ndarray], bin_count: int = BIN_COUNT) -> tuple[np.ndarray, np.ndarray]:
    """One tag's histograms redrawn on ``bin_count`` equal bins over all their range, as TensorBoard does.

    Args:
        histograms: per step, ``(K, 3)`` buckets ``(left, right, count)``, sorted and not overlapping.

    Returns:
        ``centers (bin_count,)`` and ``counts (steps, bin_count)``. A bucket's count is shared
        among the new bins in proportion to their overlap; a zero-width bucket's count goes
        to the bin that holds it (the last bin is closed on the right), as in TensorBoard's
        ``buildNormalizedHistograms`` (webapp/widgets/histogram/histogram_util.ts).
    """
    filled = [h for h in histograms if len(h)]
    if not filled:
        return np.zeros(bin_count), np.zeros((len(histograms), bin_count))
    left = min(float(h[0, 0]) for h in filled)
    right = max(float(h[-1, 1]) for h in filled)
    if left == right:  # every value the same: TensorBoard widens the range so bins have a width
        left, right = left / 1.1 - 1, right * 1.1 + 1
    edges = np.linspace(left, right, bin_count + 1)
    width = (right - left) / bin_count
    counts = np.zeros((len(histograms), bin_count))
    for row, buckets in enumerate(histograms):
        for lo, hi, count in buckets.astype(np.float64):
            if hi > lo:
                overlap = np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0.0, None)
                counts[row] += count * overlap / (hi - lo)
            else:
                counts[row, min(int((lo - left) // width), bin_count - 1)] += count
    return (edges[:-1] + edges[1:]) / 2, counts


def _draw_overlay(ax: plt.Axes, tag: str, events: list[tuple[int, np.ndarray]]) -> None:
    """One line per step on ``ax``, faint (first step) to strong (last): TensorBoard's overlay mode."""
    centers, counts = tensorboard_bins([buckets for _, buckets in events])
    cmap = plt.get_cmap(CMAPS.get(tag.split("/", 1)[0], "Greens"))
    for index, ((step, _), line) in enumerate(zip(events, counts)):
        strength = (index + 1) / len(events)
        ax.plot(centers, line, color=cmap(0.35 + 0.65 * strength), alpha=0.35 + 0.65 * strength,
                linewidth=1.0, label=f"step {step}")
    ax.set_title(tag, fontsize=8)
    ax.tick_params(labelsize=6)
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3))
    ax.xaxis.get_offset_text().set_fontsize(6)
    ax.set_yticks([])  # counts: the shape matters, and TensorBoard's own axis is as faint


def _buckets(tag: str, value: HistogramValue) -> np.ndarray:
    """``(K, 3)`` buckets of one written histogram, through TensorBoard's own conversion."""
    proto = summary_pb2.HistogramProto(
        min=value.min, max=value.max, num=value.num, sum=value.sum, sum_squares=value.sum_squares,
        bucket_limit=value.bucket_limit, bucket=value.bucket,
    )
    migrated = data_compat.migrate_value(summary_pb2.Summary.Value(tag=tag, histo=proto))
    return tensor_util.make_ndarray(migrated.tensor).reshape(-1, 3)


def _checked_log_dir(log_dir: str | Path) -> Path:
    """``log_dir`` as a Path, or a FileNotFoundError naming it if it is missing or holds no event files."""
    folder = Path(log_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"No TensorBoard log folder {str(folder)!r} (from {Path.cwd()}): "
                                f"fit with TensorBoardLogger({str(folder)!r}) first, or check the path.")
    if next(folder.rglob("*tfevents*"), None) is None:
        raise FileNotFoundError(f"The TensorBoard log folder {str(folder)!r} holds no event files: "
                                f"fit with TensorBoardLogger({str(folder)!r}) first.")
    return folder


def _mode_and_reason() -> tuple[Mode, str]:
    """:func:`tensorboard_mode`'s answer, and for ``"static"`` why, for the printed line."""
    if os.environ.get(STATIC_ENV, "").strip().lower() in ("1", "true", "yes"):
        return "static", f"{STATIC_ENV} is set"
    # The widget playgrounds' test for a person at a front end: one rule for the whole course.
    from ldl.widgets.display import front_end_is_interactive  # noqa: PLC0415 - ipywidgets only when asked

    if not front_end_is_interactive():
        return "static", "no notebook front end (a script, or a headless run)"
    if "google.colab" in sys.modules:
        return "colab", ""
    proxy = _importable("jupyter_server_proxy")
    on_binder = any(os.environ.get(name) for name in BINDER_ENV)
    if on_binder or (os.environ.get("JUPYTERHUB_SERVICE_PREFIX") and proxy):
        if not proxy:
            return "static", "on Binder without jupyter-server-proxy, the dashboard cannot be reached"
        return "binder", ""
    return "jupyter", ""


def _importable(name: str) -> bool:
    """Whether ``import name`` would work, without importing it (``sys.modules[name] = None`` blocks it)."""
    if name in sys.modules:
        return sys.modules[name] is not None
    return importlib.util.find_spec(name) is not None


def _display(figure: Figure) -> None:
    """Show ``figure`` once in IPython (and close it, so the inline backend does not show it again)."""
    from IPython import get_ipython  # noqa: PLC0415 - IPython comes with ipywidgets
    from IPython.display import display  # noqa: PLC0415

    if get_ipython() is not None:
        display(figure)
        plt.close(figure)
