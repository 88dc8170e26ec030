"""Mosaic: four images in one, around a random centre (Bochkovskiy et al. 2020, YOLOv4).

The output canvas is split into four quadrants by a random centre point ``(cx, cy)``;
each quadrant shows one image. The network sees four contexts at once and objects at
smaller scales. YOLOv4 pastes full-size images and crops what falls outside; here each
image is *resized to fill its quadrant* instead, so the whole object stays in view, which
suits classification, where the label is about the whole photo. Each image's label
weight is the area of its quadrant.

>>> mosaic = Mosaic(num_classes=2, output_size=64)
>>> params = mosaic.sample_params(batch_size=8, generator=torch.Generator().manual_seed(0))
>>> x, soft_y = mosaic.apply(images, labels, params)   # (8, 3, 64, 64), (8, 2) float
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.transforms.v2 import functional as TF

from ldl.augment.mixing import check_batch, soft_labels
from ldl.augment.seeding import draw_device

QUADRANTS = ("top-left", "top-right", "bottom-left", "bottom-right")


@dataclass(frozen=True)
class MosaicParams:
    """One Mosaic draw.

    Attributes:
        centre: ``(cx, cy)`` in output pixels: the left quadrants are ``cx`` wide, the top
            ones ``cy`` high.
        sources: ``(4, B)`` int64: output ``i`` shows image ``sources[q, i]`` in quadrant
            ``q`` (order of ``QUADRANTS``). Row 0 is ``0..B-1``: each output keeps its own
            image top-left; rows 1-3 are random permutations.
    """

    centre: tuple[int, int]
    sources: torch.Tensor


class Mosaic:
    """Tile four images of the batch into each output image.

    Args:
        num_classes: ``K``, the width of the soft labels.
        output_size: side (or ``(H, W)``) of the output; ``None`` keeps the input size.
        centre_range: the centre is drawn uniformly in this range of fractions of the width
            and of the height, so no quadrant is thinner than ``centre_range[0]``.

    Input: ``(B, C, H, W)`` uint8 or float images, ``(B,)`` class indices or ``(B, K)`` soft
    labels. Output: ``(B, C, *output_size)`` of the same dtype, ``(B, K)`` float32 labels
    summing to 1, each image weighted by its quadrant's share of the pixels.
    """

    def __init__(
        self,
        num_classes: int,
        output_size: int | tuple[int, int] | None = None,
        centre_range: tuple[float, float] = (0.25, 0.75),
    ) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}.")
        if not 0.0 < centre_range[0] <= centre_range[1] < 1.0:
            raise ValueError(f"centre_range holds fractions with 0 < low <= high < 1, got {centre_range}.")
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        if output_size is not None and min(output_size) < 2:
            raise ValueError(f"output_size must be at least 2 pixels a side, got {output_size}.")
        self.num_classes = int(num_classes)
        self.output_size = output_size
        self.centre_range = (float(centre_range[0]), float(centre_range[1]))

    def _size(self, images: torch.Tensor) -> tuple[int, int]:
        return self.output_size if self.output_size is not None else (int(images.shape[-2]), int(images.shape[-1]))

    def sample_params(
        self, batch_size: int, height: int, width: int, generator: torch.Generator | None = None
    ) -> MosaicParams:
        """Draw the centre in an output of ``height x width`` and three permutations of partners."""
        device = draw_device(generator)

        def centre_along(side: int) -> int:
            # At least 1 pixel for every quadrant, whatever the range.
            low = max(1, round(self.centre_range[0] * side))
            high = min(side - 1, max(low, round(self.centre_range[1] * side)))
            return int(torch.randint(low, high + 1, (1,), generator=generator, device=device))

        centre = (centre_along(width), centre_along(height))
        own = torch.arange(batch_size, device=device)
        others = [torch.randperm(batch_size, generator=generator, device=device) for _ in range(3)]
        return MosaicParams(centre=centre, sources=torch.stack([own, *others]))

    @staticmethod
    def quadrant_boxes(centre: tuple[int, int], height: int, width: int) -> list[tuple[int, int, int, int]]:
        """``(x1, y1, x2, y2)`` of the four quadrants, in the order of ``QUADRANTS``."""
        cx, cy = centre
        return [(0, 0, cx, cy), (cx, 0, width, cy), (0, cy, cx, height), (cx, cy, width, height)]

    def apply(
        self, images: torch.Tensor, labels: torch.Tensor, params: MosaicParams
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Build the mosaics of ``params``: resize each source image into its quadrant."""
        check_batch(images, labels, "Mosaic")
        height, width = self._size(images)
        cx, cy = params.centre
        if not (0 < cx < width and 0 < cy < height):
            raise ValueError(f"centre {params.centre} must lie strictly inside the {height}x{width} output.")
        out = torch.empty((images.shape[0], images.shape[1], height, width), dtype=images.dtype, device=images.device)
        one_hot = soft_labels(labels, self.num_classes)
        mixed_labels = torch.zeros_like(one_hot)
        sources = params.sources.to(images.device)
        for q, (x1, y1, x2, y2) in enumerate(self.quadrant_boxes(params.centre, height, width)):
            # The whole batch's quadrant q in one resize call; antialias avoids aliasing
            # when a large photo shrinks into a small quadrant.
            out[:, :, y1:y2, x1:x2] = TF.resize(images[sources[q]], [y2 - y1, x2 - x1], antialias=True)
            share = (x2 - x1) * (y2 - y1) / (height * width)
            mixed_labels += share * one_hot[sources[q].to(one_hot.device)]
        return out, mixed_labels

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        check_batch(images, labels, "Mosaic")
        height, width = self._size(images)
        return self.apply(images, labels, self.sample_params(images.shape[0], height, width, generator))

    def __repr__(self) -> str:
        return f"Mosaic(num_classes={self.num_classes}, output_size={self.output_size}, centre_range={self.centre_range})"
