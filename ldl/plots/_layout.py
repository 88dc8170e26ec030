"""Where a plot draws: on the Axes it was given, or on a new figure of its own."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def figure_and_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """Draw on ``ax`` if given (so several plots can share one figure), else on a new figure with one Axes."""
    if ax is not None:
        return ax.get_figure(), ax
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax
