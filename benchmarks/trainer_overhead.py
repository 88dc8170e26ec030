"""How much does the Trainer cost over a minimal hand-written loop doing the same work?

Same model (the course's recap CNN at 64 px), same in-memory data, same optimizer, same
seed. Epochs are timed in turns (Trainer, hand-written, Trainer, ...) after a warm-up,
so a slow moment of the machine hits both alike; the medians are compared. The Trainer
runs as students use it: progress bar and the per-epoch line on.

    taskset -c 0,1 .venv/bin/python benchmarks/trainer_overhead.py          # 2 cores, like Colab
    .venv/bin/python benchmarks/trainer_overhead.py --rounds 9 --images 1600

Prints e.g. ``Trainer/hand-written epoch time ratio: 1.012 (+1.2%)``. Target: at most 3%.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from ldl.models import RecapCNN  # noqa: E402
from ldl.train.trainer import Trainer  # noqa: E402


def make_loaders(images: int, size: int, batch_size: int, seed: int) -> tuple[DataLoader, DataLoader]:
    """Random images (N, 3, size, size) float32 with labels (N,) int64; a quarter as many for validation."""
    g = torch.Generator().manual_seed(seed)
    x_train, y_train = torch.randn(images, 3, size, size, generator=g), torch.randint(0, 2, (images,), generator=g)
    x_val, y_val = torch.randn(images // 4, 3, size, size, generator=g), torch.randint(0, 2, (images // 4,), generator=g)
    train = DataLoader(TensorDataset(x_train, y_train), batch_size=batch_size, shuffle=True)
    val = DataLoader(TensorDataset(x_val, y_val), batch_size=batch_size)
    return train, val


def hand_written_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module,
                       train_loader: DataLoader, val_loader: DataLoader) -> tuple[float, float]:
    """The loop a student writes first: train pass, then a validation pass. Returns (val_loss, val_accuracy)."""
    model.train()
    for x, y in train_loader:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
    model.eval()
    total_loss, correct, count = torch.zeros(()), torch.zeros(()), 0
    with torch.no_grad():
        for x, y in val_loader:
            logits = model(x)
            total_loss += loss_fn(logits, y) * len(y)
            correct += (logits.argmax(dim=1) == y).sum()
            count += len(y)
    return (total_loss / count).item(), (correct / count).item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="timed epochs per variant (after 1 warm-up)")
    parser.add_argument("--images", type=int, default=800, help="training images (validation: a quarter)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    # Use as many threads as the cores we may run on (taskset), not as many as the machine has.
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.images} images of "
          f"{args.size} px, batch {args.batch_size}, {args.rounds} timed rounds + 1 warm-up", flush=True)

    train_loader, val_loader = make_loaders(args.images, args.size, args.batch_size, args.seed)
    torch.manual_seed(args.seed)
    trainer_model = RecapCNN(num_classes=2, image_size=args.size)
    hand_model = RecapCNN(num_classes=2, image_size=args.size)
    hand_model.load_state_dict(trainer_model.state_dict())  # the same starting weights
    trainer = Trainer(trainer_model, optimizer=torch.optim.Adam(trainer_model.parameters(), lr=1e-3),
                      loss_fn=nn.CrossEntropyLoss(), device="cpu", progress=True, verbose=True,
                      channels_last=False)  # the same arithmetic as the loop: only the loop's overhead differs
    hand_optimizer = torch.optim.Adam(hand_model.parameters(), lr=1e-3)
    hand_loss = nn.CrossEntropyLoss()

    def run_trainer() -> None:
        trainer.fit(train_loader, val_loader, epochs=1)

    def run_hand_written() -> None:
        hand_written_epoch(hand_model, hand_optimizer, hand_loss, train_loader, val_loader)

    times: dict[str, list[float]] = {"Trainer": [], "hand-written": []}
    variants = [("Trainer", run_trainer), ("hand-written", run_hand_written)]
    for round_index in range(args.rounds + 1):  # round 0 warms up caches, allocator and threads
        # A B, then B A: neither variant always runs right after the other one.
        order = variants if round_index % 2 == 0 else variants[::-1]
        measured = {}
        for name, run_epoch in order:
            start = time.perf_counter()
            run_epoch()
            measured[name] = time.perf_counter() - start
        label = "warm-up" if round_index == 0 else f"round {round_index}"
        print(f"{label}: Trainer {measured['Trainer']:.3f}s, hand-written {measured['hand-written']:.3f}s", flush=True)
        if round_index > 0:
            for name, seconds in measured.items():
                times[name].append(seconds)

    trainer_median, hand_median = statistics.median(times["Trainer"]), statistics.median(times["hand-written"])
    # Each round's own ratio cancels a slow spell of the machine that hit both variants alike.
    paired = statistics.median(t / h for t, h in zip(times["Trainer"], times["hand-written"]))
    ratio = trainer_median / hand_median
    print(f"median epoch: Trainer {trainer_median:.3f}s, hand-written {hand_median:.3f}s "
          f"(median of per-round ratios: {paired:.3f})")
    print(f"Trainer/hand-written epoch time ratio: {ratio:.3f} ({(ratio - 1) * 100:+.1f}%)")

if __name__ == "__main__":
    main()
