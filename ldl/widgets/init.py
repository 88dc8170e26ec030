"""Lesson 3's playground: depth, gain and activation sliders above per-layer activation histograms.

>>> from ldl.widgets import init_playground
>>> playground = init_playground(depth=20, gain=1.0, activation="tanh")
>>> playground                      # last line of a cell: the sliders and the histograms
>>> playground.set(gain=5 / 3)      # move sliders from Python

Only the controls live here: the network and its activations come from :mod:`ldl.nn.init`
(``gain_probe``, ``layer_activations``), the picture from :mod:`ldl.plots.activations`.
"""

from __future__ import annotations

import io
from typing import Any

import ipywidgets as widgets
import torch

from ldl.nn.init import ACTIVATIONS, deep_activations, gain_probe, layer_activations
from ldl.plots.activations import plot_activation_spread
from ldl.widgets.display import widget_or_picture

__all__ = ["InitPlayground", "deep_activations", "init_playground"]


def init_playground(
    *,
    depth: int = 10,
    width: int = 64,
    gain: float = 1.0,
    activation: str = "tanh",
    samples: int = 512,
    seed: int = 0,
) -> InitPlayground:
    """Sliders for depth and gain, a menu for the activation, and the activations of every layer.

    A random input ``(samples, width)`` goes through ``depth`` layers ``h = f(h @ W.T)``
    whose weights are drawn from N(0, gain² / width) (:func:`ldl.nn.init.gain_probe`; the
    activations are :func:`ldl.nn.init.layer_activations`). Gain 1 keeps the variance of a linear
    layer's output equal to its input's (Xavier/LeCun); move it and watch the deep layers'
    activations collapse to zero or saturate.

    Returns:
        An :class:`InitPlayground`; it shows itself as the last expression of a cell.
    """
    return InitPlayground(depth=depth, width=width, gain=gain, activation=activation, samples=samples, seed=seed)


class InitPlayground:
    """Depth, gain and activation controls above per-layer activation histograms.

    Attributes:
        widget: the root ``VBox`` to display.
        controls: ``"depth"``, ``"gain"``, ``"activation"`` -> their widgets.
        model: the network behind the current settings, from :func:`ldl.nn.init.gain_probe`.
        inputs: its ``(samples, width)`` float32 random input.
    """

    def __init__(self, *, depth: int, width: int, gain: float, activation: str, samples: int, seed: int) -> None:
        self.width, self.samples, self.seed = width, samples, seed
        self.controls: dict[str, widgets.Widget] = {
            "depth": widgets.IntSlider(value=depth, min=2, max=30, description="depth", continuous_update=False),
            "gain": widgets.FloatSlider(value=gain, min=0.1, max=3.0, step=0.05, description="gain",
                                        readout_format=".2f", continuous_update=False),
            "activation": widgets.Dropdown(options=list(ACTIVATIONS), value=activation, description="activation"),
        }
        self._check(depth=depth, gain=gain, activation=activation)
        self.model: torch.nn.Sequential | None = None
        self.inputs: torch.Tensor | None = None
        self._activations: list[torch.Tensor] = []
        self._png = b""
        self._holding = False
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", align_self="flex-start"))
        self.widget = widgets.VBox([
            widgets.HBox(list(self.controls.values())),
            widgets.HTML(f"A random input through the layers, each of width {width}, weights ~ N(0, gain²/{width}). "
                         "Top: activations of a few layers; bottom: their std at every layer."),
            self.image,
        ])
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.redraw()

    def _check(self, **values: Any) -> None:
        """Refuse values the controls cannot show (ipywidgets would silently clip them)."""
        unknown = sorted(set(values) - set(self.controls))
        if unknown:
            raise ValueError(f"Unknown control(s) {unknown}; the playground has: {', '.join(self.controls)}.")
        for name in ("depth", "gain"):
            if name in values and not self.controls[name].min <= values[name] <= self.controls[name].max:
                control = self.controls[name]
                raise ValueError(f"{name} must be between {control.min} and {control.max}; got {values[name]}.")
        if "activation" in values and values["activation"] not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {list(ACTIVATIONS)}; got {values['activation']!r}.")

    def set(self, **values: Any) -> None:
        """Move controls from Python, e.g. ``set(depth=20, gain=0.5)``; redraws once."""
        self._check(**values)  # all checked first: on a bad value nothing changes
        self._holding = True
        try:
            for name, value in values.items():
                self.controls[name].value = value
        finally:
            self._holding = False
        self.redraw()

    def layer_stds(self) -> list[float]:
        """The standard deviation of each layer's activations for the current settings, first layer first."""
        return [float(h.std()) for h in self._activations]

    def redraw(self) -> None:
        """Rebuild the network for the current settings, run the input through it and draw its histograms."""
        self.model, self.inputs = gain_probe(
            self.controls["depth"].value, self.width, self.controls["gain"].value,
            self.controls["activation"].value, self.samples, self.seed,
        )
        self._activations = layer_activations(self.model, self.inputs)
        self._png = self._draw()
        self.image.value = self._png

    def static_png(self) -> bytes:
        """The histograms as a PNG: what a static notebook shows."""
        return self._png

    def _draw(self) -> bytes:
        """Histograms of a few layers (top) and every layer's std (bottom), as PNG bytes."""
        figure = plot_activation_spread(self._activations)  # built without pyplot: redraws leave nothing open
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=80)
        return buffer.getvalue()

    def _on_change(self, change: dict[str, Any]) -> None:
        if not self._holding:
            self.redraw()

    def _text_summary(self) -> str:
        values = ", ".join(f"{name}={control.value}" for name, control in self.controls.items())
        return f"Init playground: {values}. (Run the notebook in Jupyter or Colab to move the sliders.)"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """The live widget for a front end, a PNG for static renderers (as :class:`Playground` does)."""
        return widget_or_picture(self.widget, self._text_summary(), self.static_png)

    def __repr__(self) -> str:
        return self._text_summary()
