"""Pictures of images and what a network makes of them: batches, whitening, feature maps, patches, attention.

Every function draws with pyplot and returns the Figure: in a notebook, end the cell with ``plt.show()``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from ldl.core.constants import IMAGENET_MEAN, IMAGENET_STD
from ldl.nn.attention import upsample_map
from ldl.nn.vit import patchify

if TYPE_CHECKING:
    from ldl.augment.statistics import ZCAWhitening


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


def plot_whitening(
    images: torch.Tensor,
    zca: ZCAWhitening,
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
