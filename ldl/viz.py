"""Plots the notebooks show. Every function returns the matplotlib Figure it drew."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from ldl.train.history import History

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def denormalize(
    x: torch.Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """Undo ``Normalize(mean, std)`` so images can be shown.

    (B, 3, H, W) or (3, H, W) float -> the same shape, clipped to [0, 1].
    """
    mean_t = torch.tensor(mean, device=x.device).view(-1, 1, 1)
    std_t = torch.tensor(std, device=x.device).view(-1, 1, 1)
    return (x * std_t + mean_t).clamp(0, 1)


def _as_hwc(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] or uint8 -> (H, W, 3) float NumPy array, for imshow."""
    image = image.detach().cpu()
    if image.dtype == torch.uint8:
        image = image.float() / 255
    return image.permute(1, 2, 0).clamp(0, 1).numpy()


def show_batch(
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    classes: Sequence[str] | None = None,
    *,
    normalized: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    max_images: int = 16,
    ncols: int = 8,
    title: str | None = None,
) -> Figure:
    """Show a batch as a grid, each image titled with its class name.

    Args:
        images: (B, 3, H, W) float (normalised when ``normalized``) or uint8.
        labels: (B,) class indices, optional.
        classes: names for the class indices.
    """
    images = images[:max_images]
    if normalized and images.dtype != torch.uint8:
        images = denormalize(images, mean, std)
    titles = None
    if labels is not None:
        titles = [classes[int(label)] if classes else str(int(label)) for label in labels[: len(images)]]
    return _image_grid(images, titles, ncols=ncols, panel=(1.6, 1.8), fontsize=9, title=title)


