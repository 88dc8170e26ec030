"""Lesson 3's picture of a deep network's activations: how their spread changes with depth."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

SHOWN_LAYERS = 6  # histogram panels: a subset spread over the depth


def shown_layers(depth: int, count: int = SHOWN_LAYERS) -> list[int]:
    """At most ``count`` layer indices (0-based) spread evenly from the first layer to the last."""
    if depth < 1:
        raise ValueError(f"Need at least one layer's activations; got {depth}.")
    if depth == 1 or count < 2:
        return [depth - 1]
    return sorted({round(i * (depth - 1) / (count - 1)) for i in range(count)})


def plot_activation_spread(
    activations: Sequence[Any],
    *,
    shown: int = SHOWN_LAYERS,
    figsize: tuple[float, float] | None = None,
    bins: int = 40,
) -> Figure:
    """Histograms of a few layers' activations (top) and every layer's activation std on a log axis (bottom).

    Args:
        activations: one array per layer, first layer first, e.g. ``depth`` tensors of shape
            ``(samples, width)`` or flat ``(n,)`` samples (CPU tensors or numpy arrays; any
            shape, they are flattened).
        shown: how many layers get a histogram, spread evenly over the depth.
        figsize: ``(width, height)`` in inches; default ``(2 * panels, 4.4)``.
        bins: histogram bins.

    Returns:
        A :class:`matplotlib.figure.Figure` with ``panels + 1`` axes, built without pyplot
        (``Figure`` + ``FigureCanvasAgg``), so that a widget redrawing it on every slider move
        leaves nothing open in pyplot's figure list. Save it with ``figure.savefig(...)``.
    """
    layers = [np.asarray(h, dtype=np.float64).ravel() for h in activations]
    indices = shown_layers(len(layers), shown)
    stds = [float(values.std(ddof=1)) if values.size > 1 else 0.0 for values in layers]

    figure = Figure(figsize=figsize or (2.0 * len(indices), 4.4), layout="constrained")
    FigureCanvasAgg(figure)  # attaches itself to the figure: savefig works without pyplot
    grid = figure.add_gridspec(2, len(indices))
    for column, index in enumerate(indices):
        ax = figure.add_subplot(grid[0, column])
        ax.hist(layers[index], bins=bins, color="tab:blue")
        ax.set_title(f"layer {index + 1}\nstd {stds[index]:.2g}", fontsize=9)
        ax.set_yticks([])
        ax.tick_params(labelsize=7)
    ax_std = figure.add_subplot(grid[1, :])
    # A log axis: a std that shrinks or grows by a constant factor per layer draws a straight line.
    ax_std.plot(range(1, len(layers) + 1), stds, "o-", markersize=3)
    logarithmic = all(std > 0 for std in stds)  # a dead layer (std 0) has no place on a log axis
    if logarithmic:
        ax_std.set_yscale("log")
    ax_std.set(xlabel="layer", ylabel="activation std (log)" if logarithmic else "activation std")
    ax_std.grid(alpha=0.3, which="both")
    return figure
