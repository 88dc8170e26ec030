"""Lesson 3: initialisation schemes, layer statistics and the vanishing-gradient figures."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ldl.nn.init import (
    INIT_SCHEMES,
    deep_mlp,
    expected_std,
    gradient_ratio,
    init_weights,
    layer_statistics,
)

RANDOM_SCHEMES = ("normal", "xavier_uniform", "xavier_normal", "he_uniform", "he_normal")


def _batch(seed: int = 0, n: int = 256, features: int = 64, classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, features, generator=generator), torch.randint(0, classes, (n,), generator=generator)


@pytest.mark.parametrize("scheme", RANDOM_SCHEMES)
@pytest.mark.parametrize("nonlinearity", ["relu", "tanh"])
def test_empirical_std_matches_expected(scheme: str, nonlinearity: str) -> None:
    torch.manual_seed(0)
    for layer in (nn.Linear(512, 256), nn.Conv2d(64, 128, kernel_size=3)):
        init_weights(layer, scheme, nonlinearity=nonlinearity, std=0.05)
        expected = expected_std(layer, scheme, nonlinearity, std=0.05)
        assert layer.weight.std().item() == pytest.approx(expected, rel=0.03)
        assert layer.weight.mean().abs().item() < 0.05 * expected + 1e-3
        assert torch.count_nonzero(layer.bias) == 0


def test_xavier_and_he_formulas() -> None:
    layer = nn.Conv2d(16, 32, kernel_size=3)  # fan_in 144, fan_out 288
    assert expected_std(layer, "he_normal", "relu") == pytest.approx(math.sqrt(2) / math.sqrt(144))
    assert expected_std(layer, "xavier_normal", "linear") == pytest.approx(math.sqrt(2 / (144 + 288)))


def test_zeros_and_constant() -> None:
    model = deep_mlp(depth=3, in_features=8, num_classes=2)
    init_weights(model, "constant", value=0.5)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert all(torch.all(m.weight == 0.5) and torch.all(m.bias == 0) for m in linears)
    init_weights(model, "zeros")
    assert all(torch.count_nonzero(m.weight) == 0 for m in linears)


def test_unknown_scheme_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="he_normal"):
        init_weights(nn.Linear(2, 2), "glorot")


def test_deep_mlp_shape_and_layers() -> None:
    model = deep_mlp(depth=20, width=64, in_features=3 * 4 * 4, num_classes=5, activation="tanh")
    assert isinstance(model[0], nn.Flatten)
    assert sum(isinstance(m, nn.Linear) for m in model) == 20
    assert sum(isinstance(m, nn.Tanh) for m in model) == 19
    assert model(torch.zeros(7, 3, 4, 4)).shape == (7, 5)


def test_sigmoid_with_small_normal_init_vanishes() -> None:
    torch.manual_seed(0)
    model = init_weights(deep_mlp(depth=20, width=64, in_features=64, num_classes=10, activation="sigmoid"),
                         "normal", std=0.01)
    stats = layer_statistics(model, *_batch())
    assert len(stats) == 20
    assert gradient_ratio(stats) <= 1e-3
    # Tiny weights: every pre-activation is ~0, so every sigmoid sits at ~0.5, far from saturation.
    assert stats[5]["activation_mean"] == pytest.approx(0.5, abs=0.01)
    assert stats[5]["saturated_fraction"] == 0.0


def test_relu_with_he_init_keeps_gradients_alive() -> None:
    torch.manual_seed(0)
    model = init_weights(deep_mlp(depth=20, width=64, in_features=64, num_classes=10, activation="relu"),
                         "he_normal", nonlinearity="relu")
    stats = layer_statistics(model, *_batch())
    assert 0.1 <= gradient_ratio(stats) <= 10
    # ReLU zeroes about half of its inputs; the last layer has no activation.
    assert 0.3 < stats[10]["dead_fraction"] < 0.7
    assert stats[-1]["activation_type"] is None and stats[-1]["dead_fraction"] is None
    assert stats[0]["activations"].numel() > 0 and stats[0]["gradients"].shape == (64 * 64,)
    assert stats[0]["grad_norm"] == pytest.approx(model[1].weight.grad.norm().item())


def test_saturated_tanh_is_detected() -> None:
    torch.manual_seed(0)
    model = init_weights(deep_mlp(depth=4, width=64, in_features=64, num_classes=10, activation="tanh"),
                         "normal", std=1.0)  # far too large: pre-activations of size ~8
    stats = layer_statistics(model, *_batch())
    assert stats[1]["saturated_fraction"] > 0.5


def test_layer_statistics_on_a_cnn_subsamples() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 32 * 32, 3))
    stats = layer_statistics(model, torch.randn(16, 3, 32, 32), torch.randint(0, 3, (16,)))
    assert [s["type"] for s in stats] == ["Conv2d", "Linear"]
    assert stats[0]["activations"].numel() <= 10_000 < 16 * 8 * 32 * 32
    assert not model[0]._forward_hooks and not model[1]._forward_hooks


def test_hooks_are_removed_even_if_forward_raises() -> None:
    model = deep_mlp(depth=3, width=8, in_features=4, num_classes=2)
    with pytest.raises(RuntimeError):
        layer_statistics(model, torch.randn(5, 7), torch.zeros(5, dtype=torch.long))  # 7 features, not 4
    assert all(not module._forward_hooks for module in model.modules())
