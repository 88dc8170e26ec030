"""Random augmentation of whole batches, on the training device.

torchvision's transforms work on one image at a time, in the DataLoader's worker processes:
on a 2-core machine that is as slow as decoding. :class:`BatchAugment` does the same kinds
of changes (flip, random resized crop, translation, rotation, brightness, contrast) to a
whole ``(B, 3, H, W)`` batch at once, with a few tensor operations that run wherever the
batch is (the GPU, when there is one).

Like torchvision ``transforms.v2``, drawing the random parameters is split from applying
them, so a slider or a test can set them by hand:

>>> augment = BatchAugment(degrees=15, scale=(0.6, 1.0))
>>> params = augment.sample_params(batch_size=32, generator=None, device="cpu")
>>> params["angle"][:3]                 # (B,) degrees, one per image
>>> out = augment.apply(batch, params)  # (B, 3, H, W) float in [0, 1]
>>> out = augment(batch)                # both steps at once
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

# ITU-R 601 luma weights, the ones torchvision's ColorJitter uses for contrast.
GRAY_WEIGHTS = (0.2989, 0.587, 0.114)
FILL_MODES = ("zeros", "border", "reflection")


class BatchAugment(torch.nn.Module):
    """Per-sample random flip, resized crop, translation, rotation, brightness and contrast.

    Every image of the batch gets its own random parameters. Each setting means what it
    means in torchvision, so :func:`per_sample_equivalent` can build the matching pipeline.

    Args:
        flip_p: probability of a horizontal flip.
        scale: range of the crop's area, as a fraction of the image (RandomResizedCrop).
            ``(1.0, 1.0)`` turns the crop off.
        ratio: range of the crop's width/height, in pixels, drawn log-uniformly.
        translate: largest shift as fractions ``(of width, of height)`` (RandomAffine).
        degrees: rotations are drawn from ``[-degrees, degrees]``; positive is
            counter-clockwise, as in torchvision.
        brightness: brightness factor drawn from ``[max(0, 1 - b), 1 + b]`` (ColorJitter).
        contrast: contrast factor drawn from ``[max(0, 1 - c), 1 + c]`` (ColorJitter).
        fill_mode: what fills areas moved in from outside the image: ``"zeros"`` (black,
            as torchvision's RandomAffine), ``"border"`` or ``"reflection"``.

    Input and output: ``(B, 3, H, W)`` float images with values in ``[0, 1]``.
    """

    def __init__(
        self,
        *,
        flip_p: float = 0.5,
        scale: tuple[float, float] = (0.6, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        translate: tuple[float, float] = (0.1, 0.1),
        degrees: float = 10.0,
        brightness: float = 0.2,
        contrast: float = 0.2,
        fill_mode: str = "zeros",
    ) -> None:
        super().__init__()
        if not 0.0 <= flip_p <= 1.0:
            raise ValueError(f"flip_p is a probability in [0, 1], got {flip_p}.")
        if not 0.0 < scale[0] <= scale[1] <= 1.0:
            raise ValueError(f"scale is an area fraction range with 0 < low <= high <= 1, got {scale}.")
        if not 0.0 < ratio[0] <= ratio[1]:
            raise ValueError(f"ratio is a width/height range with 0 < low <= high, got {ratio}.")
        if not all(0.0 <= t <= 1.0 for t in translate):
            raise ValueError(f"translate holds fractions of width and height in [0, 1], got {translate}.")
        if degrees < 0 or brightness < 0 or contrast < 0:
            raise ValueError("degrees, brightness and contrast are non-negative amounts.")
        if fill_mode not in FILL_MODES:
            raise ValueError(f"fill_mode must be one of {FILL_MODES}, got {fill_mode!r}.")
        self.flip_p = float(flip_p)
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.translate = (float(translate[0]), float(translate[1]))
        self.degrees = float(degrees)
        self.brightness = float(brightness)
        self.contrast = float(contrast)
        self.fill_mode = fill_mode

    # ---- drawing -------------------------------------------------------------------------

    def sample_params(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
    ) -> dict[str, torch.Tensor]:
        """Draw one set of parameters per image; every value is a ``(B,)`` tensor on ``device``.

        Keys: ``flip`` (bool), ``scale`` (crop area fraction), ``ratio`` (crop width/height),
        ``crop_x``/``crop_y`` (crop position in ``[-1, 1]``: -1 left/top, 0 centre, 1
        right/bottom), ``translate_x``/``translate_y`` (fractions of width/height),
        ``angle`` (degrees), ``brightness`` and ``contrast`` (factors, 1 = unchanged).

        With a ``generator`` the numbers come from it (on its device), else from torch's
        global random state, so ``torch.manual_seed`` makes them reproducible.
        """
        draw_device = generator.device if generator is not None else torch.device(device)

        def uniform(low: float, high: float) -> torch.Tensor:
            u = torch.rand(batch_size, generator=generator, device=draw_device)
            return low + (high - low) * u

        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        tx, ty = self.translate
        params = {
            "flip": uniform(0.0, 1.0) < self.flip_p,
            "scale": uniform(*self.scale),
            "ratio": torch.exp(uniform(*log_ratio)),
            "crop_x": uniform(-1.0, 1.0),
            "crop_y": uniform(-1.0, 1.0),
            "translate_x": uniform(-tx, tx),
            "translate_y": uniform(-ty, ty),
            "angle": uniform(-self.degrees, self.degrees),
            "brightness": uniform(max(0.0, 1.0 - self.brightness), 1.0 + self.brightness),
            "contrast": uniform(max(0.0, 1.0 - self.contrast), 1.0 + self.contrast),
        }
        return {name: value.to(device) for name, value in params.items()}

    @staticmethod
    def identity_params(batch_size: int, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """Parameters that leave square images unchanged (a starting point to set by hand)."""
        zeros = torch.zeros(batch_size, device=device)
        ones = torch.ones(batch_size, device=device)
        return {
            "flip": torch.zeros(batch_size, dtype=torch.bool, device=device),
            "scale": ones.clone(),
            "ratio": ones.clone(),
            "crop_x": zeros.clone(),
            "crop_y": zeros.clone(),
            "translate_x": zeros.clone(),
            "translate_y": zeros.clone(),
            "angle": zeros.clone(),
            "brightness": ones.clone(),
            "contrast": ones.clone(),
        }

    # ---- applying ------------------------------------------------------------------------

    def apply(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Apply ``params`` to ``x``: ``(B, 3, H, W)`` float in ``[0, 1]`` -> same shape."""
        if x.ndim != 4 or not x.is_floating_point():
            raise ValueError(
                f"BatchAugment expects a (B, 3, H, W) float batch in [0, 1], got {tuple(x.shape)} {x.dtype}; "
                "convert uint8 images with x.float() / 255 first."
            )
        batch, _, height, width = x.shape
        theta = self.sampling_matrices(params, height, width).to(x.dtype)  # (B, 2, 3)
        # All geometric changes are one affine map per image, so the whole batch is warped
        # by one affine_grid + one grid_sample call: a single vectorised kernel (on the GPU
        # when x is there) instead of a Python loop of crops, flips and rotations per image.
        grid = F.affine_grid(theta, [batch, x.shape[1], height, width], align_corners=False)  # (B, H, W, 2)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode=self.fill_mode, align_corners=False)
        return self._adjust_colour(x, params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Draw fresh parameters for each image of ``x`` ``(B, 3, H, W)`` and apply them."""
        return self.apply(x, self.sample_params(x.shape[0], generator=None, device=x.device))

    def sampling_matrices(self, params: dict[str, torch.Tensor], height: int, width: int) -> torch.Tensor:
        """``(B, 2, 3)`` matrices taking output coordinates to input coordinates.

        Coordinates are normalised to ``[-1, 1]`` (``affine_grid``'s convention). The output
        is made by crop-and-resize, then flip, then rotate-and-shift (torchvision's order),
        so the map back to the input undoes them in reverse: ``crop @ flip @ affine``.
        """
        scale, ratio = params["scale"].float(), params["ratio"].float()
        device = scale.device
        batch = scale.shape[0]

        # Random resized crop: width and height of the crop as fractions of the image,
        # from the crop's area (fraction) and its aspect ratio (in pixels).
        crop_w = torch.sqrt(scale * ratio * height / width).clamp(max=1.0)
        crop_h = torch.sqrt(scale / ratio * width / height).clamp(max=1.0)
        crop = torch.zeros(batch, 3, 3, device=device)
        crop[:, 0, 0] = crop_w
        crop[:, 1, 1] = crop_h
        crop[:, 0, 2] = params["crop_x"].float() * (1.0 - crop_w)  # crop centre, kept inside
        crop[:, 1, 2] = params["crop_y"].float() * (1.0 - crop_h)
        crop[:, 2, 2] = 1.0

        flip = torch.eye(3, device=device).repeat(batch, 1, 1)
        flip[:, 0, 0] = torch.where(params["flip"], -1.0, 1.0)

        # Rotation and shift are done in pixel units: in [-1, 1] units a non-square image
        # is squeezed, and a rotation there would shear the picture.
        angle = torch.deg2rad(params["angle"].float())
        cos, sin = torch.cos(angle), torch.sin(angle)
        shift_x = params["translate_x"].float() * width  # pixels
        shift_y = params["translate_y"].float() * height
        # Output pixel p came from p' = R^-1 (p - shift); with y pointing down, R^-1 of a
        # counter-clockwise rotation is [[cos, -sin], [sin, cos]].
        rotate_back = torch.zeros(batch, 3, 3, device=device)
        rotate_back[:, 0, 0], rotate_back[:, 0, 1] = cos, -sin
        rotate_back[:, 1, 0], rotate_back[:, 1, 1] = sin, cos
        rotate_back[:, 0, 2] = -(cos * shift_x - sin * shift_y)
        rotate_back[:, 1, 2] = -(sin * shift_x + cos * shift_y)
        rotate_back[:, 2, 2] = 1.0
        to_pixels = torch.diag(torch.tensor([width / 2, height / 2, 1.0], device=device))
        to_unit = torch.diag(torch.tensor([2 / width, 2 / height, 1.0], device=device))
        affine = to_unit @ rotate_back @ to_pixels

        return (crop @ flip @ affine)[:, :2, :]

    @staticmethod
    def _adjust_colour(x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Brightness then contrast, as torchvision's ColorJitter computes them."""
        brightness = params["brightness"].to(x.dtype).view(-1, 1, 1, 1)
        contrast = params["contrast"].to(x.dtype).view(-1, 1, 1, 1)
        x = (x * brightness).clamp(0.0, 1.0)
        gray_weights = torch.tensor(GRAY_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        mean_gray = (x * gray_weights).sum(dim=1, keepdim=True).mean(dim=(2, 3), keepdim=True)  # (B, 1, 1, 1)
        return (contrast * x + (1.0 - contrast) * mean_gray).clamp(0.0, 1.0)

    def extra_repr(self) -> str:
        return (
            f"flip_p={self.flip_p}, scale={self.scale}, ratio=({self.ratio[0]:.3g}, {self.ratio[1]:.3g}), "
            f"translate={self.translate}, degrees={self.degrees}, brightness={self.brightness}, "
            f"contrast={self.contrast}, fill_mode={self.fill_mode!r}"
        )

    def describe(self) -> str:
        """The settings in words, one per line (for a notebook cell's output)."""
        return "\n".join(
            [
                f"horizontal flip with probability {self.flip_p}",
                f"random resized crop: area {self.scale[0]:.0%}-{self.scale[1]:.0%} of the image, "
                f"width/height {self.ratio[0]:.2f}-{self.ratio[1]:.2f}",
                f"shift up to {self.translate[0]:.0%} of the width and {self.translate[1]:.0%} of the height",
                f"rotation up to +/-{self.degrees:g} degrees (outside filled with {self.fill_mode})",
                f"brightness x[{max(0.0, 1 - self.brightness):.2f}, {1 + self.brightness:.2f}], "
                f"contrast x[{max(0.0, 1 - self.contrast):.2f}, {1 + self.contrast:.2f}]",
            ]
        )


def per_sample_equivalent(augment: BatchAugment, image_size: int) -> v2.Compose:
    """The closest per-image torchvision v2 pipeline with the same settings as ``augment``.

    ``RandomResizedCrop -> RandomHorizontalFlip -> RandomAffine -> ColorJitter``, each left
    out when its setting turns it off. It works on PIL images or tensors of any size and
    outputs ``image_size`` squares; add ``ToImage``/``ToDtype``/``Normalize`` after it.
    Differences that remain: ColorJitter shuffles the order of brightness and contrast, and
    RandomResizedCrop re-draws a crop that does not fit where BatchAugment clips it.
    """
    steps: list[torch.nn.Module] = [
        v2.RandomResizedCrop(image_size, scale=augment.scale, ratio=augment.ratio, antialias=True)
    ]
    if augment.flip_p > 0:
        steps.append(v2.RandomHorizontalFlip(p=augment.flip_p))
    if augment.degrees > 0 or any(t > 0 for t in augment.translate):
        steps.append(v2.RandomAffine(degrees=augment.degrees, translate=augment.translate))
    if augment.brightness > 0 or augment.contrast > 0:
        steps.append(v2.ColorJitter(brightness=augment.brightness, contrast=augment.contrast))
    return v2.Compose(steps)
