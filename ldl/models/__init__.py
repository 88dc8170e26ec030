"""Networks the lessons build.

- :mod:`ldl.models.recap`: lesson 0's recap CNN, trained from scratch.
- :mod:`ldl.models.registry`: named pretrained backbones (MobileNet, VGG, ResNet,
  EfficientNet-Lite0, ConvNeXt, ViT, Swin) and their preprocessing figures.
- :mod:`ldl.models.efficientnet_lite`: EfficientNet-Lite0, whose weights need no download.
- :mod:`ldl.models.heads`: find, replace or remove each family's classifier head.
- :mod:`ldl.models.groups`: named layer groups, freeze/unfreeze, differential learning rates.
- :mod:`ldl.models.summaries`: trainable vs frozen parameters, per group and per layer.
"""

from __future__ import annotations

from ldl.models.recap import RecapCNN, conv_block, count_parameters, feature_side
from ldl.models.registry import (
    BACKBONES,
    BackboneSpec,
    WeightsUnavailable,
    backbone_spec,
    create_backbone,
    ensure_weights,
    weights_file,
    weights_status,
)
from ldl.models.groups import freeze, layer_groups, param_groups, unfreeze
from ldl.models.heads import head_path, model_family, remove_head, replace_head
from ldl.models.summaries import GroupCount, summary, trainable_summary, trainable_table

__all__ = [
    # lesson 0
    "RecapCNN",
    "conv_block",
    "count_parameters",
    "feature_side",
    # lesson 4: backbones
    "BACKBONES",
    "BackboneSpec",
    "WeightsUnavailable",
    "backbone_spec",
    "create_backbone",
    "ensure_weights",
    "weights_file",
    "weights_status",
    # lesson 4: heads, groups, summaries
    "GroupCount",
    "freeze",
    "head_path",
    "layer_groups",
    "model_family",
    "param_groups",
    "remove_head",
    "replace_head",
    "summary",
    "trainable_summary",
    "trainable_table",
    "unfreeze",
]
