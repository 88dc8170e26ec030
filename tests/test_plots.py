from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torchvision.transforms import v2  # noqa: E402

from ldl import plots  # noqa: E402
from ldl.train.history import History  # noqa: E402


def test_denormalize_inverts_normalize() -> None:
    images = torch.rand(4, 3, 8, 8)
    normalized = v2.Normalize(plots.IMAGENET_MEAN, plots.IMAGENET_STD)(images)
    assert torch.allclose(plots.denormalize(normalized), images, atol=1e-6)


def test_show_batch_titles_each_image_with_its_class() -> None:
    images, labels = torch.randn(5, 3, 16, 16), torch.tensor([0, 1, 1, 0, 1])
    fig = plots.show_batch(images, labels, ["cats", "dogs"], ncols=3)
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert titles == ["cats", "dogs", "dogs", "cats", "dogs"]
    assert len(fig.axes) == 6  # a 2 x 3 grid, the last cell left empty
    shown = fig.axes[0].images[0].get_array()
    assert shown.shape == (16, 16, 3) and shown.min() >= 0 and shown.max() <= 1
    plt.close(fig)


def test_show_batch_accepts_uint8_without_normalisation() -> None:
    images = torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    fig = plots.show_batch(images, normalized=False)
    assert fig.axes[0].images[0].get_array().max() == pytest.approx(1.0)
    plt.close(fig)


def overfitting_history() -> History:
    return History(
        {"epoch": e, "train_loss": 1 / e, "val_loss": 0.5 + e / 10, "train_accuracy": 0.5 + e / 10, "top1_acc": 0.6}
        for e in range(1, 5)
    )


def test_plot_overfitting_shades_and_labels_the_final_gap() -> None:
    fig = plots.plot_overfitting(overfitting_history())
    ax_loss, ax_acc = fig.axes
    assert [line.get_label() for line in ax_acc.lines] == ["train", "validation"]
    assert any("gap 0.30" in text.get_text() for text in ax_acc.texts)
    assert ax_acc.collections, "the gap between train and validation accuracy should be shaded"
    plt.close(fig)


def test_compare_histories_overlays_runs() -> None:
    fig = plots.compare_histories({"a": overfitting_history(), "b": overfitting_history()}, key="val_loss")
    assert [line.get_label() for line in fig.axes[0].lines] == ["a", "b"]
    plt.close(fig)


def test_compare_gaps_draws_one_shaded_panel_per_run() -> None:
    fig = plots.compare_gaps({"without": overfitting_history(), "with": overfitting_history()})
    assert [ax.get_title() for ax in fig.axes] == ["without", "with"]
    assert all(ax.collections and any("gap" in t.get_text() for t in ax.texts) for ax in fig.axes)
    plt.close(fig)


def test_show_feature_maps_one_row_per_entry_on_one_scale() -> None:
    maps = torch.rand(4, 5, 5)
    dropped = maps.clone()
    dropped[1] = 0
    fig = plots.show_feature_maps({"before": maps, "after": dropped})
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 8
    assert {ax.images[0].get_clim() for ax in shown} == {(0.0, float(maps.max()))}
    plt.close(fig)


def test_plot_early_stopping_marks_the_restored_epoch() -> None:
    fig = plots.plot_early_stopping(overfitting_history(), best_epoch=2)
    for ax in fig.axes:
        assert any(line.get_xdata()[0] == 2 and "best epoch (2)" in line.get_label() for line in ax.lines)
    plt.close(fig)


def test_plot_clipping_draws_before_and_after_per_run() -> None:
    fig = plots.plot_clipping({"norm": [10.0, 100.0]}, {"norm": [1.0, 1.0]}, clip_norm=1.0)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["norm: before clipping", "norm: step taken", "clip norm 1"]
    assert ax.get_yscale() == "log"
    plt.close(fig)


def test_plot_curves_takes_plain_columns_and_draws_training_dashed() -> None:
    columns = {"epoch": [1, 2, 3], "train_loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.8, 0.9]}
    fig = plots.plot_curves(columns)
    (ax,) = fig.axes  # no accuracy in these columns: only the loss panel
    assert ax.get_title() == "loss"
    assert [(line.get_label(), line.get_linestyle()) for line in ax.lines] == [("train_loss", "--"), ("val_loss", "-")]
    assert list(ax.lines[1].get_ydata()) == [1.1, 0.8, 0.9]
    plt.close(fig)


def test_plot_curves_per_run_with_gap_and_best_epoch() -> None:
    runs = {"a": overfitting_history(), "b": overfitting_history()}
    fig = plots.plot_curves(runs, keys=["train_accuracy", "top1_acc"], per_run=True, gap=True, best_epoch=3)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    for ax in fig.axes:
        assert ax.collections and any("gap 0.30" in text.get_text() for text in ax.texts)
        assert ax.lines[-1].get_label() == "best epoch (3): restored"
    plt.close(fig)


def test_plot_curves_says_what_is_wrong() -> None:
    with pytest.raises(KeyError, match="top5_acc"):
        plots.plot_curves(overfitting_history(), keys=["top5_acc"])
    with pytest.raises(ValueError, match="empty"):
        plots.plot_curves(History())
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="2 panel"):
        plots.plot_curves(overfitting_history(), ax=ax)  # loss and accuracy: two panels, one Axes
    plt.close("all")
