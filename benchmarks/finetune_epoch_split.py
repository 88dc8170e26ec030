"""Where does a fine-tuning epoch go: waiting for data, or computing?

Fine-tunes MobileNetV3-Large on real photos through the course's own path (decoded tensor
cache, `DeviceLoader`, `BatchAugment` on the training device, the `Trainer` with its
defaults for mixed precision and channels-last) and prints, measured in one run:

1. the epoch's throughput in images/s, as a student's epoch runs (no extra synchronisation);
2. the share of an epoch spent waiting for batches (`ldl.measure.bench.DataWaitTimer`; it
   synchronises around every batch, so this share is an upper bound);
3. the ceiling: the same training step on random tensors already on the device
   (`ldl.measure.bench.measure_throughput`), and the epoch's throughput as a fraction of it.

Targets on a GPU (issue: speed): data waiting under 10% of the step time, throughput at
least 70% of the ceiling.

    LDL_DATA=../shared/data .venv/bin/python benchmarks/finetune_epoch_split.py            # GPU: 224 px, batch 64
    LDL_DATA=../shared/data .venv/bin/python benchmarks/finetune_epoch_split.py --image-size 96 --batch-size 16
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from ldl.measure.bench import DataWaitTimer, measure_throughput, synchronize  # noqa: E402
from ldl.data.batch_augment import BatchAugment  # noqa: E402
from ldl.data.pipeline import make_loaders  # noqa: E402
from ldl.models import create_backbone  # noqa: E402
from ldl.profiles import get_profile  # noqa: E402
from ldl.train import Trainer  # noqa: E402


def timed_epoch(trainer: Trainer, loader, device: torch.device) -> float:
    """Seconds of one training epoch over ``loader``, the device's queued work included."""
    synchronize(device)
    start = time.perf_counter()
    trainer.train_one_epoch(loader)
    synchronize(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v3_large")
    parser.add_argument("--dataset", default="cats_and_dogs_sample")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=None, help="default: 64 on a GPU, 16 on a CPU")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs of each kind (after one warm-up epoch)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    batch_size = args.batch_size or (64 if device.type == "cuda" else 16)
    profile = get_profile("smoke", device=str(device), batch_size=batch_size, dataset=args.dataset)
    loaders = make_loaders(profile, image_size=args.image_size, augment=BatchAugment(), progress=False)
    train = loaders.train
    images_per_epoch = len(train) * batch_size

    torch.manual_seed(0)
    model = create_backbone(args.model, pretrained=False, num_classes=len(loaders.classes))
    ceiling_model = copy.deepcopy(model)
    trainer = Trainer(model, optimizer=torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9),
                      device=device, progress=False, verbose=False)
    trainer.epochs = 1
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.model} on {loaders.dataset} ({images_per_epoch} images per epoch) at {args.image_size} px, "
          f"batch {batch_size}, on {where}; mixed precision: {trainer.amp_dtype}, channels-last: {trainer.channels_last}")

    timed_epoch(trainer, train, device)  # warm-up: kernel selection, allocator, caches
    plain, split, data_shares = [], [], []
    for _ in range(args.epochs):
        plain.append(timed_epoch(trainer, train, device))
        timer = DataWaitTimer(train, device=device)
        seconds = timed_epoch(trainer, timer, device)
        split.append(seconds)
        data_shares.append(timer.data_seconds / seconds)
    epoch_rate = images_per_epoch / statistics.median(plain)
    data_share = statistics.median(data_shares)

    ceiling = measure_throughput(ceiling_model, image_size=args.image_size, batch_size=batch_size, device=device,
                                 train=True, mixed_precision=trainer.amp_dtype is not None,
                                 channels_last=trainer.channels_last, warmup=3, repeats=max(5, len(train)))
    print(f"epoch, as trained:           {epoch_rate:9.1f} images/s  (median of {args.epochs} epochs)")
    print(f"waiting for data:            {100 * data_share:9.1f} %  of the epoch  (target on a GPU: under 10%)")
    print(f"ceiling, tensors on device:  {ceiling.images_per_s:9.1f} images/s")
    print(f"epoch / ceiling:             {epoch_rate / ceiling.images_per_s:9.2f}  (target on a GPU: at least 0.70)")
    if ceiling.peak_memory_mb is not None:
        print(f"peak GPU memory (ceiling):   {ceiling.peak_memory_mb:9.0f} MB")


if __name__ == "__main__":
    main()
