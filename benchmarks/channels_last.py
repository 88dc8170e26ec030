"""Does channels-last memory order make the course's Trainer faster? Epoch times, NCHW vs NHWC.

The Trainer's default (`channels_last="auto"`) stores the weights and batches of
convolutional networks in channels-last order on the CPU (and under mixed precision on a
GPU). This times whole training epochs of the lesson-2 recap CNN (64 px, with and without
batch norm) on the sample photos through the fast loaders, both ways, in turns after a
warm-up epoch, and prints the median epoch time of each and their ratio.

    LDL_DATA=../shared/data taskset -c 0,1 .venv/bin/python benchmarks/channels_last.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from ldl.data.pipeline import make_loaders  # noqa: E402
from ldl.models import RecapCNN  # noqa: E402
from ldl.profiles import get_profile  # noqa: E402
from ldl.train.trainer import Trainer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    profile = get_profile("smoke")
    loaders = make_loaders(profile, progress=False)
    print(f"recap CNN {profile.grid.widths} at {profile.data.image_size} px on {loaders.dataset}, batch {profile.data.batch_size}, "
          f"{args.device} ({torch.get_num_threads()} threads)")
    print(f"{'model':<22}{'NCHW s/epoch':>14}{'NHWC s/epoch':>14}{'speed-up':>10}")
    for batch_norm in (False, True):
        trainers = {}
        for channels_last in (False, True):
            torch.manual_seed(0)
            model = RecapCNN(num_classes=len(loaders.classes), image_size=profile.data.image_size,
                             widths=profile.grid.widths, hidden=profile.grid.hidden, batch_norm=batch_norm)
            trainers[channels_last] = Trainer(model, device=args.device, channels_last=channels_last,
                                              progress=False, verbose=False)
        seconds: dict[bool, list[float]] = {False: [], True: []}
        for round_index in range(args.rounds + 1):  # round 0 warms up
            for channels_last, trainer in trainers.items():
                start = time.perf_counter()
                trainer.fit(loaders.train, loaders.val, epochs=1)
                if round_index > 0:
                    seconds[channels_last].append(time.perf_counter() - start)
        nchw, nhwc = statistics.median(seconds[False]), statistics.median(seconds[True])
        name = "with batch norm" if batch_norm else "plain"
        print(f"{name:<22}{nchw:>14.2f}{nhwc:>14.2f}{nchw / nhwc:>9.2f}x")


if __name__ == "__main__":
    main()
