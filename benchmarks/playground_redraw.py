"""How long does the augmentation playground take to redraw after a slider moves?

Two real photos (a cat and a dog from ``$LDL_DATA/cats_and_dogs_sample``), each with 7
augmented copies at 160 px (a grid of 2 x 8 tiles), as in the lesson. The script moves
sliders from Python the way a student would, one knob after another (the recipe grows to
every transform, the mixing preview and new seeds), and times each redraw: the augmented
grid, its JPEG, the mixing preview with soft labels and the code box.

    taskset -c 0,1 .venv/bin/python benchmarks/playground_redraw.py     # 2 cores, like Colab
    .venv/bin/python benchmarks/playground_redraw.py --photos 1 --rounds 2

Prints the median and 90th percentile redraw time. Target: median under 0.3 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from ldl.augment.recipe import AugmentSettings  # noqa: E402
from ldl.widgets import augmentation_playground  # noqa: E402

TARGET_SECONDS = 0.3
# (control, value) in the order a student might try them: 30 slider moves.
MOVES: list[tuple[str, object]] = [
    ("hflip_p", 0.5), ("vflip_p", 0.2), ("crop_scale", 0.6), ("degrees", 15.0), ("degrees", 30.0),
    ("translate", 0.1), ("zoom", 0.2), ("shear", 10.0), ("perspective", 0.3), ("brightness", 0.3),
    ("contrast", 0.3), ("saturation", 0.4), ("hue", 0.1), ("grayscale_p", 0.2), ("equalize_p", 0.3),
    ("noise_sigma", 0.05), ("erasing_p", 0.5), ("erasing_scale", 0.2), ("gridmask", True), ("gridmask_ratio", 0.5),
    ("mixup_alpha", 0.4), ("cutmix_alpha", 1.0), ("seed", 1), ("seed", 2), ("degrees", 5.0),
    ("perspective", 0.0), ("noise_sigma", 0.1), ("hflip_p", 1.0), ("brightness", 0.6), ("seed", 3),
]


def sample_photos(count: int) -> list[Path]:
    """The first cat, then the first dog, ... of the sample's training split."""
    data = os.environ.get("LDL_DATA")
    train = Path(data or ".") / "cats_and_dogs_sample" / "train"
    if not data or not train.is_dir():
        sys.exit("Set LDL_DATA to a folder that holds cats_and_dogs_sample/ (e.g. LDL_DATA=../shared/data).")
    kinds = ["cats", "dogs"]
    return [sorted((train / kinds[i % 2]).glob("*.jpg"))[i // 2] for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=2, help="photos in the grid (rows)")
    parser.add_argument("--copies", type=int, default=7, help="augmented copies per photo")
    parser.add_argument("--size", type=int, default=160, help="tile side in pixels")
    parser.add_argument("--rounds", type=int, default=1, help="times the 30 moves are repeated")
    args = parser.parse_args()

    photos = sample_photos(args.photos)
    start = time.perf_counter()
    labels = ["cat" if i % 2 == 0 else "dog" for i in range(len(photos))]  # as sample_photos picks them
    playground = augmentation_playground(photos, n_augmented=args.copies, image_size=args.size, labels=labels)
    first_draw = time.perf_counter() - start

    seconds = []
    for _ in range(args.rounds):
        playground.set(**vars(AugmentSettings()), seed=0)  # back to no augmentation, untimed
        for name, value in MOVES:
            before = time.perf_counter()
            playground.set(**{name: value})
            seconds.append(time.perf_counter() - before)

    median = statistics.median(seconds)
    p90 = statistics.quantiles(seconds, n=10)[-1]
    print(f"grid: {args.photos} photo(s) x (1 + {args.copies}) tiles at {args.size} px; "
          f"torch threads: {torch.get_num_threads()}, CPUs usable: {len(os.sched_getaffinity(0))}")
    print(f"building the playground (loading the photos, the first grid): {first_draw:.2f} s")
    print(f"redraws: {len(seconds)}; median {median:.3f} s, p90 {p90:.3f} s, max {max(seconds):.3f} s")
    print(f"median / target ({TARGET_SECONDS} s): {median / TARGET_SECONDS:.2f} "
          f"({'OK' if median < TARGET_SECONDS else 'TOO SLOW'})")


if __name__ == "__main__":
    main()
