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
    count = len(images)
    ncols = min(ncols, count)
    nrows = -(-count // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.8 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= count:
            continue
        ax.imshow(_as_hwc(images[i]))
        if labels is not None:
            label = int(labels[i])
            ax.set_title(classes[label] if classes else str(label), fontsize=9)
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
    count = len(images)
    ncols = min(ncols, count)
    nrows = -(-count // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.9 * ncols, 2.0 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= count:
            continue
        ax.imshow(_as_hwc(images[i]))
        weights, order = soft_labels[i].sort(descending=True)
        parts = [f"{classes[int(k)]} {float(w):.2f}" for w, k in zip(weights, order) if float(w) >= min_weight]
        ax.set_title(" / ".join(parts), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
