"""Regularisers that live in the loss or the optimizer: weight decay, L1/L2 penalties, label smoothing.

>>> optimizer = torch.optim.AdamW(decay_param_groups(model, weight_decay=0.05), lr=1e-3)
>>> loss_fn = PenalizedLoss(nn.CrossEntropyLoss(), model, l1=1e-5)
>>> soft = smooth_labels(labels, num_classes=2, smoothing=0.1)      # (B,) -> (B, 2)

Only the *weights* of convolution and linear layers are penalised. A bias only shifts a
unit's output, and the scale and shift of a normalisation layer only set the size of
what the next layer sees: shrinking them does not make the function simpler, it just
fights the normalisation.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

# Layers whose ``.weight`` is a matrix or a bank of filters: what weight decay is meant for.
# The rest (biases, BatchNorm/LayerNorm/GroupNorm scales and shifts, position embeddings,
# ...) is left alone. Deciding by module type, not by parameter name, cannot be fooled by
# a normalisation layer that happens to be called "weight_layer" or a bias named "b".
WEIGHT_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)


def penalized_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The trainable weights of ``model``'s convolution and linear layers, each once.

    Frozen weights (``requires_grad=False``) are left out: the optimizer does not move
    them, so penalising them would only add a constant to the loss.
    """
    weights: list[nn.Parameter] = []
    seen: set[int] = set()  # a weight shared by two layers (tied weights) is counted once
    for module in model.modules():
        if isinstance(module, WEIGHT_LAYERS) and module.weight.requires_grad and id(module.weight) not in seen:
            seen.add(id(module.weight))
            weights.append(module.weight)
    return weights


def decay_param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two optimizer parameter groups: conv/linear weights decayed, everything else not.

    Returns ``[{"name": "decay", "params": [...], "weight_decay": weight_decay},
    {"name": "no_decay", "params": [...], "weight_decay": 0.0}]``, leaving out a group that
    would be empty. Every trainable parameter is in exactly one group; frozen ones in none.
    "Everything else" is biases, normalisation layers' ``weight``/``bias`` (gamma/beta)
    and any other parameter, e.g. a ViT's position embedding.

    Give the result to any optimizer in place of ``model.parameters()``; the ``"name"``
    key is kept by PyTorch and only helps reading ``optimizer.param_groups``::

        optimizer = torch.optim.AdamW(decay_param_groups(model, 0.05), lr=1e-3)
    """
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0; got {weight_decay}.")
    decay = penalized_parameters(model)
    decay_ids = {id(p) for p in decay}
    # model.parameters() yields each parameter once, even when shared.
    no_decay = [p for p in model.parameters() if p.requires_grad and id(p) not in decay_ids]
    if not decay and not no_decay:
        raise ValueError("The model has no trainable parameters (all requires_grad=False): nothing to optimize.")
    groups = [
        {"name": "decay", "params": decay, "weight_decay": float(weight_decay)},
        {"name": "no_decay", "params": no_decay, "weight_decay": 0.0},
    ]
    return [group for group in groups if group["params"]]


class PenalizedLoss(nn.Module):
    """``loss_fn(logits, targets) + l1 * sum(|w|) + l2 * sum(w ** 2)`` over the weights only.

    The weights are those of :func:`penalized_parameters` (conv/linear weights; no
    biases, no normalisation parameters), chosen when the loss is built: build it after
    freezing or unfreezing layers.

    - L1 pulls every weight towards 0 by the same amount (its gradient is
      ``l1 * sign(w)``), so many small weights end up exactly at (or around) zero:
      a sparse network.
    - L2 pulls each weight in proportion to its size (gradient ``2 * l2 * w``): large
      weights shrink fast, small ones hardly move; few become exactly zero.

    L2 in the loss versus the optimizer's ``weight_decay``: with plain SGD they are the
    same update, ``w -= lr * (grad + 2 * l2 * w)``, so ``l2 = wd / 2`` here equals
    ``SGD(weight_decay=wd)``. With Adam they are not: Adam divides each gradient, the
    penalty's share included, by the running size of that weight's past gradients, so
    weights with large gradients are hardly decayed at all. ``torch.optim.Adam(weight_decay=wd)``
    is this coupled L2 (it adds ``wd * w`` to the gradient); AdamW *decouples* the decay,
    shrinking each weight directly by ``lr * wd * w`` outside the adaptive step, which is
    what "weight decay" was meant to be (Loshchilov & Hutter, 2019). With Adam, prefer
    ``AdamW`` with :func:`decay_param_groups` to L2 here.

    The penalty is part of the loss, so the Trainer's ``train_loss`` and ``val_loss``
    include it: compare runs by accuracy, or read :meth:`penalty`.

    Shapes: ``logits (B, C)``, ``targets (B,)`` int64 or ``(B, C)`` soft -> a scalar.
    """

    def __init__(self, loss_fn: nn.Module, model: nn.Module, l1: float = 0.0, l2: float = 0.0) -> None:
        super().__init__()
        if l1 < 0 or l2 < 0:
            raise ValueError(f"l1 and l2 must be >= 0; got l1={l1}, l2={l2}.")
        self.loss_fn, self.l1, self.l2 = loss_fn, float(l1), float(l2)
        # A plain list, not a registered submodule: the loss must not own (or move) the model.
        self.weights = penalized_parameters(model)
        if not self.weights and (l1 or l2):
            raise ValueError("The model has no trainable conv/linear weights to penalise.")

    def penalty(self) -> Tensor:
        """``l1 * sum(|w|) + l2 * sum(w ** 2)`` over the weights, a scalar tensor (differentiable)."""
        total = self.weights[0].new_zeros(()) if self.weights else torch.zeros(())
        for w in self.weights:
            if self.l1:
                total = total + self.l1 * w.abs().sum()
            if self.l2:
                total = total + self.l2 * w.pow(2).sum()
        return total

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        return self.loss_fn(logits, targets) + self.penalty()

    def extra_repr(self) -> str:
        return f"l1={self.l1}, l2={self.l2}, weights={len(self.weights)} tensors"


def smooth_labels(targets: Tensor, num_classes: int, smoothing: float) -> Tensor:
    """Class indices -> smoothed one-hot targets: ``1 - s + s/C`` on the true class, ``s/C`` elsewhere.

    A one-hot target asks for an infinitely confident logit; the network keeps growing its
    weights to chase it. Smoothing asks for "mostly this class" instead, which keeps the
    logits bounded and the network less over-confident. ``nn.CrossEntropyLoss`` with these
    targets equals ``nn.CrossEntropyLoss(label_smoothing=s)`` with the indices.

    Shapes: ``targets (B,)`` int64 in ``[0, num_classes)`` -> ``(B, num_classes)`` float32,
    rows summing to 1.
    """
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"smoothing must be in [0, 1]; got {smoothing} (0.1 is usual).")
    if targets.ndim != 1 or targets.is_floating_point():
        raise ValueError(
            f"targets must be (B,) integer class indices; got shape {tuple(targets.shape)} {targets.dtype}. "
            "Soft targets (MixUp) are already smooth."
        )
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= num_classes):
        raise ValueError(
            f"class indices must be in [0, {num_classes}); got {int(targets.min())}..{int(targets.max())}: "
            "is num_classes right?"
        )
    one_hot = nn.functional.one_hot(targets, num_classes).float()  # (B, C)
    return one_hot * (1.0 - smoothing) + smoothing / num_classes
