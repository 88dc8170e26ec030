"""Lesson 2's plots: runs overlaid, final accuracy bars, weight histograms, batch-norm statistics."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import nn  # noqa: E402

from ldl import plots  # noqa: E402
from ldl.train import BatchNormStats, Comparison, Trainer  # noqa: E402
from ldl.train.history import History  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    """The plots draw with pyplot: close them so figures do not pile up across tests."""
    yield
    plt.close("all")


def history(train: list[float], val: list[float]) -> History:
    return History({"epoch": e, "train_accuracy": t, "top1_acc": v} for e, (t, v) in enumerate(zip(train, val), 1))


def two_runs() -> dict[str, History]:
    return {
        "baseline": history([0.6, 0.9, 1.0], [0.6, 0.65, 0.62]),
        "dropout": history([0.55, 0.75, 0.8], [0.6, 0.7, 0.72]),
    }


def test_plot_runs_gives_each_run_one_colour_train_dashed_val_solid() -> None:
    fig = plots.plot_runs(two_runs())
    assert isinstance(fig, Figure)
    lines = fig.axes[0].lines
    assert [line.get_label() for line in lines] == [
        "baseline: train_accuracy", "baseline: top1_acc", "dropout: train_accuracy", "dropout: top1_acc"]
    assert [line.get_linestyle() for line in lines] == ["--", "-", "--", "-"]
    assert lines[0].get_color() == lines[1].get_color() != lines[2].get_color() == lines[3].get_color()
    assert list(lines[3].get_ydata()) == [0.6, 0.7, 0.72]
    with pytest.raises(ValueError, match="at least one"):
        plots.plot_runs({})


def test_plot_final_accuracy_writes_each_gap_above_its_bars() -> None:
    comparison = Comparison(histories=two_runs(), seconds={"baseline": 1.0, "dropout": 1.0})
    for source in (comparison, comparison.table()):
        fig = plots.plot_final_accuracy(source)
        ax = fig.axes[0]
        heights = [patch.get_height() for patch in ax.patches]
        assert heights == pytest.approx([1.0, 0.8, 0.62, 0.72])  # train bars, then validation bars
        assert [text.get_text() for text in ax.texts] == ["gap +0.38", "gap +0.08"]
        assert [label.get_text() for label in ax.get_xticklabels()] == ["baseline", "dropout"]


def test_plot_weight_histograms_counts_conv_and_linear_weights_only() -> None:
    dense = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 4))
    sparse = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 4))
    with torch.no_grad():
        for p in dense.parameters():
            p.fill_(0.5)
        sparse[3].weight.zero_()  # 32 of the 18 + 32 weights are exactly zero
    fig = plots.plot_weight_histograms({"dense": dense, "sparse": sparse}, bins=10)
    assert len(fig.axes) == 2 and all(ax.get_yscale() == "log" for ax in fig.axes)
    counts = [sum(patch.get_height() for patch in ax.patches) for ax in fig.axes]
    assert counts == [18 + 32, 18 + 32]  # conv 2x1x3x3 and linear 4x8 weights: no biases, no BN
    assert fig.axes[0].get_title().endswith("0% of |w| < 0.001")
    assert f"{32 / 50:.0%} of |w|" in fig.axes[1].get_title()
    with pytest.raises(ValueError, match="no convolution or linear"):
        plots.plot_weight_histograms({"bn only": nn.BatchNorm2d(2)})


def test_plot_batchnorm_stats_draws_running_lines_and_batch_dots() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 3 * 3, 2))
    batches = [(torch.randn(4, 3, 5, 5) + 2, torch.randint(0, 2, (4,))) for _ in range(5)]
    stats = BatchNormStats("1", channels=(1, 3))
    Trainer(model, device="cpu", progress=False, verbose=False, callbacks=[stats]).fit(batches, epochs=1)
    for source in (stats, stats.records):
        fig = plots.plot_batchnorm_stats(source)
        ax_mean, ax_var = fig.axes
        assert len(ax_mean.lines) == 2 * 2  # a line and a row of dots per channel
        running = ax_var.lines[0].get_ydata()
        assert running[0] == 1.0 and len(running) == 6  # starts at variance 1, one point per step
        assert np.isnan(ax_var.lines[1].get_ydata()[0])  # no batch at step 0
    legend = [text.get_text() for text in plots.plot_batchnorm_stats(stats).axes[0].get_legend().get_texts()]
    assert legend == ["channel 1", "channel 3"]
    with pytest.raises(ValueError, match="fit first"):
        plots.plot_batchnorm_stats([])


def test_plot_final_accuracy_uses_the_clean_training_accuracy_and_shows_the_spread() -> None:
    rows = [{"name": "none", "train_accuracy": 0.97, "clean_train_accuracy": 1.0, "clean_train_accuracy_sd": 0.0,
             "top1_acc": 0.70, "top1_acc_sd": 0.02},
            {"name": "dropout", "train_accuracy": 0.60, "clean_train_accuracy": 0.90, "clean_train_accuracy_sd": 0.03,
             "top1_acc": 0.74, "top1_acc_sd": 0.01}]
    fig = plots.plot_final_accuracy(rows)
    ax = fig.axes[0]
    heights = [patch.get_height() for patch in ax.patches]
    assert heights == pytest.approx([1.0, 0.9, 0.70, 0.74])  # clean, not running (0.97, 0.60)
    assert [text.get_text() for text in ax.texts] == ["clean gap +0.30", "clean gap +0.16"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["clean train", "validation"]
    error_bars = [line for container in ax.containers if hasattr(container, "lines") and container.lines
                  for line in container.lines[2]]
    assert error_bars, "the sd over seeds is drawn"
    # One row without a clean number: every bar falls back to the running accuracy, labelled so.
    fig = plots.plot_final_accuracy([rows[0], {"name": "x", "train_accuracy": 0.5, "top1_acc": 0.5}])
    assert fig.axes[0].get_legend().get_texts()[0].get_text().startswith("running train")
