"""The optimisers of lesson 7, written out: each update rule in a few lines.

Each class is a ``torch.optim.Optimizer``, so the Trainer runs it like any other, and each
matches its ``torch.optim`` counterpart step for step (the tests check 100 steps to 1e-6).
Notation, per parameter tensor ``p`` with gradient ``g`` at step ``t``:

- **SGD**: ``p ← p − lr·g``.
- **Momentum**: ``v ← μ·v + g`` (``v = g`` on the first step), ``p ← p − lr·v``: a heavy
  ball that keeps rolling along a ravine's floor while its side-to-side swings cancel.
- **Nesterov**: the same ``v``, but the step looks ahead: ``p ← p − lr·(g + μ·v)``.
- **RMSProp**: ``s ← α·s + (1 − α)·g²``, ``p ← p − lr·g / (√s + ε)``: each weight's step
  is divided by the recent size of its own gradients.
- **Adam**: momentum and RMSProp together, both averages corrected for starting at 0:
  ``m ← β₁·m + (1 − β₁)·g``, ``s ← β₂·s + (1 − β₂)·g²``,
  ``p ← p − lr·(m / (1 − β₁ᵗ)) / (√(s / (1 − β₂ᵗ)) + ε)``.
- **AdamW**: Adam, with the weights shrunk by ``(1 − lr·λ)`` before each step (decoupled
  weight decay, lesson 2) instead of ``λ·p`` added to the gradient (an L2 penalty, which
  Adam's division would scale differently for every weight).

``weight_decay`` in SGD, RMSProp and Adam is that L2 penalty (``g ← g + λ·p``), as in torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch.optim import Optimizer

Params = Iterable[torch.Tensor] | Iterable[dict]


def _check(lr: float, **others: float) -> None:
    if lr <= 0:
        raise ValueError(f"lr must be positive; got {lr}.")
    for name, value in others.items():
        if value < 0:
            raise ValueError(f"{name} must not be negative; got {value}.")


class SGDByHand(Optimizer):
    """Stochastic gradient descent, with optional momentum (``μ``) and Nesterov's look-ahead."""

    def __init__(self, params: Params, lr: float, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        _check(lr, momentum=momentum, weight_decay=weight_decay)
        if nesterov and momentum == 0:
            raise ValueError("Nesterov's look-ahead needs momentum > 0.")
        super().__init__(params, {"lr": lr, "momentum": momentum, "nesterov": nesterov, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = _evaluate(closure)
        for group in self.param_groups:
            lr, mu = group["lr"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad + group["weight_decay"] * p
                if mu > 0:
                    state = self.state[p]
                    if "velocity" not in state:
                        state["velocity"] = g.clone()  # v = g on the first step
                    else:
                        state["velocity"].mul_(mu).add_(g)  # v ← μ·v + g
                    g = g + mu * state["velocity"] if group["nesterov"] else state["velocity"]
                p.sub_(lr * g)
        return loss


class RMSpropByHand(Optimizer):
    """RMSProp: divide each weight's step by the root of its recent mean squared gradient."""

    def __init__(self, params: Params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        _check(lr, alpha=alpha, eps=eps, weight_decay=weight_decay)
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = _evaluate(closure)
        for group in self.param_groups:
            alpha = group["alpha"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad + group["weight_decay"] * p
                state = self.state[p]
                s = state.setdefault("square_avg", torch.zeros_like(p))
                s.mul_(alpha).add_((1 - alpha) * g * g)  # s ← α·s + (1 − α)·g²
                p.sub_(group["lr"] * g / (s.sqrt() + group["eps"]))
        return loss


class AdamByHand(Optimizer):
    """Adam (``decoupled=False``, an L2 ``weight_decay``) or AdamW (``decoupled=True``)."""

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled: bool = False) -> None:
        _check(lr, beta1=betas[0], beta2=betas[1], eps=eps, weight_decay=weight_decay)
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "decoupled": decoupled})

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = _evaluate(closure)
        for group in self.param_groups:
            lr, (beta1, beta2), decay = group["lr"], group["betas"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if group["decoupled"]:
                    p.mul_(1 - lr * decay)  # AdamW: shrink the weights themselves
                else:
                    g = g + decay * p  # Adam: an L2 penalty's gradient, divided below like the rest
                state = self.state[p]
                t = state["step"] = state.get("step", 0) + 1
                m = state.setdefault("exp_avg", torch.zeros_like(p))
                s = state.setdefault("exp_avg_sq", torch.zeros_like(p))
                m.mul_(beta1).add_((1 - beta1) * g)  # m ← β₁·m + (1 − β₁)·g
                s.mul_(beta2).add_((1 - beta2) * g * g)  # s ← β₂·s + (1 − β₂)·g²
                # Both averages start at 0: dividing by 1 − βᵗ undoes that bias in the first steps.
                m_hat_step = lr / (1 - beta1**t)
                denominator = s.sqrt() / math.sqrt(1 - beta2**t) + group["eps"]
                p.sub_(m_hat_step * m / denominator)
        return loss


class AdamWByHand(AdamByHand):
    """AdamW: Adam with decoupled weight decay (default 0.01, as ``torch.optim.AdamW``)."""

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, decoupled=True)


def _evaluate(closure: Callable[[], torch.Tensor] | None) -> torch.Tensor | None:
    """Run the optional closure with gradients on, as torch's optimisers do."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()
