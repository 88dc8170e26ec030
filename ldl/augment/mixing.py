"""MixUp and CutMix: train on blends of two images, with labels blended the same way.

Both work on whole batches ``(B, C, H, W)`` and turn class indices ``(B,)`` into soft
labels ``(B, K)`` (rows sum to 1), which ``nn.CrossEntropyLoss`` accepts as targets, and so
does :class:`ldl.train.Trainer`.

- MixUp (Zhang et al. 2018): ``x = lambda * x_i + (1 - lambda) * x_j``, and the same for
  the one-hot labels. The network can no longer be sure of any training image, which
  curbs overconfident memorising.
- CutMix (Yun et al. 2019): a rectangle of ``x_j`` is pasted into ``x_i``; the label weight
  of each image is the share of pixels it contributes.

``lambda ~ Beta(alpha, alpha)`` is drawn once per batch, and image ``i`` is mixed with
image ``partner[i]``, where ``partner`` is a random permutation of the batch (as in the
MixUp paper's code). A permutation may pair an image with itself: that image is then left
as it is, with its own label. torchvision's ``v2.MixUp``/``v2.CutMix`` instead pair each
image with the previous one (``partner = roll by 1``); pass that as ``partner`` to
:meth:`MixUp.apply` to get their exact output.

As with torchvision v2, drawing is split from applying:

>>> mixup = MixUp(alpha=0.2, num_classes=2)
>>> params = mixup.sample_params(batch_size=8, generator=torch.Generator().manual_seed(0))
>>> x, soft_y = mixup.apply(images, labels, params)   # (8, 3, H, W), (8, 2) float
>>> x, soft_y = mixup(images, labels)                  # both steps
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ldl.augment.sampling import sample_beta
from ldl.augment.seeding import draw_device


def soft_labels(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(B,)`` class indices -> ``(B, K)`` one-hot float32; ``(B, K)`` soft labels pass through as float.

    Passing soft labels through lets mixes be chained (e.g. CutMix after Mosaic).
    """
    if labels.ndim == 2:
        if labels.shape[1] != num_classes:
            raise ValueError(f"soft labels have {labels.shape[1]} columns, but num_classes={num_classes}.")
        return labels.float()
    if labels.ndim != 1 or labels.is_floating_point():
        raise ValueError(
            f"labels must be (B,) integer class indices or (B, {num_classes}) soft labels, "
            f"got shape {tuple(labels.shape)} {labels.dtype}."
        )
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"class indices must be in [0, {num_classes}), got {int(labels.min())}..{int(labels.max())}: "
            "is num_classes right?"
        )
    return torch.nn.functional.one_hot(labels.long(), num_classes).float()


def check_batch(images: torch.Tensor, labels: torch.Tensor, who: str) -> None:
    """Raise a clear error unless ``images`` is ``(B, C, H, W)`` with one label per image."""
    if images.ndim != 4:
        raise ValueError(f"{who} mixes whole batches: expected (B, C, H, W) images, got shape {tuple(images.shape)}.")
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"{who}: {images.shape[0]} images but {labels.shape[0]} labels.")


def _check_alpha(alpha: float, num_classes: int) -> None:
    if not alpha > 0:
        raise ValueError(f"alpha is the Beta(alpha, alpha) parameter and must be > 0, got {alpha}.")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}.")


def random_partner(batch_size: int, generator: torch.Generator | None) -> torch.Tensor:
    """``(B,)`` int64 random permutation: image ``i`` is mixed with image ``partner[i]``."""
    return torch.randperm(batch_size, generator=generator, device=draw_device(generator))


def _mix_labels(labels: torch.Tensor, partner: torch.Tensor, own_weight: float, num_classes: int) -> torch.Tensor:
    """``own_weight * y_i + (1 - own_weight) * y_partner[i]``, ``(B, K)`` float."""
    one_hot = soft_labels(labels, num_classes)
    return own_weight * one_hot + (1.0 - own_weight) * one_hot[partner.to(one_hot.device)]


@dataclass(frozen=True)
class MixUpParams:
    """``lam``: weight of each image's own pixels and label; ``partner``: ``(B,)`` int64."""

    lam: float
    partner: torch.Tensor