def _image_grid(
    images: torch.Tensor,
    titles: Sequence[str] | None,
    *,
    ncols: int,
    panel: tuple[float, float],
    fontsize: int,
    title: str | None,
) -> Figure:
    """Images (B, 3, H, W) in [0, 1] or uint8 on a grid of ``ncols`` columns, each with its title."""
    count = len(images)
    ncols = min(ncols, count)
    nrows = -(-count // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel[0] * ncols, panel[1] * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= count:
            continue
        ax.imshow(_as_hwc(images[i]))
        if titles is not None:
            ax.set_title(titles[i], fontsize=fontsize)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_overfitting(history: "History", title: str = "Learning curves") -> Figure:
    """Loss and accuracy per epoch, train vs validation, with the accuracy gap shaded.

    The shaded band is what the lesson is about: the network keeps improving on the photos
    it has memorised while it stops improving (or gets worse) on photos it has not seen.
    """
    epochs = history["epoch"]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot(epochs, history["train_loss"], "o-", label="train")
    ax_loss.plot(epochs, history["val_loss"], "o-", label="validation")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax_loss.legend()

    _plot_accuracy_gap(ax_acc, history, "Accuracy")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _plot_accuracy_gap(ax: plt.Axes, history: "History", title: str) -> None:
    """Train and validation accuracy on ``ax``, the gap between them shaded and its final value written."""
    epochs = history["epoch"]
    train_acc, val_acc = history["train_accuracy"], history["top1_acc"]
    ax.plot(epochs, train_acc, "o-", label="train")
    ax.plot(epochs, val_acc, "o-", label="validation")
    ax.fill_between(epochs, val_acc, train_acc, where=[t >= v for t, v in zip(train_acc, val_acc)],
                    alpha=0.2, color="tab:red", label="gap (overfitting)")
    gap = train_acc[-1] - val_acc[-1]
    ax.annotate(f"gap {gap:.2f}", xy=(epochs[-1], (train_acc[-1] + val_acc[-1]) / 2),
                xytext=(-60, 0), textcoords="offset points", color="tab:red")
    ax.set(xlabel="epoch", ylabel="accuracy", title=title, ylim=(0, 1.02))
    ax.legend(loc="lower right")


def compare_gaps(histories: Mapping[str, "History"], title: str | None = None) -> Figure:
    """One accuracy panel per run, side by side on the same axes, each with its gap shaded.

    E.g. ``compare_gaps({"without augmentation": h1, "with augmentation": h2})``.
    """
    fig, axes = plt.subplots(1, len(histories), figsize=(5.5 * len(histories), 4), sharey=True, squeeze=False)
    for ax, (name, history) in zip(axes.flat, histories.items()):
        _plot_accuracy_gap(ax, history, name)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def compare_histories(histories: Mapping[str, "History"], key: str = "top1_acc") -> Figure:
    """Overlay one metric of several runs (e.g. ``{"hand-written": h1, "Trainer": h2}``)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, history in histories.items():
        ax.plot(history["epoch"], history[key], "o-", label=name)
    ax.set(xlabel="epoch", ylabel=key)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_whitening(
    images: torch.Tensor,
    zca: "ldl.augment.statistics.ZCAWhitening",
    epsilons: Sequence[float] = (1e-4, 1e-2, 1e-1),
    *,
    max_images: int = 6,
    panel_size: float = 1.6,
) -> Figure:
    """Originals (top row) and their ZCA-whitened versions, one row per ``epsilon``.

    Args:
        images: ``(n, C, H, W)`` float in ``[0, 1]``, at the size ``zca`` was fitted on.
        zca: a fitted :class:`ldl.augment.ZCAWhitening`; each row uses
            ``zca.with_epsilon(epsilon)``, so no refit is needed.

    Whitened values have no fixed range, so each whitened image is shown with 0 as mid-gray
    and its largest absolute value as black or white: what matters is where the edges are.
    """
    images = images[:max_images].detach().cpu()
    count = len(images)
    nrows = 1 + len(epsilons)
    fig, axes = plt.subplots(nrows, count, figsize=(panel_size * count, panel_size * nrows), squeeze=False)
    for j in range(count):
        axes[0, j].imshow(_as_hwc(images[j]))
    axes[0, 0].set_title("original", fontsize=9, loc="left")
    for row, epsilon in enumerate(epsilons, start=1):
        white = zca.with_epsilon(epsilon).transform(images.float())  # (n, C, H, W)
        peak = white.abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
        shown = white / (2 * peak) + 0.5  # 0 -> gray, +-peak -> white/black
        for j in range(count):
            axes[row, j].imshow(_as_hwc(shown[j]))
        axes[row, 0].set_title(f"whitened, epsilon={epsilon:g}", fontsize=9, loc="left")
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    return fig


def show_mixed_batch(
    images: torch.Tensor,
    soft_labels: torch.Tensor,
    classes: Sequence[str],
    *,
    normalized: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    max_images: int = 16,
    ncols: int = 8,
    min_weight: float = 0.005,
    title: str | None = None,
) -> Figure:
    """A mixed batch (MixUp, CutMix, Mosaic), each image titled by its soft label.

    Titles read like ``cats 0.63 / dogs 0.37``: the classes with a weight of at least
    ``min_weight``, largest first.

    Args:
        images: ``(B, 3, H, W)`` float (normalised when ``normalized``) or uint8.
        soft_labels: ``(B, K)`` float, rows summing to 1.
        classes: the ``K`` class names.
    """
    if soft_labels.ndim != 2 or soft_labels.shape[1] != len(classes):
        raise ValueError(
            f"soft_labels must be (B, {len(classes)}), one weight per class name, got {tuple(soft_labels.shape)}."
        )
    images = images[:max_images].detach().cpu()
    soft_labels = soft_labels[:max_images].detach().cpu().float()
    if normalized and images.dtype != torch.uint8:
        images = denormalize(images, mean, std)
    titles = []
    for weights in soft_labels:
        weights, order = weights.sort(descending=True)
        parts = [f"{classes[int(k)]} {float(w):.2f}" for w, k in zip(weights, order) if float(w) >= min_weight]
        titles.append(" / ".join(parts))
    return _image_grid(images, titles, ncols=ncols, panel=(1.9, 2.0), fontsize=8, title=title)


# ---------------------------------------------------------------- lesson 2: comparing regularisers
# Like the plots above, these draw with pyplot: in a notebook, end the cell with plt.show().
# The two-panel ones also take ``ax=`` so that plot_comparison can stack them in one figure.

if TYPE_CHECKING:
    from ldl.train.callbacks import BatchNormStats
    from ldl.train.grid import Comparison


def _figure_and_axes(ax: "plt.Axes | None", figsize: tuple[float, float]) -> tuple[Figure, "plt.Axes"]:
    """Draw on ``ax`` if given, else on a new figure with one Axes."""
    if ax is not None:
        return ax.get_figure(), ax
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def plot_runs(
    histories: Mapping[str, "History"],
    keys: Sequence[str] = ("train_accuracy", "top1_acc"),
    *,
    ax: "plt.Axes | None" = None,
    title: str | None = None,
) -> Figure:
    """Overlay the curves of several runs: one colour per run, training dashed, validation solid.

    Lines are labelled ``"run: key"``, or just ``"run"`` when there is a single key.

    E.g. ``plot_runs(comparison.histories)`` or ``plot_runs({"L1": h1, "L2": h2}, keys=("val_loss",))``.
    """
    if not histories:
        raise ValueError("plot_runs needs at least one History, e.g. {'baseline': history}.")
    fig, ax = _figure_and_axes(ax, (7, 4.5))
    for i, (name, history) in enumerate(histories.items()):
        colour = f"C{i % 10}"  # the same colour for every curve of one run
        for key in keys:
            style = "--" if key.startswith("train") else "-"
            label = name if len(keys) == 1 else f"{name}: {key}"
            ax.plot(history["epoch"], history[key], style, color=colour, marker="o", markersize=3, label=label)
    ax.set(xlabel="epoch", ylabel=keys[0] if len(keys) == 1 else "value",
           title=title or "dashed: training data, solid: validation")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_final_accuracy(
    comparison_or_rows: "Comparison | Sequence[Mapping[str, object]]",
    *,
    ax: "plt.Axes | None" = None,
    title: str = "Final accuracy: the gap is overfitting",
) -> Figure:
    """Bars of final train and validation accuracy per run, the gap written above each pair.

    Args:
        comparison_or_rows: a :class:`ldl.train.Comparison`, or rows like its ``table()``:
            dicts with ``name``, ``train_accuracy`` and ``top1_acc``.
    """
    rows = comparison_or_rows.table() if hasattr(comparison_or_rows, "table") else list(comparison_or_rows)
    if not rows:
        raise ValueError("plot_final_accuracy needs at least one run.")
    fig, ax = _figure_and_axes(ax, (max(5.0, 1.3 * len(rows) + 2), 4))
    positions = np.arange(len(rows))
    width = 0.38
    train = np.array([row["train_accuracy"] for row in rows])
    val = np.array([row["top1_acc"] for row in rows])
    ax.bar(positions - width / 2, train, width, label="train", color="tab:blue", alpha=0.6)
    ax.bar(positions + width / 2, val, width, label="validation", color="tab:orange")
    for x, t, v in zip(positions, train, val):
        ax.text(x, max(t, v) + 0.02, f"gap {t - v:+.2f}", ha="center", va="bottom", fontsize=9, color="tab:red")
    ax.set_xticks(positions, [str(row["name"]) for row in rows], rotation=20 if len(rows) > 4 else 0)
    ax.set(ylabel="accuracy", ylim=(0, 1.12), title=title)
    ax.legend(loc="lower right")
    return fig


def plot_comparison(comparison: "Comparison", key: str = "top1_acc") -> Figure:
    """A grid's validation curves overlaid (top) and final train/val accuracy as bars (bottom)."""
    fig, (ax_curves, ax_bars) = plt.subplots(2, 1, figsize=(9, 7.5), layout="constrained")
    plot_runs(comparison.histories, keys=(key,), ax=ax_curves, title=f"{key} per epoch")
    plot_final_accuracy(comparison, ax=ax_bars)
    return fig


def plot_weight_histograms(
    models: Mapping[str, "torch.nn.Module"],
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
    from ldl.train.regularizers import WEIGHT_LAYERS  # here: viz otherwise needs nothing from training

    if not models:
        raise ValueError("plot_weight_histograms needs at least one model, e.g. {'L1': model}.")
    magnitudes = {}
    for name, model in models.items():
        layers = [m for m in model.modules() if isinstance(m, WEIGHT_LAYERS)]
        weights = [m.weight.detach().abs().flatten().float().cpu() for m in layers]
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
    records: "BatchNormStats | Sequence[Mapping[str, torch.Tensor | int]]",
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


def show_feature_maps(maps: Mapping[str, torch.Tensor], *, panel_size: float = 1.4) -> Figure:
    """Rows of feature maps, one row per entry, e.g. before and after ``Dropout2d``.

    Args:
        maps: row title -> (C, H, W) float feature maps; every row shows its C maps in gray,
            all on one colour scale so a dropped (zero) map looks the same everywhere.
    """
    rows = list(maps.items())
    columns = max(len(m) for _, m in rows)
    low = min(float(m.min()) for _, m in rows)
    high = max(float(m.max()) for _, m in rows)
    fig, axes = plt.subplots(len(rows), columns, figsize=(panel_size * columns, panel_size * len(rows) + 0.4),
                             squeeze=False)
    for (title, feature_maps), ax_row in zip(rows, axes):
        ax_row[0].set_title(title, loc="left", fontsize=10)
        for ax, feature_map in zip(ax_row, feature_maps.detach().cpu()):
            ax.imshow(feature_map.numpy(), cmap="gray", vmin=low, vmax=high)
        for ax in ax_row:
            ax.axis("off")
    fig.tight_layout()
    return fig


def plot_early_stopping(history: "History", best_epoch: int) -> Figure:
    """Validation loss and accuracy of an early-stopped fit, the restored (best) epoch marked."""
    epochs = history["epoch"]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot(epochs, history["train_loss"], "o-", label="train")
    ax_loss.plot(epochs, history["val_loss"], "o-", label="validation")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
    _plot_accuracy_gap(ax_acc, history, "Accuracy")
    for ax in (ax_loss, ax_acc):
        ax.axvline(best_epoch, color="tab:green", linestyle="--", label=f"best epoch ({best_epoch}): restored")
        ax.legend(loc="best")
    fig.suptitle(f"Early stopping: stopped after epoch {epochs[-1]}, weights of epoch {best_epoch} restored")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- lesson 3: initialisation and depth
# Inputs are lists of per-layer dicts, first layer first, as ``ldl.nn.init.layer_statistics`` returns:
# {"name": str, "activations": tensor, "gradients": tensor, "activation_std": float, "grad_norm": float, ...}


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
    ax: "plt.Axes | None" = None,
) -> Figure:
    """One curve per scheme: ``key`` (a number per layer) against the layer index, log y axis.

    Vanishing gradients fall to the right (the first layers learn slowly); exploding ones
    rise. A well-initialised network keeps a flat curve. ``key="activation_std"`` draws the
    spread of the activations the same way.
    """
    count = _check_layer_stats(stats_by_scheme, key, "plot_gradient_norms_by_depth")
    fig, ax = _figure_and_axes(ax, (7, 4.2))
    depth = np.arange(1, count + 1)
    for i, (name, stats) in enumerate(stats_by_scheme.items()):
        values = [float(layer[key]) for layer in stats]
        ax.plot(depth, values, "o-", color=f"C{i % 10}", markersize=3, label=name)
    ax.set_yscale("log")
    ax.set(xlabel="layer (1 = next to the input)", ylabel=key, title=f"{key} by depth")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def plot_clipping(before: Mapping[str, Sequence[float]], after: Mapping[str, Sequence[float]],
                  clip_norm: float | None = None) -> Figure:
    """Total gradient norm per step, before and after clipping, on a log axis: what was cut.

    Args:
        before: run name -> the norm of each step's gradient as backward() computed it.
        after: run name -> the norm of the gradient the optimizer actually used.
        clip_norm: drawn as a horizontal line, if clipping by norm.
    """
    fig, ax = plt.subplots(figsize=(8, 4))
    for (name, norms), color in zip(before.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        ax.plot(range(1, len(norms) + 1), norms, color=color, alpha=0.5, label=f"{name}: before clipping")
        ax.plot(range(1, len(after[name]) + 1), after[name], color=color, linestyle="--",
                label=f"{name}: step taken")
    if clip_norm is not None:
        ax.axhline(clip_norm, color="black", linewidth=1, label=f"clip norm {clip_norm:g}")
    ax.set(yscale="log", xlabel="training step", ylabel="total gradient norm", title="What clipping cuts")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- lesson 4: learning rates

if TYPE_CHECKING:
    from ldl.train.lr_finder import LRFinderResult


def plot_lr_finder(result: "LRFinderResult", ax: "plt.Axes | None" = None) -> "plt.Axes":
    """The LR range test: loss against learning rate (log x axis); returns the Axes.

    Raw batch losses are drawn faint, the smoothed loss bold. Two rates are marked: the
    steepest descent of the smoothed loss (``result.suggestion``) and a tenth of the rate
    of the lowest loss. The y axis stops a little above the loss the sweep started from,
    so the divergence at the end does not squash the part of the curve that matters.
    """
    lrs = np.asarray(result.lrs, dtype=float)
    losses = np.asarray(result.losses, dtype=float)
    smoothed = np.asarray(result.smoothed, dtype=float)
    if lrs.size == 0:
        raise ValueError("plot_lr_finder got a result with no points: run lr_find first.")
    _, ax = _figure_and_axes(ax, (7, 4.2))
    ax.plot(lrs, losses, color="tab:blue", alpha=0.3, linewidth=1, label="loss of each batch")
    ax.plot(lrs, smoothed, color="tab:blue", linewidth=2.2, label="smoothed loss")
    marks = (
        (result.suggestion, "o", "tab:red", "steepest descent"),
        (result.min_loss_lr / 10, "s", "tab:green", "min loss / 10"),
    )
    for lr, marker, colour, name in marks:
        if not np.isfinite(lr):
            continue
        nearest = int(np.argmin(np.abs(np.log10(lrs) - np.log10(lr))))  # the sweep's point closest on the log axis
        ax.plot([lr], [smoothed[nearest]], marker, color=colour, markersize=9, zorder=3,
                label=f"{name}: {lr:.1e}")
    ax.set_xscale("log")
    ax.set_ylim(*_lr_finder_ylim(smoothed, losses))
    ax.set(xlabel="learning rate (log scale)", ylabel="training loss",
           title="LR range test" + (" (stopped: the loss diverged)" if result.stopped_early else ""))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return ax


def _lr_finder_ylim(smoothed: np.ndarray, losses: np.ndarray) -> tuple[float, float]:
    """Bottom: just below the lowest loss, raw or smoothed. Top: the highest smoothed loss up
    to the minimum, plus half the fall; the divergence tail above that is cut off."""
    finite = np.isfinite(smoothed)
    if not finite.any():
        return (0.0, 1.0)
    lowest = int(np.nanargmin(np.where(finite, smoothed, np.nan)))
    low = min(smoothed[lowest], float(np.min(losses[np.isfinite(losses)], initial=smoothed[lowest])))
    high = float(np.max(smoothed[: lowest + 1][finite[: lowest + 1]]))
    # The fall from the start to the minimum; a flat curve still gets some room.
    span = high - smoothed[lowest] if high > smoothed[lowest] else max(abs(high) * 0.1, 1e-3)
    return (low - 0.05 * (high - low + span), high + 0.5 * span)


def plot_lr_schedule(
    lrs: "torch.Tensor | Sequence[float] | Sequence[Sequence[float]]",
    ax: "plt.Axes | None" = None,
    steps_per_epoch: int | None = None,
    labels: Sequence[str] | None = None,
    *,
    log: bool = False,
) -> "plt.Axes":
    """The learning rate at every step, one line per parameter group; returns the Axes.

    Args:
        lrs: ``(steps,)`` or ``(steps, groups)``, e.g. from ``preview_schedule`` or ``LRRecorder.lrs``.
        steps_per_epoch: if given, a faint vertical line marks where each new epoch begins.
        labels: one name per group (default ``"group 0"``, ``"group 1"``... or ``"lr"`` for one).
        log: a log y axis, to see the small rates at the ends of a one-cycle schedule.
    """
    rates = torch.as_tensor(lrs, dtype=torch.float64)
    if rates.ndim == 1:
        rates = rates.unsqueeze(1)  # (steps,) -> (steps, 1)
    if rates.ndim != 2 or rates.numel() == 0:
        raise ValueError("lrs must be (steps,) or (steps, groups) with at least one step; "
                         f"got shape {tuple(rates.shape)}.")
    steps, groups = rates.shape
    if labels is None:
        labels = ["lr"] if groups == 1 else [f"group {g}" for g in range(groups)]
    if len(labels) != groups:
        raise ValueError(f"labels has {len(labels)} names for {groups} parameter groups: give one per group.")
    if steps_per_epoch is not None and steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be at least 1 (len(train_loader)); got {steps_per_epoch}.")
    _, ax = _figure_and_axes(ax, (7, 3.8))
    x = np.arange(steps)
    for g in range(groups):
        ax.plot(x, rates[:, g].numpy(), color=f"C{g % 10}", linewidth=1.8, label=labels[g])
    if steps_per_epoch is not None:
        for boundary in range(steps_per_epoch, steps, steps_per_epoch):
            ax.axvline(boundary - 0.5, color="grey", alpha=0.3, linewidth=0.8)  # between two epochs' batches
    if log:
        ax.set_yscale("log")
    ax.set(xlabel="training step (batch)", ylabel="learning rate",
           title="Learning-rate schedule" + (" (grey lines: epochs)" if steps_per_epoch is not None else ""))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return ax


def plot_accuracy_vs_speed(
    rows: Sequence[Mapping[str, object]],
    *,
    title: str = "ImageNet top-1 vs measured speed",
    ax: "plt.Axes | None" = None,
) -> Figure:
    """The slides' "accuracy vs speed" chart, from published accuracy and your own measurements.

    Args:
        rows: one mapping per network with ``name``, ``top1`` (ImageNet top-1, %),
            ``images_per_s`` (measured) and ``params`` (count; sets the marker's area).
    """
    if not rows:
        raise ValueError("rows is empty: measure at least one network.")
    fig, ax = _figure_and_axes(ax, (6.5, 4))
    speeds = np.array([float(row["images_per_s"]) for row in rows])
    accuracies = np.array([float(row["top1"]) for row in rows])
    params = np.array([float(row["params"]) for row in rows])
    ax.scatter(speeds, accuracies, s=20 + 400 * params / params.max(), alpha=0.6, color="C0", edgecolor="k")
    for row, x, y in zip(rows, speeds, accuracies):
        ax.annotate(str(row["name"]), (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set(xlabel="images/s on this device (log scale; right is faster)", ylabel="ImageNet top-1 (%)", title=title)
    ax.grid(alpha=0.3, which="both")
    return fig


# ---------------------------------------------------------------- lesson 5: patches and attention


def show_patch_grid(
    image: torch.Tensor,
    patch_size: int,
    *,
    max_patches: int | None = None,
    per_row: int | None = None,
    normalized: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Figure:
    """How a ViT reads an image: the photo with its patch grid (left), the patches as a sequence (right).

    Each patch carries the same number in both panels: its place in the sequence, counted
    from 0 as ``ldl.nn.vit.patchify(images, patch_size)[:, i]`` (the transformer's token i + 1,
    after the class token). The sequence wraps onto several rows only to fit the page.

    Args:
        image: (3, H, W) float (normalised when ``normalized``) or uint8; H and W multiples
            of ``patch_size``.
        max_patches: show only the first patches of the sequence (default: all of them).
        per_row: patches per row of the sequence panel (default: at least 16, or two image rows).
    """
    from ldl.nn.vit import patchify  # here: the other plots need nothing from the ViT code

    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be one (3, H, W) image, e.g. images[0]; got shape {tuple(image.shape)}.")
    image = image.detach().cpu()
    if image.dtype == torch.uint8:
        image = image.float() / 255
    elif normalized:
        image = denormalize(image, mean, std)
    height, width = image.shape[-2:]
    patches = patchify(image.unsqueeze(0), patch_size)[0]  # (N, 3*P*P); a clear error if H or W does not divide
    total, columns = len(patches), width // patch_size
    if max_patches is not None and max_patches < 1:
        raise ValueError(f"max_patches must be at least 1 (or None for all {total}); got {max_patches}.")
    if per_row is not None and per_row < 1:
        raise ValueError(f"per_row must be at least 1 (or None to choose); got {per_row}.")
    count = total if max_patches is None else min(max_patches, total)
    per_row = min(count, per_row or max(16, 2 * columns))
    strip, corners = _patch_strip(patches[:count].reshape(count, 3, patch_size, patch_size), per_row)

    fig, (ax_image, ax_strip) = plt.subplots(
        1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1, 1.6]}, layout="constrained")
    ax_image.imshow(_as_hwc(image))
    for x in range(0, width + 1, patch_size):
        ax_image.axvline(x - 0.5, color="white", linewidth=0.8)
    for y in range(0, height + 1, patch_size):
        ax_image.axhline(y - 0.5, color="white", linewidth=0.8)
    fontsize = 8 if count <= 64 else 5
    for i in range(count):
        row, col = divmod(i, columns)  # row-major, as patchify cuts them
        ax_image.text((col + 0.5) * patch_size, (row + 0.5) * patch_size, str(i), color="white",
                      fontsize=fontsize, ha="center", va="center")
    ax_image.set_title(f"{height // patch_size} x {columns} = {total} patches of {patch_size} x {patch_size} px",
                       fontsize=10)
    ax_strip.imshow(strip)
    for i, (top, left) in enumerate(corners):
        ax_strip.text(left, top, str(i), color="black", fontsize=fontsize, ha="left", va="top",
                      bbox={"boxstyle": "square,pad=0.05", "facecolor": "white", "alpha": 0.7, "linewidth": 0})
    shown = "all" if count == total else f"the first {count} of {total}"
    ax_strip.set_title(f"the sequence the transformer reads: {shown} patches, in order", fontsize=10)
    for ax in (ax_image, ax_strip):
        ax.axis("off")
    return fig


def _patch_strip(patches: torch.Tensor, per_row: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Patches (n, 3, P, P) in [0, 1] side by side with white gaps, wrapping after ``per_row``.

    Returns the (rows*(P+gap), per_row*(P+gap), 3) image and each patch's (top, left) corner.
    """
    count, _, p, _ = patches.shape
    gap = max(1, p // 6)
    rows = -(-count // per_row)
    canvas = np.ones((rows * (p + gap) - gap, per_row * (p + gap) - gap, 3))
    corners = []
    for i, patch in enumerate(patches):
        row, col = divmod(i, per_row)
        top, left = row * (p + gap), col * (p + gap)
        canvas[top:top + p, left:left + p] = _as_hwc(patch)
        corners.append((top, left))
    return canvas, corners


def show_attention_overlay(
    images: torch.Tensor,
    maps: torch.Tensor,
    titles: Sequence[str] | None = None,
    *,
    normalized: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    alpha: float = 0.5,
    cmap: str = "jet",
    ncols: int = 4,
) -> Figure:
    """Each photo with its attention map on top as a semi-transparent heat map (red: most attention).

    Args:
        images: (B, 3, H, W) float (normalised when ``normalized``) or uint8.
        maps: (B, h, w), e.g. ``ldl.nn.attention.attention_rollout`` on the patch grid, or
            already image-sized. Each is resized to H x W (bilinear) and rescaled to [0, 1]
            on its own with ``ldl.nn.attention.upsample_map``, so colours compare places
            within one photo, not amounts between photos.
        titles: one per image, e.g. the predicted class.
    """
    from ldl.nn.attention import upsample_map  # here: the other plots need nothing from the attention code

    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (B, 3, H, W); got shape {tuple(images.shape)}. "
                         "For one image use image.unsqueeze(0).")
    if maps.ndim != 3 or len(maps) != len(images):
        raise ValueError(f"maps must be (B, h, w) with one map per image: {len(images)} images, "
                         f"got maps of shape {tuple(maps.shape)}.")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"Give one title per image: {len(images)} images, {len(titles)} titles.")
    images = images.detach().cpu()
    if normalized and images.dtype != torch.uint8:
        images = denormalize(images, mean, std)
    heat = upsample_map(maps.detach().cpu(), tuple(images.shape[-2:]))  # (B, H, W) in [0, 1]
    count = len(images)
    ncols = min(ncols, count)
    nrows = -(-count // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.8 * nrows), squeeze=False, layout="constrained")
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= count:
            continue
        ax.imshow(_as_hwc(images[i]))
        ax.imshow(heat[i].numpy(), cmap=cmap, alpha=alpha, vmin=0, vmax=1)
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    return fig
