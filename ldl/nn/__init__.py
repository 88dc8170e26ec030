"""The pieces the lessons take apart and write from scratch.

Each is the lesson's subject, so it is written out by hand (torch has its own versions, and
the tests check that these agree with them):

- :mod:`ldl.nn.layers`: inverted dropout and batch norm (lesson 2);
- :mod:`ldl.nn.init`: initialisation schemes and layer-by-layer activation and gradient
  statistics (lesson 3);
- :mod:`ldl.nn.residual`: skip connections around a deep MLP's layers (lesson 3);
- :mod:`ldl.nn.vit`: a Vision Transformer's front end, patches and one attention head (lesson 5);
- :mod:`ldl.nn.attention`: attention maps of a trained ViT (lesson 5).
"""

from ldl.nn.attention import attention_rollout, last_layer_cls_attention, upsample_map
from ldl.nn.init import (
    deep_activations,
    deep_mlp,
    expected_std,
    fans,
    gain_probe,
    gain_stack,
    gradient_ratio,
    init_weights,
    layer_activations,
    layer_statistics,
    unit_spread,
)
from ldl.nn.residual import ResidualBlock, residual_mlp
from ldl.nn.layers import InvertedDropout, InvertedDropout2d, ScratchBatchNorm2d
from ldl.nn.vit import PatchEmbedding, SingleHeadAttention, ViTFrontEnd, copy_torchvision_front_end, patchify, unpatchify

__all__ = [
    "InvertedDropout",
    "InvertedDropout2d",
    "PatchEmbedding",
    "ResidualBlock",
    "ScratchBatchNorm2d",
    "SingleHeadAttention",
    "ViTFrontEnd",
    "attention_rollout",
    "copy_torchvision_front_end",
    "deep_activations",
    "deep_mlp",
    "expected_std",
    "fans",
    "gain_probe",
    "gain_stack",
    "gradient_ratio",
    "init_weights",
    "last_layer_cls_attention",
    "layer_activations",
    "layer_statistics",
    "patchify",
    "residual_mlp",
    "unit_spread",
    "unpatchify",
    "upsample_map",
]
