"""A gallery of the augmentations of lesson 1, each one strong enough to see.

>>> transforms = gallery_transforms(image_size=128)
>>> fig = show_gallery(photo, transforms, seed=0)           # the original + one result each
>>> fig = show_gallery(photo, transforms, seed=0, n_per=4)  # four random draws of each

Every transform takes a ``(3, H, W)`` uint8 tensor or a PIL image and returns a
``(3, H, W)`` uint8 tensor (a ``tv_tensors.Image``). The random ranges start away from "no
change" so that every draw is visible: for training, use milder, two-sided ranges.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
import torch
from matplotlib.figure import Figure
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from ldl.augment.occlusion import GridMask
from ldl.augment.seeding import seeded, spawn_seeds


def gallery_transforms(image_size: int) -> dict[str, Callable[[Any], torch.Tensor]]:
    """One transform per augmentation the lesson shows, by name, for ``image_size`` images.

    Each is ``v2.Compose([v2.ToImage(), <the transform>])``: ``ToImage`` turns a PIL image or
    a plain tensor into a ``tv_tensors.Image``, so all of them accept both. Give them
    ``image_size`` squares: the resized crop always outputs ``image_size``, the others keep
    the input's size.
    """
    if image_size < 8:
        raise ValueError(f"image_size must be at least 8 pixels, got {image_size}.")
    steps: dict[str, list[Callable[[Any], Any]]] = {
        "horizontal flip": [v2.RandomHorizontalFlip(p=1.0)],
        "vertical flip": [v2.RandomVerticalFlip(p=1.0)],
        "rotation": [v2.RandomRotation(degrees=(20.0, 40.0))],
        "zoom (resized crop)": [v2.RandomResizedCrop(image_size, scale=(0.15, 0.4), antialias=True)],
        "translation": [v2.RandomAffine(degrees=0.0, translate=(0.25, 0.25))],
        "shear": [v2.RandomAffine(degrees=0.0, shear=(20.0, 35.0))],
        "perspective": [v2.RandomPerspective(distortion_scale=0.6, p=1.0)],
        "brightness": [v2.ColorJitter(brightness=(1.5, 1.9))],
        "contrast": [v2.ColorJitter(contrast=(0.25, 0.45))],
        "saturation": [v2.ColorJitter(saturation=(0.0, 0.25))],
        "hue": [v2.ColorJitter(hue=(0.25, 0.45))],
        "gaussian noise": [v2.GaussianNoise(sigma=0.12)],  # sigma in [0, 1] units, also for uint8
        "equalize": [v2.RandomEqualize(p=1.0)],
        "erasing": [v2.RandomErasing(p=1.0, scale=(0.1, 0.25), value=0)],
        "gridmask": [GridMask(unit_range=(0.25, 0.45), keep_ratio=0.55)],
    }
    return {name: v2.Compose([v2.ToImage(), *transform]) for name, transform in steps.items()}


def _to_display(image: Any) -> np.ndarray:
    """PIL image or ``(3, H, W)`` uint8/float tensor -> ``(H, W, 3)`` float array in [0, 1]."""
    if isinstance(image, PIL.Image.Image):
        image = TF.pil_to_tensor(image.convert("RGB"))
    image = image.detach().cpu().as_subclass(torch.Tensor)
    if image.dtype == torch.uint8:
        image = image.float() / 255
    return image.permute(1, 2, 0).clamp(0, 1).numpy()


def gallery_images(
    image: Any,
    transforms: Mapping[str, Callable[[Any], Any]],
    seed: int | torch.Generator,
    n_per: int = 1,
) -> dict[str, list[torch.Tensor]]:
    """``{name: [n_per results]}``; the same seed gives the same images.

    Draw ``j`` of the ``k``-th transform uses the ``(k * n_per + j)``-th seed derived from
    ``seed``, so the results do not depend on each other.
    """
    if n_per < 1:
        raise ValueError(f"n_per must be at least 1, got {n_per}.")
    seeds = spawn_seeds(seed, len(transforms) * n_per)
    results: dict[str, list[torch.Tensor]] = {}
    for k, (name, transform) in enumerate(transforms.items()):
        results[name] = []
        for j in range(n_per):
            with seeded(seeds[k * n_per + j]):
                results[name].append(transform(image))
    return results


def show_gallery(
    image: Any,
    transforms: Mapping[str, Callable[[Any], Any]],
    seed: int | torch.Generator = 0,
    n_per: int = 1,
    *,
    ncols: int = 6,
    panel_size: float = 2.0,
) -> Figure:
    """The original and each transform's result(s), titled by name.

    Args:
        image: ``(3, H, W)`` uint8 tensor or PIL image.
        transforms: ``{name: transform}``, e.g. :func:`gallery_transforms`.
        seed: the same seed draws the same grid.
        n_per: results per transform. 1: one grid of panels, ``ncols`` wide. More: one row
            per transform with ``n_per`` draws, under a first row holding the original.
    """
    results = gallery_images(image, transforms, seed, n_per)
    if n_per == 1:
        panels = [("original", image)] + [(name, outs[0]) for name, outs in results.items()]
        ncols = min(ncols, len(panels))
        nrows = -(-len(panels) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, panel_size * nrows), squeeze=False)
        for ax, (name, shown) in zip(axes.flat, panels):
            ax.imshow(_to_display(shown))
            ax.set_title(name, fontsize=9)
    else:
        nrows = len(results) + 1
        fig, axes = plt.subplots(nrows, n_per, figsize=(panel_size * n_per, panel_size * nrows), squeeze=False)
        axes[0, 0].imshow(_to_display(image))
        axes[0, 0].set_title("original", fontsize=9)
        for row, (name, outs) in enumerate(results.items(), start=1):
            for j, shown in enumerate(outs):
                axes[row, j].imshow(_to_display(shown))
                axes[row, j].set_title(name if j == 0 else "", fontsize=9)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    return fig
