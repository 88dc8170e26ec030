"""Image folders that survive real-world files: the per-sample pipeline students read first.

Real photo folders hold bad files: the full Kaggle "Dogs vs. Cats" set has zero-byte and
truncated JPEGs, some photos are grayscale or CMYK, some PNGs are transparent.
:func:`load_rgb` turns every readable image into a plain RGB picture and every unreadable
one into an :class:`UnreadableImage` error that names the file and the reason; phone photos
are turned upright by their EXIF orientation tag, as TorchCodec (the tensor cache) does.
:class:`RobustImageDataset` checks all files once, skips and lists the bad ones, and never
crashes in the middle of an epoch: a file that breaks later is left out of its batch by
:func:`collate_readable`, never replaced by another photo (which would then appear twice).

>>> from torchvision.transforms import v2
>>> from ldl.data.index import index_image_folder
>>> train = RobustImageDataset(index_image_folder("cats_and_dogs_sample/train"),
...                            transform=v2.Compose([v2.ToImage(), v2.Resize((64, 64))]))
>>> image, label = train[0]      # (3, 64, 64) uint8 image tensor, int label
>>> train.skipped                # [(path, reason), ...] for files that could not be read
>>> loader = DataLoader(train, batch_size=32, collate_fn=collate_readable)
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError
from torch.utils.data import default_collate
from tqdm.auto import tqdm

from ldl.data.index import ImageIndex, check_every_class_readable, is_dangling_link

# A truncated JPEG must be an error, not a picture with a grey bottom half: keep PIL strict.
ImageFile.LOAD_TRUNCATED_IMAGES = False

# Above this many files the construction-time check shows a progress bar.
PROGRESS_BAR_MIN_FILES = 1000


class UnreadableImage(ValueError):
    """An image file that cannot be decoded; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(
            f"Cannot read image {self.path}: {reason}. "
            "Delete or replace the file; RobustImageDataset and build_tensor_cache skip such files."
        )


def load_rgb(path: str | Path, draft_size: int | None = None) -> Image.Image:
    """Open any image file as an RGB picture.

    Grayscale, palette, CMYK and 16-bit images are converted to RGB; transparent images
    (RGBA, LA, palette with transparency) are composited on white, so see-through areas
    become white instead of black. A photo with an EXIF orientation tag (a phone held
    upright stores its pixels sideways) is rotated/flipped upright, as TorchCodec's decoder
    does in the tensor cache: both pipelines see the same pixels.

    Args:
        path: the image file.
        draft_size: if given, JPEGs are decoded at a reduced scale (1/2, 1/4 or 1/8) that
            still keeps both sides at least ``draft_size`` pixels. libjpeg then skips most of
            the work, which makes building a small-image cache several times faster.

    Raises:
        UnreadableImage: the file is empty, truncated, or not an image at all.
    """
    path = Path(path)
    with _as_unreadable(path), Image.open(path) as image:
        if draft_size is not None:
            image.draft("RGB", (draft_size, draft_size))
        # load() inside the with-block: decode now, while the file is open, so a
        # truncated file fails here (PIL says "image file is truncated").
        image.load()
        # In place: no copy of the pixels when there is nothing to turn (most files).
        ImageOps.exif_transpose(image, in_place=True)
        return _to_rgb(image)


