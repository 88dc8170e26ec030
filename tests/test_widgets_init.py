"""The init playground without a browser: controls, the forward pass behind them, static fallback."""

from __future__ import annotations

import base64
import io

import ipywidgets
import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from ldl.nn.init import ACTIVATIONS, gain_probe, layer_statistics
from ldl.plots.activations import plot_activation_spread
from ldl.widgets import InitPlayground, deep_activations, init_playground


@pytest.fixture
def playground() -> InitPlayground:
    return init_playground(depth=10, width=64, samples=256)


def test_controls_have_the_documented_ranges(playground: InitPlayground) -> None:
    depth, gain, activation = (playground.controls[name] for name in ("depth", "gain", "activation"))
    assert isinstance(depth, ipywidgets.IntSlider) and (depth.min, depth.max, depth.value) == (2, 30, 10)
    assert isinstance(gain, ipywidgets.FloatSlider) and (gain.min, gain.max) == (0.1, 3.0)
    assert isinstance(activation, ipywidgets.Dropdown) and "tanh" in activation.options
    assert isinstance(playground.widget, ipywidgets.VBox)
    assert playground.image in playground.widget.children


def test_gain_one_keeps_tanh_activations_alive_and_gain_half_makes_them_vanish(playground: InitPlayground) -> None:
    steady = playground.layer_stds()
    assert len(steady) == 10
    assert steady[-1] > 0.1 and steady[-1] / steady[4] > 0.6  # slow decay only
    playground.set(gain=0.5)
    shrinking = playground.layer_stds()
    assert shrinking[-1] < 0.01
    assert all(later < 0.6 * earlier for earlier, later in zip(shrinking, shrinking[1:]))  # about halves each layer


def test_moving_a_control_redraws(playground: InitPlayground) -> None:
    before = playground.image.value
    playground.controls["depth"].value = 20  # as a person dragging the slider
    assert len(playground.layer_stds()) == 20
    assert playground.image.value != before
    playground.set(activation="relu", gain=2**0.5)  # He initialisation keeps ReLU nets steady
    stds = playground.layer_stds()
    assert 0.3 < stds[-1] / stds[0] < 3


def test_same_settings_give_the_same_numbers() -> None:
    first = deep_activations(5, 16, 1.0, "tanh", 32, seed=3)
    again = deep_activations(5, 16, 1.0, "tanh", 32, seed=3)
    other = deep_activations(5, 16, 1.0, "tanh", 32, seed=4)
    assert all((a == b).all() for a, b in zip(first, again))
    assert not (first[-1] == other[-1]).all()
    assert first[0].shape == (32, 16)
    torch.manual_seed(1)
    untouched = torch.rand(3)
    torch.manual_seed(1)
    deep_activations(5, 16, 1.0, "tanh", 32, seed=3)  # seeded draws leave the caller's random stream alone
    assert (torch.rand(3) == untouched).all()


def test_bad_values_are_refused_and_change_nothing(playground: InitPlayground) -> None:
    before = playground.layer_stds()
    with pytest.raises(ValueError, match="depth must be between 2 and 30"):
        playground.set(gain=0.5, depth=100)
    with pytest.raises(ValueError, match="activation must be one of"):
        playground.set(activation="swish")
    with pytest.raises(ValueError, match="Unknown control"):
        playground.set(width=3)
    assert playground.layer_stds() == before and playground.controls["gain"].value == 1.0


def test_static_fallback_is_a_png_of_the_plot(playground: InitPlayground) -> None:
    bundle = playground._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" not in bundle  # no front end in a test
    picture = Image.open(io.BytesIO(base64.b64decode(bundle["image/png"])))
    assert picture.format == "PNG" and picture.width > 200
    assert "depth=10" in bundle["text/plain"]


def test_the_playground_computes_with_ldl_nn_init(playground: InitPlayground) -> None:
    """One implementation of lesson 3: the playground's numbers are ldl.nn.init's for the same network."""
    assert list(playground.controls["activation"].options) == list(ACTIVATIONS)
    playground.set(depth=12, gain=5 / 3)
    model, inputs = gain_probe(12, 64, 5 / 3, "tanh", 256, seed=0)  # the settings the playground shows
    assert all((a == b).all() for a, b in zip(model.state_dict().values(), playground.model.state_dict().values()))
    assert (inputs == playground.inputs).all()
    targets = torch.zeros(len(inputs), dtype=torch.long)  # layer_statistics needs a loss; any target will do
    expected = [layer["activation_std"] for layer in layer_statistics(model, inputs, targets)]
    assert playground.layer_stds() == pytest.approx(expected, rel=1e-6)
    weight_stds = [float(layer.weight.detach().std()) for layer in model if isinstance(layer, torch.nn.Linear)]
    assert weight_stds == pytest.approx([5 / 3 / 64**0.5] * 12, rel=0.1)  # N(0, gain² / width)


def test_plot_activation_spread_draws_a_few_layers_and_leaves_pyplot_alone() -> None:
    open_before = plt.get_fignums()
    activations = deep_activations(10, 16, 1.0, "tanh", 32, seed=0)
    figure = plot_activation_spread(activations, shown=4, figsize=(8, 4))
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 4 + 1  # four histograms, one std-per-layer plot
    assert tuple(figure.get_size_inches()) == (8, 4)
    assert figure.axes[-1].get_yscale() == "log"
    assert [ax.get_title().split("\n")[0] for ax in figure.axes[:-1]] == ["layer 1", "layer 4", "layer 7", "layer 10"]
    figure.savefig(io.BytesIO(), format="png")  # drawable without pyplot
    assert plt.get_fignums() == open_before
