"""The same budget of trials as a grid or at random, over ranges searched on a log scale.

A search space here is ``{"lr": (1e-4, 1.0), "weight_decay": (1e-6, 1e-1)}``: each parameter
between a low and a high value, searched on a log scale (a learning rate of 1e-3 is as far
from 1e-2 as 1e-2 is from 1e-1).

With 9 trials over 2 parameters a grid tries 3 values of each; 9 random points try 9 values
of each. When one parameter matters much more than the other (the learning rate, usually),
the grid spends 2/3 of its trials repeating learning rates it has already tried
(Bergstra & Bengio 2012).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

Space = Mapping[str, tuple[float, float]]


def _check(space: Space, trials: int) -> None:
    if trials < 1:
        raise ValueError(f"trials must be at least 1; got {trials}.")
    for name, (low, high) in space.items():
        if not 0 < low < high:
            raise ValueError(f"{name}: the range must satisfy 0 < low < high (searched on a log scale); got ({low}, {high}).")


def grid_points(space: Space, trials: int) -> list[dict[str, float]]:
    """A grid of ``k`` log-spaced values per parameter, ``k**d ≤ trials`` points in all (``d`` parameters).

    ``k`` is the largest whole number with ``k**d ≤ trials``: 9 trials over 2 parameters are a
    3 × 3 grid; 10 trials are still 3 × 3 (a grid cannot use the tenth).
    """
    _check(space, trials)
    names = list(space)
    per_axis = max(1, math.floor(trials ** (1 / len(names)) + 1e-9))
    axes = []
    for name in names:
        low, high = space[name]
        axes.append(torch.logspace(math.log10(low), math.log10(high), per_axis, dtype=torch.float64).tolist()
                    if per_axis > 1 else [math.sqrt(low * high)])
    mesh = torch.cartesian_prod(*[torch.tensor(axis, dtype=torch.float64) for axis in axes])
    mesh = mesh.view(-1, len(names))
    return [{name: float(value) for name, value in zip(names, row)} for row in mesh]


def random_points(space: Space, trials: int, seed: int = 0) -> list[dict[str, float]]:
    """``trials`` points, each parameter drawn log-uniformly in its range (a seeded generator)."""
    _check(space, trials)
    generator = torch.Generator().manual_seed(seed)
    draws = torch.rand(trials, len(space), generator=generator, dtype=torch.float64)  # (trials, d) in [0, 1)
    points = []
    for row in draws:
        point = {}
        for (name, (low, high)), u in zip(space.items(), row.tolist()):
            point[name] = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
        points.append(point)
    return points


def distinct_values(points: list[dict[str, float]], name: str) -> int:
    """How many different values of ``name`` the points try."""
    return len({round(point[name], 12) for point in points})
