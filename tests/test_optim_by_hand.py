"""Lesson 7's optimisers by hand equal torch.optim's, and show their character on 2-D surfaces."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import nn

from ldl.optim import AdamByHand, AdamWByHand, RMSpropByHand, SGDByHand, ravine, saddle, trace_path

PAIRS: dict[str, tuple[Callable, Callable]] = {
    "sgd": (lambda p: SGDByHand(p, lr=0.05), lambda p: torch.optim.SGD(p, lr=0.05)),
    "sgd + L2": (lambda p: SGDByHand(p, lr=0.05, weight_decay=0.1), lambda p: torch.optim.SGD(p, lr=0.05, weight_decay=0.1)),
    "momentum": (lambda p: SGDByHand(p, lr=0.05, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    "nesterov": (lambda p: SGDByHand(p, lr=0.05, momentum=0.9, nesterov=True),
                 lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True)),
    "rmsprop": (lambda p: RMSpropByHand(p, lr=0.01, weight_decay=0.01),
                lambda p: torch.optim.RMSprop(p, lr=0.01, weight_decay=0.01)),
    "adam": (lambda p: AdamByHand(p, lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
    "adam + L2": (lambda p: AdamByHand(p, lr=0.01, weight_decay=0.1), lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1)),
    "adamw": (lambda p: AdamWByHand(p, lr=0.01, weight_decay=0.1), lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1)),
}


def train(make_optimizer: Callable, steps: int = 100) -> list[torch.Tensor]:
    """A small network on fixed random data, the same start and batches for every optimiser."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    generator = torch.Generator().manual_seed(1)
    optimizer = make_optimizer(model.parameters())
    for _ in range(steps):
        x, y = torch.randn(16, 6, generator=generator), torch.randint(0, 3, (16,), generator=generator)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return [p.detach() for p in model.parameters()]


@pytest.mark.parametrize("name", list(PAIRS))
def test_each_optimiser_by_hand_equals_torch_for_100_steps(name: str) -> None:
    by_hand, reference = PAIRS[name]
    ours, theirs = train(by_hand), train(reference)
    start = train(by_hand, steps=0)
    assert any(not torch.equal(a, b) for a, b in zip(ours, start)), "the weights did not move"
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_adamw_and_adam_with_l2_differ() -> None:
    adam_l2, adamw = train(PAIRS["adam + L2"][0]), train(PAIRS["adamw"][0])
    assert any(not torch.allclose(a, b, atol=1e-4) for a, b in zip(adam_l2, adamw))


def test_the_closure_is_evaluated_and_its_loss_returned() -> None:
    weight = nn.Parameter(torch.tensor([2.0]))
    optimizer = AdamByHand([weight], lr=0.1)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = (weight**2).sum()
        loss.backward()
        return loss

    assert optimizer.step(closure).item() == pytest.approx(4.0)
    assert weight.item() < 2.0


@pytest.mark.parametrize("bad", [lambda p: SGDByHand(p, lr=0.0), lambda p: SGDByHand(p, lr=0.1, nesterov=True),
                                 lambda p: RMSpropByHand(p, eps=-1.0), lambda p: AdamByHand(p, weight_decay=-0.1)])
def test_bad_settings_are_refused_by_name(bad: Callable) -> None:
    with pytest.raises(ValueError, match="lr|Nesterov|eps|weight_decay"):
        bad([nn.Parameter(torch.zeros(2))])


def test_surfaces_have_their_minima_and_saddle_where_documented() -> None:
    assert ravine(torch.zeros(2)).item() == 0.0
    points = torch.tensor([[0.0, math.sqrt(2)], [0.0, -math.sqrt(2)], [0.0, 0.0]])
    assert saddle(points).tolist() == pytest.approx([-1.0, -1.0, 0.0])
    # (0, 0) is a saddle: a minimum along x, a maximum along y.
    assert saddle(torch.tensor([0.1, 0.0])) > 0 > saddle(torch.tensor([0.0, 0.1]))


def test_momentum_runs_along_the_ravine_where_plain_descent_crawls() -> None:
    # Plain descent at 0.2, near the largest rate the steep direction allows (2 / 8 = 0.25),
    # still crawls along the shallow one; a heavy ball at half the rate gets far closer.
    start, steps = (-4.0, 1.0), 30
    plain = trace_path(lambda p: SGDByHand(p, lr=0.2), ravine, start=start, steps=steps)
    heavy = trace_path(lambda p: SGDByHand(p, lr=0.1, momentum=0.8), ravine, start=start, steps=steps)
    assert plain.shape == heavy.shape == (steps + 1, 2)
    assert plain[0].tolist() == [-4.0, 1.0]
    assert ravine(heavy[-1]) < 0.1 * ravine(plain[-1])


def test_adaptive_steps_escape_the_saddle_sooner() -> None:
    start, steps = (-1.0, 1e-3), 40
    plain = trace_path(lambda p: SGDByHand(p, lr=0.05), saddle, start=start, steps=steps)
    adam = trace_path(lambda p: AdamByHand(p, lr=0.05), saddle, start=start, steps=steps)
    assert abs(plain[-1, 1]) < 0.1 < abs(adam[-1, 1])  # Adam has left the ridge y = 0; SGD has not


def test_a_diverging_path_stops_at_its_last_finite_point() -> None:
    path = trace_path(lambda p: SGDByHand(p, lr=10.0), saddle, start=(1.0, 1.0), steps=30)
    assert path.shape == (31, 2) and torch.isfinite(path).all()
    assert torch.equal(path[-1], path[-2])


def test_paths_are_drawn_over_the_surface_from_hollow_start_to_filled_end() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ldl import plots

    path = trace_path(lambda p: SGDByHand(p, lr=0.1, momentum=0.8), ravine, start=(-4.0, 1.0), steps=10)
    ax = plots.plot_paths(ravine, {"momentum": path}, extent=(-4.5, 1.0, -1.2, 1.2)).axes[0]
    line, start, end = ax.get_lines()
    assert list(line.get_xdata()) == pytest.approx(path[:, 0].tolist())
    assert start.get_markerfacecolor() == "none" and end.get_xdata()[0] == pytest.approx(path[-1, 0].item())
    with pytest.raises(ValueError, match=r"\(steps \+ 1, 2\)"):
        plots.plot_paths(ravine, {"bad": path[:, :1]}, extent=(-1, 1, -1, 1))
    plt.close("all")
