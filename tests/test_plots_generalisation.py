"""Lesson 6's figures: a held-out score's spread, the winner's curse, sweeps with bands, double descent."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from ldl import plots  # noqa: E402
from ldl.generalisation import DoubleDescentCurve, estimate_spread, selection_bias  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_estimate_spread_draws_measured_dots_over_the_prediction() -> None:
    correct = torch.rand(500, generator=torch.Generator().manual_seed(0)) < 0.8
    rows = estimate_spread(correct, [10, 50, 500], draws=50)
    ax = plots.plot_estimate_spread(rows).axes[0]
    predicted, measured = ax.get_lines()
    # The whole pool (500 of 500) has no spread: it is left off the log axes.
    assert list(measured.get_xdata()) == [10, 50]
    assert list(measured.get_ydata()) == pytest.approx([rows[0]["sd"], rows[1]["sd"]])
    assert ax.get_xscale() == ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="non-zero spread"):
        plots.plot_estimate_spread(rows[2:])


def test_selection_stars_the_chosen_candidate() -> None:
    val, test = [0.6, 0.9, 0.7], [0.65, 0.8, 0.72]
    selection = selection_bias(val, test)
    ax = plots.plot_selection(val, test, selection).axes[0]
    star = ax.collections[1]
    assert star.get_offsets().tolist() == [[0.9, 0.8]]
    assert "+0.100" in star.get_label()
    with pytest.raises(ValueError, match="one validation and one test score"):
        plots.plot_selection(val, test[:2], selection)


def test_sweep_draws_a_band_per_series_and_refuses_ragged_input() -> None:
    ax = plots.plot_sweep([1, 2, 4], {"val": ([0.7, 0.6, 0.9], [0.1, 0.0, 0.2])}, xlabel="units", threshold=2).axes[0]
    line = ax.get_lines()[0]
    assert list(line.get_ydata()) == [0.7, 0.6, 0.9]
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(0.6) and band.max() == pytest.approx(1.1)  # mean ± sd
    assert ax.get_lines()[1].get_xdata()[0] == 2  # the threshold line
    with pytest.raises(ValueError, match="2 means and 3 sds for 3 values"):
        plots.plot_sweep([1, 2, 4], {"val": ([0.7, 0.6], [0.1, 0.0, 0.2])}, xlabel="units")


def curve(counts: list[int], threshold: int, errors: list[list[float]]) -> DoubleDescentCurve:
    return DoubleDescentCurve(feature_counts=counts, threshold=threshold, test_error=errors,
                              test_loss=errors, train_error=errors, train_loss=errors)


def test_double_descent_curves_keep_their_own_feature_counts_and_thresholds() -> None:
    full = curve([10, 100, 1000], 100, [[0.2, 0.2], [0.5, 0.4], [0.1, 0.1]])
    half = curve([5, 50, 500, 5000], 50, [[0.2, 0.2], [0.5, 0.5], [0.1, 0.1], [0.1, 0.1]])
    ax = plots.plot_double_descent({"all": full, "half": half}).axes[0]
    lines = ax.get_lines()
    data = [line for line in lines if len(line.get_xdata()) > 2]
    assert [list(line.get_xdata()) for line in data] == [[10, 100, 1000], [5, 50, 500, 5000]]
    assert list(data[0].get_ydata()) == pytest.approx([0.2, 0.45, 0.1])
    thresholds = sorted(line.get_xdata()[0] for line in lines if len(line.get_xdata()) == 2)
    assert thresholds == [50, 100]
    with pytest.raises(ValueError, match="at least one curve"):
        plots.plot_double_descent({})
