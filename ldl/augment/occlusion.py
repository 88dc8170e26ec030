"""Occlusion: hide part of the image so the network cannot rely on one small region.

- Random erasing (Zhong et al. 2017) and Cutout (DeVries and Taylor 2017): one rectangle
  filled with a constant. torchvision has it: ``v2.RandomErasing``; :func:`cutout` sets it
  up as Cutout's fixed-size square.
- GridMask (Chen et al. 2020): a regular grid of square holes. One rectangle either hides
  the whole object or misses it; a grid hides many small pieces of it, always leaving
  enough to recognise it. torchvision has no GridMask, so :class:`GridMask` is below.

>>> mask = GridMask(unit_range=(0.25, 0.5), keep_ratio=0.6)
>>> params = mask.sample_params(64, 64, generator=torch.Generator().manual_seed(0))
>>> out = mask.apply(image, params)      # image: (3, 64, 64) uint8 -> (3, 64, 64) uint8
>>> out = mask(image)                    # both steps, from torch's global random state
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import PIL.Image
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from ldl.augment.seeding import draw_device

RandomErasing = v2.RandomErasing  # re-exported: erases one random rectangle


def cutout(area: float = 0.25, value: float = 0.0) -> v2.RandomErasing:
    """Cutout as a ``v2.RandomErasing``: always one square covering ``area`` of the image.

    Cutout's square may hang over the border; RandomErasing keeps it inside, which only
    makes the erased area exactly ``area``. ``value`` fills it (0: black for uint8 or
    ``[0, 1]`` images, the mean for standardised ones).
    """
    if not 0.0 < area < 1.0:
        raise ValueError(f"area is a fraction of the image in (0, 1), got {area}.")
    return v2.RandomErasing(p=1.0, scale=(area, area), ratio=(1.0, 1.0), value=value)


@dataclass(frozen=True)
class GridMaskParams:
    """One draw of GridMask, in pixels.

    Attributes:
        unit: side ``d`` of one grid cell.
        hole: side of the square hole in each cell, ``d - round(d * keep_ratio)``.
        offset_x, offset_y: where the first hole starts, in ``[0, d)``.
        angle: rotation of the grid about the image centre, in degrees (counter-clockwise).
    """

    unit: int
    hole: int
    offset_x: int
    offset_y: int
    angle: float = 0.0


class GridMask:
    """Erase a grid of square holes (Chen et al. 2020, "GridMask Data Augmentation").

    The image is tiled by square cells of side ``d``. In every cell a square of side
    ``d - round(d * keep_ratio)`` is set to ``fill``; the rest of the cell is kept, so a
    fraction of about ``1 - (1 - keep_ratio)^2`` of the pixels survives (84 % for 0.6, the
    paper's ImageNet setting). ``d`` and the grid's offset are random for every image, and
    the grid may be rotated.

    Args:
        unit_range: range of the cell side ``d`` as fractions of the image's shorter side
            (the paper's ImageNet range, 96-224 px of 224, is ``(0.43, 1.0)``).
        keep_ratio: the paper's ``r``: fraction of each cell's side that is kept.
        max_angle: the grid is rotated by an angle drawn from ``[0, max_angle)`` degrees
            (0: never; 90 already gives every orientation of a square grid).
        fill: value written into the holes, in the image's own scale (0 is black for uint8
            and ``[0, 1]`` images, the mean for standardised ones).

    Input and output: a ``(3, H, W)`` or ``(B, 3, H, W)`` tensor of any dtype (uint8 or
    float; a batch gets one mask for all images), or a PIL image, returned as the same type.
    """

    def __init__(
        self,
        unit_range: tuple[float, float] = (0.25, 0.5),
        keep_ratio: float = 0.6,
        max_angle: float = 0.0,
        fill: float = 0.0,
    ) -> None:
        low, high = unit_range
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"unit_range holds fractions of the shorter side with 0 < low <= high <= 1, got {unit_range}.")
        if not 0.0 <= keep_ratio <= 1.0:
            raise ValueError(f"keep_ratio is the kept fraction of a cell's side, in [0, 1], got {keep_ratio}.")
        if max_angle < 0:
            raise ValueError(f"max_angle is a non-negative number of degrees, got {max_angle}.")
        self.unit_range = (float(low), float(high))
        self.keep_ratio = float(keep_ratio)
        self.max_angle = float(max_angle)
        self.fill = fill

    def sample_params(self, height: int, width: int, generator: torch.Generator | None = None) -> GridMaskParams:
        """Draw ``d``, the offsets and the angle for an ``height x width`` image.

        With ``generator=None`` the numbers come from torch's global random state, so
        :func:`ldl.augment.seeding.seeded` reproduces them along with torchvision's transforms.
        """
        shorter = min(height, width)
        low = max(2, round(self.unit_range[0] * shorter))  # a cell of 1 px could hold no grid
        high = max(low, round(self.unit_range[1] * shorter))
        device = draw_device(generator)
        unit = int(torch.randint(low, high + 1, (1,), generator=generator, device=device))
        offset_x, offset_y = (int(v) for v in torch.randint(unit, (2,), generator=generator, device=device))
        angle = 0.0
        if self.max_angle > 0:
            angle = float(torch.rand(1, generator=generator, device=device)) * self.max_angle
        return GridMaskParams(
            unit=unit,
            hole=unit - round(unit * self.keep_ratio),  # the kept part in whole pixels
            offset_x=offset_x,
            offset_y=offset_y,
            angle=angle,
        )

    @staticmethod
    def mask(height: int, width: int, params: GridMaskParams, device: torch.device | str = "cpu") -> torch.Tensor:
        """``(H, W)`` bool, True where a pixel is erased.

        Pixel ``(y, x)`` is in a hole when both ``(x - offset_x) mod d < hole`` and
        ``(y - offset_y) mod d < hole``: the crossings of a set of vertical and of horizontal
        stripes. For a rotated grid the test is made on the pixel's coordinates rotated back
        about the image centre.
        """
        ys = torch.arange(height, device=device, dtype=torch.float64).view(-1, 1)  # (H, 1)
        xs = torch.arange(width, device=device, dtype=torch.float64).view(1, -1)  # (1, W)
        if params.angle != 0.0:
            centre_y, centre_x = (height - 1) / 2, (width - 1) / 2
            cos, sin = math.cos(math.radians(params.angle)), math.sin(math.radians(params.angle))
            dx, dy = xs - centre_x, ys - centre_y
            # y points down in images, so a counter-clockwise turn on screen is -angle here.
            xs, ys = centre_x + cos * dx - sin * dy, centre_y + sin * dx + cos * dy
        in_column = torch.remainder(xs - params.offset_x, params.unit) < params.hole
        in_row = torch.remainder(ys - params.offset_y, params.unit) < params.hole
        return in_column & in_row  # broadcasts to (H, W)

    def apply(self, image: Any, params: GridMaskParams) -> Any:
        """Erase the holes of ``params`` from ``image`` (tensor ``(..., C, H, W)`` or PIL)."""
        if isinstance(image, PIL.Image.Image):
            return TF.to_pil_image(self.apply(TF.pil_to_tensor(image), params))
        if not isinstance(image, torch.Tensor) or image.ndim < 3:
            raise TypeError(
                f"GridMask expects a (3, H, W) / (B, 3, H, W) tensor or a PIL image, got {type(image).__name__}"
                f"{' of shape ' + str(tuple(image.shape)) if isinstance(image, torch.Tensor) else ''}."
            )
        height, width = image.shape[-2:]
        holes = self.mask(height, width, params, device=image.device)
        out = image.as_subclass(torch.Tensor).masked_fill(holes, self.fill)  # (H, W) broadcasts over channels
        if isinstance(image, tv_tensors.Image):
            return tv_tensors.wrap(out, like=image)  # keep the type, so later v2 transforms treat it as an image
        return out

    def __call__(self, image: Any, generator: torch.Generator | None = None) -> Any:
        """Draw fresh parameters for ``image`` and apply them."""
        height, width = TF.get_size(image)
        return self.apply(image, self.sample_params(height, width, generator))

    def __repr__(self) -> str:
        return (
            f"GridMask(unit_range={self.unit_range}, keep_ratio={self.keep_ratio}, "
            f"max_angle={self.max_angle}, fill={self.fill})"
        )
