"""Networks the lessons build.

Lesson 0's recap CNN lives here: the classic dogs-vs-cats network from the slides, four
convolution blocks, a flatten and a dense layer. Later lessons add pretrained backbones.
"""

from __future__ import annotations

import torch
from torch import nn


def conv_block(in_channels: int, out_channels: int, *, batch_norm: bool = False,
               dropout2d: float = 0.0) -> nn.Sequential:
    """3x3 convolution, (batch norm,) ReLU, 2x2 max-pool, (channel dropout): halves height and width.

    (B, in_channels, H, W) -> (B, out_channels, (H - 2) // 2, (W - 2) // 2)
    No padding, as in the slides' Keras model, so each block also trims a 1-pixel border.
    With batch norm the convolution needs no bias: BN subtracts the mean and adds its own
    shift (beta), so a bias before it would be cancelled.
    """
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel_size=3, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers += [nn.ReLU(inplace=True), nn.MaxPool2d(2)]
    if dropout2d > 0:
        # Dropout2d drops whole feature maps: neighbouring pixels are so correlated that
        # dropping single pixels would hardly hide anything.
        layers.append(nn.Dropout2d(dropout2d))
    return nn.Sequential(*layers)


class RecapCNN(nn.Module):
    """The slides' CNN: 4 conv blocks (32, 64, 128, 128 filters), flatten, dense 512, output.

    It is written for 2 or more classes with one logit per class and
    ``CrossEntropyLoss``, instead of the slides' single sigmoid unit: the two are the same
    model for two classes, and one loss for every lesson lets the Trainer report top-1 and
    top-5 accuracy the same way everywhere.

    Args:
        num_classes: number of output logits.
        image_size: side of the square input images; fixes the size of the flatten layer.
        widths: filters of the four conv blocks.
        hidden: units of the dense layer.
        dropout: dropout before the output layer (0 in lesson 0: we *want* to see overfitting).
        batch_norm: batch normalisation after each convolution and after the dense layer (lesson 2).
        dropout2d: channel dropout after each conv block (lesson 2).

    Shapes: (B, 3, image_size, image_size) float -> (B, num_classes) logits.
    """

    def __init__(
        self,
        num_classes: int = 2,
        image_size: int = 150,
        widths: tuple[int, int, int, int] = (32, 64, 128, 128),
        hidden: int = 512,
        dropout: float = 0.0,
        batch_norm: bool = False,
        dropout2d: float = 0.0,
    ) -> None:
        super().__init__()
        channels = (3, *widths)
        self.features = nn.Sequential(
            *(
                conv_block(channels[i], channels[i + 1], batch_norm=batch_norm, dropout2d=dropout2d)
                for i in range(len(widths))
            )
        )
        side = feature_side(image_size, blocks=len(widths))
        if side < 1:
            raise ValueError(
                f"image_size={image_size} is too small for {len(widths)} conv blocks; use at least 46 pixels."
            )
        self.classifier = nn.Sequential(
            nn.Flatten(),  # (B, C, s, s) -> (B, C * s * s)
            nn.Linear(widths[-1] * side * side, hidden, bias=not batch_norm),
            nn.BatchNorm1d(hidden) if batch_norm else nn.Identity(),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def feature_side(image_size: int, blocks: int = 4) -> int:
    """Height (= width) of the feature map after ``blocks`` conv blocks: (s - 2) // 2 each."""
    side = image_size
    for _ in range(blocks):
        side = (side - 2) // 2
    return side


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
