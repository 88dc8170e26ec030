"""The classifier head of each backbone family: find it, replace it, remove it.

    replace_head(model, num_classes=2)      # a new trainable nn.Linear, same in_features
    remove_head(model)                      # nn.Identity: the model outputs pooled features

Families are recognised by class: torchvision's MobileNetV2/V3, VGG, ResNet, ConvNeXt,
VisionTransformer, SwinTransformer, and the EfficientNet of ``efficientnet_lite_pytorch``.
"""

from __future__ import annotations

from torch import nn
from torchvision import models as tv

# The final nn.Linear of each supported family, as a dotted name inside the model.
HEAD_PATHS: dict[str, str] = {
    "mobilenet_v2": "classifier.1",
    "mobilenet_v3": "classifier.3",
    "vgg": "classifier.6",
    "resnet": "fc",
    "convnext": "classifier.2",
    "vit": "heads.head",
    "swin": "head",
    "efficientnet_lite": "_fc",
}

def model_family(model: nn.Module) -> str:
    """The family of a supported backbone, found by its class (a key of :data:`HEAD_PATHS`).

    Raises:
        TypeError: the model is of none of the supported classes.
    """
    torchvision_classes: list[tuple[type[nn.Module], str]] = [
        (tv.MobileNetV2, "mobilenet_v2"),
        (tv.MobileNetV3, "mobilenet_v3"),
        (tv.VGG, "vgg"),
        (tv.ResNet, "resnet"),
        (tv.ConvNeXt, "convnext"),
        (tv.VisionTransformer, "vit"),
        (tv.SwinTransformer, "swin"),
    ]
    for cls, family in torchvision_classes:
        if isinstance(model, cls):
            return family
    lite_class = _lite_class()
    if lite_class is not None and isinstance(model, lite_class):
        return "efficientnet_lite"
    raise TypeError(
        f"Network surgery does not know {type(model).__name__}. Supported: torchvision's MobileNetV2, "
        "MobileNetV3, VGG, ResNet, ConvNeXt, VisionTransformer, SwinTransformer and "
        "efficientnet_lite_pytorch's EfficientNet (build one with ldl.models.create_backbone)."
    )


def _lite_class() -> type[nn.Module] | None:
    """``efficientnet_lite_pytorch.EfficientNet``, or None when that optional package is missing."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        return None
    return EfficientNet


def head_path(model: nn.Module) -> str:
    """Dotted name of the final ``nn.Linear``, e.g. ``"classifier.3"`` (MobileNetV3), ``"fc"`` (ResNet)."""
    return HEAD_PATHS[model_family(model)]


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Swap the final layer for a fresh ``nn.Linear(in_features, num_classes)``, in place.

    The new layer is randomly initialised and trainable, on the old layer's device and
    dtype. Returns the model, whose output is now ``(B, num_classes)``.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}.")
    path = head_path(model)
    old = model.get_submodule(path)
    if not isinstance(old, nn.Linear):
        raise TypeError(
            f"{path} is a {type(old).__name__}, not the nn.Linear head (was it removed with remove_head?). "
            "Build the model again to get its head back."
        )
    new = nn.Linear(old.in_features, num_classes, device=old.weight.device, dtype=old.weight.dtype)
    model.set_submodule(path, new)
    return model


def remove_head(model: nn.Module) -> int:
    """Replace the final layer by ``nn.Identity``: the model then outputs pooled features.

    Returns:
        D, the feature size: the model now maps ``(B, 3, H, W)`` to ``(B, D)``.
    """
    path = head_path(model)
    old = model.get_submodule(path)
    if not isinstance(old, nn.Linear):
        raise TypeError(f"{path} is a {type(old).__name__}, not an nn.Linear head: was it removed already?")
    model.set_submodule(path, nn.Identity())
    return old.in_features
