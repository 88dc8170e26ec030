"""Comparing runs and networks: final accuracies side by side, a grid of runs, accuracy against speed.

Every function draws with pyplot and returns the Figure; the one-panel ones take ``ax=``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ldl.plots._layout import figure_and_axes
from ldl.plots.curves import plot_runs

if TYPE_CHECKING:
    from ldl.train.grid import Comparison


def plot_final_accuracy(
    comparison_or_rows: Comparison | Sequence[Mapping[str, object]],
    *,
    ax: Axes | None = None,
    title: str = "Final accuracy: the gap is overfitting",
) -> Figure:
    """Bars of final train and validation accuracy per run, the gap written above each pair.

    The training bar is the clean training accuracy when every row has one
    (``run_grid(..., train_eval_loader=...)``), else the running one, and the legend says
    which: the running accuracy is lowered by dropout, MixUp and augmentation by construction.
    With several seeds the bars are means, with the sd as an error bar.

    Args:
        comparison_or_rows: a :class:`ldl.train.Comparison`, or rows like its ``table()``:
            dicts with ``name``, ``train_accuracy`` and ``top1_acc`` (optionally
            ``clean_train_accuracy`` and ``<key>_sd``).
    """
    rows = comparison_or_rows.table() if hasattr(comparison_or_rows, "table") else list(comparison_or_rows)
    if not rows:
        raise ValueError("plot_final_accuracy needs at least one run.")
    fig, ax = figure_and_axes(ax, (max(5.0, 1.3 * len(rows) + 2), 4))
    positions = np.arange(len(rows))
    width = 0.38
    clean = all("clean_train_accuracy" in row for row in rows)
    train_key = "clean_train_accuracy" if clean else "train_accuracy"
    train = np.array([row[train_key] for row in rows])
    val = np.array([row["top1_acc"] for row in rows])
    train_sd = np.array([row.get(f"{train_key}_sd", 0.0) for row in rows], dtype=float)
    val_sd = np.array([row.get("top1_acc_sd", 0.0) for row in rows], dtype=float)
    ax.bar(positions - width / 2, train, width, yerr=np.nan_to_num(train_sd), capsize=3,
           label="clean train" if clean else "running train (augmented, dropout on)", color="tab:blue", alpha=0.6)
    ax.bar(positions + width / 2, val, width, yerr=np.nan_to_num(val_sd), capsize=3, label="validation",
           color="tab:orange")
    for x, t, v in zip(positions, train, val):
        ax.text(x, max(t, v) + 0.04, f"{'clean ' if clean else ''}gap {t - v:+.2f}", ha="center", va="bottom",
                fontsize=9, color="tab:red")
    ax.set_xticks(positions, [str(row["name"]) for row in rows], rotation=20 if len(rows) > 4 else 0)
    ax.set(ylabel="accuracy", ylim=(0, 1.12), title=title)
    ax.legend(loc="lower right")
    return fig


def plot_comparison(comparison: Comparison, key: str = "top1_acc") -> Figure:
    """A grid's validation curves overlaid (top) and final train/val accuracy as bars (bottom)."""
    fig, (ax_curves, ax_bars) = plt.subplots(2, 1, figsize=(9, 7.5), layout="constrained")
    plot_runs(comparison.histories, keys=(key,), ax=ax_curves, title=f"{key} per epoch")
    plot_final_accuracy(comparison, ax=ax_bars)
    return fig


def plot_accuracy_vs_speed(
    rows: Sequence[Mapping[str, object]],
    *,
    title: str = "ImageNet top-1 vs measured speed",
    ax: Axes | None = None,
) -> Figure:
    """The slides' "accuracy vs speed" chart, from published accuracy and your own measurements.

    Args:
        rows: one mapping per network with ``name``, ``top1`` (ImageNet top-1, %),
            ``images_per_s`` (measured) and ``params`` (count; sets the marker's area);
            optionally ``images_per_s_iqr``, the ``(first, third)`` quartiles of the images/s
            over the timed rounds, drawn as a horizontal bar.
    """
    if not rows:
        raise ValueError("rows is empty: measure at least one network.")
    fig, ax = figure_and_axes(ax, (6.5, 4))
    speeds = np.array([float(row["images_per_s"]) for row in rows])
    accuracies = np.array([float(row["top1"]) for row in rows])
    params = np.array([float(row["params"]) for row in rows])
    ax.scatter(speeds, accuracies, s=20 + 400 * params / params.max(), alpha=0.6, color="C0", edgecolor="k")
    for row, x, y in zip(rows, speeds, accuracies):
        if "images_per_s_iqr" in row:
            low, high = (float(v) for v in row["images_per_s_iqr"])
            ax.errorbar([x], [y], xerr=[[x - low], [high - x]], fmt="none", ecolor="k", alpha=0.6, capsize=3)
    for row, x, y in zip(rows, speeds, accuracies):
        ax.annotate(str(row["name"]), (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set(xlabel="images/s on this device (log scale; right is faster)", ylabel="ImageNet top-1 (%)", title=title)
    ax.grid(alpha=0.3, which="both")
    return fig
