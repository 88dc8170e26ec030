"""An augmentation recipe: one setting per knob, the torchvision pipeline it means, its code.

The playground (``ldl.widgets``) moves these knobs; this module turns them into a pipeline
and into the Python a student copies into a training script:

>>> settings = AugmentSettings(hflip_p=0.5, degrees=15, brightness=0.3)
>>> pipeline = build_pipeline(settings, image_size=160)   # v2.Compose of the active transforms
>>> print(pipeline_code(settings, image_size=160))        # the same pipeline, as source code

Every default means "no change", so ``AugmentSettings()`` leaves the photos as they are.
MixUp and CutMix mix whole batches (two photos and their labels), so they are not part of
the per-image pipeline. :mod:`ldl.augment.preview` turns settings into grids of photos.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Union

import torch
from PIL import Image
from torchvision.transforms import v2

from ldl.augment.mixing import CutMix, MixUp
from ldl.augment.occlusion import GridMask

# What a playground or a grid accepts as photos: a (N, 3, H, W) or (3, H, W) uint8 tensor,
# or a list of PIL images, (3, H, W) uint8 tensors or image files.
Images = Union[torch.Tensor, Sequence[Union[Image.Image, torch.Tensor, str, Path]]]

GROUPS = ("geometric", "photometric", "occlusion", "mixing")


@dataclass(frozen=True)
class Knob:
    """One setting of :class:`AugmentSettings`: its range, its slider step, what it does."""

    name: str
    group: str
    label: str
    low: float
    high: float
    step: float
    help: str


# The allowed range of every numeric setting; the playground's sliders use the same table.
KNOBS: tuple[Knob, ...] = (
    Knob("hflip_p", "geometric", "flip left-right", 0, 1, 0.05, "probability of a mirror image"),
    Knob("vflip_p", "geometric", "flip upside down", 0, 1, 0.05, "probability of an upside-down image"),
    Knob("crop_scale", "geometric", "crop: min area", 0.08, 1, 0.01,
         "RandomResizedCrop keeps a random part with at least this fraction of the area; 1 = off"),
    Knob("degrees", "geometric", "rotate ±°", 0, 180, 1, "rotation angle drawn from [-degrees, degrees]"),
    Knob("translate", "geometric", "shift ±", 0, 0.5, 0.01, "largest shift, as a fraction of the size"),
    Knob("zoom", "geometric", "zoom ±", 0, 0.5, 0.01, "scale factor drawn from [1 - zoom, 1 + zoom]"),
    Knob("shear", "geometric", "shear ±°", 0, 45, 1, "horizontal shear angle drawn from [-shear, shear]"),
    Knob("perspective", "geometric", "perspective", 0, 1, 0.05, "how far the corners may move (0 = off)"),
    Knob("brightness", "photometric", "brightness ±", 0, 1, 0.05, "brightness factor in [1 - b, 1 + b]"),
    Knob("contrast", "photometric", "contrast ±", 0, 1, 0.05, "contrast factor in [1 - c, 1 + c]"),
    Knob("saturation", "photometric", "saturation ±", 0, 1, 0.05, "saturation factor in [1 - s, 1 + s]"),
    Knob("hue", "photometric", "hue ±", 0, 0.5, 0.01, "hue shift in [-h, h] turns of the colour wheel"),
    Knob("grayscale_p", "photometric", "grayscale p", 0, 1, 0.05, "probability of dropping the colour"),
    Knob("equalize_p", "photometric", "equalize p", 0, 1, 0.05, "probability of histogram equalisation"),
    Knob("noise_sigma", "photometric", "noise σ", 0, 0.5, 0.01, "std of Gaussian noise on [0, 1] pixels"),
    Knob("erasing_p", "occlusion", "erase p", 0, 1, 0.05, "probability of blanking one random rectangle"),
    Knob("erasing_scale", "occlusion", "erase: max area", 0.02, 0.5, 0.01,
         "the blanked rectangle covers 2% up to this fraction of the image"),
    Knob("gridmask_ratio", "occlusion", "GridMask keep", 0.05, 0.95, 0.05,
         "GridMask's keep_ratio: the fraction of each grid cell's side that stays visible"),
    Knob("mixup_alpha", "mixing", "MixUp α", 0, 2, 0.05, "Beta(α, α) draws the mixing weight (0 = off)"),
    Knob("cutmix_alpha", "mixing", "CutMix α", 0, 2, 0.05, "Beta(α, α) draws the pasted area (0 = off)"),
)


@dataclass
class AugmentSettings:
    """Every knob of the playground. The defaults change nothing (the identity).

    Probabilities (``*_p``) are in [0, 1]; the ranges of the other settings are in
    :data:`KNOBS`. ``gridmask`` switches GridMask on; the two ``*_alpha`` settings turn on
    batch mixing (0 = off).
    """

    # geometric
    hflip_p: float = 0.0
    vflip_p: float = 0.0
    crop_scale: float = 1.0
    degrees: float = 0.0
    translate: float = 0.0
    zoom: float = 0.0
    shear: float = 0.0
    perspective: float = 0.0
    # photometric
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0
    grayscale_p: float = 0.0
    equalize_p: float = 0.0
    noise_sigma: float = 0.0
    # occlusion
    erasing_p: float = 0.0
    erasing_scale: float = 0.33
    gridmask: bool = False
    gridmask_ratio: float = 0.6
    # mixing (whole batches: see mix_preview)
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.gridmask, bool):
            raise TypeError(f"AugmentSettings: gridmask must be True or False, got {self.gridmask!r}")
        for knob in KNOBS:
            value = getattr(self, knob.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"AugmentSettings: {knob.name} must be a number, got {value!r}")
            if not knob.low <= value <= knob.high:
                raise ValueError(
                    f"AugmentSettings: {knob.name}={value} is outside its range "
                    f"[{knob.low}, {knob.high}] ({knob.help})."
                )

    def changed(self) -> dict[str, float | bool]:
        """The settings that differ from the identity, e.g. ``{"degrees": 15.0}``."""
        identity = asdict(AugmentSettings())
        return {name: value for name, value in asdict(self).items() if value != identity[name]}


def setting_names() -> list[str]:
    """The names of all settings, in declaration order."""
    return [f.name for f in fields(AugmentSettings)]


# ---------------------------------------------------------------------------------------
# Settings -> pipeline and code
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Step:
    """One transform of the pipeline and the source line that builds the same transform."""

    transform: Callable[..., Any]
    code: str


def _tidy(value: float) -> float:
    """A slider's 0.30000000000000004 as 0.3, so the object and its code use the same number."""
    return float(f"{value:.6g}")


