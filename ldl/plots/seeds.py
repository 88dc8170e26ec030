"""Runs repeated over seeds: every seed drawn faintly behind the mean, held-out scores with their spread.

>>> comparison = run_grid(configs, loaders.train, loaders.val, epochs=12, seeds=[0, 1, 2],
...                       train_eval_loader=loaders.train_eval, keep_best="top1_acc")
>>> plot_seed_curves(comparison)                  # clean train (dotted) and validation (solid) per epoch
>>> plot_held_out(comparison.score(loaders.test)) # each seed a dot, the mean ± sd a bar

One seed is one draw: the faint lines show how far another draw could land, so a difference
between two runs reads against that spread, not against nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ldl.plots._layout import figure_and_axes
from ldl.plots.curves import _line_style

if TYPE_CHECKING:
    from ldl.train.grid import Comparison
    from ldl.train.held_out import HeldOutScores

KEY_NAMES = {"train_accuracy": "running train", "clean_train_accuracy": "clean train", "top1_acc": "validation",
             "train_loss": "running train loss", "clean_train_loss": "clean train loss", "val_loss": "validation loss"}


def plot_seed_curves(
    comparison: Comparison,
    keys: Sequence[str] = ("clean_train_accuracy", "top1_acc"),
    *,
    names: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Each run's ``keys`` per epoch: every seed a thin faint line, the mean over seeds a bold one.

    Args:
        comparison: from ``run_grid(..., seeds=[...])`` (one seed works too: no faint lines then).
        keys: what to draw; clean training dotted, running training dashed, validation solid.
        names: the runs to draw, in this order; default all.
        ax: draw on this Axes instead of a new figure.
        title: the panel's title.
    """
    names = list(names) if names is not None else list(comparison.histories)
    if not names:
        raise ValueError("plot_seed_curves needs at least one run.")
    fig, ax = figure_and_axes(ax, (8.0, 4.5))
    for i, name in enumerate(names):
        histories = comparison.seed_histories.get(name) or [comparison.histories[name]]
        for key in keys:
            missing = [k for k, h in enumerate(histories) if key not in h.keys()]
            if missing:
                raise KeyError(f"Run {name!r} has no {key!r}; it has {list(histories[0].keys())}.")
            curves = np.array([h[key] for h in histories], dtype=float)  # (seeds, epochs)
            epochs = np.arange(1, curves.shape[1] + 1)
            style, colour = _line_style(key), f"C{i % 10}"
            if len(curves) > 1:
                for curve in curves:
                    ax.plot(epochs, curve, style, color=colour, alpha=0.25, linewidth=0.8)
            ax.plot(epochs, curves.mean(axis=0), style, color=colour, linewidth=2.2,
                    label=f"{name}: {KEY_NAMES.get(key, key)}" + (f" (mean of {len(curves)})" if len(curves) > 1 else ""))
    ax.set(xlabel="epoch", ylabel=keys[0] if len(keys) == 1 else "accuracy",
           title=title or "every seed faint, the mean bold")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_held_out(
    scores: HeldOutScores,
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Held-out accuracy per run: each seed a dot, the mean ± sd a bar, the verdict against the baseline above.

    The baseline's mean is a dashed line across the panel: a run whose bar does not clear it
    by more than the spread is, by the course's rule, not clearly different.
    """
    fig, ax = figure_and_axes(ax, (max(5.0, 1.3 * len(scores.values) + 2), 4.2))
    rows = scores.table()
    positions = np.arange(len(rows))
    ensemble_labelled = False
    for x, row in zip(positions, rows):
        values = np.array(scores.values[row["name"]], dtype=float)
        colour = "tab:gray" if row["name"] == scores.baseline else "tab:blue"
        jitter = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else np.zeros(1)
        ax.scatter(x + jitter, values, color=colour, alpha=0.45, s=22, zorder=2)
        spread = 0.0 if np.isnan(row["sd"]) else row["sd"]
        ax.errorbar([x], [row["mean"]], yerr=[spread], fmt="s", color=colour, capsize=6, markersize=7, zorder=3)
        if "ensemble" in row:
            ax.scatter([x + 0.25], [row["ensemble"]], marker="*", s=90, color="tab:orange", zorder=3,
                       label=None if ensemble_labelled else "ensemble of the seeds")
            ensemble_labelled = True
        ax.annotate(row.get("verdict", "baseline"), (x, max(values.max(), row["mean"] + spread)),
                    textcoords="offset points", xytext=(0, 8), ha="center", fontsize=8)
    baseline_mean, _ = scores.mean_sd(scores.baseline)
    ax.axhline(baseline_mean, color="tab:gray", linestyle="--", linewidth=1, label=f"{scores.baseline} (mean)")
    ax.set_xticks(positions, [row["name"] for row in rows], rotation=20 if len(rows) > 4 else 0)
    ax.set(ylabel=f"{scores.split} accuracy",
           title=title or f"{scores.split} accuracy: {len(scores.seeds)} seeds each, mean ± sd")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, loc="lower right")
    ax.margins(y=0.15)
    return fig
