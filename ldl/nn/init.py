"""Weight initialisation, and the tools of lesson 3 that show why it matters.

A deep network multiplies its input by one weight matrix per layer, and its gradients by
the same matrices on the way back. If each layer shrinks the signal a little, twenty layers
shrink it to nothing (vanishing gradients: the first layers stop learning); if each grows it
a little, it explodes. A good initialisation picks the weights' scale so that the spread of
the activations and of the gradients stays the same from layer to layer:

- **Xavier/Glorot**: ``std = gain * sqrt(2 / (fan_in + fan_out))``, a compromise between
  keeping the forward and the backward signal steady (made for sigmoid and tanh);
- **He/Kaiming**: ``std = gain / sqrt(fan_in)`` with ``gain = sqrt(2)`` for ReLU, which
  zeroes half of its inputs and so halves their power.

>>> model = deep_mlp(depth=20, in_features=64, num_classes=10, activation="relu")
>>> init_weights(model, "he_normal")
>>> stats = layer_statistics(model, x, y)           # one forward + backward, hooks removed after
>>> gradient_ratio(stats)                            # first-layer / last-layer gradient norm, ~1
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

INIT_SCHEMES = ("zeros", "constant", "normal", "xavier_uniform", "xavier_normal", "he_uniform", "he_normal")
# "identity" builds a deep *linear* chain: the plainest case of exploding or vanishing products.
ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "identity": nn.Identity}
WEIGHTED_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
SATURATION = 0.99  # sigmoid outside [0.01, 0.99] or |tanh| above 0.99: a flat part of the curve, gradient ~0
MAX_SAMPLES = 10_000  # values kept per layer for histograms


def _check_scheme(scheme: str) -> None:
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"Unknown initialisation scheme {scheme!r}; choose one of {INIT_SCHEMES}.")


def init_weights(
    model: nn.Module,
    scheme: str,
    *,
    nonlinearity: str = "relu",
    std: float = 0.01,
    value: float = 0.0,
) -> nn.Module:
    """Re-initialise the weight of every ``nn.Linear`` and ``nn.Conv1d/2d/3d`` in ``model``; biases to 0.

    Args:
        scheme: one of :data:`INIT_SCHEMES`: ``"zeros"``, ``"constant"`` (every weight
            ``value``), ``"normal"`` (``N(0, std²)``: the naive "small random numbers"),
            ``"xavier_uniform"``, ``"xavier_normal"``, ``"he_uniform"``, ``"he_normal"``.
        nonlinearity: the activation after the layers, for the gain of Xavier and He
            (``nn.init.calculate_gain``: ``"relu"`` sqrt(2), ``"tanh"`` 5/3, ``"sigmoid"``
            and ``"linear"`` 1). Glorot's original Xavier is ``nonlinearity="linear"``.

    Returns the model (changed in place), so ``model = init_weights(build(), "he_normal")`` works.
    """
    _check_scheme(scheme)
    gain = nn.init.calculate_gain(nonlinearity)
    for module in model.modules():
        if not isinstance(module, WEIGHTED_LAYERS):
            continue
        weight = module.weight
        if scheme == "zeros":
            nn.init.zeros_(weight)
        elif scheme == "constant":
            nn.init.constant_(weight, value)
        elif scheme == "normal":
            nn.init.normal_(weight, mean=0.0, std=std)
        elif scheme == "xavier_uniform":
            nn.init.xavier_uniform_(weight, gain=gain)
        elif scheme == "xavier_normal":
            nn.init.xavier_normal_(weight, gain=gain)
        elif scheme == "he_uniform":
            nn.init.kaiming_uniform_(weight, mode="fan_in", nonlinearity=nonlinearity)
        else:  # "he_normal"
            nn.init.kaiming_normal_(weight, mode="fan_in", nonlinearity=nonlinearity)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    return model


def fans(layer: nn.Module) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a Linear or Conv layer: inputs and outputs each weight connects.

    Linear ``(out, in)``: ``(in, out)``. Conv2d ``(out, in, kH, kW)``: ``(in*kH*kW, out*kH*kW)``.
    """
    weight = layer.weight
    if weight.ndim < 2:
        raise ValueError(f"{type(layer).__name__} has a {weight.ndim}-D weight: fans need a Linear or Conv layer.")
    receptive_field = weight[0][0].numel()  # kH * kW for a Conv2d, 1 for a Linear
    return weight.shape[1] * receptive_field, weight.shape[0] * receptive_field


