"""Statistics over seeds for :class:`ldl.train.grid.Comparison`: mean ± sd, paired differences, ensembles.

One run is one draw: another seed gives another number. Repeating every configuration
over a few seeds shows how far a result moves by chance, and the course's rule reads an
effect against that spread: an effect smaller than its spread is unclear.

>>> [round(x, 3) for x in mean_sd([0.70, 0.72, 0.74])]
[0.72, 0.02]
>>> [round(x, 4) for x in paired_difference([0.80, 0.81], [0.70, 0.72])]
[0.095, 0.0071]
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ldl.core.device import resolve_device


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """The mean and the sample standard deviation (ddof=1); the sd is nan for fewer than two values."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_sd needs at least one value.")
    sd = statistics.stdev(values) if len(values) > 1 else math.nan
    return statistics.fmean(values), sd


def average_rows(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One row from per-seed rows: each number becomes its mean, with ``<key>_sd`` next to it.

    Text values (the name, the gap's kind) are taken from the first row; ``seeds`` says how many rows.
    """
    averaged: dict[str, Any] = {}
    for key, first in rows[0].items():
        if isinstance(first, (int, float)) and not isinstance(first, bool):
            averaged[key], averaged[f"{key}_sd"] = mean_sd([row[key] for row in rows])
        else:
            averaged[key] = first
    averaged["seeds"] = len(rows)
    return averaged


def paired_difference(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """The mean and sample sd of ``a[k] - b[k]``: seed k of one run against seed k of the other.

    Pairing removes what both runs share through their seed (initial weights, batch order),
    so the spread left is that of the difference itself.
    """
    if len(a) != len(b):
        raise ValueError(f"A paired difference needs as many values on each side; got {len(a)} and {len(b)}.")
    return mean_sd([x - y for x, y in zip(a, b)])


def is_clear(mean: float, sd: float) -> bool:
    """The course's rule: an effect is clear when its size exceeds its spread, ``|mean| > sd``.

    An effect smaller than its spread is unclear; with one seed there is no spread (sd is
    nan), so nothing can be told and the answer is False.
    """
    return not math.isnan(sd) and abs(mean) > sd


def format_mean_sd(mean: float, sd: float | None, spec: str) -> str:
    """``0.812 ± 0.013`` (``spec`` formats the mean; the sd drops any sign); the mean alone without an sd."""
    if sd is None or math.isnan(sd):
        return format(mean, spec)
    return f"{format(mean, spec)} ± {format(sd, spec.lstrip('+'))}"


@torch.no_grad()
def ensemble_accuracy(models: Sequence[nn.Module], loader: Iterable, device: str | torch.device = "auto") -> float:
    """Top-1 accuracy of the models' averaged softmax predictions on ``loader``'s ``(x, y)`` batches.

    The models go to ``device`` for the evaluation (in eval mode) and come back to the CPU,
    where :func:`ldl.train.grid.run_grid` keeps them. Soft labels ``(B, classes)`` count by their argmax.
    """
    if not models:
        raise ValueError("ensemble_accuracy needs at least one model.")
    target = resolve_device(device)
    modes = [model.training for model in models]
    correct = total = 0
    try:
        for model in models:
            model.to(target).eval()
        for x, y in loader:
            x, y = x.to(target), y.to(target)
            probabilities = torch.stack([model(x).float().softmax(dim=1) for model in models]).mean(dim=0)
            labels = y.argmax(dim=1) if y.ndim > 1 else y
            correct += int((probabilities.argmax(dim=1) == labels).sum())
            total += len(labels)
    finally:  # back where run_grid keeps them, in the mode they came in
        for model, mode in zip(models, modes):
            model.to("cpu").train(mode)
    if total == 0:
        raise ValueError("ensemble_accuracy: the loader gave no samples.")
    return correct / total
