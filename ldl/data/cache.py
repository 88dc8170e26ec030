"""Decode once: a whole split as one uint8 tensor, cached on disk.

On a 2-core machine (Colab, a laptop) decoding JPEGs costs more than training a small
network on them, and the per-sample pipeline pays that cost again every epoch. Here every
image is decoded once, resized and centre-cropped to ``image_size``, and stored in one
``(N, 3, S, S) uint8`` tensor (64 px: 12 KB an image, 10 MB for 800 photos). Random
augmentation then runs on whole batches (:mod:`ldl.data.batch_augment`) and batches come
straight from memory (:class:`ldl.data.loader.DeviceLoader`).

>>> from ldl.data.index import index_image_folder
>>> cache = build_tensor_cache(index_image_folder("cats_and_dogs_sample/train"), 64,
...                            cache_dir=default_cache_dir())
>>> cache.images.shape, cache.images.dtype     # (800, 3, 64, 64) torch.uint8
>>> cache.skipped                               # [(path, reason), ...] of unreadable files

The saved file is named by a hash of the file list (paths, sizes, modification times), the
image size and a format version: change any of them and a new cache is built. It also holds a
CRC-32 of its pixels and labels, checked on every reload: a file damaged on disk is decoded
again, with a warning naming it, never trained on.
"""

from __future__ import annotations

import functools
import hashlib
import os
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF
from tqdm.auto import tqdm

from ldl.core.files import atomic_torch_save
from ldl.data.folders import UnreadableImage, load_rgb
from ldl.data.index import ImageIndex, check_every_class_readable

# Bump when the stored content changes meaning (resize method, crop, layout of the file).
# 2: the decoder's name is part of the key; 3: EXIF orientation applied by PIL too, and a
# checksum of the pixels is stored.
CACHE_FORMAT_VERSION = 3


@dataclass
class TensorCache:
    """A decoded split held in memory.

    Attributes:
        images: ``(N, 3, S, S) uint8`` RGB images, short side resized to ``S``, centre-cropped.
        labels: ``(N,) int64`` class index of each image.
        classes: class names; ``classes[label]`` names a label.
        skipped: ``(path, reason)`` of each file that could not be decoded.
    """

    images: torch.Tensor  # (N, 3, S, S) uint8
    labels: torch.Tensor  # (N,) int64
    classes: list[str]
    skipped: list[tuple[str, str]]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_size(self) -> int:
        """Side ``S`` of the square images."""
        return int(self.images.shape[-1])

    def subset(self, per_class: int | None) -> TensorCache:
        """Keep at most ``per_class`` images of each class: the first ones, in order.

        ``None`` keeps everything. The tensors of the result are new (indexed copies).
        """
        if per_class is None:
            return self
        keep: list[int] = []
        seen = [0] * len(self.classes)
        for i, label in enumerate(self.labels.tolist()):
            if seen[label] < per_class:
                keep.append(i)
                seen[label] += 1
        rows = torch.tensor(keep, dtype=torch.int64)
        return TensorCache(self.images[rows], self.labels[rows], list(self.classes), list(self.skipped))


