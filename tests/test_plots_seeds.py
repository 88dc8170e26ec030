"""Plots of runs repeated over seeds: faint seeds behind a bold mean, held-out scores with their spread."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from ldl import plots  # noqa: E402
from ldl.train import HeldOutScores, RunConfig  # noqa: E402
from tests.test_grid_seeds import SEEDS, data, grid, mlp  # noqa: E402


@pytest.fixture(scope="module")
def comparison():
    _, train_eval, _ = data()
    return grid([RunConfig("narrow", mlp(hidden=4)), RunConfig("wide", mlp(hidden=32))], seeds=SEEDS,
                train_eval_loader=train_eval)


def test_every_seed_is_drawn_faintly_and_the_mean_boldly(comparison) -> None:
    fig = plots.plot_seed_curves(comparison)
    lines = fig.axes[0].get_lines()
    # 2 runs x 2 keys x (3 seeds + 1 mean)
    assert len(lines) == 16
    means = [line for line in lines if line.get_label().endswith("(mean of 3)")]
    assert len(means) == 4
    for line in means:
        run, key = line.get_label().split(": ")
        histories = comparison.seed_histories[run]
        column = "clean_train_accuracy" if key.startswith("clean train") else "top1_acc"
        expected = np.mean([h[column] for h in histories], axis=0)
        np.testing.assert_allclose(line.get_ydata(), expected)
        assert line.get_linestyle() == (":" if column.startswith("clean") else "-")
    assert sum(1 for line in lines if line.get_alpha() == 0.25) == 12
    plt.close(fig)


def test_seed_curves_name_a_missing_key(comparison) -> None:
    with pytest.raises(KeyError, match="no 'val_top5'"):
        plots.plot_seed_curves(comparison, keys=("val_top5",))
    with pytest.raises(ValueError, match="at least one run"):
        plots.plot_seed_curves(comparison, names=[])


def test_held_out_shows_each_seed_the_mean_and_the_verdict() -> None:
    scores = HeldOutScores({"none": [0.70, 0.72, 0.71], "up": [0.75, 0.76, 0.77]}, seeds=SEEDS,
                           ensemble={"none": 0.73, "up": 0.79})
    fig = plots.plot_held_out(scores)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["baseline", "clearly higher"]
    dots = [c for c in ax.collections if len(c.get_offsets()) == 3]
    assert sorted(np.round(dots[1].get_offsets()[:, 1], 2)) == [0.75, 0.76, 0.77]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["none", "up"]
    assert "ensemble of the seeds" in [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close(fig)
