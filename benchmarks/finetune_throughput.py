"""How fast does MobileNetV3-Large fine-tune, with and without mixed precision and channels-last?

Each setting times full training steps (forward, backward and an SGD step) on random
images already on the device, so the numbers are the step's ceiling, with no data
pipeline in the way. Settings are measured in turns, round after round, and each one's
median over rounds is printed, with its ratio to plain float32.

    .venv/bin/python benchmarks/finetune_throughput.py                     # GPU: 224 px, batch 64
    .venv/bin/python benchmarks/finetune_throughput.py --image-size 128 --batch-size 16   # a CPU

Mixed precision uses bfloat16 where the hardware has it (Ampere and newer GPUs, CPUs), else
float16. On a CPU neither setting is expected to help much; the point is a GPU.

`--compile` adds `torch.compile` (float32, default mode) as one more setting and prints what
it costs first: the seconds of the first training step, which include compiling the
forward and backward graphs. It pays off only when a fit runs long enough to win that back.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from ldl.measure.bench import measure_throughput  # noqa: E402
from ldl.models import create_backbone  # noqa: E402

SETTINGS = {
    "float32": dict(mixed_precision=False, channels_last=False),
    "channels-last": dict(mixed_precision=False, channels_last=True),
    "mixed precision": dict(mixed_precision=True, channels_last=False),
    "mixed precision + channels-last": dict(mixed_precision=True, channels_last=True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v3_large")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=None, help="default: 64 on a GPU, 16 on a CPU")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per setting and round")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile, and its compile time")
    args = parser.parse_args()
    device = torch.device(args.device)
    batch_size = args.batch_size or (64 if device.type == "cuda" else 16)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.model} fine-tuning steps at {args.image_size} px, batch {batch_size}, on {name}")

    torch.manual_seed(0)
    model = create_backbone(args.model, pretrained=False, num_classes=2)
    settings = dict(SETTINGS)
    models = {setting: model for setting in settings}
    if args.compile:
        compiled = torch.compile(copy.deepcopy(model))
        start = time.perf_counter()
        measure_throughput(compiled, image_size=args.image_size, batch_size=batch_size, device=device,
                           train=True, warmup=0, repeats=1)  # the first step compiles forward and backward
        print(f"torch.compile: first training step {time.perf_counter() - start:.1f} s (compiling included)")
        settings["torch.compile (float32)"] = dict(mixed_precision=False, channels_last=False)
        models["torch.compile (float32)"] = compiled
    rates: dict[str, list[float]] = {setting: [] for setting in settings}
    memory: dict[str, float | None] = {}
    for _ in range(args.rounds):
        for setting, options in settings.items():
            result = measure_throughput(models[setting], image_size=args.image_size, batch_size=batch_size,
                                        device=device, train=True, warmup=3, repeats=args.repeats, **options)
            rates[setting].append(result.images_per_s)
            memory[setting] = result.peak_memory_mb
            models[setting].to(memory_format=torch.contiguous_format)  # the next setting starts from NCHW

    baseline = statistics.median(rates["float32"])
    print(f"{'setting':<34}{'images/s':>10}{'vs float32':>12}{'peak MB':>10}")
    for setting in settings:
        median = statistics.median(rates[setting])
        peak = f"{memory[setting]:.0f}" if memory[setting] is not None else "-"
        print(f"{setting:<34}{median:>10.1f}{median / baseline:>11.2f}x{peak:>10}")


if __name__ == "__main__":
    main()