def expected_std(layer: nn.Module, scheme: str, nonlinearity: str = "relu", *, std: float = 0.01) -> float:
    """The standard deviation :func:`init_weights` gives ``layer``'s weight under ``scheme``.

    Xavier: ``gain * sqrt(2 / (fan_in + fan_out))``; He: ``gain / sqrt(fan_in)``; ``"normal"``:
    ``std``; ``"zeros"`` and ``"constant"``: 0. Uniform schemes draw from ``[-a, a]`` with
    ``a = sqrt(3) * std``, which has the same std as the normal ones.
    """
    _check_scheme(scheme)
    gain = nn.init.calculate_gain(nonlinearity)
    fan_in, fan_out = fans(layer)
    if scheme in ("zeros", "constant"):
        return 0.0
    if scheme == "normal":
        return std
    if scheme.startswith("xavier"):
        return gain * math.sqrt(2.0 / (fan_in + fan_out))
    return gain / math.sqrt(fan_in)


def deep_mlp(
    depth: int = 20,
    width: int = 64,
    *,
    in_features: int,
    num_classes: int,
    activation: str = "relu",
) -> nn.Sequential:
    """A plain deep MLP: ``Flatten`` then ``depth`` Linear layers, an activation between each two.

    ``(B, ...)`` inputs with ``in_features`` values each -> ``(B, num_classes)`` logits. No
    normalisation and no skip connections: only the initialisation keeps its signal alive.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {activation!r}; choose one of {tuple(ACTIVATIONS)}.")
    if depth < 1:
        raise ValueError(f"depth must be at least 1 Linear layer; got {depth}.")
    sizes = [in_features] + [width] * (depth - 1) + [num_classes]
    layers: list[nn.Module] = [nn.Flatten()]
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if index < depth - 1:  # no activation after the last layer: it outputs logits
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def _subsample(values: Tensor, max_samples: int = MAX_SAMPLES) -> Tensor:
    """At most ``max_samples`` evenly spaced values of ``values``, flattened: float32 on the CPU."""
    flat = values.detach().flatten()
    step = max(1, math.ceil(flat.numel() / max_samples))
    return flat[::step].float().cpu()


def _activation_summary(output: Tensor, activation: nn.Module | None) -> dict[str, Any]:
    """Mean, std, dead/saturated fractions and a sample of a layer's output (after ``activation`` if any)."""
    output = output.detach().float()
    dead = dead_units = saturated = None
    if isinstance(activation, nn.ReLU):
        dead = (output == 0).float().mean().item()
        # A dead unit outputs 0 for every input of the batch (for a conv layer, a channel at
        # every position): it passes no gradient back, so nothing can revive it.
        if output.ndim > 1:
            per_unit = output.transpose(0, 1).reshape(output.shape[1], -1)  # (units, B * positions)
            dead_units = (per_unit == 0).all(dim=1).float().mean().item()
    elif isinstance(activation, nn.Sigmoid):
        saturated = ((output < 1 - SATURATION) | (output > SATURATION)).float().mean().item()
    elif isinstance(activation, nn.Tanh):
        saturated = (output.abs() > SATURATION).float().mean().item()
    return {
        "activation_type": type(activation).__name__ if activation is not None else None,
        "activation_mean": output.mean().item(),
        "activation_std": output.std().item() if output.numel() > 1 else 0.0,
        "dead_fraction": dead,
        "dead_units": dead_units,
        "saturated_fraction": saturated,
        "activations": _subsample(output),
    }


