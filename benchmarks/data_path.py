"""How much faster is the decoded-tensor cache than the per-sample pipeline?

Both paths make the same augmented, normalised batches of ``cats_and_dogs_sample/train``:

(a) per-sample: ``RobustImageDataset`` (decodes each JPEG every epoch) + the torchvision v2
    pipeline from ``per_sample_equivalent`` + ``ToImage/ToDtype/Normalize``, through a
    ``DataLoader(num_workers=workers)``;
(b) fast: ``build_tensor_cache`` once (a one-off cost, reported on its own), then
    ``DeviceLoader`` + ``BatchAugment`` with the same settings.

Run it pinned to two cores, like a free Colab machine:

    taskset -c 0,1 .venv/bin/python benchmarks/data_path.py --data ../shared/data

The last line reads ``fast/per-sample images/s ratio: N.Nx`` (per epoch, after the cache build).
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

from ldl.data.batch_augment import BatchAugment, per_sample_equivalent
from ldl.data.cache import build_tensor_cache
from ldl.data.folders import RobustImageDataset
from ldl.data.index import index_image_folder
from ldl.data.loader import IMAGENET_MEAN, IMAGENET_STD, DeviceLoader


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=os.environ.get("LDL_DATA"),
                        help="folder holding cats_and_dogs_sample/ (default: $LDL_DATA)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2,
                        help="DataLoader worker processes for (a), decoding threads for the cache build of (b)")
    parser.add_argument("--device", default="cpu", help="where the fast path keeps and augments batches")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch.set_num_threads for this process (default 1, see below)")
    return parser.parse_args()


def time_epochs(loader: object, epochs: int) -> tuple[float, int]:
    """Seconds to consume ``epochs`` full epochs of ``loader``, and the images seen."""
    images = 0
    start = time.perf_counter()
    for _ in range(epochs):
        for x, _y in loader:  # type: ignore[attr-defined]
            images += x.shape[0]
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, images


def main() -> None:
    args = parse_args()
    if args.data is None or not (Path(args.data) / "cats_and_dogs_sample" / "train").is_dir():
        sys.exit("Give --data (or set LDL_DATA) to a folder holding cats_and_dogs_sample/train.")
    cpus = sorted(os.sched_getaffinity(0))
    # One thread by default: a (32, 3, 64, 64) batch is too small work to split, and OpenMP
    # threads that spin-wait for each other slow down badly when the 2 cores are also busy
    # with anything else. DataLoader workers of the per-sample path use one thread each
    # (PyTorch's default), so both paths run one torch thread per process.
    torch.set_num_threads(args.threads)
    index = index_image_folder(Path(args.data) / "cats_and_dogs_sample" / "train")
    augment = BatchAugment()
    print(f"CPUs allowed: {cpus}; torch.set_num_threads({args.threads}) in the main process, "
          f"{args.workers} DataLoader worker(s) with 1 thread each; torch {torch.__version__}")
    print(f"{len(index)} photos, {args.size}px, batch {args.batch_size}, {args.epochs} epochs, "
          f"augment: {augment!r}")

    # (a) per-sample pipeline: decode + augment every image, every epoch.
    start = time.perf_counter()
    dataset = RobustImageDataset(
        index,
        transform=v2.Compose([
            per_sample_equivalent(augment, args.size),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]),
    )
    check_s = time.perf_counter() - start
    per_sample_loader = torch.utils.data.DataLoader(
        dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.workers
    )
    per_sample_s, per_sample_images = time_epochs(per_sample_loader, args.epochs)
    per_sample_rate = per_sample_images / per_sample_s
    print(f"(a) per-sample: file check {check_s:.2f} s once; {args.epochs} epochs {per_sample_s:.2f} s "
          f"-> {per_sample_rate:.0f} images/s")

    # (b) fast path: decode once into a uint8 tensor, then batches + BatchAugment.
    with tempfile.TemporaryDirectory() as cache_dir:
        start = time.perf_counter()
        cache = build_tensor_cache(index, args.size, cache_dir=Path(cache_dir), progress=False,
                                   num_workers=args.workers)
        build_s = time.perf_counter() - start
        start = time.perf_counter()
        build_tensor_cache(index, args.size, cache_dir=Path(cache_dir), progress=False)
        reload_s = time.perf_counter() - start
    fast_loader = DeviceLoader.from_cache(cache, batch_size=args.batch_size, shuffle=True,
                                          device=args.device, augment=augment.to(args.device))
    fast_s, fast_images = time_epochs(fast_loader, args.epochs)
    fast_rate = fast_images / fast_s
    with_build_rate = fast_images / (fast_s + build_s)
    print(f"(b) fast path: cache build {build_s:.2f} s once ({len(cache) / build_s:.0f} images/s, "
          f"{args.workers} thread(s), saved to disk), reload from disk {reload_s:.3f} s; "
          f"{args.epochs} epochs {fast_s:.2f} s on {args.device} -> {fast_rate:.0f} images/s, "
          f"{with_build_rate:.0f} images/s counting the build")
    print(f"including the one-off cache build ({args.epochs} epochs): "
          f"{with_build_rate / per_sample_rate:.1f}x")
    print(f"fast/per-sample images/s ratio: {fast_rate / per_sample_rate:.1f}x "
          f"(per epoch, cache build excluded; {fast_rate:.0f} vs {per_sample_rate:.0f} images/s)")


if __name__ == "__main__":
    main()
