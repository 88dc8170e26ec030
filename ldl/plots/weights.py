"""What is inside a network: weight magnitudes, batch-norm statistics, per-layer activations and gradients.

The per-layer plots take lists of per-layer dicts, first layer first, as ``ldl.nn.init.layer_statistics``
returns: ``{"name": str, "activations": tensor, "gradients": tensor, "activation_std": float,
"grad_norm": float, ...}``. Every function draws with pyplot and returns the Figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ldl.plots._layout import figure_and_axes

if TYPE_CHECKING:
    from ldl.train.callbacks import BatchNormStats


def plot_weight_histograms(
    models: Mapping[str, torch.nn.Module],
    *,
    bins: int = 60,
    near_zero: float = 1e-3,
    panel_size: tuple[float, float] = (4.0, 3.2),
) -> Figure:
    """Histograms of ``|w|`` over the conv and linear weights of each model, log-scale counts.

    With SGD, an L1 penalty piles many weights up at zero (a spike in the first bin) while
    L2 makes them small but rarely zero. (With Adam, whose steps have about the same size
    whatever the gradient, an L2 penalty piles weights up at zero too: see
    ``ldl.train.PenalizedLoss``.) Each panel's title gives the share of weights below
    ``near_zero``. The bins are the same for every model, so the panels compare directly.
    """
    if not models:
        raise ValueError("plot_weight_histograms needs at least one model, e.g. {'L1': model}.")
    magnitudes = {}
    for name, model in models.items():
        # Matrices and filter banks (conv, linear) have 2+ dimensions; norm layers' scales have 1.
        # Deciding by shape keeps this free of the training code (``ldl.train.regularizers``).
        weights = [module.weight.detach().abs().flatten().float().cpu() for module in model.modules()
                   if isinstance(getattr(module, "weight", None), torch.Tensor) and module.weight.ndim >= 2]
        if not weights:
            raise ValueError(f"Model {name!r} has no convolution or linear layer: no weights to show.")
        magnitudes[name] = torch.cat(weights).numpy()
    top = max(float(values.max()) for values in magnitudes.values()) or 1.0
    edges = np.linspace(0.0, top, bins + 1)
    fig, axes = plt.subplots(1, len(models), figsize=(panel_size[0] * len(models), panel_size[1]),
                             sharex=True, sharey=True, squeeze=False, layout="constrained")
    axes = axes[0]
    for i, (ax, (name, values)) in enumerate(zip(axes, magnitudes.items())):
        ax.hist(values, bins=edges, color=f"C{i % 10}")
        ax.set_yscale("log")
        share = float((values < near_zero).mean())
        ax.set_title(f"{name}\n{share:.0%} of |w| < {near_zero:g}", fontsize=10)
        ax.set_xlabel("|weight|")
    axes[0].set_ylabel("number of weights (log)")
    return fig


def plot_batchnorm_stats(
    records: BatchNormStats | Sequence[Mapping[str, torch.Tensor | int]],
    channels: Sequence[int] | None = None,
) -> Figure:
    """Running mean and variance of a few channels against the training step (BatchNormStats).

    Solid lines: the running averages the layer will use in eval mode. Dots: each batch's
    own statistics, which they follow with a lag set by ``momentum``.

    Args:
        records: a :class:`ldl.train.BatchNormStats` after a fit, or its ``records``.
        channels: the channel numbers, for the legend (default: those the callback recorded).
    """
    if hasattr(records, "records"):
        channels = channels if channels is not None else records.channels
        records = records.records
    if not records:
        raise ValueError("No records: attach BatchNormStats to a Trainer and fit first.")
    steps = np.array([record["step"] for record in records])
    num_channels = len(records[0]["running_mean"])
    channels = list(channels) if channels is not None else list(range(num_channels))
    fig, (ax_mean, ax_var) = plt.subplots(1, 2, figsize=(11, 3.8), sharex=True, layout="constrained")
    for ax, stat in ((ax_mean, "mean"), (ax_var, "var")):
        running = torch.stack([record[f"running_{stat}"] for record in records]).numpy()  # (steps, k)
        batch = torch.stack([record[f"batch_{stat}"] for record in records]).numpy()  # (steps, k), nan at step 0
        for j in range(num_channels):
            ax.plot(steps, running[:, j], "-", color=f"C{j % 10}", label=f"channel {channels[j]}")
            ax.plot(steps, batch[:, j], ".", color=f"C{j % 10}", alpha=0.3, markersize=4)
        ax.set(xlabel="training step (batch)", title=f"running {stat} (line) vs batch {stat} (dots)")
        ax.grid(alpha=0.3)
    ax_mean.legend(fontsize=8)
    return fig


def _spread_indices(count: int, wanted: int) -> list[int]:
    """``wanted`` indices out of ``range(count)``, spread evenly from the first to the last."""
    if count <= wanted:
        return list(range(count))
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, wanted)})


def _check_layer_stats(stats_by_column: Mapping[str, Sequence[Mapping[str, object]]], key: str, what: str) -> int:
    """The number of layers, the same in every column; clear errors for empty input or a missing key."""
    if not stats_by_column:
        raise ValueError(f"{what} needs at least one entry, e.g. {{'xavier': layer_statistics(model, x, y)}}.")
    counts = {name: len(stats) for name, stats in stats_by_column.items()}
    if 0 in counts.values() or len(set(counts.values())) != 1:
        raise ValueError(f"Every entry needs the same, non-zero number of layers; got {counts}.")
    for name, stats in stats_by_column.items():
        if key not in stats[0]:
            raise KeyError(f"The layer statistics of {name!r} have no {key!r}; they have {sorted(stats[0])}.")
    return next(iter(counts.values()))


def plot_layer_histograms(
    stats_by_column: Mapping[str, Sequence[Mapping[str, object]]],
    key: str = "activations",
    max_layers: int = 6,
    *,
    bins: int = 50,
    panel_size: tuple[float, float] = (2.6, 1.5),
) -> Figure:
    """Small multiples: a histogram of each layer's ``key`` tensor, layers as rows, one column per entry.

    E.g. ``plot_layer_histograms({"N(0, 1)": stats_a, "Xavier": stats_b})``: does the spread of
    the activations stay the same from the first layer to the last, or collapse to zero, or
    pile up at the saturated ends of tanh? Columns may also be epochs of one model.

    Args:
        stats_by_column: column title -> per-layer dicts (first layer first), each holding
            ``key`` as a tensor of any shape, e.g. activations ``(B, width)``.
        key: ``"activations"`` or ``"gradients"``.
        max_layers: with more layers than this, rows show a subset spread over the depth.

    The x axis is shared down each column, so a shrinking spread is seen as a narrowing
    histogram; each panel's title gives the tensor's standard deviation.
    """
    count = _check_layer_stats(stats_by_column, key, "plot_layer_histograms")
    rows = _spread_indices(count, max_layers)
    columns = list(stats_by_column.items())
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(panel_size[0] * len(columns), panel_size[1] * len(rows)),
                             sharex="col", squeeze=False, layout="constrained")
    for j, (column_title, stats) in enumerate(columns):
        axes[0, j].set_title(column_title, fontsize=11, fontweight="bold")
        for i, layer_index in enumerate(rows):
            layer = stats[layer_index]
            values = torch.as_tensor(layer[key]).detach().float().flatten().cpu().numpy()
            ax = axes[i, j]
            ax.hist(values, bins=bins, color=f"C{j % 10}")
            ax.set_yticks([])
            name = layer.get("name", f"layer {layer_index + 1}")
            ax.text(0.02, 0.95, f"{layer_index + 1}: {name}\nstd {values.std():.2g}", transform=ax.transAxes,
                    fontsize=7, va="top")
        axes[-1, j].set_xlabel(key)
    return fig


def plot_gradient_norms_by_depth(
    stats_by_scheme: Mapping[str, Sequence[Mapping[str, object]]],
    key: str = "grad_norm",
    *,
    ax: Axes | None = None,
    log_scale: bool = True,
) -> Figure:
    """One curve per scheme: ``key`` (a number per layer) against the layer index, log y axis.

    Vanishing gradients fall to the right (the first layers learn slowly); exploding ones
    rise. A well-initialised network keeps a flat curve. ``key="activation_std"`` draws the
    spread of the activations the same way; ``key="dead_units", log_scale=False`` the
    fraction of dead ReLU units (pass the hidden layers only: the logits have no ReLU).
    """
    count = _check_layer_stats(stats_by_scheme, key, "plot_gradient_norms_by_depth")
    fig, ax = figure_and_axes(ax, (7, 4.2))
    depth = np.arange(1, count + 1)
    for i, (name, stats) in enumerate(stats_by_scheme.items()):
        values = [float(layer[key]) for layer in stats]
        ax.plot(depth, values, "o-", color=f"C{i % 10}", markersize=3, label=name)
    if log_scale:
        ax.set_yscale("log")
    ax.set(xlabel="layer (1 = next to the input)", ylabel=key, title=f"{key} by depth")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def plot_clipping(
    before: Mapping[str, Sequence[float]],
    after: Mapping[str, Sequence[float]],
    clip_norm: float | None = None,
    *,
    ax: Axes | None = None,
) -> Figure:
    """Total gradient norm per step, before and after clipping, on a log axis: what was cut.

    Args:
        before: run name -> the norm of each step's gradient as backward() computed it.
        after: run name -> the norm of the gradient the optimizer actually used.
        clip_norm: drawn as a horizontal line, if clipping by norm.
    """
    fig, ax = figure_and_axes(ax, (8, 4))
    for (name, norms), color in zip(before.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        ax.plot(range(1, len(norms) + 1), norms, color=color, alpha=0.5, label=f"{name}: before clipping")
        ax.plot(range(1, len(after[name]) + 1), after[name], color=color, linestyle="--",
                label=f"{name}: step taken")
    if clip_norm is not None:
        ax.axhline(clip_norm, color="black", linewidth=1, label=f"clip norm {clip_norm:g}")
    ax.set(yscale="log", xlabel="training step", ylabel="total gradient norm", title="What clipping cuts")
    ax.legend(fontsize=8)
    return fig
