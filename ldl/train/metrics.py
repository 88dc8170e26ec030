"""Metrics computed on the device, batch by batch, read once per epoch.

Why on the device? ``tensor.item()`` copies a number from the GPU to Python, and to do
so the CPU must wait until the GPU has finished all the work queued so far. Calling it
after every batch stops the CPU from queueing the next batch while the GPU works, which
can cost a good share of the epoch time. So the meters below add up tensors where they
live and call ``.item()`` once, at the end of the epoch.

>>> meter = MeanMeter()
>>> meter.update(torch.tensor(1.0), n=3)   # a batch of 3 with mean loss 1.0
>>> meter.update(torch.tensor(4.0), n=1)   # a last, smaller batch
>>> meter.compute()                        # (3 * 1.0 + 1 * 4.0) / 4
1.75
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def _class_indices(targets: Tensor) -> Tensor:
    """Targets as class indices ``(B,)``: soft or one-hot targets ``(B, C)`` become their argmax."""
    if targets.ndim == 2:
        return targets.argmax(dim=1)
    if targets.ndim != 1:
        raise ValueError(
            f"targets must be class indices of shape (B,) or class probabilities of shape (B, C); "
            f"got shape {tuple(targets.shape)}."
        )
    return targets


def topk_correct(logits: Tensor, targets: Tensor, ks: Sequence[int] = (1, 5)) -> dict[int, Tensor]:
    """Count the samples whose target class is among the ``k`` highest scores.

    Args:
        logits: ``(B, C)`` float scores, one row per sample (softmax not needed: it keeps the order).
        targets: ``(B,)`` int64 class indices, or ``(B, C)`` soft targets (MixUp, label
            smoothing), which count as their most likely class.
        ks: the values of ``k``. A ``k`` above the number of classes ``C`` is clipped to
            ``C``, so with 2 classes every sample is "top-5 correct".

    Returns:
        ``{k: count}``, each count a 0-d float32 tensor on the logits' device.
    """
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (B, C); got shape {tuple(logits.shape)}.")
    targets = _class_indices(targets)
    if targets.shape[0] != logits.shape[0]:
        raise ValueError(f"{logits.shape[0]} rows of logits but {targets.shape[0]} targets.")
    if any(k < 1 for k in ks):
        raise ValueError(f"every k must be at least 1; got ks={tuple(ks)}.")

    num_classes = logits.shape[1]
    max_k = min(max(ks), num_classes)
    ranked = logits.topk(max_k, dim=1).indices  # (B, max_k) best class first
    hits = ranked == targets.unsqueeze(1)  # (B, max_k) True where the target was ranked
    return {k: hits[:, : min(k, num_classes)].any(dim=1).sum(dtype=torch.float32) for k in ks}


def topk_accuracy(logits: Tensor, targets: Tensor, ks: Sequence[int] = (1, 5)) -> dict[int, Tensor]:
    """Like :func:`topk_correct`, divided by the batch size: ``{k: fraction in [0, 1]}``."""
    batch_size = logits.shape[0]
    return {k: count / batch_size for k, count in topk_correct(logits, targets, ks).items()}


class MeanMeter:
    """Running mean of per-batch values, weighted by batch size, kept on the device.

    Weighting matters because the last batch is often smaller: a plain mean of batch
    means would give its few samples as much say as a full batch.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything added so far (call it at the start of an epoch)."""
        self.total: Tensor | None = None  # sum of value * n, a 0-d tensor on the device
        self.count = 0  # number of samples, a Python int (known without asking the device)

    def update(self, value: Tensor | float, n: int = 1) -> None:
        """Add a batch whose mean is ``value`` (0-d tensor or float) over ``n`` samples. No sync."""
        value = value.detach() if isinstance(value, Tensor) else torch.tensor(float(value))
        weighted = value.float() * n
        self.total = weighted if self.total is None else self.total + weighted
        self.count += n

    def compute(self) -> float:
        """The weighted mean as a Python float: the one place that waits for the device."""
        if self.total is None or self.count == 0:
            raise ValueError("MeanMeter is empty: update() was never called (was the loader empty?).")
        return (self.total / self.count).item()
