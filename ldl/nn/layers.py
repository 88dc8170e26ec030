"""Dropout and batch normalisation written from scratch: lesson 2 takes them apart.

Each layer here behaves like its PyTorch twin (``nn.Dropout``, ``nn.Dropout2d``,
``nn.BatchNorm2d``) and the tests check it number for number, so after reading these
few lines you know what the built-in layers do. In real models, use the built-ins: they
are faster and handle more cases.

Both kinds of layer act differently in the two modes of a module:

- ``model.train()``: dropout drops, batch norm uses the batch's own statistics and
  updates its running averages;
- ``model.eval()``: dropout does nothing, batch norm uses the running averages.

Forgetting ``model.eval()`` before validating is a classic bug: the predictions become
random (dropout) and depend on the other photos of the batch (batch norm).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _check_probability(p: float) -> float:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability p must be in [0, 1); got {p}. (p=1 would drop everything.)")
    return float(p)


class InvertedDropout(nn.Module):
    """Zero each element with probability ``p`` during training; do nothing in eval mode.

    "Inverted": the survivors are scaled by ``1 / (1 - p)`` *at training time*, so the
    expected value of every element is unchanged, ``E[out] = (1 - p) * x / (1 - p) = x``,
    and evaluation needs no rescaling at all: eval mode is the identity.

    With the same random seed it draws the same mask as ``nn.Dropout`` on the CPU.

    Shapes: any ``(*)`` float -> the same shape.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = _check_probability(p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x  # eval: the whole network is used, deterministically
        # mask: 1 with probability 1 - p (keep), 0 with probability p (drop). A new mask
        # every call, so every batch trains a different random sub-network.
        mask = torch.empty_like(x).bernoulli_(1 - self.p)  # same shape as x
        mask.div_(1 - self.p)  # survivors scaled up now, so eval needs no scaling later
        # Multiplying (not assigning) keeps the graph: the gradient flows only through kept elements.
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


class InvertedDropout2d(nn.Module):
    """Zero whole channels (feature maps) with probability ``p`` during training.

    Neighbouring pixels of a feature map are strongly correlated, so dropping single
    pixels hardly removes any information: the neighbours still carry it. Dropping a
    whole channel forces the network not to rely on any one feature map.

    Same scaling and modes as :class:`InvertedDropout`; the same masks as ``nn.Dropout2d``.

    Shapes: ``(B, C, H, W)`` float -> ``(B, C, H, W)``; one draw per ``(b, c)``.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = _check_probability(p)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4:
            raise ValueError(f"InvertedDropout2d expects (B, C, H, W) feature maps; got shape {tuple(x.shape)}.")
        if not self.training or self.p == 0.0:
            return x
        batch, channels = x.shape[:2]
        mask = x.new_empty(batch, channels, 1, 1).bernoulli_(1 - self.p)  # (B, C, 1, 1): one coin per channel
        mask.div_(1 - self.p)
        return x * mask  # broadcasting spreads each channel's coin over its H x W pixels

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ScratchBatchNorm2d(nn.Module):
    """Batch normalisation of feature maps, like ``nn.BatchNorm2d``.

    Training: for each channel, take the mean and the (biased) variance over the batch and
    all pixels, i.e. over dimensions ``(B, H, W)``, normalise to mean 0 and variance 1, then
    scale by ``weight`` (gamma) and shift by ``bias`` (beta), two learnt numbers per channel
    that let the network undo the normalisation where that helps::

        y = weight * (x - mean) / sqrt(var + eps) + bias

    Meanwhile exponential moving averages of the statistics are kept for evaluation::

        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var  = (1 - momentum) * running_var  + momentum * var * n / (n - 1)

    where ``n = B * H * W``: the running variance is the *unbiased* estimate, as in PyTorch.
    (``momentum`` is the weight of the new batch, the opposite of an optimizer's momentum.)

    Eval: the running averages replace the batch statistics, so a photo's prediction does
    not depend on which other photos share its batch.

    The parameter and buffer names match ``nn.BatchNorm2d``, so state dicts load across.

    Shapes: ``(B, num_features, H, W)`` float -> the same shape.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        # Parameters: learnt by the optimizer. Start as the identity transform.
        self.weight = nn.Parameter(torch.ones(num_features))  # gamma, (C,)
        self.bias = nn.Parameter(torch.zeros(num_features))  # beta, (C,)
        # Buffers: saved in the state dict and moved by .to(device), but not learnt.
        self.register_buffer("running_mean", torch.zeros(num_features))  # (C,)
        self.register_buffer("running_var", torch.ones(num_features))  # (C,)
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(
                f"ScratchBatchNorm2d({self.num_features}) expects (B, {self.num_features}, H, W); "
                f"got shape {tuple(x.shape)}."
            )
        if self.training:
            # Statistics of this batch, per channel, over batch and pixels: (C,) each.
            mean = x.mean(dim=(0, 2, 3))
            var = x.var(dim=(0, 2, 3), unbiased=False)  # biased: divide by n, as the formula normalises
            self._update_running_stats(mean, var, n=x.numel() // x.shape[1])
        else:
            mean, var = self.running_mean, self.running_var
        # view(1, C, 1, 1): one number per channel, broadcast over batch and pixels.
        x_hat = (x - mean.view(1, -1, 1, 1)) / torch.sqrt(var.view(1, -1, 1, 1) + self.eps)
        return self.weight.view(1, -1, 1, 1) * x_hat + self.bias.view(1, -1, 1, 1)

    @torch.no_grad()  # bookkeeping, not part of what the loss is differentiated through
    def _update_running_stats(self, mean: Tensor, var: Tensor, n: int) -> None:
        if n < 2:
            raise ValueError("batch norm needs more than one value per channel in training (B * H * W >= 2).")
        unbiased_var = var * n / (n - 1)
        self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
        self.running_var.mul_(1 - self.momentum).add_(self.momentum * unbiased_var)
        self.num_batches_tracked.add_(1)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
