"""A complete data-parallel training script: the course's Trainer, started by torchrun.

Lesson 7 runs it on the CPU with two processes and with one, and compares the weights::

    torchrun --nproc_per_node=2 -m ldl.course.torchrun_example --batch-size 16 --out runs/two
    python -m ldl.course.torchrun_example --batch-size 32 --out runs/one

Two processes at batch 16 take the same steps as one process at batch 32: each process
reads its half of every global batch, and DistributedDataParallel averages their gradients,
which is the gradient of the whole batch. On GPUs the same script runs unchanged
(``--nproc_per_node`` = the number of GPUs, NCCL instead of gloo); across machines add
``--nnodes=2 --rdzv-backend=c10d --rdzv-endpoint=HOST:29500`` on each machine.

Nothing in the training code knows about the processes: the Trainer reads torchrun's
environment (see :mod:`ldl.train.distributed`). The script only has to seed every process
alike and let rank 0 alone write the files that are not checkpoints.

Outputs in ``--out``: ``checkpoint.pt`` (resumable, rank 0), ``weights.pt`` (the final
weights, rank 0), and ``rank<r>.json`` per process (what it saw and whether it wrote the
checkpoint).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from ldl.data.loader import DeviceLoader
from ldl.train import Callback, ModelCheckpoint, Trainer, save_weights


def small_cnn(classes: int) -> nn.Sequential:
    """``(B, 3, S, S)`` -> ``(B, classes)``. No batch norm and no dropout: with them each process
    would normalise with its own half batch, or drop its own units, and the two runs could
    not agree weight for weight."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(16, classes),
    )


def load_images(path: Path | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, 3, S, S)`` uint8 images and ``(N,)`` labels: a saved file, or 256 random ones."""
    if path is None:
        generator = torch.Generator().manual_seed(seed)
        labels = torch.randint(0, 2, (256,), generator=generator)
        images = torch.randint(0, 256, (256, 3, 16, 16), generator=generator, dtype=torch.uint8)
        images[labels == 1, 0] //= 2  # a learnable difference: class 1 is less red
        return images, labels
    if not path.is_file():
        raise FileNotFoundError(f"--images {path}: no such file. Save one with "
                                "torch.save({'images': uint8 (N, 3, S, S), 'labels': (N,)}, path).")
    saved = torch.load(path, weights_only=True)
    return saved["images"], saved["labels"]


class CrashAfterEpoch(Callback):
    """Ends every process abruptly after an epoch, as a killed job would (to try resuming)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, trainer: Trainer) -> None:
        if trainer.epoch == self.epoch:
            trainer.wait_for_all()  # the checkpoint of this epoch is complete
            os._exit(3)  # no clean-up, no saving: the process is simply gone


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the checkpoint, weights and per-rank notes")
    parser.add_argument("--images", type=Path, default=None, help="a .pt file of {'images', 'labels'}; default: random")
    parser.add_argument("--batch-size", type=int, default=16, help="images per process per step")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=0.05, help="SGD learning rate (momentum 0.9)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--loader", choices=("dataloader", "device"), default="dataloader",
                        help="a torch DataLoader, or ldl's DeviceLoader (both are sharded by the Trainer)")
    parser.add_argument("--device", default="auto",
                        help="auto: under torchrun GPU number LOCAL_RANK if there are GPUs, else the CPU")
    parser.add_argument("--resume", action="store_true", help="go on from --out/checkpoint.pt")
    parser.add_argument("--crash-after-epoch", type=int, default=None, help="end every process after this epoch")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    torch.manual_seed(args.seed)  # every process alike: the same first weights and the same shuffling seed
    images, labels = load_images(args.images, args.seed)
    classes = int(labels.max()) + 1
    if args.loader == "device":
        loader = DeviceLoader(images, labels, batch_size=args.batch_size, shuffle=True, drop_single=False)
        # One process draws its order from the seed too, as a sharded one does: so the runs compare.
        loader = loader.shard(0, 1, seed=args.seed, pad=False)
    else:
        dataset = TensorDataset(images.float().div(255), labels)
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True)  # sharded by the Trainer
        else:
            # One process draws the order a DistributedSampler draws for a world of one: the same
            # permutation the processes of a larger world split between them (with the same seed).
            sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=args.seed)
            loader = DataLoader(dataset, batch_size=args.batch_size, sampler=sampler)
    model = small_cnn(classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    args.out.mkdir(parents=True, exist_ok=True)
    checkpoint = ModelCheckpoint(args.out / "checkpoint.pt")
    callbacks: list[Callback] = [checkpoint]
    if args.crash_after_epoch is not None:
        callbacks.append(CrashAfterEpoch(args.crash_after_epoch))
    trainer = Trainer(model, optimizer=optimizer, device=args.device, callbacks=callbacks, progress=False)
    resume_from = args.out / "checkpoint.pt" if args.resume else None
    history = trainer.fit(loader, epochs=args.epochs, resume_from=resume_from)
    context = trainer.distributed
    note = {"rank": context.rank, "world_size": context.world_size, "batch_size": args.batch_size,
            "saved_epoch": checkpoint.saved_epoch, "history": history.to_dict()}
    (args.out / f"rank{context.rank}.json").write_text(json.dumps(note, indent=1))
    if trainer.is_main_process:
        save_weights(model.cpu(), args.out / "weights.pt")
    trainer.wait_for_all()


if __name__ == "__main__":
    main()