@contextmanager
def _as_unreadable(path: Path) -> Iterator[None]:
    """Turn every way PIL can fail on a bad file into one :class:`UnreadableImage`."""
    try:
        if is_dangling_link(path):
            raise UnreadableImage(path, f"broken symbolic link (its target {os.readlink(path)} does not exist)")
        if path.stat().st_size == 0:
            raise UnreadableImage(path, "empty file (0 bytes)")
        yield
    except UnreadableImage:
        raise
    except UnidentifiedImageError:
        raise UnreadableImage(path, "not an image file (PIL cannot identify its format)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        # OSError: truncated data, broken streams, unreadable files;
        # SyntaxError/ValueError: malformed headers in some PIL plugins.
        raise UnreadableImage(path, f"{type(error).__name__}: {error}") from error


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert a loaded PIL image of any mode to RGB (transparency composited on white)."""
    if image.mode == "RGB":
        return image
    has_transparency = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_transparency:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit or float grayscale: PIL's convert("RGB") would clip at 255 (mostly white),
        # so rescale to 0..255 first.
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if values.max(initial=0) > 255 else 255.0
        gray = np.clip(values / peak * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    # "L", "1", "P", "CMYK", "YCbCr", ...: PIL knows the conversion.
    return image.convert("RGB")


def check_image(path: str | Path) -> None:
    """Raise :class:`UnreadableImage` if ``path`` does not decode; cheaper than a full load.

    ``verify()`` checks the header and, for PNGs, every chunk's checksum; for JPEGs it checks
    nothing past the header, so a reduced-scale decode (1/8 size) follows: it still reads all
    the compressed data, so truncated files are caught, at a fraction of the full cost.
    """
    path = Path(path)
    with _as_unreadable(path), Image.open(path) as image:
        image.verify()
    # verify() leaves the image unusable, so decode from a fresh open.
    load_rgb(path, draft_size=1)


class RobustImageDataset(torch.utils.data.Dataset):
    """An image-folder dataset that skips and lists bad files instead of crashing.

    Like torchvision's ``ImageFolder``, but built from an :class:`~ldl.data.index.ImageIndex`
    and tolerant of bad files. Items are ``(transform(image), label)``, where ``image`` is an
    RGB ``PIL.Image`` (or ``(image, label)`` without a transform), so torchvision
    ``transforms.v2`` pipelines work unchanged. An item whose file no longer decodes is
    ``None``: batch with ``DataLoader(..., collate_fn=collate_readable)``, which leaves it out.

    Args:
        index: the files and class names of one split.
        transform: applied to each RGB PIL image, e.g. a ``transforms.v2.Compose``.
        check: open every file once now and drop the bad ones (recommended). Without it,
            bad files are only found, and skipped, when they are loaded.

    Attributes:
        skipped: ``(path, reason)`` for every file dropped, at construction or later at
            decode time. With ``DataLoader(num_workers>0)`` decode-time skips happen in the
            worker processes and are not seen here (their warning is); the construction-time
            check is.
        samples: ``(path, label)`` of the files kept.
        targets: the label of each kept file.
        classes: class names; ``class_to_idx`` maps a name to its label.
    """

    def __init__(
        self,
        index: ImageIndex,
        transform: Callable[[Image.Image], Any] | None = None,
        check: bool = True,
    ) -> None:
        self.transform = transform
        self.classes = list(index.classes)
        self.class_to_idx = {name: label for label, name in enumerate(self.classes)}
        self.root = index.root
        self.skipped: list[tuple[Path, str]] = []
        self.samples: list[tuple[Path, int]] = (
            self._drop_unreadable(index.samples) if check else list(index.samples)
        )
        self.targets = [label for _, label in self.samples]
        if not self.samples:
            raise ValueError(
                f"No readable images in {index.root or 'the index'} "
                f"({len(index.samples)} files, {len(self.skipped)} unreadable): "
                "check the folder holds <class>/<image> files; dataset.skipped says why each failed."
            )
        if check:
            check_every_class_readable(index, self.targets, self.skipped)
        # Indices already known to fail at decode time, so each is recorded only once.
        self._failed_at_decode: set[int] = set()

    def _drop_unreadable(self, samples: list[tuple[Path, int]]) -> list[tuple[Path, int]]:
        kept: list[tuple[Path, int]] = []
        bar = tqdm(
            samples,
            desc="Checking images",
            unit="file",
            disable=len(samples) < PROGRESS_BAR_MIN_FILES,
        )
        for path, label in bar:
            try:
                check_image(path)
            except UnreadableImage as error:
                self.skipped.append((Path(path), error.reason))
            else:
                kept.append((Path(path), label))
        if self.skipped:
            warnings.warn(
                f"Skipped {len(self.skipped)} unreadable image(s) of {len(samples)}"
                f"{' in ' + str(self.root) if self.root else ''}; "
                "the list of (path, reason) is in dataset.skipped.",
                stacklevel=3,
            )
        return kept

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Any, int] | None:
        """Return ``(transform(image), label)`` for sample ``i``, or ``None`` if it no longer decodes.

        A file deleted or damaged after the check is added to ``skipped``, with a warning
        naming it, and gives ``None``: :func:`collate_readable` leaves it out of its batch.
        It is not replaced by another sample, as that photo would then appear twice in the
        epoch (weighing double in the gradient), and nothing would show it.
        """
        path, label = self.samples[i]
        try:
            image = load_rgb(path)
        except UnreadableImage as error:
            if i not in self._failed_at_decode:
                self._failed_at_decode.add(i)
                self.skipped.append((path, error.reason))
                warnings.warn(f"{error} It is left out of its batch.", stacklevel=2)
            return None
        return (self.transform(image) if self.transform is not None else image), label

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({len(self)} images, classes={self.classes}, "
            f"skipped={len(self.skipped)}, root={self.root})"
        )


def collate_readable(batch: list[tuple[Any, int] | None], min_size: int = 1) -> Any:
    """``default_collate`` of the items of ``batch`` that decoded (the ``None`` ones are left out).

    Args:
        batch: items of a :class:`RobustImageDataset`; ``None`` marks a file that no longer decodes.
        min_size: fewer readable items than this give ``None`` (no batch): training passes 2,
            as batch norm cannot compute statistics from one image. :class:`ReadableBatches`
            skips such a batch.

    Returns:
        ``(images (B, ...), labels (B,))`` as ``default_collate`` makes them, or ``None``.
    """
    readable = [item for item in batch if item is not None]
    if len(readable) < max(min_size, 1):
        return None
    return default_collate(readable)


class ReadableBatches(torch.utils.data.DataLoader):
    """A ``DataLoader`` that skips the batches its ``collate_fn`` returned as ``None``.

    With :func:`collate_readable`, a batch whose every file broke after the check (or, in
    training, all but one) is skipped instead of stopping the epoch. ``len()`` still counts
    it: an upper bound, exact unless files broke.
    """

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        for batch in super().__iter__():
            if batch is not None:
                yield batch
