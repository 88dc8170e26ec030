"""Two-dimensional loss surfaces on which an optimiser's path can be seen (lesson 7).

A real network's loss has millions of dimensions, but its troubles show in two:

- a **ravine**: steep across, shallow along (``f = 0.1·x² + 4·y²``, curvatures 40 times
  apart). Plain gradient descent zig-zags across it, and a learning rate small enough for
  the steep direction crawls along the shallow one;
- a **saddle**: a point where the surface curves up one way and down the other
  (``f = x² + y⁴/4 − y²``, saddle at (0, 0), minima at (0, ±√2)). Started near its ridge,
  plain gradient descent slows to a crawl; momentum and adaptive steps escape sooner.

>>> path = trace_path(lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), ravine, start=(-4.0, 1.0), steps=100)
>>> path.shape                       # (101, 2): the start and every step's (x, y)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor
from torch.optim import Optimizer

Surface = Callable[[Tensor], Tensor]


def ravine(xy: Tensor) -> Tensor:
    """``0.1·x² + 4·y²`` of a ``(..., 2)`` tensor of points: a long narrow valley, minimum 0 at (0, 0)."""
    x, y = xy[..., 0], xy[..., 1]
    return 0.1 * x**2 + 4 * y**2


def saddle(xy: Tensor) -> Tensor:
    """``x² + y⁴/4 − y²`` of a ``(..., 2)`` tensor: a saddle at (0, 0), minima of −1 at (0, ±√2)."""
    x, y = xy[..., 0], xy[..., 1]
    return x**2 + y**4 / 4 - y**2


def trace_path(
    make_optimizer: Callable[[Iterable[Tensor]], Optimizer],
    surface: Surface,
    *,
    start: tuple[float, float],
    steps: int,
) -> Tensor:
    """Minimise ``surface`` from ``start`` for ``steps`` steps; the ``(steps + 1, 2)`` points visited.

    ``make_optimizer`` receives the list of parameters (one ``(2,)`` tensor) and returns an
    optimiser for it, e.g. ``lambda p: AdamByHand(p, lr=0.1)``. A path that leaves the finite
    numbers (a learning rate far too large) stops there: the rest of its rows repeat the last
    finite point, and the caller can see where it blew up.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1; got {steps}.")
    point = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    optimizer = make_optimizer([point])
    path = [point.detach().clone()]
    for _ in range(steps):
        optimizer.zero_grad()
        surface(point).backward()
        optimizer.step()
        if not torch.isfinite(point).all():
            path.extend(path[-1:] * (steps + 1 - len(path)))
            break
        path.append(point.detach().clone())
    return torch.stack(path)