def default_cache_dir() -> Path:
    """Where decoded caches go: ``$LDL_CACHE``, else ``~/.cache/ldl/tensors``.

    Not under ``LDL_DATA``: the data folder may be read-only (a shared mount in CI).
    """
    configured = os.environ.get("LDL_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "ldl" / "tensors"


def cache_key(index: ImageIndex, image_size: int) -> str:
    """A hex digest that changes when any file, the image size or the format changes.

    Files are identified by path, size and modification time (hashing their bytes would
    cost as much as decoding them).
    """
    digest = hashlib.sha256()
    # Two decoders resize slightly differently: a cache made by one is not reused by the other.
    digest.update(f"ldl-tensor-cache v{CACHE_FORMAT_VERSION} size={image_size} decoder={jpeg_decoder()}\n".encode())
    digest.update(("classes=" + "\t".join(index.classes) + "\n").encode())
    for path, label in index.samples:
        try:
            stat = Path(path).stat()
            fingerprint = f"{stat.st_size} {stat.st_mtime_ns}"
        except OSError:
            fingerprint = "missing"
        # The path as bytes (os.fsencode): a name that is not valid UTF-8 (Linux keeps it as
        # surrogate escapes) cannot be .encode()d, but its bytes on disk always exist.
        digest.update(os.fsencode(Path(path).resolve()) + f"\t{label}\t{fingerprint}\n".encode())
    return digest.hexdigest()[:24]


# PIL's draft decoding at 1/DRAFT_WINS of the size or smaller beats TorchCodec's full-size decode.
DRAFT_WINS = 4


def _decoded_faster_by_torchcodec(path: Path, image_size: int) -> bool:
    """A JPEG whose short side is under ``DRAFT_WINS`` times the target: PIL's draft barely shrinks it."""
    if path.suffix.lower() not in (".jpg", ".jpeg"):
        return False
    try:
        with Image.open(path) as probe:  # reads the header only
            return min(probe.size) < DRAFT_WINS * image_size
    except Exception:  # unreadable: PIL's path reports it properly
        return False


@functools.cache
def torchcodec_jpeg_decoder() -> Callable[..., torch.Tensor] | None:
    """TorchCodec's ``decode_jpeg`` if it loads here (the ``fast-decode`` extra), else None.

    Loaded on first use, not at import: its library takes a third of a second to load, which
    every notebook would pay even when its tensor cache is already on disk.
    """
    try:
        from torchcodec.decoders import decode_jpeg
    except Exception:  # not installed, or built for another torch version (it then fails to load)
        return None
    return decode_jpeg


def jpeg_decoder() -> str:
    """``"torchcodec"`` when TorchCodec's JPEG decoder loads here, else ``"pil"``."""
    return "torchcodec" if torchcodec_jpeg_decoder() is not None else "pil"


def decode_square(path: str | Path, image_size: int) -> torch.Tensor:
    """Decode one file to a ``(3, S, S) uint8`` tensor: short side to ``S``, centre crop.

    PIL decodes a JPEG at 1/2, 1/4 or 1/8 scale when the target is that much smaller
    (``draft``): then nothing is faster. When it cannot shrink the photo at least
    ``DRAFT_WINS`` times, TorchCodec's libjpeg-turbo decoder (the ``fast-decode`` extra), with
    a tensor resize, is about twice as fast on 2 cores (``benchmarks/decoders.py``: 224 px
    from 500 x 375 photos). Everything else, and any JPEG TorchCodec rejects, goes through
    PIL, which names what is wrong with a damaged file.

    Raises:
        UnreadableImage: the file does not decode.
    """
    decode_jpeg = torchcodec_jpeg_decoder()
    if decode_jpeg is not None and _decoded_faster_by_torchcodec(Path(path), image_size):
        try:
            # TorchCodec applies the EXIF orientation, as load_rgb does: both pipelines see the same pixels.
            image = decode_jpeg(Path(path), mode="RGB")  # (3, H, W) uint8
        except (RuntimeError, ValueError, OSError):
            pass  # truncated, not really a JPEG, ...: PIL below tries, and gives the reason if it fails too
        else:
            image = TF.resize(image, image_size, antialias=True)  # short side -> image_size
            return TF.center_crop(image, [image_size, image_size])
    image = load_rgb(path, draft_size=image_size)
    image = TF.resize(image, image_size, antialias=True)  # short side -> image_size
    image = TF.center_crop(image, [image_size, image_size])
    return TF.pil_to_tensor(image)  # (3, S, S) uint8


def _decode_or_reason(path: Path, image_size: int) -> torch.Tensor | str:
    """The decoded tensor, or the reason it could not be decoded."""
    try:
        return decode_square(path, image_size)
    except UnreadableImage as error:
        return error.reason


def build_tensor_cache(
    index: ImageIndex,
    image_size: int,
    *,
    cache_dir: Path | None = None,
    progress: bool = True,
    num_workers: int = 0,
) -> TensorCache:
    """Decode every image of ``index`` into a :class:`TensorCache` (or reload a saved one).

    Args:
        index: the files and class names of one split.
        image_size: side ``S`` of the stored square images.
        cache_dir: if given, reuse ``<cache_dir>/<key>.pt`` when present, else save it there.
        progress: show a tqdm bar while decoding.
        num_workers: decode with this many threads (0: in this thread). Threads are enough:
            PIL releases the GIL while it decodes and resizes.

    Bad files are skipped and listed in ``skipped``; they never stop the build.
    """
    if image_size < 1:
        raise ValueError(f"image_size must be a positive number of pixels, got {image_size}.")
    cache_file = Path(cache_dir) / f"{cache_key(index, image_size)}.pt" if cache_dir is not None else None
    if cache_file is not None and cache_file.exists():
        cached = _load(cache_file)
        if cached is not None:
            return cached

    cache = _decode_all(index, image_size, progress=progress, num_workers=num_workers)
    if len(cache) == 0:
        first_failures = "; ".join(f"{path}: {reason}" for path, reason in cache.skipped[:3])
        raise ValueError(
            f"No readable images among the {len(index)} files of {index.root or 'the index'}"
            f"{' (' + first_failures + ')' if first_failures else ''}: check the folder holds <class>/<image> files."
        )
    check_every_class_readable(index, cache.labels.tolist(), cache.skipped)
    if cache.skipped:
        warnings.warn(
            f"Skipped {len(cache.skipped)} unreadable image(s) of {len(index)}"
            f"{' in ' + str(index.root) if index.root else ''}; "
            "the list of (path, reason) is in cache.skipped.",
            stacklevel=2,
        )
    if cache_file is not None:
        _save(cache, cache_file)
    return cache


def _decode_all(index: ImageIndex, image_size: int, *, progress: bool, num_workers: int) -> TensorCache:
    paths = [Path(path) for path, _ in index.samples]
    # Filled in place: stacking a list of tensors would hold every image twice.
    images = torch.empty((len(paths), 3, image_size, image_size), dtype=torch.uint8)
    good = torch.zeros(len(paths), dtype=torch.bool)
    skipped: list[tuple[str, str]] = []

    def decode(path: Path) -> torch.Tensor | str:
        return _decode_or_reason(path, image_size)

    bar = tqdm(total=len(paths), desc=f"Decoding images at {image_size}px", unit="img", disable=not progress)
    if num_workers > 0:
        with ThreadPoolExecutor(max_workers=num_workers) as pool:
            results = pool.map(decode, paths)  # in order, computed in parallel
            _collect(results, paths, images, good, skipped, bar)
    else:
        _collect(map(decode, paths), paths, images, good, skipped, bar)
    bar.close()

    labels = torch.tensor([label for _, label in index.samples], dtype=torch.int64)
    if not bool(good.all()):
        images, labels = images[good], labels[good]
    return TensorCache(images, labels, list(index.classes), skipped)


def _collect(
    results: Iterable[torch.Tensor | str],
    paths: list[Path],
    images: torch.Tensor,
    good: torch.Tensor,
    skipped: list[tuple[str, str]],
    bar: tqdm,
) -> None:
    """Copy each decoded image into its row of ``images``; list the failures."""
    for row, (path, result) in enumerate(zip(paths, results)):
        if isinstance(result, str):
            skipped.append((str(path), result))
        else:
            images[row] = result
            good[row] = True
        bar.update(1)


def pixel_checksum(images: torch.Tensor, labels: torch.Tensor) -> int:
    """CRC-32 of the bytes of ``images`` (N, 3, S, S) uint8 and ``labels`` (N,) int64.

    CRC-32 rather than a cryptographic hash: it guards against damage (a disk, a copy cut
    short), not against an attacker, and zlib computes it at several GB/s, so checking it
    on every reload costs milliseconds (6 to 20 ms for 2,000 images at 64 px, 24.6 MB, on
    a busy 2-core machine; ``torch.load`` of that file takes about 5 ms).
    """
    # .numpy() shares the memory: crc32 reads the tensor's buffer without copying it.
    crc = zlib.crc32(images.contiguous().numpy())
    return zlib.crc32(labels.contiguous().numpy(), crc)


def _save(cache: TensorCache, cache_file: Path) -> None:
    """Write atomically (:func:`ldl.core.files.atomic_torch_save`).

    An interrupted write therefore never leaves a half-written cache under the real name.
    A folder that cannot be written only costs the reuse, so it is a warning, not an error.
    """
    payload = {
        "format": CACHE_FORMAT_VERSION,
        "images": cache.images,
        "labels": cache.labels,
        "checksum": pixel_checksum(cache.images, cache.labels),
        "classes": list(cache.classes),
        # Plain lists of str, so torch.load(weights_only=True) accepts the file.
        "skipped_paths": [path for path, _ in cache.skipped],
        "skipped_reasons": [reason for _, reason in cache.skipped],
    }
    try:
        atomic_torch_save(payload, cache_file)
    except OSError as error:
        warnings.warn(
            f"Could not save the tensor cache to {cache_file} ({error}); it will be decoded again "
            "next time. Set LDL_CACHE to a writable folder to keep it.",
            stacklevel=3,
        )


def _load(cache_file: Path) -> TensorCache | None:
    """Reload a saved cache; ``None`` (with a warning) if it is unreadable, outdated or damaged.

    ``torch.load`` does not check the bytes of the stored tensors, so random bytes written
    over the pixels would load as a valid cache: the stored checksum is compared first.
    """
    try:
        payload = torch.load(cache_file, map_location="cpu", weights_only=True)
        if payload.get("format") != CACHE_FORMAT_VERSION:
            raise ValueError(f"format {payload.get('format')}, expected {CACHE_FORMAT_VERSION}")
        if pixel_checksum(payload["images"], payload["labels"]) != payload["checksum"]:
            raise ValueError("its pixels or labels do not match their stored checksum: the file is damaged")
        return TensorCache(
            images=payload["images"],
            labels=payload["labels"],
            classes=list(payload["classes"]),
            skipped=list(zip(payload["skipped_paths"], payload["skipped_reasons"])),
        )
    except Exception as error:  # any damage to the file means: decode again
        warnings.warn(f"Ignoring unreadable tensor cache {cache_file} ({error}); decoding again.", stacklevel=3)
        return None
