"""Lesson 3 plots: per-layer histograms and gradient norms by depth, from hand-made layer statistics."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from ldl.plots import plot_gradient_norms_by_depth, plot_layer_histograms


def layer_stats(depth: int, shrink: float, seed: int = 0) -> list[dict]:
    """Per-layer dicts like ``layer_statistics``: activations whose std is ``shrink ** layer``."""
    g = torch.Generator().manual_seed(seed)
    stats = []
    for i in range(depth):
        activations = torch.randn(32, 16, generator=g) * shrink**i
        gradients = torch.randn(16, 16, generator=g) * shrink ** (depth - i)
        stats.append({"name": f"layers.{i}", "activations": activations, "gradients": gradients,
                      "activation_std": float(activations.std()), "grad_norm": float(gradients.norm())})
    return stats


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_histograms_have_a_row_per_chosen_layer_and_a_column_per_scheme() -> None:
    fig = plot_layer_histograms({"steady": layer_stats(10, 1.0), "shrinking": layer_stats(10, 0.5)}, max_layers=4)
    axes = np.array(fig.axes).reshape(4, 2)
    assert [ax.get_title() for ax in axes[0]] == ["steady", "shrinking"]
    # Layers 1 and 10 are always shown: the subset spreads over the whole depth.
    labels = [ax.texts[0].get_text().split(":")[0] for ax in axes[:, 0]]
    assert labels[0] == "1" and labels[-1] == "10" and len(set(labels)) == 4
    # Each panel is a histogram of that layer's own values: its bars count every value.
    last_shrinking = axes[-1, 1]
    assert sum(patch.get_height() for patch in last_shrinking.patches) == 32 * 16
    assert "std 0.002" in last_shrinking.texts[0].get_text()  # 0.5 ** 9


def test_histograms_of_gradients_and_few_layers() -> None:
    fig = plot_layer_histograms({"epoch 1": layer_stats(3, 1.0)}, key="gradients", max_layers=6)
    assert len(fig.axes) == 3
    assert fig.axes[-1].get_xlabel() == "gradients"


def test_bad_inputs_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="at least one"):
        plot_layer_histograms({})
    with pytest.raises(ValueError, match="same, non-zero number of layers"):
        plot_layer_histograms({"a": layer_stats(3, 1.0), "b": layer_stats(4, 1.0)})
    with pytest.raises(KeyError, match="no 'weights'"):
        plot_gradient_norms_by_depth({"a": layer_stats(3, 1.0)}, key="weights")


def test_gradient_norms_one_curve_per_scheme_on_a_log_axis() -> None:
    stats = {"steady": layer_stats(8, 1.0), "vanishing": layer_stats(8, 0.5)}
    fig = plot_gradient_norms_by_depth(stats)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["steady", "vanishing"]
    assert list(lines[1].get_xdata()) == list(range(1, 9))
    assert list(lines[1].get_ydata()) == pytest.approx([layer["grad_norm"] for layer in stats["vanishing"]])
    fig2 = plot_gradient_norms_by_depth(stats, key="activation_std")
    assert fig2.axes[0].get_ylabel() == "activation_std"


def test_fractions_by_depth_on_a_linear_axis_keep_zero() -> None:
    stats = {name: [{"dead_units": value} for value in values]
             for name, values in {"good rate": [0.0, 0.0, 0.1], "too large": [0.5, 0.8, 1.0]}.items()}
    ax = plot_gradient_norms_by_depth(stats, key="dead_units", log_scale=False).axes[0]
    assert ax.get_yscale() == "linear"
    assert list(ax.get_lines()[0].get_ydata()) == [0.0, 0.0, 0.1]  # a 0 would vanish from a log axis
