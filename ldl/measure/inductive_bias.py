"""Inductive bias, measured: shift an image by a few pixels, see how much a network's features move.

    features = translation_sensitivity(model, images, shifts=(1, 2, 4, 8, 16))
    # {1: 0.02, 2: 0.03, ...}: mean ||f(shifted) - f(x)|| / ||f(x)|| of the penultimate features

Why a convolutional network barely notices: a convolution slides the same filter over
every position, so shifting its input shifts its output map by the same amount
(translation *equivariance*). Global average pooling at the end then averages that map
over all positions, and an average does not care where things are: the pooled features
are nearly *invariant*. Exactly so for shifts that are multiples of the network's total
stride (32 for ResNet and ConvNeXt) if the image had no borders (wrapped round, as
the tests check on a small network); approximately otherwise, because strided layers
sample the map on a grid that a small shift moves, and because the strip that enters
at one border and leaves at the other is new content.

A Vision Transformer has no such built-in guarantee. It cuts the image into a fixed grid
of 16 x 16 patches, so a shift of a few pixels changes the content of *every* patch,
and each patch carries a learned position embedding. Whatever robustness to shifts it
has, it learned from data (and data augmentation). A shift by a whole patch puts each
neighbour's exact content back on the grid, so its change often dips at 16 px. Swin sits
in between: attention inside local windows, on a grid of 4 x 4 patches.

Pretrained or random weights matter. With random weights the architecture alone speaks
(through its initialisation: torchvision's ConvNeXt starts every block scaled by 1e-6,
so a random ConvNeXt is little more than its non-overlapping "patchify" stem and
downsampling layers); with pretrained weights, so does what training taught it.

Three yardsticks (``metric``):

- ``"relative"`` (the lesson's): ``||f(shift(x)) - f(x)|| / ||f(x)||``, how far the feature
  vector moves as a fraction of its length.
- ``"cosine"``: ``1 - cos(f(shift(x)), f(x))``, which ignores changes of length.
- ``"vs_other_images"``: the move divided by the mean distance between the features of
  two *different* photos. Use it to compare architectures: features that share a large
  common part (all positive after a ReLU, as in ResNet) are long vectors, which makes
  their relative change look small.

:func:`shifted_features` returns the features themselves, to compute several yardsticks
from one set of forward passes.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ldl.models import remove_head

__all__ = [
    "FILL_MODES",
    "METRICS",
    "cosine_distance",
    "distance_between_images",
    "feature_extractor",
    "relative_change",
    "shift_images",
    "shifted_features",
    "translation_sensitivities",
    "translation_sensitivity",
    "translation_sensitivity_per_image",
]

# How the strip a shift uncovers is filled: F.pad's modes.
FILL_MODES = ("reflect", "replicate", "constant", "circular")
METRICS = ("relative", "cosine", "vs_other_images")


def shift_images(images: torch.Tensor, dx: int, dy: int, fill: str = "reflect") -> torch.Tensor:
    """Move the content of ``(B, C, H, W)`` images ``dx`` pixels right and ``dy`` pixels down.

    ``out[..., y, x] == images[..., y - dy, x - dx]`` wherever ``(y - dy, x - dx)`` is inside
    the image; negative ``dx``/``dy`` move left/up. Same shape and dtype as ``images``.

    The uncovered strip is filled by padding, then the result is cropped back to ``H x W``:

    - ``"reflect"`` (default): a mirror image of the pixels next to it. It continues the
      scene plausibly, like a camera moved a little, so the features react to the shift
      rather than to an artefact.
    - ``"replicate"``: the edge pixels repeated; ``"constant"``: zeros (a black, or after
      normalisation mean-coloured, bar: a sharp new edge that convolutions readily detect).
    - ``"circular"``: what ``torch.roll`` does: the strip pushed out on one side comes
      back on the other, a seam of content from across the image (a cat's tail on its
      nose). Useful only to test exact invariance of a circular network.

    Raises:
        ValueError: not 4-D, a shift of a whole side or more, or an unknown ``fill``.
    """
    if images.dim() != 4:
        raise ValueError(
            f"images must be (B, C, H, W); got shape {tuple(images.shape)}. For one image use images.unsqueeze(0)."
        )
    if fill not in FILL_MODES:
        raise ValueError(f"fill must be one of {FILL_MODES}; got {fill!r}.")
    dx, dy = int(dx), int(dy)
    height, width = images.shape[-2:]
    if abs(dx) >= width or abs(dy) >= height:
        raise ValueError(f"Shift ({dx}, {dy}) is not smaller than the {width} x {height} images: shift less.")
    if dx == 0 and dy == 0:
        return images.clone()
    # Pad on the side the content moves away from, then keep the H x W window that starts
    # |shift| in on the side that was padded at the other end: e.g. dx > 0 pads dx columns
    # on the left and keeps columns [0, W), so column x shows original column x - dx.
    padding = (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0))  # (left, right, top, bottom)
    padded = F.pad(images, padding, mode=fill)
    top, left = max(-dy, 0), max(-dx, 0)
    return padded[..., top : top + height, left : left + width]


def feature_extractor(model: nn.Module, remove_classifier: bool = True) -> nn.Module:
    """A copy of ``model`` in eval mode that outputs ``(B, D)`` features; ``model`` is untouched.

    Args:
        remove_classifier: replace the final ``nn.Linear`` of a registry backbone with
            ``nn.Identity`` (:func:`ldl.models.remove_head`), so the output is the pooled
            penultimate features. False: the model's own output is the feature vector.
    """
    extractor = copy.deepcopy(model)
    if remove_classifier:
        try:
            remove_head(extractor)
        except TypeError as error:
            raise TypeError(
                f"{error}\nIf the model already outputs features, pass remove_classifier=False."
            ) from error
    return extractor.eval()


def relative_change(features: torch.Tensor, shifted: torch.Tensor) -> torch.Tensor:
    """``||shifted - features|| / ||features||`` per row of two ``(B, D)`` tensors -> ``(B,)``."""
    # clamp: an all-zero feature vector (a dead network) must not divide by zero.
    return (shifted - features).norm(dim=1) / features.norm(dim=1).clamp_min(1e-12)


def cosine_distance(features: torch.Tensor, shifted: torch.Tensor) -> torch.Tensor:
    """``1 - cos(features, shifted)`` per row of two ``(B, D)`` tensors -> ``(B,)``; 0 = same direction."""
    return 1 - F.cosine_similarity(features, shifted, dim=1)


def distance_between_images(features: torch.Tensor) -> torch.Tensor:
    """Mean distance between the ``(B, D)`` features of different images (B >= 2) -> scalar.

    The yardstick of ``metric="vs_other_images"``: how far apart two different photos
    are in this network's feature space.
    """
    if len(features) < 2:
        raise ValueError('metric="vs_other_images" compares photos with each other: give at least 2 images.')
    distances = torch.cdist(features, features)  # (B, B), zero on the diagonal
    return distances.sum() / (len(features) * (len(features) - 1))


def _shift_offsets(shift: int, direction: tuple[int, int]) -> tuple[int, int]:
    return shift * direction[0], shift * direction[1]


@torch.no_grad()
def shifted_features(
    model: nn.Module,
    images: torch.Tensor,
    shifts: Iterable[int] = (1, 2, 4, 8, 16),
    *,
    direction: tuple[int, int] = (1, 0),
    fill: str = "reflect",
    remove_classifier: bool = True,
) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """Penultimate features of ``images`` and of each shifted copy.

    Args:
        model: a registry backbone (or any model, with ``remove_classifier=False``).
        images: ``(B, 3, H, W)`` float, preprocessed as the model expects (normalised).
        shifts: pixel offsets; each moves the content by ``shift * direction``.
        direction: ``(1, 0)`` shifts right, ``(0, 1)`` down, ``(1, 1)`` diagonally.
        fill, remove_classifier: see :func:`shift_images` and :func:`feature_extractor`.

    Returns:
        ``(features, {shift: shifted_features})``, all ``(B, D)`` float on the CPU.
    """
    shifts = [int(shift) for shift in shifts]
    if not shifts:
        raise ValueError("shifts is empty: give at least one pixel offset, e.g. (1, 2, 4, 8, 16).")
    for shift in shifts:  # every shift tried on an empty batch: bad input fails before the slow forward passes
        shift_images(images[:0], *_shift_offsets(shift, direction), fill)
    extractor = feature_extractor(model, remove_classifier)
    # The images go where the weights are; a model without any (a pooling layer) runs on the CPU.
    device = next(extractor.parameters(), torch.empty(0)).device
    images = images.to(device)

    def features_of(batch: torch.Tensor) -> torch.Tensor:
        return extractor(batch).flatten(1).float().cpu()  # (B, D)

    base = features_of(images)
    moved = {shift: features_of(shift_images(images, *_shift_offsets(shift, direction), fill)) for shift in shifts}
    return base, moved


def translation_sensitivity_per_image(
    model: nn.Module,
    images: torch.Tensor,
    shifts: Iterable[int] = (1, 2, 4, 8, 16),
    *,
    metric: str = "relative",
    direction: tuple[int, int] = (1, 0),
    fill: str = "reflect",
    remove_classifier: bool = True,
) -> dict[int, list[float]]:
    """How much each image's penultimate features change for each shift: ``{shift: [change of image i]}``.

    The spread over the images says how much a mean of a few photos can be trusted: two
    networks whose ranges overlap are not told apart by these photos. Arguments and
    yardsticks as in :func:`translation_sensitivity` (for ``"vs_other_images"`` every image's
    move is divided by the same mean distance between different images' features).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}; got {metric!r}.")
    if metric == "vs_other_images" and len(images) < 2:
        raise ValueError('metric="vs_other_images" compares photos with each other: give at least 2 images.')
    base, moved = shifted_features(
        model, images, shifts, direction=direction, fill=fill, remove_classifier=remove_classifier
    )
    if metric == "relative":
        changes = {shift: relative_change(base, features) for shift, features in moved.items()}
    elif metric == "cosine":
        changes = {shift: cosine_distance(base, features) for shift, features in moved.items()}
    else:
        yardstick = distance_between_images(base).clamp_min(1e-12)
        changes = {shift: (features - base).norm(dim=1) / yardstick for shift, features in moved.items()}
    return {shift: [float(value) for value in change] for shift, change in changes.items()}  # each (B,)


def translation_sensitivity(
    model: nn.Module,
    images: torch.Tensor,
    shifts: Iterable[int] = (1, 2, 4, 8, 16),
    *,
    metric: str = "relative",
    direction: tuple[int, int] = (1, 0),
    fill: str = "reflect",
    remove_classifier: bool = True,
) -> dict[int, float]:
    """How much the penultimate features change when the images move by each shift.

    The model is copied, its head removed, put in eval mode and run without gradients;
    ``model`` itself is left as it was.

    Args:
        model: a registry backbone (or any model, with ``remove_classifier=False``).
        images: ``(B, 3, H, W)`` float, preprocessed as the model expects (normalised).
        shifts: pixel offsets along ``direction`` (default: to the right).
        metric: ``"relative"`` (the lesson's): mean over images of ``||f(shift(x)) - f(x)|| / ||f(x)||``;
            ``"cosine"``: mean ``1 - cos(f(shift(x)), f(x))``; ``"vs_other_images"``: mean
            ``||f(shift(x)) - f(x)||`` over the mean distance between two different images'
            features (1: the shift moved the features as far as swapping the photo would;
            needs 2 images or more). See the module's docstring for when to use which.
        fill: how the uncovered strip is filled (see :func:`shift_images`).

    Returns:
        ``{shift: mean change}``, 0 meaning "did not notice the shift". The change of each
        image: :func:`translation_sensitivity_per_image`.
    """
    per_image = translation_sensitivity_per_image(
        model, images, shifts, metric=metric, direction=direction, fill=fill, remove_classifier=remove_classifier
    )
    return {shift: sum(changes) / len(changes) for shift, changes in per_image.items()}


def translation_sensitivities(
    models: Mapping[str, nn.Module],
    images: torch.Tensor,
    shifts: Iterable[int] = (1, 2, 4, 8, 16),
    *,
    metric: str = "relative",
    direction: tuple[int, int] = (1, 0),
    fill: str = "reflect",
    per_image: bool = False,
) -> dict[str, dict[int, float]] | dict[str, dict[int, list[float]]]:
    """:func:`translation_sensitivity` of several backbones on the same images: ``{name: {shift: change}}``.

    ``per_image=True``: every image's change (:func:`translation_sensitivity_per_image`),
    ``{name: {shift: [change of image i]}}``, to show the spread behind the mean.
    """
    shifts = list(shifts)
    measure = translation_sensitivity_per_image if per_image else translation_sensitivity
    return {
        name: measure(model, images, shifts, metric=metric, direction=direction, fill=fill)
        for name, model in models.items()
    }