class MixUp:
    """Blend every image with a partner: ``lam * x_i + (1 - lam) * x_partner[i]``.

    Args:
        alpha: ``lam ~ Beta(alpha, alpha)``. Small alpha (0.2, the paper's ImageNet value)
            gives ``lam`` near 0 or 1 most of the time: mostly one image, a little of the other.
            ``alpha = 1`` draws ``lam`` uniformly.
        num_classes: ``K``, the width of the soft labels.

    Input: ``(B, C, H, W)`` float images (blending needs fractions, not uint8), ``(B,)``
    int class indices or ``(B, K)`` soft labels. Output: the same images shape and dtype,
    ``(B, K)`` float32 soft labels whose rows sum to 1.
    """

    def __init__(self, alpha: float = 0.2, num_classes: int = 2) -> None:
        _check_alpha(alpha, num_classes)
        self.alpha = float(alpha)
        self.num_classes = int(num_classes)

    def sample_params(self, batch_size: int, generator: torch.Generator | None = None) -> MixUpParams:
        """Draw ``lam`` and the partners (from torch's global random state when ``generator`` is None)."""
        lam = float(sample_beta(self.alpha, self.alpha, 1, generator)[0])
        return MixUpParams(lam=lam, partner=random_partner(batch_size, generator))

    def apply(
        self, images: torch.Tensor, labels: torch.Tensor, params: MixUpParams
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix ``images`` and ``labels`` with fixed ``params``."""
        check_batch(images, labels, "MixUp")
        if not images.is_floating_point():
            raise TypeError(
                f"MixUp blends pixel values, so it needs float images, got {images.dtype}: convert with "
                "images.float() / 255 (or use CutMix, which only copies pixels)."
            )
        partner = params.partner.to(images.device)
        mixed = params.lam * images + (1.0 - params.lam) * images[partner]
        return mixed, _mix_labels(labels, params.partner, params.lam, self.num_classes)

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.apply(images, labels, self.sample_params(images.shape[0], generator))

    def __repr__(self) -> str:
        return f"MixUp(alpha={self.alpha}, num_classes={self.num_classes})"


@dataclass(frozen=True)
class CutMixParams:
    """One CutMix draw.

    Attributes:
        box: ``(x1, y1, x2, y2)`` pixel bounds of the pasted rectangle, clipped to the image
            (columns ``x1:x2``, rows ``y1:y2``).
        lam: the weight of each image's own label: the fraction of its pixels left outside
            ``box``, ``1 - box area / (H * W)``. This is the *corrected* lambda.
        partner: ``(B,)`` int64, whose pixels fill the box.
        lam_drawn: the ``Beta(alpha, alpha)`` draw the box size came from, before clipping.
    """

    box: tuple[int, int, int, int]
    lam: float
    partner: torch.Tensor
    lam_drawn: float


def cutmix_box(lam: float, centre_x: int, centre_y: int, height: int, width: int) -> tuple[int, int, int, int]:
    """The CutMix rectangle for a drawn ``lam`` around ``(centre_x, centre_y)``, clipped to the image.

    Its sides are ``sqrt(1 - lam)`` times the image's (so its area is ``1 - lam`` of the
    image before clipping), rounded down to an even number of pixels around the centre, as
    in torchvision's ``v2.CutMix``. A centre near the border cuts the box off: the area
    actually pasted is then smaller than ``1 - lam``, and the label weights must be
    computed from the clipped box, not from ``lam`` (timm and torchvision do the same).
    """
    half = 0.5 * math.sqrt(1.0 - lam)
    half_w, half_h = int(half * width), int(half * height)
    x1, x2 = max(centre_x - half_w, 0), min(centre_x + half_w, width)
    y1, y2 = max(centre_y - half_h, 0), min(centre_y + half_h, height)
    return x1, y1, x2, y2


class CutMix:
    """Paste a random rectangle of a partner image into every image.

    Args:
        alpha: the box area is ``1 - lam`` of the image with ``lam ~ Beta(alpha, alpha)``;
            ``alpha = 1`` (the paper's choice) draws the area uniformly.
        num_classes: ``K``, the width of the soft labels.

    One box per batch (same position for every image, each with its own partner), as in
    the paper and torchvision. Input: ``(B, C, H, W)`` images of any dtype (pixels are only
    copied, so uint8 works), ``(B,)`` class indices or ``(B, K)`` soft labels. Output: images
    of the same shape and dtype, ``(B, K)`` float32 labels that sum to 1, where each image's
    weight is exactly the fraction of pixels it contributes.
    """

    def __init__(self, alpha: float = 1.0, num_classes: int = 2) -> None:
        _check_alpha(alpha, num_classes)
        self.alpha = float(alpha)
        self.num_classes = int(num_classes)

    def sample_params(
        self, batch_size: int, height: int, width: int, generator: torch.Generator | None = None
    ) -> CutMixParams:
        """Draw ``lam``, a box centre uniform over the pixels, and the partners."""
        lam_drawn = float(sample_beta(self.alpha, self.alpha, 1, generator)[0])
        centre_x = int(torch.randint(width, (1,), generator=generator, device=draw_device(generator)))
        centre_y = int(torch.randint(height, (1,), generator=generator, device=draw_device(generator)))
        box = cutmix_box(lam_drawn, centre_x, centre_y, height, width)
        x1, y1, x2, y2 = box
        lam = 1.0 - (x2 - x1) * (y2 - y1) / (height * width)  # corrected to the clipped box
        return CutMixParams(box=box, lam=lam, partner=random_partner(batch_size, generator), lam_drawn=lam_drawn)

    def apply(
        self, images: torch.Tensor, labels: torch.Tensor, params: CutMixParams
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Paste ``params.box`` from each partner and weight the labels by pixel share."""
        check_batch(images, labels, "CutMix")
        x1, y1, x2, y2 = params.box
        partner = params.partner.to(images.device)
        mixed = images.clone()
        mixed[:, :, y1:y2, x1:x2] = images[partner, :, y1:y2, x1:x2]
        return mixed, _mix_labels(labels, params.partner, params.lam, self.num_classes)

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        check_batch(images, labels, "CutMix")
        batch_size, _, height, width = images.shape
        return self.apply(images, labels, self.sample_params(batch_size, height, width, generator))

    def __repr__(self) -> str:
        return f"CutMix(alpha={self.alpha}, num_classes={self.num_classes})"
