"""Synthetic shapes: a tiny image-classification dataset that needs no download.

Three classes, ``circle``, ``square`` and ``triangle``, each drawn in a random colour, size,
position and rotation on a noisy background. Unit tests and a fresh offline clone use it to
run a real training loop on real image files in seconds.

Every image comes from its own random generator, seeded with ``(seed, split, class, i)``, so
the same seed writes byte-identical PNG files, and asking for more images per class keeps
the first ones unchanged.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPE_CLASSES = ("circle", "square", "triangle")
SPLITS = ("train", "validation")


def write_synthetic_shapes(
    root: str | Path,
    *,
    per_class_train: int = 60,
    per_class_val: int = 20,
    image_size: int = 64,
    seed: int = 0,
) -> Path:
    """Write ``root/{train,validation}/<class>/<i>.png`` and return ``root``.

    The files are written into a hidden temporary sibling folder that is renamed to
    ``root`` at the end, so ``root`` either holds the complete dataset or does not exist.

    Args:
        root: folder to create; it must not exist yet.
        per_class_train: images per class in ``train``.
        per_class_val: images per class in ``validation``.
        image_size: side of the square RGB images, in pixels.
        seed: the same seed gives byte-identical files.

    Raises:
        FileExistsError: ``root`` already exists (nothing is overwritten).
    """
    root = Path(root)
    if root.exists():
        raise FileExistsError(f"{root} already exists; delete it or choose another folder.")
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        counts = {"train": per_class_train, "validation": per_class_val}
        for split_index, split in enumerate(SPLITS):
            for class_index, shape in enumerate(SHAPE_CLASSES):
                folder = staging / split / shape
                folder.mkdir(parents=True)
                for i in range(counts[split]):
                    rng = np.random.default_rng([seed, split_index, class_index, i])
                    draw_shape_image(shape, image_size, rng).save(folder / f"{i:04d}.png")
        os.replace(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return root


def draw_shape_image(shape: str, image_size: int, rng: np.random.Generator) -> Image.Image:
    """One ``image_size x image_size`` RGB image of ``shape`` on a noisy background.

    Args:
        shape: ``"circle"``, ``"square"`` or ``"triangle"``.
        rng: the only source of randomness, so the image is reproducible.
    """
    if shape not in SHAPE_CLASSES:
        raise ValueError(f"Unknown shape {shape!r}; choose one of {SHAPE_CLASSES}.")

    # Background: a random base colour plus per-pixel noise, (H, W, 3) uint8.
    base = rng.integers(0, 256, size=3)
    noise = rng.normal(0.0, 18.0, size=(image_size, image_size, 3))
    background = np.clip(base + noise, 0, 255).astype(np.uint8)
    image = Image.fromarray(background)  # (H, W, 3) uint8 -> RGB

    # Shape colour: random, but pushed away from the background so the class is visible.
    colour = rng.integers(0, 256, size=3)
    if np.abs(colour - base).sum() < 200:
        colour = 255 - base
    fill = tuple(int(c) for c in colour)

    # Size and position: the shape always fits inside the image.
    radius = rng.uniform(0.18, 0.38) * image_size
    cx = rng.uniform(radius, image_size - radius)
    cy = rng.uniform(radius, image_size - radius)
    rotation = rng.uniform(0.0, 2.0 * math.pi)

    draw = ImageDraw.Draw(image)
    if shape == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=fill)
    else:
        sides = 4 if shape == "square" else 3
        draw.polygon(_regular_polygon(cx, cy, radius, sides, rotation), fill=fill)
    return image


def _regular_polygon(
    cx: float, cy: float, radius: float, sides: int, rotation: float
) -> list[tuple[float, float]]:
    """Corners of a regular polygon centred at ``(cx, cy)`` with circumradius ``radius``."""
    return [
        (
            cx + radius * math.cos(rotation + 2.0 * math.pi * k / sides),
            cy + radius * math.sin(rotation + 2.0 * math.pi * k / sides),
        )
        for k in range(sides)
    ]