@contextmanager
def _recording_layer_outputs(model: nn.Module) -> Iterator[dict[nn.Module, tuple[Tensor, nn.Module | None]]]:
    """While open, record what each Linear/Conv layer passes on, in forward order.

    Yields a dict filled during the forward pass: layer -> (its output after the activation
    module right after it, or its raw output when none follows; that activation or None).
    Every hook is removed on leaving, even if the forward pass raises.
    """
    outputs: dict[nn.Module, tuple[Tensor, nn.Module | None]] = {}  # dicts keep insertion (forward) order
    last_layer: list[nn.Module] = []  # the most recent Linear/Conv the forward pass went through

    def on_layer(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        last_layer[:] = [module]
        outputs[module] = (output.detach(), None)

    def on_activation(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        if last_layer and outputs[last_layer[0]][1] is None:  # the first activation after the layer
            outputs[last_layer[0]] = (output.detach(), module)

    handles = []
    try:
        for module in model.modules():
            if isinstance(module, WEIGHTED_LAYERS):
                handles.append(module.register_forward_hook(on_layer))
            elif isinstance(module, tuple(ACTIVATIONS.values())):
                handles.append(module.register_forward_hook(on_activation))
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def layer_statistics(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    loss_fn: nn.Module | None = None,
) -> list[dict[str, Any]]:
    """One forward and backward pass on a batch; what each Linear/Conv layer did, in forward order.

    Args:
        x: a batch of inputs, e.g. ``(B, 3, H, W)`` float32, on the model's device.
        y: its targets, ``(B,)`` int64 class indices.
        loss_fn: default ``nn.CrossEntropyLoss()``.

    Returns one dict per Linear/Conv layer::

        {"name": "3", "type": "Linear",
         "activation_type": "ReLU",       # the activation module right after the layer, or None
         "activation_mean": ..., "activation_std": ...,   # of the layer's output after that activation
         "dead_fraction": 0.5 | None,     # ReLU outputs exactly 0
         "dead_units": 0.0 | None,        # units (channels) whose ReLU output is 0 for the whole batch
         "saturated_fraction": ... | None,  # sigmoid < 0.01 or > 0.99, |tanh| > 0.99
         "grad_norm": ..., "grad_std": ...,  # of the weight's gradient
         "activations": (n,) float32, "gradients": (m,) float32}  # CPU samples for histograms

    The model's ``.grad`` are replaced by this batch's gradients. Activations passed through
    functional calls (``F.relu``) are not seen: the layer's raw output is described instead.
    Every hook is removed when done, even if the forward pass raises.
    """
    loss_fn = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()
    names = {module: name for name, module in model.named_modules()}
    with _recording_layer_outputs(model) as outputs:
        model.zero_grad(set_to_none=True)  # gradients of this batch only
        loss = loss_fn(model(x), y)
        loss.backward()
    summaries = {module: _activation_summary(output, activation) for module, (output, activation) in outputs.items()}

    stats = []
    for module, summary in summaries.items():
        grad = module.weight.grad
        if grad is None:
            raise RuntimeError(f"Layer {names[module]!r} got no gradient: is it part of the loss's graph?")
        stats.append({
            "name": names[module],
            "type": type(module).__name__,
            **summary,
            "grad_norm": grad.norm().item(),
            "grad_std": grad.std().item() if grad.numel() > 1 else 0.0,
            "gradients": _subsample(grad),
        })
    return stats


def gradient_ratio(stats: list[dict[str, Any]]) -> float:
    """First layer's weight-gradient norm over the last layer's (from :func:`layer_statistics`).

    About 1: every layer learns at a similar pace. Far below 1: the gradient vanishes on its
    way back, and the first layers barely move. Far above 1: it explodes. ``inf`` (or ``nan``
    when the first is 0 too) when the last layer's gradient is exactly 0.
    """
    if len(stats) < 2:
        raise ValueError(f"gradient_ratio needs at least two layers' statistics; got {len(stats)}.")
    first, last = stats[0]["grad_norm"], stats[-1]["grad_norm"]
    if last == 0:
        # Dead signal: e.g. ReLU with tiny weights outputs zeros, so the last layer sees no input.
        return math.inf if first > 0 else math.nan
    return first / last


def gain_stack(depth: int, width: int, *, activation: str = "tanh", gain: float = 1.0) -> nn.Sequential:
    """:func:`deep_mlp` as a stack of hidden layers: ``depth`` Linear(width, width), each followed by ``activation``.

    ``(B, width)`` float32 -> ``(B, width)``. Unlike :func:`deep_mlp` the last layer has an
    activation too (there are no logits: it is a deep network's hidden part). Its weights are
    drawn by :func:`init_weights` (``"normal"``) from ``N(0, gain² / width)`` and its biases are 0:
    a free gain on the fan-in formula, so gain 1 is LeCun's scale, ``sqrt(2)`` He's (for ReLU)
    and ``5/3`` PyTorch's tanh gain. Uses the global random generator, like :func:`init_weights`.
    """
    model = deep_mlp(depth, width, in_features=width, num_classes=width, activation=activation)
    model.append(ACTIVATIONS[activation]())  # deep_mlp ends on logits; a hidden stack ends on an activation
    # std gain / sqrt(fan_in): each output sums fan_in products, so its variance is gain² x the input's.
    return init_weights(model, "normal", std=gain / math.sqrt(width))


def layer_activations(model: nn.Module, x: Tensor) -> list[Tensor]:
    """One forward pass without gradients; what each Linear/Conv layer of ``model`` passed on, in forward order.

    Args:
        x: a batch of inputs, e.g. ``(B, width)`` float32, on the model's device.

    Returns one tensor per Linear/Conv layer, e.g. ``(B, width)`` for a Linear: its output
    after the activation module right after it (the layer's raw output if none follows), as
    :func:`layer_statistics` describes it, but whole and without a backward pass.
    """
    with _recording_layer_outputs(model) as outputs, torch.no_grad():
        model(x)
    return [output for output, _ in outputs.values()]


def gain_probe(
    depth: int, width: int, gain: float, activation: str, samples: int, seed: int
) -> tuple[nn.Sequential, Tensor]:
    """A :func:`gain_stack` and a ``(samples, width)`` float32 N(0, 1) input for it, both drawn from ``seed``.

    The same arguments give the same weights and input; the global random state is left as it was.
    """
    with torch.random.fork_rng(devices=[]):  # seeded draws without disturbing the caller's random stream
        torch.manual_seed(seed)
        model = gain_stack(depth, width, activation=activation, gain=gain)
        x = torch.randn(samples, width)
    return model, x


def deep_activations(
    depth: int, width: int, gain: float, activation: str, samples: int, seed: int
) -> list[Tensor]:
    """The ``(samples, width)`` float32 activations after each layer of :func:`gain_probe`'s network.

    One tensor per layer, first layer first: what :func:`layer_activations` returns for that network and input.
    """
    model, x = gain_probe(depth, width, gain, activation, samples, seed)
    return layer_activations(model, x)


def unit_spread(layer: nn.Module) -> float:
    """How different a layer's units are: the largest, over its inputs, of the std across units of their weights.

    ``layer.weight`` is ``(units, inputs, ...)``; the std runs over the units (dim 0) for
    each input weight, and the largest is returned. 0 means every unit has exactly the same
    weights: they compute the same thing and get the same gradient, so training can never
    tell them apart (a constant initialisation). A random initialisation breaks the symmetry.
    """
    weight = layer.weight.detach().float()
    if weight.ndim < 2 or weight.shape[0] < 2:
        raise ValueError(f"unit_spread needs a Linear or Conv layer with at least 2 units; got weight {tuple(weight.shape)}.")
    return weight.flatten(1).std(dim=0).max().item()
