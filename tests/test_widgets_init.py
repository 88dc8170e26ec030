"""The init playground without a browser: controls, the forward pass behind them, static fallback."""

from __future__ import annotations

import base64
import io

import ipywidgets
import pytest
from PIL import Image

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
