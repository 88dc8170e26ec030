"""How much time does TensorBoardLogger (with histograms) add to an epoch?

Same model and data as ``trainer_overhead.py``: the course's recap CNN at 64 px on random
in-memory images. One Trainer fits with the logger (scalars, weight and gradient histograms
every epoch, and an image grid at the start of each fit), one without. Each timed run is a
``fit`` of ``--epochs-per-fit`` epochs (default 3) divided by its epochs, so opening the event
file and writing the image grid are shared out as in a real fit (``--epochs-per-fit 1`` is
the worst case). Runs alternate (A B, then B A) after a warm-up; the medians are compared.

    taskset -c 0,1 .venv/bin/python benchmarks/tensorboard_overhead.py        # 2 cores, like Colab
    .venv/bin/python benchmarks/tensorboard_overhead.py --rounds 9 --images 1600

Prints e.g. ``TensorBoardLogger/plain epoch time ratio: 1.04 (+4%)``. Target: at most 10%.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from benchmarks.trainer_overhead import make_loaders  # noqa: E402
from ldl.models import RecapCNN  # noqa: E402
from ldl.train.tensorboard import TensorBoardLogger  # noqa: E402
from ldl.train.trainer import Trainer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="timed fits per variant (after 1 warm-up)")
    parser.add_argument("--epochs-per-fit", type=int, default=3, help="epochs of each timed fit")
    parser.add_argument("--images", type=int, default=800,
                        help="training images (validation: a quarter); 800 as in the smoke profile")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    # Use as many threads as the cores we may run on (taskset), not as many as the machine has.
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.images} images of "
          f"{args.size} px, batch {args.batch_size}, {args.rounds} timed rounds of {args.epochs_per_fit}-epoch fits "
          "+ 1 warm-up", flush=True)

    train_loader, val_loader = make_loaders(args.images, args.size, args.batch_size, args.seed)
    sample_images = next(iter(train_loader))[0][:16]  # (16, 3, S, S) float32
    torch.manual_seed(args.seed)
    logged_model = RecapCNN(num_classes=2, image_size=args.size)
    plain_model = RecapCNN(num_classes=2, image_size=args.size)
    plain_model.load_state_dict(logged_model.state_dict())  # the same starting weights
    parameters = sum(p.numel() for p in logged_model.parameters())

    with tempfile.TemporaryDirectory() as log_dir:
        logger = TensorBoardLogger(log_dir, histograms=True, images=sample_images)
        logged = Trainer(logged_model, loss_fn=nn.CrossEntropyLoss(), device="cpu", callbacks=[logger],
                         progress=True, verbose=False)
        plain = Trainer(plain_model, loss_fn=nn.CrossEntropyLoss(), device="cpu", progress=True, verbose=False)
        variants = [("TensorBoardLogger", logged), ("plain", plain)]
        times: dict[str, list[float]] = {name: [] for name, _ in variants}
        for round_index in range(args.rounds + 1):  # round 0 warms up caches, allocator and threads
            order = variants if round_index % 2 == 0 else variants[::-1]
            measured = {}
            for name, trainer in order:
                start = time.perf_counter()
                trainer.fit(train_loader, val_loader, epochs=args.epochs_per_fit)
                measured[name] = (time.perf_counter() - start) / args.epochs_per_fit  # seconds per epoch
            label = "warm-up" if round_index == 0 else f"round {round_index}"
            print(f"{label}: TensorBoardLogger {measured['TensorBoardLogger']:.3f}s, plain {measured['plain']:.3f}s",
                  flush=True)
            if round_index > 0:
                for name, seconds in measured.items():
                    times[name].append(seconds)
        written = sum(f.stat().st_size for f in Path(log_dir).rglob("*") if f.is_file())

    logged_median, plain_median = statistics.median(times["TensorBoardLogger"]), statistics.median(times["plain"])
    paired = statistics.median(t / p for t, p in zip(times["TensorBoardLogger"], times["plain"]))
    ratio = logged_median / plain_median
    print(f"model: {parameters:,} parameters; event files: {written / 1e6:.2f} MB for {args.rounds + 1} fits")
    print(f"median epoch: TensorBoardLogger {logged_median:.3f}s, plain {plain_median:.3f}s "
          f"(median of per-round ratios: {paired:.3f})")
    print(f"TensorBoardLogger/plain epoch time ratio: {ratio:.2f} ({(ratio - 1) * 100:+.0f}%)")


if __name__ == "__main__":
    main()
