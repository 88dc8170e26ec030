"""Augmentation settings shown on photos: a grid of augmented copies, and mixed pairs.

>>> grid = augment_grid(photos, settings, n_augmented=7, image_size=160, seed=0)
>>> grid.shape                                            # (N * 8, 3, 160, 160) uint8
>>> mix_preview(photos[:2], AugmentSettings(mixup_alpha=0.4), labels=["cat", "dog"], image_size=160)

The playground (``ldl.widgets``) draws these; the settings themselves and the pipeline they
mean are :mod:`ldl.augment.recipe`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from PIL import Image
from torchvision.transforms import v2

from ldl.augment.mixing import MixUp
from ldl.augment.recipe import AugmentSettings, Images, batch_mixers, build_pipeline, check_image_size, check_seed
from ldl.augment.seeding import apply_seeded


def prepare_images(images: Images, image_size: int) -> torch.Tensor:
    """Photos as ``image_size`` squares: resize the short side, then crop the centre.

    Args:
        images: a ``(N, 3, H, W)`` or ``(3, H, W)`` uint8 tensor, or a list of PIL images,
            ``(3, H, W)`` uint8 tensors or image files (any size; gray images become RGB).

    Returns:
        ``(N, 3, image_size, image_size)`` uint8.
    """
    check_image_size(image_size)
    if isinstance(images, torch.Tensor):
        items = list(images) if images.dim() == 4 else [images]
    elif isinstance(images, (Image.Image, str, Path)):
        items = [images]
    else:
        items = list(images)
    if not items:
        raise ValueError("No images given: pass at least one photo (a PIL image, a uint8 tensor or a file path).")
    square = v2.Compose([v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size)])
    return torch.stack([square(_as_uint8_rgb(item, index)) for index, item in enumerate(items)])


def _as_uint8_rgb(item: Image.Image | torch.Tensor | str | Path, index: int) -> torch.Tensor:
    """One photo as a ``(3, H, W)`` uint8 tensor, or a clear error that says what to pass."""
    if isinstance(item, (str, Path)):
        from ldl.data.folders import load_rgb  # noqa: PLC0415 - only needed for file paths

        item = load_rgb(item)
    if isinstance(item, Image.Image):
        return v2.functional.pil_to_tensor(item.convert("RGB"))
    if not isinstance(item, torch.Tensor):
        raise TypeError(
            f"Image {index}: expected a PIL image, a uint8 tensor or a file path, got {type(item).__name__}."
        )
    if item.dtype != torch.uint8:
        raise TypeError(
            f"Image {index}: expected a uint8 tensor (pixels 0..255), got {item.dtype}. Convert it: "
            "image.to(torch.uint8) for whole numbers 0..255, "
            "(image * 255).round().to(torch.uint8) for floats in [0, 1]."
        )
    if item.dim() != 3 or item.shape[0] not in (1, 3):
        raise ValueError(f"Image {index}: expected shape (3, H, W) or (1, H, W), got {tuple(item.shape)}.")
    return item.expand(3, -1, -1).as_subclass(torch.Tensor)


def augment_grid(
    images: Images,
    settings: AugmentSettings,
    *,
    n_augmented: int = 7,
    image_size: int = 160,
    seed: int = 0,
) -> torch.Tensor:
    """Each photo followed by ``n_augmented`` augmented versions of it.

    Every augmented copy gets its own seed derived from ``seed`` (see
    ``ldl.augment.apply_seeded``): the same seed gives the same grid, a copy does not
    change when another photo is added, and the caller's random state is left as it was
    (torchvision's v2 transforms draw from torch's global generator, so it is forked).

    Returns:
        ``(N * (1 + n_augmented), 3, image_size, image_size)`` uint8, photo by photo: the
        original, then its augmented versions (one row of a grid per photo).
    """
    if isinstance(n_augmented, bool) or not isinstance(n_augmented, int) or n_augmented < 0:
        raise ValueError(f"n_augmented must be an int >= 0, got {n_augmented!r}")
    check_seed(seed)
    originals = prepare_images(images, image_size)  # (N, 3, S, S)
    count = originals.shape[0]
    if n_augmented == 0:
        return originals
    pipeline = build_pipeline(settings, image_size)
    copies = originals.repeat_interleave(n_augmented, dim=0)  # (N * n, 3, S, S)
    augmented = apply_seeded(pipeline, copies, seed)  # (N * n, 3, S, S)
    rows = torch.cat([originals.unsqueeze(1), augmented.view(count, n_augmented, 3, image_size, image_size)], dim=1)
    return rows.flatten(0, 1)  # (N * (1 + n), 3, S, S)


@dataclass(frozen=True)
class MixPreview:
    """Mixed pairs of photos and their soft labels.

    Attributes:
        images: ``(M, 3, S, S)`` uint8 mixed images.
        soft_labels: ``(M, C)`` float; each row sums to 1 (the share of each class).
        classes: the ``C`` class names, in column order.
        kinds: ``"MixUp"`` or ``"CutMix"`` for each of the ``M`` images.
    """

    images: torch.Tensor
    soft_labels: torch.Tensor
    classes: list[str]
    kinds: list[str]

    def captions(self) -> list[str]:
        """One line per image, e.g. ``"MixUp: cat 0.62 dog 0.38"``."""
        result = []
        for kind, row in zip(self.kinds, self.soft_labels):
            shares = [f"{name} {share:.2f}" for name, share in zip(self.classes, row.tolist()) if share > 0.005]
            result.append(f"{kind}: " + " ".join(shares))
        return result


def mix_preview(
    images: Images,
    settings: AugmentSettings,
    *,
    labels: Sequence[str] | None = None,
    n_mixed: int = 4,
    image_size: int = 160,
    seed: int = 0,
) -> MixPreview:
    """MixUp and CutMix (whichever ``settings`` turns on) applied to pairs of photos.

    Photo ``i`` is mixed with photo ``i + 1`` (the last with the first), ``n_mixed`` times
    per mixer, each time with a new draw of the mixing weight (and CutMix box). The draws
    come from a generator seeded with ``seed``: the global random state is not touched.

    Args:
        labels: a class name for each photo (default: ``photo 1``, ``photo 2``, ...).
            Photos with the same name count as one class.

    Returns:
        A :class:`MixPreview`; empty (no images) when both alphas are 0 or there is only
        one photo.
    """
    check_seed(seed)
    originals = prepare_images(images, image_size)  # (N, 3, S, S)
    count = originals.shape[0]
    names = [str(name) for name in labels] if labels is not None else [f"photo {i + 1}" for i in range(count)]
    if len(names) != count:
        raise ValueError(f"labels: got {len(names)} names for {count} photos; give one class name per photo.")
    classes = list(dict.fromkeys(names))
    targets = torch.tensor([classes.index(name) for name in names])  # (N,) int64

    generator = torch.Generator().manual_seed(seed)
    as_float = originals.float() / 255  # MixUp blends pixel values: work in float
    mixed_images, soft_labels, kinds = [], [], []
    for mixer in batch_mixers(settings, num_classes=len(classes)) if count >= 2 else []:
        for i in range(n_mixed):
            a, b = i % count, (i + 1) % count
            # A batch of two, each the other's partner: element 0 is photo a mixed with photo b.
            if isinstance(mixer, MixUp):
                params = mixer.sample_params(2, generator)
            else:
                params = mixer.sample_params(2, image_size, image_size, generator)
            params = replace(params, partner=torch.tensor([1, 0]))
            pair, pair_labels = mixer.apply(as_float[[a, b]], targets[[a, b]], params)
            mixed_images.append((pair[0] * 255).round().to(torch.uint8))
            soft_labels.append(pair_labels[0])
            kinds.append(type(mixer).__name__)
    empty = torch.empty(0, 3, image_size, image_size, dtype=torch.uint8)
    return MixPreview(
        images=torch.stack(mixed_images) if mixed_images else empty,
        soft_labels=torch.stack(soft_labels) if soft_labels else torch.empty(0, len(classes)),
        classes=classes,
        kinds=kinds,
    )
