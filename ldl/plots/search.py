"""Hyperparameter searches drawn (lesson 7): where the trials went, and how a study progressed.

>>> plot_search_points({"grid": grid, "random": random}, {"grid": grid_scores, "random": random_scores})
>>> plot_trials(trials_table(study))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ldl.plots._layout import figure_and_axes


def plot_search_points(
    points: Mapping[str, Sequence[Mapping[str, float]]],
    scores: Mapping[str, Sequence[float]],
    *,
    x: str = "lr",
    y: str = "weight_decay",
    score_name: str = "validation accuracy",
) -> Figure:
    """One panel per search method: each trial at its ``(x, y)`` on log axes, coloured by its score.

    Faint vertical lines show which values of ``x`` the method tried; a star marks
    its best trial. Every method shares one colour scale, so the panels compare.
    """
    if not points or points.keys() != scores.keys():
        raise ValueError("points and scores need the same, non-empty set of methods, e.g. {'grid': ..., 'random': ...}.")
    values = [score for method in scores for score in scores[method]]
    low, high = min(values), max(values)
    fig, axes = plt.subplots(1, len(points), figsize=(4.6 * len(points), 4.0), layout="constrained", squeeze=False)
    for ax, (method, trials) in zip(axes[0], points.items()):
        method_scores = list(scores[method])
        if len(method_scores) != len(trials):
            raise ValueError(f"{method}: {len(trials)} points but {len(method_scores)} scores.")
        xs, ys = [t[x] for t in trials], [t[y] for t in trials]
        dots = ax.scatter(xs, ys, c=method_scores, cmap="viridis", vmin=low, vmax=high, s=60, edgecolor="k")
        best = max(range(len(trials)), key=method_scores.__getitem__)
        ax.plot(xs[best], ys[best], "*", color="crimson", markersize=16, label=f"best: {method_scores[best]:.3f}")
        for value in set(xs):  # the values of x this method tried
            ax.axvline(value, color="0.85", linewidth=0.8, zorder=0)
        ax.set(xscale="log", yscale="log", xlabel=x, ylabel=y, title=f"{method}: {len(set(xs))} values of {x}")
        ax.legend(fontsize=8, loc="upper right")
    fig.colorbar(dots, ax=axes[0].tolist(), label=score_name)
    return fig


def plot_trials(rows: Sequence[Mapping[str, Any]], *, score_name: str = "validation accuracy",
                title: str | None = None, ax: Axes | None = None) -> Figure:
    """A study's trials in order: each trial's score, pruned ones hollow, and the best so far as a line.

    ``rows``: :func:`ldl.search.trials_table`'s rows (``number``, ``state``, ``value``).
    """
    if not rows:
        raise ValueError("plot_trials needs at least one trial.")
    fig, ax = figure_and_axes(ax, (6.5, 3.8))
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    pruned = [r for r in rows if r["state"] == "PRUNED" and r["value"] is not None]
    ax.plot([r["number"] for r in complete], [r["value"] for r in complete], "o", color="C0", label="finished")
    if pruned:
        ax.plot([r["number"] for r in pruned], [r["value"] for r in pruned], "o", markerfacecolor="none", color="C3",
                label="pruned (score when stopped)")
    best, best_so_far, numbers = float("-inf"), [], []
    for row in sorted(complete, key=lambda r: r["number"]):
        best = max(best, row["value"])
        best_so_far.append(best)
        numbers.append(row["number"])
    if numbers:
        ax.step(numbers, best_so_far, where="post", color="C0", alpha=0.6, label="best so far")
    ax.set(xlabel="trial", ylabel=score_name, title=title or "")
    ax.legend(fontsize=8)
    return fig
