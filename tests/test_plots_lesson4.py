"""Lesson 4 plots: the LR range test and learning-rate schedules."""

from __future__ import annotations

import math
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.figure import Figure

from ldl.plots import plot_lr_finder, plot_lr_schedule
from ldl.train import LRRecorder, one_cycle, preview_schedule
from ldl.train.lr_finder import LRFinderResult


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def diverging_result(suggestion: float = 1e-3) -> LRFinderResult:
    """A hand-made sweep: flat, falling, a minimum at 1e-1, then a blow-up to 100."""
    lrs = [10 ** (-6 + k * 0.1) for k in range(60)]  # 1e-6 ... ~8e-1
    smoothed = [2.0 - math.tanh(math.log10(lr) + 3) for lr in lrs]
    for k in range(51, 60):
        smoothed[k] = smoothed[50] * 1.8 ** (k - 50)  # up to ~100x the minimum
    losses = [value * (1.1 if k % 2 else 0.9) for k, value in enumerate(smoothed)]
    return LRFinderResult(lrs=lrs, losses=losses, smoothed=smoothed, suggestion=suggestion,
                          min_loss_lr=lrs[50], stopped_early=True)


def test_lr_finder_plot_draws_both_curves_and_both_marks_on_a_log_axis() -> None:
    result = diverging_result()
    fig = plot_lr_finder(result)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.lines) == 4  # raw, smoothed, steepest descent, min loss / 10
    assert ax.get_xscale() == "log"
    raw, smoothed = ax.lines[0], ax.lines[1]
    assert raw.get_alpha() < 1 and smoothed.get_linewidth() > raw.get_linewidth()  # faint and bold
    labels = ax.get_legend_handles_labels()[1]
    assert any(f"{result.suggestion:.1e}" in label for label in labels)
    assert any(f"{result.min_loss_lr / 10:.1e}" in label for label in labels)
    # The blow-up is clipped: the top is above the start of the curve but far below the tail.
    bottom, top = ax.get_ylim()
    assert max(result.smoothed[:50]) < top < max(result.smoothed) / 5
    assert bottom < min(result.smoothed)


def test_lr_finder_plot_without_a_suggestion_and_on_a_given_axes() -> None:
    _, ax = plt.subplots()
    returned = plot_lr_finder(diverging_result(suggestion=math.nan), ax=ax)
    assert returned is ax.get_figure()
    assert len(ax.lines) == 3  # no steepest-descent mark


def test_lr_schedule_plot_one_line_per_group_and_epoch_boundaries() -> None:
    lrs = preview_schedule(lambda opt: one_cycle(opt, epochs=4, steps_per_epoch=5), steps=20, base_lrs=(1e-3, 1e-2))
    fig = plot_lr_schedule(lrs, steps_per_epoch=5, labels=["body", "head"])
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.lines) == 2 + 3  # two groups, three boundaries between four epochs
    assert ax.get_legend_handles_labels()[1] == ["body", "head"]
    assert ax.get_yscale() == "linear"
    assert torch.allclose(torch.as_tensor(ax.lines[1].get_ydata(), dtype=torch.float64), lrs[:, 1])


def test_lr_schedule_plot_of_one_curve_on_a_log_axis() -> None:
    ax = plot_lr_schedule([1e-3, 1e-2, 1e-4], log=True).axes[0]
    assert len(ax.lines) == 1
    assert ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="one per group"):
        plot_lr_schedule(torch.ones(5, 2), labels=["only one"])


def test_recorder_plot_uses_its_epochs() -> None:
    recorder = LRRecorder()
    trainer = SimpleNamespace(optimizer=SimpleNamespace(param_groups=[{"lr": 0.0}]), epoch=1)  # what it reads
    recorder.on_fit_start(trainer)
    for step in range(9):  # 3 epochs of 3 batches
        trainer.epoch, trainer.optimizer.param_groups[0]["lr"] = step // 3 + 1, 0.1 * step
        recorder.after_backward(trainer)
    ax = plot_lr_schedule(recorder).axes[0]
    assert recorder.steps_per_epoch == 3
    assert len(ax.lines) == 1 + 2  # the curve and two epoch boundaries


def test_accuracy_vs_speed_draws_one_point_per_network() -> None:
    from ldl.plots import plot_accuracy_vs_speed

    rows = [{"name": "a", "top1": 70.0, "images_per_s": 100.0, "params": 1e6},
            {"name": "b", "top1": 80.0, "images_per_s": 10.0, "params": 1e8}]
    fig = plot_accuracy_vs_speed(rows)
    ax = fig.axes[0]
    assert ax.collections[0].get_offsets().shape == (2, 2)
    assert [t.get_text() for t in ax.texts] == ["a", "b"] and ax.get_xscale() == "log"
    with pytest.raises(ValueError, match="empty"):
        plot_accuracy_vs_speed([])