def _literal(value: object) -> str:
    """Source text for an argument: ``15.0 -> "15"``, ``(0.5, 1.0) -> "(0.5, 1)"``."""
    if isinstance(value, tuple):
        return "(" + ", ".join(_literal(item) for item in value) + ")"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, v2.InterpolationMode):
        return f"v2.InterpolationMode.{value.name}"
    return repr(value)


def _call(name: str, *args: object, **kwargs: object) -> str:
    """Source text of a call: ``_call("v2.RandomHorizontalFlip", p=0.5)``."""
    parts = [_literal(arg) for arg in args] + [f"{key}={_literal(value)}" for key, value in kwargs.items()]
    return f"{name}({', '.join(parts)})"


def _steps(settings: AugmentSettings, image_size: int) -> list[_Step]:
    """The active transforms in the order they run, each with its source code.

    Built side by side so that :func:`build_pipeline` and :func:`pipeline_code` cannot drift.
    Order: where the picture comes from (crop, flips, warps), then its colours, then noise,
    then what is hidden (GridMask, erasing), so that occlusions stay sharp rectangles.
    """
    s = {name: (_tidy(value) if not isinstance(value, bool) else value) for name, value in asdict(settings).items()}
    # ToImage first: the pipeline then accepts PIL images as well as uint8 tensors.
    steps = [_Step(v2.ToImage(), "v2.ToImage()")]

    if s["crop_scale"] < 1:
        scale = (s["crop_scale"], 1.0)
        steps.append(_Step(
            v2.RandomResizedCrop(image_size, scale=scale, antialias=True),
            _call("v2.RandomResizedCrop", image_size, scale=scale, antialias=True),
        ))
    if s["hflip_p"] > 0:
        steps.append(_Step(v2.RandomHorizontalFlip(p=s["hflip_p"]), _call("v2.RandomHorizontalFlip", p=s["hflip_p"])))
    if s["vflip_p"] > 0:
        steps.append(_Step(v2.RandomVerticalFlip(p=s["vflip_p"]), _call("v2.RandomVerticalFlip", p=s["vflip_p"])))
    if any(s[name] > 0 for name in ("degrees", "translate", "zoom", "shear")):
        # One RandomAffine for rotation, shift, zoom and shear: one resampling, less blur.
        kwargs: dict[str, object] = {"degrees": s["degrees"]}
        if s["translate"] > 0:
            kwargs["translate"] = (s["translate"], s["translate"])
        if s["zoom"] > 0:
            kwargs["scale"] = (_tidy(1 - s["zoom"]), _tidy(1 + s["zoom"]))
        if s["shear"] > 0:
            kwargs["shear"] = s["shear"]
        kwargs["interpolation"] = v2.InterpolationMode.BILINEAR  # smoother than the default NEAREST
        steps.append(_Step(v2.RandomAffine(**kwargs), _call("v2.RandomAffine", **kwargs)))
    if s["perspective"] > 0:
        steps.append(_Step(
            v2.RandomPerspective(distortion_scale=s["perspective"], p=1.0),
            _call("v2.RandomPerspective", distortion_scale=s["perspective"], p=1.0),
        ))

    jitter = {name: s[name] for name in ("brightness", "contrast", "saturation", "hue") if s[name] > 0}
    if jitter:
        steps.append(_Step(v2.ColorJitter(**jitter), _call("v2.ColorJitter", **jitter)))
    if s["grayscale_p"] > 0:
        steps.append(_Step(v2.RandomGrayscale(p=s["grayscale_p"]), _call("v2.RandomGrayscale", p=s["grayscale_p"])))
    if s["equalize_p"] > 0:
        steps.append(_Step(v2.RandomEqualize(p=s["equalize_p"]), _call("v2.RandomEqualize", p=s["equalize_p"])))
    if s["noise_sigma"] > 0:
        # GaussianNoise works on float pixels in [0, 1]; go there and back to uint8.
        steps += [
            _Step(v2.ToDtype(torch.float32, scale=True), "v2.ToDtype(torch.float32, scale=True)"),
            _Step(v2.GaussianNoise(sigma=s["noise_sigma"]), _call("v2.GaussianNoise", sigma=s["noise_sigma"])),
            _Step(v2.ToDtype(torch.uint8, scale=True), "v2.ToDtype(torch.uint8, scale=True)"),
        ]

    if s["gridmask"]:
        grid_mask = GridMask(keep_ratio=s["gridmask_ratio"])
        steps.append(_Step(grid_mask, _call("GridMask", keep_ratio=s["gridmask_ratio"])))
    if s["erasing_p"] > 0:
        scale = (0.02, s["erasing_scale"])
        steps.append(_Step(
            v2.RandomErasing(p=s["erasing_p"], scale=scale),
            _call("v2.RandomErasing", p=s["erasing_p"], scale=scale),
        ))
    return steps


