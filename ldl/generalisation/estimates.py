"""What a held-out score estimates, and how choosing on it biases it (lesson 6).

The training loss averages over the photos we have; what we want is the expected loss on
photos we have not seen. A held-out accuracy estimates it from ``n`` photos: each is right or
wrong, so the estimate's standard error is ``sqrt(p (1 - p) / n)``: four times the photos
for half the noise. And once the held-out score has *chosen* something (the best of many
models, epochs or seeds), it is no longer an estimate of that thing: the maximum of noisy
scores is lifted by the noise. A test set that played no part in the choice is not.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


def estimate_spread(correct: Tensor, sizes: Sequence[int], *, draws: int = 200, seed: int = 0) -> list[dict[str, float]]:
    """How much a held-out accuracy moves with the photos it happens to be measured on.

    Args:
        correct: ``(n,)`` bool, whether one fixed model got each of a pool of held-out photos right.
        sizes: held-out set sizes to try, each at most ``n``.
        draws: random held-out sets drawn (without replacement) from the pool per size.

    Returns one row per size: ``{"size", "mean", "sd"}`` of the ``draws`` accuracies, and
    ``"predicted_sd"``, the binomial standard error ``sqrt(p (1 - p) / size)`` with ``p`` the
    pool's accuracy, times the finite-population factor ``sqrt((n - size) / (n - 1))`` (the
    sets come from a pool of ``n``, so a set as large as the pool has no spread at all).
    """
    correct = correct.flatten().bool().cpu()
    n = len(correct)
    if n < 2:
        raise ValueError(f"estimate_spread needs a pool of at least 2 held-out photos; got {n}.")
    bad = [size for size in sizes if not 1 <= size <= n]
    if bad:
        raise ValueError(f"Held-out sizes must lie in [1, {n}] (the pool's size); got {bad}.")
    p = correct.float().mean().item()
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for size in sizes:
        accuracies = [correct[torch.randperm(n, generator=generator)[:size]].float().mean().item() for _ in range(draws)]
        rows.append({
            "size": size,
            "mean": statistics.mean(accuracies),
            "sd": statistics.stdev(accuracies) if draws > 1 else 0.0,
            "predicted_sd": math.sqrt(p * (1 - p) / size) * math.sqrt((n - size) / (n - 1)),
        })
    return rows


@dataclass(frozen=True)
class Selection:
    """The candidate a validation score chose, and what the untouched test photos say of it."""

    chosen: int  # index of the candidate with the best validation score
    chosen_val: float  # its validation score: the maximum of many noisy scores
    chosen_test: float  # its test score: an honest estimate of it
    mean_val: float  # every candidate's validation score, averaged
    mean_test: float  # every candidate's test score, averaged

    @property
    def optimism(self) -> float:
        """How much the validation score flatters the chosen candidate: ``chosen_val - chosen_test``."""
        return self.chosen_val - self.chosen_test


def selection_bias(val_scores: Sequence[float], test_scores: Sequence[float]) -> Selection:
    """Choose the candidate with the highest validation score (accuracy: higher is better).

    ``val_scores[i]`` and ``test_scores[i]`` belong to candidate ``i`` (a model, an epoch, a
    seed, a setting). When the candidates are about equally good, the chosen one's validation
    score is lifted by the noise it was chosen for, while its test score is not.
    """
    if len(val_scores) != len(test_scores) or not val_scores:
        raise ValueError(f"Need one validation and one test score per candidate; got {len(val_scores)} "
                         f"and {len(test_scores)}.")
    chosen = max(range(len(val_scores)), key=lambda i: val_scores[i])
    return Selection(chosen=chosen, chosen_val=float(val_scores[chosen]), chosen_test=float(test_scores[chosen]),
                     mean_val=statistics.mean(val_scores), mean_test=statistics.mean(test_scores))
