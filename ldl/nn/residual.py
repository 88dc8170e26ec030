"""Skip connections: the deep MLP of lesson 3 with an identity path around every hidden layer.

A plain deep network multiplies its backward signal by one layer's Jacobian per layer; with
sigmoid, each factor is at most 1/4, so twenty of them make it vanish. A residual block
outputs ``x + f(x)`` instead of ``f(x)``: its Jacobian is ``I + J_f``, so however small
``J_f`` is, the identity carries the gradient back unchanged (He et al., "Deep Residual
Learning for Image Recognition", CVPR 2016).

>>> net = residual_mlp(depth=20, in_features=768, num_classes=2, activation="sigmoid")
>>> gradient_ratio(layer_statistics(net, x, y))     # about 1, where the plain network's is ~1e-12
"""

from __future__ import annotations

from torch import Tensor, nn

from ldl.nn.init import ACTIVATIONS


class ResidualBlock(nn.Module):
    """``x + activation(Linear(x))``: ``(B, width)`` -> ``(B, width)``.

    The ``Linear`` is followed directly by its activation module, so the hooks of
    :func:`ldl.nn.layer_statistics` see this block like one layer of :func:`ldl.nn.deep_mlp`.
    """

    def __init__(self, width: int, activation: str = "relu") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"Unknown activation {activation!r}; choose one of {tuple(ACTIVATIONS)}.")
        self.linear = nn.Linear(width, width)
        self.activation = ACTIVATIONS[activation]()

    def forward(self, x: Tensor) -> Tensor:
        # The identity path: the block's Jacobian is I + J_f, never smaller than the identity's.
        return x + self.activation(self.linear(x))


def residual_mlp(
    depth: int = 20,
    width: int = 64,
    *,
    in_features: int,
    num_classes: int,
    activation: str = "relu",
) -> nn.Sequential:
    """:func:`ldl.nn.deep_mlp` with a skip connection around each of its hidden layers.

    ``Flatten``, ``Linear(in_features, width)`` and its activation, ``depth - 2``
    :class:`ResidualBlock` s, then ``Linear(width, num_classes)``: the same ``depth`` Linear
    layers, in the same order, as the plain network. ``(B, ...)`` -> ``(B, num_classes)`` logits.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {activation!r}; choose one of {tuple(ACTIVATIONS)}.")
    if depth < 2:
        raise ValueError(f"depth must be at least 2 Linear layers (one in, one out); got {depth}.")
    layers: list[nn.Module] = [nn.Flatten(), nn.Linear(in_features, width), ACTIVATIONS[activation]()]
    layers += [ResidualBlock(width, activation) for _ in range(depth - 2)]
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)
