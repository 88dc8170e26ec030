"""Beta-distributed numbers drawn from a ``torch.Generator``.

MixUp and CutMix draw their mixing weight ``lambda ~ Beta(alpha, alpha)``.
``torch.distributions.Beta`` cannot be given a generator (it draws from torch's global state
through a private Gamma sampler), so a seed could not reproduce a mixed batch. Here the
textbook route is written out with only ``torch.randn``/``torch.rand`` and a generator:

1. ``X ~ Gamma(a)`` and ``Y ~ Gamma(b)`` independent, then ``X / (X + Y) ~ Beta(a, b)``.
2. Gamma by Marsaglia and Tsang's method (2000), the one NumPy and PyTorch use: for
   ``a >= 1``, with ``d = a - 1/3`` and ``c = 1/sqrt(9 d)``, draw ``z ~ N(0, 1)`` and
   ``u ~ U(0, 1)``; ``v = (1 + c z)^3``; accept ``d v`` when
   ``log u < z^2 / 2 + d - d v + d log v`` (more than 95 % of draws are accepted).
3. For ``a < 1`` (MixUp's usual ``alpha = 0.2``): ``Gamma(a) = Gamma(a + 1) * U^(1/a)``.

``U^(1/a)`` underflows to 0 for small ``a`` (``0.01^5`` is fine, ``1e-80^10`` is not), and
then ``X / (X + Y)`` is ``0 / 0``. So everything is kept as logarithms and the ratio is
``X / (X + Y) = sigmoid(log X - log Y)``, which never divides by zero.
"""

from __future__ import annotations

import math

import torch

from ldl.augment.seeding import draw_device


def _log_standard_gamma(concentration: float, count: int, generator: torch.Generator | None) -> torch.Tensor:
    """``(count,)`` float64 values of ``log X`` with ``X ~ Gamma(concentration, rate=1)``."""
    boosted = concentration < 1.0
    shape = concentration + 1.0 if boosted else concentration
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    device = draw_device(generator)
    log_x = torch.empty(count, dtype=torch.float64, device=device)
    todo = torch.arange(count, device=device)  # indices still waiting for an accepted draw
    while todo.numel() > 0:
        z = torch.randn(todo.numel(), generator=generator, dtype=torch.float64, device=device)
        u = torch.rand(todo.numel(), generator=generator, dtype=torch.float64, device=device)
        v = (1.0 + c * z) ** 3
        safe_v = v.clamp_min(torch.finfo(torch.float64).tiny)  # log of v <= 0 is never used
        accept = (v > 0) & (torch.log(u) < 0.5 * z**2 + d - d * v + d * torch.log(safe_v))
        log_x[todo[accept]] = math.log(d) + torch.log(safe_v[accept])
        todo = todo[~accept]
    if boosted:
        u = torch.rand(count, generator=generator, dtype=torch.float64, device=device)
        log_x += torch.log(u) / concentration  # log(U^(1/a)), no underflow in log space
    return log_x


def sample_beta(
    a: float,
    b: float,
    count: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``(count,)`` float64 samples of ``Beta(a, b)`` in ``[0, 1]``, drawn from ``generator``.

    With ``generator=None`` the numbers come from torch's global random state.
    """
    if not (a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"Beta(a, b) needs finite a > 0 and b > 0, got a={a}, b={b}.")
    if count < 0:
        raise ValueError(f"count must be 0 or more, got {count}.")
    log_x = _log_standard_gamma(float(a), count, generator)
    log_y = _log_standard_gamma(float(b), count, generator)
    return torch.sigmoid(log_x - log_y)  # X / (X + Y) = 1 / (1 + Y / X)