def build_pipeline(settings: AugmentSettings, image_size: int) -> v2.Compose:
    """The per-image augmentation pipeline of ``settings``: only the active transforms.

    Input: a PIL image or a ``(3, H, W)`` uint8 tensor, ideally already an
    ``image_size`` square (see :func:`prepare_images`). Output: ``(3, H, W)`` uint8
    (``image_size`` square when the random crop is on). Identity settings give
    ``Compose([ToImage()])``, which changes no pixel.
    """
    check_image_size(image_size)
    return v2.Compose([step.transform for step in _steps(settings, image_size)])


def pipeline_code(settings: AugmentSettings, image_size: int, *, num_classes: int = 2) -> str:
    """Python source that builds the same pipeline as :func:`build_pipeline`, to copy.

    Running it defines ``train_transform`` (a ``v2.Compose``) and, when MixUp or CutMix is
    on, ``mixers``: the batch mixers of :func:`batch_mixers`, for ``num_classes`` classes.
    """
    check_image_size(image_size)
    steps = _steps(settings, image_size)
    mixers = _mixer_steps(settings, num_classes)
    summary = ", ".join(f"{name}={_literal(value)}" for name, value in settings.changed().items())
    lines = ["# Augmentation recipe: " + (summary or "identity (no change)")]
    if any("torch." in step.code for step in steps):
        lines.append("import torch")
    lines.append("from torchvision.transforms import v2")
    called = {step.code.split("(")[0] for step in steps + mixers}
    own = sorted(called & {"CutMix", "GridMask", "MixUp"})  # this package's transforms
    if own:
        lines.append(f"from ldl.augment import {', '.join(own)}")
    lines += ["", "train_transform = v2.Compose(["]
    lines += [f"    {step.code}," for step in steps]
    lines.append("])")
    if mixers:
        lines += [
            "",
            "# MixUp / CutMix mix whole training batches (validation stays unmixed):",
            "#     train_loader = ldl.augment.MixingLoader(train_loader, mixers)",
            "mixers = [" + ", ".join(step.code for step in mixers) + "]",
        ]
    return "\n".join(lines) + "\n"


def _mixer_steps(settings: AugmentSettings, num_classes: int) -> list[_Step]:
    """The batch mixers that ``settings`` turns on, each with its source code."""
    steps = []
    if settings.mixup_alpha > 0:
        alpha = _tidy(settings.mixup_alpha)
        steps.append(_Step(MixUp(alpha, num_classes), _call("MixUp", alpha=alpha, num_classes=num_classes)))
    if settings.cutmix_alpha > 0:
        alpha = _tidy(settings.cutmix_alpha)
        steps.append(_Step(CutMix(alpha, num_classes), _call("CutMix", alpha=alpha, num_classes=num_classes)))
    return steps


def batch_mixers(settings: AugmentSettings, num_classes: int = 2) -> list[MixUp | CutMix]:
    """MixUp and/or CutMix as ``settings`` asks (``[]`` when both alphas are 0).

    They mix whole ``(B, 3, H, W)`` batches and return soft labels; wrap a training loader
    with ``ldl.augment.MixingLoader(loader, mixers)`` to use one of them per batch.
    """
    return [step.transform for step in _mixer_steps(settings, num_classes)]


def check_seed(seed: int) -> None:
    """Raise a clear error unless ``seed`` is a whole number torch can seed with."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be a whole number from 0 to 2**63 - 1, got {seed!r}")


def check_image_size(image_size: int) -> None:
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"image_size must be an int of at least 8 pixels, got {image_size!r}")
