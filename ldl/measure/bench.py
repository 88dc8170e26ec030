"""Measuring a network honestly: parameters, multiply-accumulates, images per second, memory.

Timing a GPU is easy to get wrong: CUDA calls return before the work is done, the first
batches pay for memory allocation and kernel selection, and one slow repeat (another
process, a clock change) skews a mean. So :func:`measure_throughput` warms up first,
synchronises the device before reading the clock, and reports the **median** of several
timed repeats.

Comparing networks needs one more precaution: a busy machine (another job, a thermal
throttle) slows whatever runs during that spell. Timed one after the other, the network
measured during the spell looks slow and a close ranking can flip. :func:`interleaved_throughput`
times the networks in rounds, one step of each per round (round-robin, the order rotated
each round), so a slow spell hits every network alike, and each round gives a *paired*
comparison: the ratio of two networks' times in the same round.

On a CPU a third precaution: PyTorch splits each layer over the cores, and when other
programs compete for them, every layer waits for its slowest core. A network of many small
layers (MobileNet) then slows down many times more than one of a few large layers (ViT),
so a busy machine distorts even interleaved ratios. :func:`intra_op_threads` times on one
core, as ``torch.utils.benchmark.Timer`` does by default: each network's speed is then its
own, and the ratios hold on a busy machine.

>>> result = measure_throughput(model, image_size=224, batch_size=32, device="cuda")
>>> result.images_per_s
>>> speeds = interleaved_throughput({"resnet50": resnet, "vit_b_16": vit}, image_size=224, batch_size=32)
>>> speeds["vit_b_16"].seconds_per_batch   # one per round, paired with resnet50's
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from ldl.core.device import resolve_amp_dtype
from ldl.models import count_parameters  # re-exported: the table's parameter column

__all__ = [
    "DataWaitTimer",
    "Throughput",
    "count_macs",
    "count_parameters",
    "interleaved_throughput",
    "intra_op_threads",
    "measure_throughput",
    "synchronize",
    "time_interleaved",
    "time_repeats",
]


def count_macs(model: nn.Module, image_size: int, channels: int = 3) -> int:
    """Multiply-accumulates of one forward pass of one ``(1, channels, S, S)`` image.

    Counted by ``torch.utils.flop_counter`` (2 flops = 1 multiply-accumulate), which sees
    every matrix product and convolution. Attention needs two precautions, or the count
    would depend on the installed torch version:

    - Gradients stay enabled: under ``no_grad`` ``nn.MultiheadAttention`` takes a fused fast
      path that the counter does not see, and ViT would be under-counted by a third.
    - ``scaled_dot_product_attention`` is forced onto its reference ("math") kernel, which is
      written with plain matrix products the counter always sees. The fused kernels (flash,
      memory-efficient, the CPU's own) have formulas registered only in some versions; where
      one is missing, ViT-B/16's two attention products per layer (0.72 G MACs) go uncounted.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, channels, image_size, image_size, device=device))
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


@dataclass
class Throughput:
    """What :func:`measure_throughput` saw.

    Attributes:
        images_per_s: batch size / median seconds per batch.
        seconds_per_batch: every timed repeat, in order.
        batch_size, image_size, device: what was measured.
        mode: ``"inference"`` (forward under ``inference_mode``) or ``"training"``
            (forward, backward and an optimizer step).
        peak_memory_mb: the most CUDA memory allocated during the measurement (None on the CPU,
            where PyTorch does not track it).
    """

    images_per_s: float
    seconds_per_batch: list[float]
    batch_size: int
    image_size: int
    device: str
    mode: str
    peak_memory_mb: float | None = None
    settings: dict[str, object] = field(default_factory=dict)


def synchronize(device: torch.device) -> None:
    """Wait until the device has finished all queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def intra_op_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` intra-op CPU threads (``torch.set_num_threads``), then restore them.

    ``None`` leaves the setting alone. One thread makes CPU timings hold on a busy machine
    (see the module's docstring); the speed is then one core's.
    """
    if threads is None:
        yield
        return
    if threads < 1:
        raise ValueError(f"threads must be at least 1 (or None to leave the setting); got {threads}.")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def time_repeats(
    step: Callable[[], object],
    device: torch.device,
    *,
    warmup: int = 2,
    repeats: int = 5,
    clock: Callable[[], float] = time.perf_counter,
) -> list[float]:
    """Run ``step`` ``warmup`` times untimed, then ``repeats`` times timed; return the seconds of each."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1; got {repeats}.")
    for _ in range(warmup):
        step()
    seconds = []
    for _ in range(repeats):
        synchronize(device)  # the clock must not start while earlier work is still queued
        start = clock()
        step()
        synchronize(device)  # ... nor stop before this step's work has finished
        seconds.append(clock() - start)
    return seconds


def time_interleaved(
    steps: Mapping[str, Callable[[], object]],
    device: torch.device,
    *,
    warmup: int = 2,
    repeats: int = 5,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Time several steps round-robin: ``warmup`` untimed rounds, then ``repeats`` timed ones.

    Each round runs every step once; round ``r`` starts at the ``r``-th step (the order
    rotates), so no step always follows the same one. A slow spell of the machine then
    lands on every step alike, and ``seconds[a][r] / seconds[b][r]`` compares two steps
    timed seconds apart.

    Returns:
        ``{name: [seconds of round 0, round 1, ...]}``, in the order of ``steps``.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1; got {repeats}.")
    names = list(steps)
    if not names:
        raise ValueError("steps is empty: give at least one step to time.")
    for _ in range(warmup):
        for name in names:
            steps[name]()
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        first = round_ % len(names)
        for name in names[first:] + names[:first]:
            synchronize(device)  # as in time_repeats: nothing queued before the clock starts
            start = clock()
            steps[name]()
            synchronize(device)
            seconds[name].append(clock() - start)
    return seconds


@dataclass
class _Step:
    """One network's timed step and what :class:`Throughput` reports about it."""

    run: Callable[[], None]
    model: nn.Module
    batch_size: int
    image_size: int
    device: torch.device
    train: bool
    settings: dict[str, object]
    own_bytes: int  # the weights, buffers and input batch: what the network alone holds between steps

    def result(self, seconds: list[float], peak_memory_mb: float | None) -> Throughput:
        return Throughput(
            images_per_s=self.batch_size / statistics.median(seconds),
            seconds_per_batch=seconds,
            batch_size=self.batch_size,
            image_size=self.image_size,
            device=str(self.device),
            mode="training" if self.train else "inference",
            peak_memory_mb=peak_memory_mb,
            settings=self.settings,
        )


def _make_step(
    model: nn.Module,
    *,
    image_size: int,
    batch_size: int,
    device: torch.device,
    train: bool,
    mixed_precision: bool | str,
    channels_last: bool,
    num_classes: int | None,
) -> _Step:
    """Move ``model`` to the device and build the step to time (see :func:`measure_throughput`)."""
    model = model.to(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    x = torch.randn(batch_size, 3, image_size, image_size, device=device).to(memory_format=memory_format)
    # True means "where training would use it": the Trainer's "auto", not its True (which
    # raises on the CPU), so that a CPU benchmark run with every setting still runs.
    autocast_dtype = resolve_amp_dtype("auto" if mixed_precision is True else mixed_precision, device)

    def forward() -> torch.Tensor:
        if autocast_dtype is None:
            return model(x)
        with torch.autocast(device_type=device.type, dtype=autocast_dtype):
            return model(x)

    if train:
        model.train()
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        # As in the Trainer: float16 needs a GradScaler (its cost is part of the step);
        # disabled (bfloat16, float32), it passes everything through.
        scaler = torch.amp.GradScaler(device.type, enabled=autocast_dtype == torch.float16)
        labels: list[torch.Tensor] = []  # made at the first step, from the output's width: no extra forward pass

        def step() -> None:
            logits = forward()
            if not labels:
                labels.append(torch.randint(0, num_classes or logits.shape[1], (batch_size,), device=device))
            loss = nn.functional.cross_entropy(logits.float(), labels[0])
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            # Gradients freed after the step, not before the next: between steps a network
            # holds only its weights, so several can wait their turn in memory.
            optimizer.zero_grad(set_to_none=True)
    else:
        model.eval()

        def step() -> None:
            with torch.inference_mode():
                forward()

    own_bytes = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers(), x])
    return _Step(
        run=step, model=model, batch_size=batch_size, image_size=image_size, device=device, train=train,
        settings={"mixed_precision": str(autocast_dtype) if autocast_dtype else "off", "channels_last": channels_last},
        own_bytes=own_bytes,
    )


