"""Lesson 3's completions: skip connections, symmetry breaking and dead ReLU units."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ldl.nn import (ResidualBlock, deep_mlp, gradient_ratio, init_weights, layer_statistics, residual_mlp,
                    unit_spread)


def batch(seed: int = 0, size: int = 32, features: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(size, features, generator=generator), torch.randint(0, 3, (size,), generator=generator)


def test_residual_block_adds_its_branch_to_the_identity() -> None:
    torch.manual_seed(0)
    block = ResidualBlock(8, "relu")
    x = torch.randn(4, 8)
    assert torch.allclose(block(x), x + torch.relu(block.linear(x)))
    # Its Jacobian is I + J_f: with the branch's weights at zero (f constant) it is exactly I.
    nn.init.zeros_(block.linear.weight)
    jacobian = torch.autograd.functional.jacobian(block, x[:1]).reshape(8, 8)
    assert torch.allclose(jacobian, torch.eye(8))


def test_residual_mlp_has_the_plain_networks_layers_in_the_same_order() -> None:
    plain = deep_mlp(depth=6, width=16, in_features=48, num_classes=3, activation="sigmoid")
    residual = residual_mlp(depth=6, width=16, in_features=48, num_classes=3, activation="sigmoid")
    shapes = lambda model: [tuple(m.weight.shape) for m in model.modules() if isinstance(m, nn.Linear)]  # noqa: E731
    assert shapes(residual) == shapes(plain)
    x, y = batch()
    assert residual(x).shape == (32, 3)
    # layer_statistics sees each block's Linear followed by its own activation, like the plain network's.
    stats = layer_statistics(residual, x, y)
    assert [layer["activation_type"] for layer in stats] == ["Sigmoid"] * 5 + [None]


def test_skip_connections_stop_a_deep_sigmoid_networks_gradient_vanishing() -> None:
    x, y = batch()
    ratios = {}
    for build in (deep_mlp, residual_mlp):
        torch.manual_seed(0)
        model = init_weights(build(depth=20, width=32, in_features=48, num_classes=3, activation="sigmoid"),
                             "xavier_normal", nonlinearity="sigmoid")
        ratios[build.__name__] = gradient_ratio(layer_statistics(model, x, y))
    assert ratios["deep_mlp"] < 1e-8, ratios
    assert ratios["residual_mlp"] > 1e-3, ratios


@pytest.mark.parametrize("bad", [{"depth": 1}, {"activation": "gelu"}])
def test_residual_mlp_rejects_bad_settings(bad: dict) -> None:
    settings = {"depth": 4, "in_features": 8, "num_classes": 2, "activation": "relu", **bad}
    with pytest.raises(ValueError, match="depth|activation"):
        residual_mlp(**settings)


def train(model: nn.Module, steps: int = 30, lr: float = 0.1) -> nn.Module:
    x, y = batch(seed=1, size=64)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model


def test_a_constant_initialisation_keeps_every_unit_identical_through_training() -> None:
    model = init_weights(deep_mlp(depth=3, width=16, in_features=48, num_classes=3), "constant", value=0.05)
    train(model)
    hidden = [m for m in model.modules() if isinstance(m, nn.Linear)][:2]
    # The weights did move (the symmetry is not a frozen network) ...
    assert not torch.allclose(hidden[0].weight, torch.full_like(hidden[0].weight, 0.05))
    # ... but every unit of each hidden layer moved in exactly the same way.
    assert [unit_spread(layer) for layer in hidden] == pytest.approx([0.0, 0.0], abs=1e-7)


def test_a_random_initialisation_breaks_the_symmetry() -> None:
    torch.manual_seed(0)
    model = train(init_weights(deep_mlp(depth=3, width=16, in_features=48, num_classes=3), "he_normal"))
    assert all(unit_spread(m) > 0.05 for m in model.modules() if isinstance(m, nn.Linear))


def test_unit_spread_is_the_largest_std_across_units() -> None:
    layer = nn.Linear(2, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.0, 1.0], [0.0, 2.0], [0.0, 3.0]]))
    assert unit_spread(layer) == pytest.approx(1.0)  # column 1: std of 1, 2, 3; column 0: 0
    conv = nn.Conv2d(2, 4, 3)
    assert unit_spread(conv) > 0
    with pytest.raises(ValueError, match="at least 2 units"):
        unit_spread(nn.Linear(5, 1))


def test_dead_units_count_units_silent_on_the_whole_batch() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(4))
        model[0].bias.copy_(torch.tensor([0.0, 0.0, -100.0, -100.0]))  # units 2 and 3 never fire
    x = torch.randn(16, 4)
    x[:, :2] = x[:, :2].abs() + 0.1  # units 0 and 1 always fire
    stats = layer_statistics(model, x, torch.zeros(16, dtype=torch.long))
    assert stats[0]["dead_units"] == pytest.approx(0.5)
    assert stats[0]["dead_fraction"] == pytest.approx(0.5)
    assert stats[1]["dead_units"] is None  # the logits have no ReLU


def test_dead_units_of_a_conv_layer_are_channels() -> None:
    conv = nn.Conv2d(1, 3, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0, 1.0]).reshape(3, 1, 1, 1))
        conv.bias.copy_(torch.tensor([0.0, 0.0, -100.0]))
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
    x = torch.rand(8, 1, 4, 4) + 0.1  # positive: channel 0 fires everywhere, channel 1 never, channel 2 never
    stats = layer_statistics(model, x, torch.zeros(8, dtype=torch.long))
    assert stats[0]["dead_units"] == pytest.approx(2 / 3)
