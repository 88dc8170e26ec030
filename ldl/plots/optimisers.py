"""Optimisers' paths across a 2-D loss surface, drawn over its contour lines (lesson 7).

>>> paths = {"SGD": trace_path(...), "momentum": trace_path(...)}
>>> plot_paths(ravine, paths, extent=(-4.5, 1.0, -1.2, 1.2))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ldl.plots._layout import figure_and_axes


def plot_paths(
    surface: Callable[[torch.Tensor], torch.Tensor],
    paths: Mapping[str, torch.Tensor],
    *,
    extent: tuple[float, float, float, float],
    levels: int = 30,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Contours of ``surface`` over ``extent = (x_min, x_max, y_min, y_max)``, each ``(steps + 1, 2)`` path on top.

    A path starts at a hollow circle and ends at a filled dot; its line shows every step,
    so zig-zags across a ravine and crawls near a saddle are visible.
    """
    if not paths:
        raise ValueError("plot_paths needs at least one path, e.g. {'SGD': trace_path(...)}.")
    for name, path in paths.items():
        if path.ndim != 2 or path.shape[1] != 2:
            raise ValueError(f"Path {name!r} must be (steps + 1, 2) points; got shape {tuple(path.shape)}.")
    x_min, x_max, y_min, y_max = extent
    xs, ys = torch.meshgrid(torch.linspace(x_min, x_max, 200), torch.linspace(y_min, y_max, 200), indexing="xy")
    heights = surface(torch.stack([xs, ys], dim=-1)).numpy()  # (200, 200)
    fig, ax = figure_and_axes(ax, (7.0, 4.5))
    ax.contour(xs.numpy(), ys.numpy(), heights, levels=levels, cmap="Greys", linewidths=0.6)
    for i, (name, path) in enumerate(paths.items()):
        points = np.asarray(path.detach().cpu(), dtype=float)
        color = f"C{i % 10}"
        ax.plot(points[:, 0], points[:, 1], "-", color=color, linewidth=1.2, label=name)
        ax.plot(points[0, 0], points[0, 1], "o", markerfacecolor="none", color=color)
        ax.plot(points[-1, 0], points[-1, 1], "o", color=color)
    ax.set(xlim=(x_min, x_max), ylim=(y_min, y_max), xlabel="x", ylabel="y", title=title or "")
    ax.legend(fontsize=8)
    return fig
