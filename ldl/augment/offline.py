"""Offline augmentation (make the copies once) versus on-the-fly (new ones every epoch).

Offline: :func:`materialise` applies a random transform ``copies`` times to every training
image and keeps the results, in memory or as PNG files. Training then reads a bigger, fixed
dataset and does no augmentation work. It costs memory or disk in proportion to
``copies``, and the network sees the same finite set of variants every epoch.

On-the-fly: the transform runs on every batch of every epoch (:class:`EachImage` wraps a
one-image transform for a batch loader such as :class:`ldl.data.loader.DeviceLoader`).
It costs compute every epoch, uses no extra storage, and never shows the same variant
twice. ``benchmarks/offline_vs_on_the_fly.py`` measures both sides.

>>> big_x, big_y = materialise(images, labels, transform, copies=4, seed=0)
>>> big_x.shape            # (5 * N, 3, H, W) uint8: the originals, then copy 1 of all, ...
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torchvision.transforms.v2 import functional as TF
from tqdm.auto import tqdm

from ldl.augment.seeding import seeded, spawn_seeds


def _checked_output(out: Any, like: torch.Tensor) -> torch.Tensor:
    """``out`` as a plain ``(3, H, W) uint8`` tensor, or a clear error."""
    if not isinstance(out, torch.Tensor) or out.dtype != torch.uint8 or out.shape != like.shape:
        got = f"{tuple(out.shape)} {out.dtype}" if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"materialise needs a transform that keeps {tuple(like.shape)} uint8 images, got {got}: "
            "end it with v2.Resize/v2.CenterCrop to the same size and v2.ToDtype(torch.uint8, scale=True)."
        )
    return out.as_subclass(torch.Tensor)


def materialise(
    images: torch.Tensor,
    labels: torch.Tensor,
    transform: Callable[[torch.Tensor], Any],
    copies: int,
    *,
    seed: int | torch.Generator,
    to: str | Path | None = None,
    classes: Sequence[str] | None = None,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Enlarge a dataset ``copies + 1`` times with augmented copies made now, once.

    Args:
        images: ``(N, 3, H, W)`` uint8 training images.
        labels: ``(N,)`` class indices.
        transform: one-image transform, ``(3, H, W) uint8 -> (3, H, W) uint8``
            (torchvision ``v2`` transforms, :class:`~ldl.augment.occlusion.GridMask`...).
        copies: augmented copies per image (0 returns the originals).
        seed: the same seed gives the same copies; copy ``c`` of image ``i`` has its own
            seed, so it does not depend on the other images.
        to: if given, also write every image as ``to/<class>/<i>_<copy>.png`` (copy 0 is the
            original), a folder ``index_image_folder`` reads. It is written in a temporary
            sibling folder renamed to ``to`` at the end, so ``to`` is complete or absent.
        classes: folder names for the labels (default ``"0"``, ``"1"``...).
        progress: show a progress bar.

    Returns:
        ``(N * (copies + 1), 3, H, W)`` uint8 images and ``(N * (copies + 1),)`` int64
        labels; row ``c * N + i`` is copy ``c`` of image ``i`` (rows ``0..N-1``: the originals).

    Raises:
        FileExistsError: ``to`` already exists (nothing is overwritten).
    """
    if images.ndim != 4 or images.dtype != torch.uint8 or images.shape[0] == 0:
        raise ValueError(f"images must be a non-empty (N, 3, H, W) uint8 tensor, got {tuple(images.shape)} {images.dtype}.")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must be ({images.shape[0]},), one per image, got {tuple(labels.shape)}.")
    if copies < 0:
        raise ValueError(f"copies must be 0 or more, got {copies}.")
    folder = Path(to) if to is not None else None
    if folder is not None and folder.exists():
        raise FileExistsError(f"{folder} already exists; delete it or choose another folder.")

    count = images.shape[0]
    out = torch.empty((count * (copies + 1), *images.shape[1:]), dtype=torch.uint8)  # filled in place
    out[:count] = images.cpu()
    seeds = spawn_seeds(seed, count * copies)
    bar = tqdm(total=count * copies, desc="Materialising copies", unit="img", disable=not progress)
    for copy in range(1, copies + 1):
        for i in range(count):
            with seeded(seeds[(copy - 1) * count + i]):
                out[copy * count + i] = _checked_output(transform(out[i]), out[i])
            bar.update(1)
    bar.close()
    big_labels = labels.cpu().long().repeat(copies + 1)
    if folder is not None:
        names = list(classes) if classes is not None else [str(k) for k in range(int(big_labels.max()) + 1)]
        _write_pngs(out, big_labels, count, names, folder)
    return out, big_labels


def _write_pngs(images: torch.Tensor, labels: torch.Tensor, count: int, classes: list[str], folder: Path) -> None:
    """``folder/<class>/<i>_<copy>.png`` for every row, via a temporary folder and a rename."""
    if int(labels.max()) >= len(classes):
        raise ValueError(f"{len(classes)} class names for labels up to {int(labels.max())}.")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        for name in classes:
            (staging / name).mkdir()
        for row in range(images.shape[0]):
            copy, i = divmod(row, count)
            TF.to_pil_image(images[row]).save(staging / classes[int(labels[row])] / f"{i}_{copy}.png")
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def folder_bytes(folder: str | Path) -> int:
    """Total size of the files under ``folder``, in bytes."""
    return sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file())


class EachImage:
    """Apply a one-image transform to every image of a batch: on-the-fly augmentation.

    ``EachImage(t)(batch)`` is ``torch.stack([t(image) for image in batch])`` for a
    ``(B, C, H, W)`` batch of any dtype the transform accepts; every output must have the
    same shape. Give it to a batch loader, e.g.
    ``DeviceLoader(images, labels, batch_size=32, shuffle=True, augment=EachImage(t))``
    (DeviceLoader passes float batches in ``[0, 1]``, which torchvision ``v2`` handles).
    The transform draws from torch's global random state, so new variants come every epoch.
    """

    def __init__(self, transform: Callable[[torch.Tensor], Any]) -> None:
        self.transform = transform

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        if batch.ndim != 4:
            raise ValueError(f"EachImage expects a (B, C, H, W) batch, got shape {tuple(batch.shape)}.")
        return torch.stack([self.transform(image).as_subclass(torch.Tensor) for image in batch])

    def __repr__(self) -> str:
        return f"EachImage({self.transform!r})"