def measure_throughput(
    model: nn.Module,
    *,
    image_size: int,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    train: bool = False,
    mixed_precision: bool | str = False,
    channels_last: bool = False,
    warmup: int = 2,
    repeats: int = 5,
    num_classes: int | None = None,
) -> Throughput:
    """Images per second of ``model`` on random ``(batch_size, 3, S, S)`` inputs already on the device.

    The data never leaves the device, so this is the ceiling a real data pipeline can
    reach. ``train=True`` times forward + backward + an SGD step (the weights change:
    pass a copy if that matters). ``channels_last`` stores images and weights as
    (B, H, W, C), which tensor cores prefer.

    ``mixed_precision=True`` autocasts as the Trainer's default ``"auto"`` does (see
    :func:`ldl.core.device.resolve_amp_dtype`): bfloat16 on GPUs that support it, else
    float16, and **off on the CPU**, where the Trainer trains in float32 because autocast
    is slower there. So the number is the speed training would get; ``settings`` says
    ``"off"`` when nothing was autocast. ``"bf16"``/``"fp16"`` force a dtype (CUDA only).
    The model is left in eval mode after an inference measurement, train mode after training.
    To compare several networks, use :func:`interleaved_throughput`.
    """
    device = torch.device(device)
    step = _make_step(model, image_size=image_size, batch_size=batch_size, device=device, train=train,
                      mixed_precision=mixed_precision, channels_last=channels_last, num_classes=num_classes)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = time_repeats(step.run, device, warmup=warmup, repeats=repeats)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return step.result(seconds, peak)


