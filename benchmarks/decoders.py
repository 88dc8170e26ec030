"""Which JPEG decoder fills the tensor cache fastest? PIL with draft vs torchvision's decode_jpeg.

The cache (`ldl.data.cache.build_tensor_cache`) decodes every photo once, resizes its short
side to S and centre-crops it to S x S. This times that one job per photo, several ways, in
turns over the same files, and prints the median images/s of each and its ratio to PIL with
`draft` (which lets libjpeg decode straight at 1/2, 1/4 or 1/8 scale when the target is that
much smaller), the cache's decoder without the `fast-decode` extra:

1. PIL + draft;
2. PIL, full size then resize;
3. `decode_square`, what the cache runs here (TorchCodec with the `fast-decode` extra, else PIL + draft);
4. TorchCodec's `decode_jpeg` on the CPU, then a `transforms.v2` resize and crop;
5. `torchvision.io.decode_jpeg` on the CPU, the same way;
6. `torchvision.io.decode_jpeg(..., device="cuda")` on a batch of files, resized on the GPU
   (only where CUDA is available).

    LDL_DATA=../shared/data .venv/bin/python benchmarks/decoders.py --sizes 64 224

torchvision's image decoders are deprecated since torchvision 0.29 in favour of TorchCodec,
which is why the cache uses TorchCodec's (and PIL without it); torchvision's row stays as a
reference.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg, read_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from ldl.data import cache as cache_module  # noqa: E402
from ldl.data.cache import decode_square  # noqa: E402
from ldl.data.folders import load_rgb  # noqa: E402


def pil_draft(path: Path, size: int) -> torch.Tensor:
    image = TF.resize(load_rgb(path, draft_size=size), size, antialias=True)
    return TF.pil_to_tensor(TF.center_crop(image, [size, size]))


def pil_full(path: Path, size: int) -> torch.Tensor:
    with Image.open(path) as image:
        image = image.convert("RGB")
        image = TF.resize(image, size, antialias=True)
        return TF.pil_to_tensor(TF.center_crop(image, [size, size]))


def torchvision_cpu(path: Path, size: int) -> torch.Tensor:
    image = decode_jpeg(read_file(str(path)), mode=ImageReadMode.RGB)  # (3, H, W) uint8
    return TF.center_crop(TF.resize(image, size, antialias=True), [size, size])


def torchcodec_cpu(path: Path, size: int) -> torch.Tensor:
    from torchcodec.decoders import decode_jpeg as codec_decode_jpeg

    image = codec_decode_jpeg(path, mode="RGB")  # (3, H, W) uint8
    return TF.center_crop(TF.resize(image, size, antialias=True), [size, size])


def torchvision_cuda_batch(paths: list[Path], size: int) -> list[torch.Tensor]:
    data = [read_file(str(path)) for path in paths]
    images = decode_jpeg(data, mode=ImageReadMode.RGB, device="cuda")  # a list of (3, H, W) uint8 on the GPU
    return [TF.center_crop(TF.resize(image, size, antialias=True), [size, size]) for image in images]


def time_per_image(job: Callable[[], object], count: int) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    job()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("LDL_DATA", "data")))
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    folder = args.data / "cats_and_dogs_sample" / "train"
    paths = sorted(folder.rglob("*.jpg"))[: args.images]
    if not paths:
        raise SystemExit(f"No .jpg photos under {folder}: pass --data (or set LDL_DATA) to the folder holding the samples.")
    print(f"{len(paths)} photos from {folder}, torch threads: {torch.get_num_threads()}")

    for size in args.sizes:
        ways: dict[str, Callable[[], object]] = {
            "PIL + draft": lambda: [pil_draft(p, size) for p in paths],
            "PIL, full size": lambda: [pil_full(p, size) for p in paths],
            f"decode_square ({cache_module.jpeg_decoder()})": lambda: [decode_square(p, size) for p in paths],
        }
        if cache_module.torchcodec_jpeg_decoder() is not None:
            ways["TorchCodec decode_jpeg, CPU"] = lambda: [torchcodec_cpu(p, size) for p in paths]
        ways["torchvision decode_jpeg, CPU"] = lambda: [torchvision_cpu(p, size) for p in paths]
        if torch.cuda.is_available():
            ways["torchvision decode_jpeg, GPU batch"] = lambda: torchvision_cuda_batch(paths, size)
            ways["torchvision decode_jpeg, GPU batch"]()  # warm-up: nvjpeg handles, CUDA context
        rates: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(args.rounds):
            for name, job in ways.items():
                rates[name].append(time_per_image(job, len(paths)))
        baseline = statistics.median(rates["PIL + draft"])
        print(f"\n{f'{size} px':<36}{'images/s':>10}{'vs PIL + draft':>16}")
        for name in ways:
            median = statistics.median(rates[name])
            print(f"{name:<36}{median:>10.0f}{median / baseline:>15.2f}x")


if __name__ == "__main__":
    main()
