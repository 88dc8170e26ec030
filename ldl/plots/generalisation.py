"""Lesson 6's figures: a held-out score's spread, the optimism of choosing, sweeps with error bands.

>>> plot_estimate_spread(estimate_spread(correct, [10, 30, 100, 300]))   # sd against 1/sqrt(n)
>>> plot_selection(val_scores, test_scores, selection_bias(val_scores, test_scores))
>>> plot_sweep([1, 8, 64], {"validation loss": (means, sds)}, xlabel="hidden units")
>>> plot_double_descent({"clean labels": curve, "20% flipped": noisy_curve})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ldl.plots._layout import figure_and_axes

if TYPE_CHECKING:
    from ldl.generalisation.double_descent import DoubleDescentCurve
    from ldl.generalisation.estimates import Selection


def plot_estimate_spread(rows: Sequence[Mapping[str, float]], *, ax: Axes | None = None) -> Figure:
    """The measured sd of a held-out accuracy (dots) against the binomial prediction (line), log-log.

    ``rows`` from :func:`ldl.generalisation.estimate_spread`. Sizes whose predicted sd is 0
    (the whole pool) have no place on a log axis and are left out.
    """
    rows = [row for row in rows if row["predicted_sd"] > 0 and row["sd"] > 0]
    if not rows:
        raise ValueError("plot_estimate_spread needs rows with a non-zero spread: sizes smaller than the pool.")
    fig, ax = figure_and_axes(ax, (6.0, 4.0))
    sizes = [row["size"] for row in rows]
    ax.plot(sizes, [row["predicted_sd"] for row in rows], "-", color="0.4", label="predicted: sqrt(p(1-p)/n)")
    ax.plot(sizes, [row["sd"] for row in rows], "o", color="C0", label="measured over random held-out sets")
    ax.set(xscale="log", yscale="log", xlabel="held-out photos n", ylabel="sd of the held-out accuracy",
           title="A held-out score is an estimate")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def plot_selection(
    val_scores: Sequence[float], test_scores: Sequence[float], selection: Selection, *, ax: Axes | None = None
) -> Figure:
    """Each candidate's validation score against its test score; the one validation chose is starred.

    Points on the diagonal score alike on both; the chosen one sits to the right of its test
    score by its optimism (``selection.optimism``).
    """
    if len(val_scores) != len(test_scores) or not val_scores:
        raise ValueError(f"Need one validation and one test score per candidate; got {len(val_scores)} "
                         f"and {len(test_scores)}.")
    fig, ax = figure_and_axes(ax, (5.0, 4.5))
    ax.scatter(val_scores, test_scores, s=18, color="C0", alpha=0.6, label="candidates")
    ax.scatter([selection.chosen_val], [selection.chosen_test], s=160, marker="*", color="C3", zorder=3,
               label=f"chosen on validation (optimism {selection.optimism:+.3f})")
    low = min(min(val_scores), min(test_scores))
    high = max(max(val_scores), max(test_scores))
    ax.plot([low, high], [low, high], ":", color="0.5", label="validation = test")
    ax.set(xlabel="validation accuracy", ylabel="test accuracy", title="The winner's curse")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _draw_band(ax: Axes, x: Sequence[float], means: Sequence[float], sds: Sequence[float], *, color: str,
               label: str, log_y: bool) -> None:
    """One series: its means as a line with dots, mean ± sd as a shaded band."""
    xs, mean, sd = (np.asarray(values, dtype=float) for values in (x, means, sds))
    ax.plot(xs, mean, "o-", color=color, markersize=3, label=label)
    lower = mean - sd
    if log_y:  # a band reaching 0 or below has no place on a log axis
        lower = np.where(lower > 0, lower, mean / 10)
    ax.fill_between(xs, lower, mean + sd, color=color, alpha=0.2, linewidth=0)


def _finish(ax: Axes, *, xlabel: str, ylabel: str, log_x: bool, log_y: bool, title: str) -> None:
    if log_x:
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)


def plot_sweep(
    x: Sequence[float],
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str,
    ylabel: str = "",
    log_x: bool = True,
    log_y: bool = False,
    threshold: float | None = None,
    threshold_label: str = "threshold",
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Curves of a quantity against a knob: each series its mean over seeds, with a ± sd band.

    Args:
        x: the knob's values (e.g. hidden units, training photos, epochs).
        series: name -> (means, sds), each as long as ``x``.
        threshold: draw a vertical line there (e.g. the interpolation threshold).
    """
    if not series:
        raise ValueError("plot_sweep needs at least one series, e.g. {'validation loss': (means, sds)}.")
    for name, (means, sds) in series.items():
        if len(means) != len(x) or len(sds) != len(x):
            raise ValueError(f"Series {name!r} has {len(means)} means and {len(sds)} sds for {len(x)} values of x.")
    fig, ax = figure_and_axes(ax, (7.0, 4.2))
    for i, (name, (means, sds)) in enumerate(series.items()):
        _draw_band(ax, x, means, sds, color=f"C{i % 10}", label=name, log_y=log_y)
    if threshold is not None:
        ax.axvline(threshold, color="0.3", linestyle="--", linewidth=1, label=threshold_label)
    _finish(ax, xlabel=xlabel, ylabel=ylabel, log_x=log_x, log_y=log_y, title=title or "")
    return fig


def plot_double_descent(
    curves: Mapping[str, DoubleDescentCurve], key: str = "test_error", *, ax: Axes | None = None, log_y: bool = False
) -> Figure:
    """Each curve's ``key`` (mean ± sd over seeds) against its numbers of random features.

    Each curve's interpolation threshold (as many features as its training photos) is marked
    by a dashed line of its colour. ``key="test_loss"`` with ``log_y=True`` shows how tall the
    peak really is.
    """
    if not curves:
        raise ValueError("plot_double_descent needs at least one curve from ldl.generalisation.double_descent.")
    names = {"test_error": "test error", "test_loss": "test squared error",
             "train_error": "training error", "train_loss": "training squared error"}
    fig, ax = figure_and_axes(ax, (7.0, 4.2))
    marked: set[int] = set()
    for i, (name, curve) in enumerate(curves.items()):
        color = f"C{i % 10}"
        _draw_band(ax, curve.feature_counts, curve.mean(key), curve.sd(key), color=color, label=name, log_y=log_y)
        if curve.threshold not in marked:
            marked.add(curve.threshold)
            ax.axvline(curve.threshold, color=color, linestyle="--", linewidth=1,
                       label=f"threshold: {curve.threshold} training photos")
    _finish(ax, xlabel="random features (parameters of the fitted layer, per class)", ylabel=names.get(key, key),
            log_x=True, log_y=log_y, title="Double descent")
    return fig