def interleaved_throughput(
    models: Mapping[str, nn.Module],
    *,
    image_size: int,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    train: bool = False,
    mixed_precision: bool | str = False,
    channels_last: bool = False,
    warmup: int = 2,
    repeats: int = 5,
    num_classes: int | None = None,
) -> dict[str, Throughput]:
    """:func:`measure_throughput` of several networks, timed in interleaved rounds (:func:`time_interleaved`).

    Every network stays on the device throughout (between training steps without its
    gradients). ``seconds_per_batch[r]`` of two networks were timed in the same round ``r``:
    their ratio is a paired comparison. On CUDA, ``peak_memory_mb`` is each network's own:
    its weights, buffers and input plus the most its steps allocated on top of what was
    already held, so the other networks waiting their turn are not counted.

    Returns:
        ``{name: Throughput}`` in the order of ``models``.
    """
    device = torch.device(device)
    steps = {
        name: _make_step(model, image_size=image_size, batch_size=batch_size, device=device, train=train,
                         mixed_precision=mixed_precision, channels_last=channels_last, num_classes=num_classes)
        for name, model in models.items()
    }
    extra = dict.fromkeys(steps, 0)  # bytes each step allocated above what was held when it started

    def tracked(name: str, step: _Step) -> Callable[[], None]:
        if device.type != "cuda":
            return step.run

        def run() -> None:
            held = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
            step.run()
            extra[name] = max(extra[name], torch.cuda.max_memory_allocated(device) - held)

        return run

    seconds = time_interleaved({name: tracked(name, step) for name, step in steps.items()}, device,
                               warmup=warmup, repeats=repeats)
    return {
        name: step.result(seconds[name], (step.own_bytes + extra[name]) / 2**20 if device.type == "cuda" else None)
        for name, step in steps.items()
    }


class DataWaitTimer:
    """Wraps a loader and measures how long training waits for each batch.

    Every ``next()`` is timed between two device synchronisations: the first makes sure
    the previous step's GPU work is finished (so it is not billed to the data), the second
    that the batch is really ready (augmentation on the GPU included). Everything else in an
    epoch is the training step. The synchronisations remove the overlap between loading and
    computing that a real epoch may have, so the data share measured here is an upper bound.

    >>> timed = DataWaitTimer(loaders.train, device="cuda")
    >>> trainer.train_one_epoch(timed)
    >>> timed.data_seconds, timed.batches

    Attributes:
        data_seconds: total seconds spent waiting for batches, over every epoch so far.
        batches: batches handed out so far.
    """

    def __init__(
        self, loader: Iterable, device: str | torch.device = "cpu", clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.loader, self.device, self.clock = loader, torch.device(device), clock
        self.data_seconds, self.batches = 0.0, 0

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator:
        iterator = iter(self.loader)
        while True:
            synchronize(self.device)
            start = self.clock()
            try:
                batch = next(iterator)
            except StopIteration:
                return
            synchronize(self.device)
            self.data_seconds += self.clock() - start
            self.batches += 1
            yield batch

    def reset(self) -> None:
        """Start counting again from zero."""
        self.data_seconds, self.batches = 0.0, 0
