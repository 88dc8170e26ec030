"""Offline augmentation (copies made once) versus on-the-fly (new variants every epoch).

On ``cats_and_dogs_sample/train`` at 64 px, with one per-image torchvision v2 pipeline
(``per_sample_equivalent(BatchAugment(), size)``: resized crop, flip, affine, colour):

offline
  (a) ``materialise`` ``--copies`` augmented copies of every image into memory, then iterate
      the enlarged uint8 tensor with ``DeviceLoader`` (no augmentation work per epoch);
  (b) the same copies written as PNG files, read back each epoch by ``RobustImageDataset``
      + ``DataLoader`` (the "save augmented images to disk" recipe: it decodes every epoch);
on the fly
  (c) ``DeviceLoader`` + ``EachImage(pipeline)``: the same pipeline on every image, every epoch;
  (d) ``DeviceLoader`` + ``BatchAugment``: the same kinds of changes, one warp per batch.

An offline epoch holds ``N * (copies + 1)`` images, an on-the-fly epoch ``N``; the table
gives both the epoch time and the time per 1000 images. Run it pinned to two cores:

    taskset -c 0,1 .venv/bin/python benchmarks/offline_vs_on_the_fly.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from torchvision.transforms import v2

from ldl.augment import EachImage, folder_bytes, materialise
from ldl.data.batch_augment import BatchAugment, per_sample_equivalent
from ldl.data.cache import build_tensor_cache
from ldl.data.folders import RobustImageDataset
from ldl.data.index import index_image_folder
from ldl.data.loader import IMAGENET_MEAN, IMAGENET_STD, DeviceLoader

MB = 1024 * 1024


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=os.environ.get("LDL_DATA"),
                        help="folder holding cats_and_dogs_sample/ (default: $LDL_DATA)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--copies", type=int, default=4, help="augmented copies per image made offline")
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed for each path")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers for (b)")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads for this process")
    return parser.parse_args()


def seconds_per_epoch(loader: object, epochs: int) -> tuple[float, int]:
    """Mean seconds of one full pass over ``loader``, and the images in one pass."""
    images = 0
    start = time.perf_counter()
    for _ in range(epochs):
        for x, _y in loader:  # type: ignore[attr-defined]
            images += x.shape[0]
    return (time.perf_counter() - start) / epochs, images // epochs


def main() -> None:
    args = parse_args()
    if args.data is None or not (Path(args.data) / "cats_and_dogs_sample" / "train").is_dir():
        sys.exit("Give --data (or set LDL_DATA) to a folder holding cats_and_dogs_sample/train.")
    torch.set_num_threads(args.threads)
    index = index_image_folder(Path(args.data) / "cats_and_dogs_sample" / "train")
    cache = build_tensor_cache(index, args.size, progress=False, num_workers=2)  # decoding: not compared
    images, labels, count = cache.images, cache.labels, len(cache)
    # The per-image pipeline, ending in the same size and dtype it was given (uint8 here).
    pipeline = per_sample_equivalent(BatchAugment(), args.size)
    print(f"CPUs allowed: {sorted(os.sched_getaffinity(0))}; torch.set_num_threads({args.threads}); "
          f"torch {torch.__version__}")
    print(f"{count} photos at {args.size}px ({images.nbytes / MB:.1f} MB as uint8), {args.copies} offline copies, "
          f"batch {args.batch_size}, {args.epochs} timed epochs per path")
    print(f"pipeline: {pipeline}".replace("\n", " "))

    rows = []  # (name, setup s, extra memory MB, disk MB, epoch s, images per epoch, distinct variants)
    loader_args = dict(batch_size=args.batch_size, shuffle=True, mean=IMAGENET_MEAN, std=IMAGENET_STD)

    # (a) offline, in memory
    start = time.perf_counter()
    big_x, big_y = materialise(images, labels, pipeline, args.copies, seed=0)
    setup_memory = time.perf_counter() - start
    epoch_s, per_epoch = seconds_per_epoch(DeviceLoader(big_x, big_y, **loader_args), args.epochs)
    extra_mb = (big_x.nbytes - images.nbytes) / MB
    variants = count * (args.copies + 1)
    rows.append(("(a) offline, in memory", setup_memory, extra_mb, 0.0, epoch_s, per_epoch, variants))

    # (b) offline, PNG files read back every epoch
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "augmented"
        start = time.perf_counter()
        materialise(images, labels, pipeline, args.copies, seed=0, to=folder, classes=cache.classes)
        setup_disk = time.perf_counter() - start
        disk_mb = folder_bytes(folder) / MB
        dataset = RobustImageDataset(index_image_folder(folder), transform=v2.Compose([
            v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]),
            check=False)
        png_loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True,
                                                 num_workers=args.workers)
        epoch_s, per_epoch = seconds_per_epoch(png_loader, args.epochs)
    rows.append(("(b) offline, PNG files", setup_disk, 0.0, disk_mb, epoch_s, per_epoch, variants))

    # (c) and (d): on the fly, nothing stored; every epoch draws new variants
    torch.manual_seed(0)
    on_the_fly = {
        "(c) on the fly, per image": EachImage(pipeline),
        "(d) on the fly, BatchAugment": BatchAugment(),
    }
    for name, augment in on_the_fly.items():
        epoch_s, per_epoch = seconds_per_epoch(DeviceLoader(images, labels, augment=augment, **loader_args),
                                               args.epochs)
        rows.append((name, 0.0, 0.0, 0.0, epoch_s, per_epoch, count * args.epochs))

    print()
    header = (f"{'path':<30}{'setup s':>9}{'+memory MB':>12}{'disk MB':>9}{'epoch s':>9}"
              f"{'img/epoch':>11}{'s/1000 img':>12}{'variants in ' + str(args.epochs) + ' ep':>18}")
    print(header)
    print("-" * len(header))
    for name, setup, memory, disk, epoch_s, per_epoch, distinct in rows:
        print(f"{name:<30}{setup:>9.2f}{memory:>12.1f}{disk:>9.1f}{epoch_s:>9.3f}{per_epoch:>11d}"
              f"{1000 * epoch_s / per_epoch:>12.3f}{distinct:>18d}")

    per_image = {name: epoch_s / per_epoch for name, _, _, _, epoch_s, per_epoch, _ in rows}
    offline_rate = per_image["(a) offline, in memory"]
    per_image_rate = per_image["(c) on the fly, per image"]
    batch_rate = per_image["(d) on the fly, BatchAugment"]
    # Epochs of on-the-fly work that cost as much as making the copies once.
    augment_cost_per_epoch = (per_image_rate - offline_rate) * count
    print()
    print(f"time per image, on the fly (per image) / offline in memory: {per_image_rate / offline_rate:.1f}x")
    print(f"time per image, on the fly (BatchAugment) / offline in memory: {batch_rate / offline_rate:.1f}x")
    print(f"time per image, offline PNG files / offline in memory: "
          f"{per_image['(b) offline, PNG files'] / offline_rate:.1f}x")
    print(f"memory, offline / on the fly: {big_x.nbytes / images.nbytes:.1f}x "
          f"(+{extra_mb:.1f} MB; {disk_mb:.1f} MB as PNG files)")
    print(f"making {args.copies} copies once costs as much as {setup_memory / augment_cost_per_epoch:.1f} "
          f"epochs of per-image on-the-fly augmentation; after that the offline set only repeats its "
          f"{variants} variants, while on the fly shows {count} new ones every epoch")


if __name__ == "__main__":
    main()
