"""The side-by-side comparison: counts checked against torchvision, rows filled from the measurer."""

from __future__ import annotations

import pytest
import torch
import torchvision
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from ldl import plots
from ldl.measure import bench, compare
from ldl.measure.bench import Throughput
from ldl.measure.compare import (
    TABLE_COLUMNS,
    ModelRow,
    check_against_published,
    compare_models,
    comparison_table,
    published_figures,
    rows_for_plot,
)
from ldl.models import backbone_spec, create_backbone

SMALL = ["mobilenet_v3_small", "resnet18"]


@pytest.mark.parametrize("name", ["resnet50", "convnext_tiny", "vit_b_16", "swin_t", "mobilenet_v3_large"])
def test_counted_params_and_macs_agree_with_torchvision_published_figures(name: str) -> None:
    model = create_backbone(name, pretrained=False)
    params = bench.count_parameters(model)
    assert params == sum(p.numel() for p in model.parameters())
    row = ModelRow(name=name, params=params, macs=bench.count_macs(model, 224), imagenet_top1=None,
                   inference_images_per_s=1.0, image_size=224)
    check = check_against_published([row])[name]
    published_params, published_gmacs = published_figures(name)
    assert check.params_rel_diff == pytest.approx((params - published_params) / published_params)
    assert check.macs_rel_diff == pytest.approx((row.macs / 1e9 - published_gmacs) / published_gmacs)
    assert check.agrees, str(check)
    assert "agrees with torchvision's published figures within 2 %" in str(check)


def test_published_figures_come_from_the_weights_metadata() -> None:
    meta = torchvision.models.get_model_weights("swin_t").DEFAULT.meta
    assert published_figures("swin_t") == (meta["num_params"], meta["_ops"])


class FakeMeasurer:
    """Stands in for bench.measure_throughput: fixed speeds, a record of each call, no timing."""

    def __init__(self, training_error: BaseException | None = None) -> None:
        self.calls: list[dict[str, object]] = []
        self.training_error = training_error

    def __call__(self, model: torch.nn.Module, *, image_size: int, batch_size: int, train: bool = False,
                 **settings: object) -> Throughput:
        self.calls.append({"model": type(model).__name__, "image_size": image_size, "batch_size": batch_size,
                           "train": train, **settings})
        if train and self.training_error is not None:
            raise self.training_error
        speed, peak = (40.0, 300.0) if train else (100.0 * batch_size, 120.0)
        return Throughput(images_per_s=speed, seconds_per_batch=[batch_size / speed], batch_size=batch_size,
                          image_size=image_size, device="cpu", mode="training" if train else "inference",
                          peak_memory_mb=peak)


def test_compare_models_fills_each_row_from_counts_spec_and_measurer(monkeypatch: pytest.MonkeyPatch) -> None:
    measurer = FakeMeasurer()
    monkeypatch.setattr(bench, "measure_throughput", measurer)
    rows = compare_models(SMALL, image_size=64, batch_size=4, train_batch_size=2, repeats=1, warmup=0,
                          mixed_precision=True, channels_last=True, finetuned_acc={"resnet18": 0.9}, progress=False)
    assert [row.name for row in rows] == SMALL
    for row in rows:
        spec = backbone_spec(row.name)
        fresh = create_backbone(row.name, pretrained=False)
        assert row.params == spec.num_params
        assert row.macs == bench.count_macs(fresh, 64)
        assert row.imagenet_top1 == spec.imagenet_top1 and row.image_size == 64
        assert row.inference_images_per_s == 400.0 and row.training_images_per_s == 40.0
        assert row.peak_memory_mb == 300.0  # the larger of the two measurements
    assert rows[0].finetuned_acc is None and rows[1].finetuned_acc == 0.9
    # One inference and one training measurement per network, with the settings asked for.
    assert [(call["model"], call["train"], call["batch_size"]) for call in measurer.calls] == [
        ("MobileNetV3", False, 4), ("MobileNetV3", True, 2), ("ResNet", False, 4), ("ResNet", True, 2)]
    assert all(call["image_size"] == 64 and call["mixed_precision"] and call["channels_last"]
               and call["repeats"] == 1 and call["warmup"] == 0 for call in measurer.calls)


def test_training_speed_is_skipped_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    measurer = FakeMeasurer()
    monkeypatch.setattr(bench, "measure_throughput", measurer)
    (row,) = compare_models(["mobilenet_v3_small"], image_size=32, batch_size=2, progress=False)
    assert row.training_images_per_s is None and row.peak_memory_mb == 120.0
    assert [call["train"] for call in measurer.calls] == [False]


def test_out_of_memory_in_training_keeps_the_other_measurements(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "measure_throughput", FakeMeasurer(torch.OutOfMemoryError("CUDA out of memory")))
    with pytest.warns(UserWarning, match="smaller train_batch_size"):
        rows = compare_models(SMALL, image_size=32, batch_size=2, train_batch_size=64, progress=False)
    assert [row.name for row in rows] == SMALL
    assert all(row.training_images_per_s is None and row.inference_images_per_s == 200.0 for row in rows)


def test_bad_requests_fail_before_anything_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("built a network for a request that should have been refused")

    monkeypatch.setattr(compare, "create_backbone", must_not_build)
    with pytest.raises(ValueError, match="image_size=224"):
        compare_models(["resnet18", "vit_b_16"], image_size=64, progress=False)
    with pytest.raises(ValueError, match="Unknown backbone"):
        compare_models(["resnet18", "resnet1000"], image_size=64, progress=False)
    with pytest.raises(ValueError, match="not compared"):
        compare_models(["resnet18"], image_size=64, progress=False, finetuned_acc={"vgg19": 0.8})
    with pytest.raises(ValueError, match="names is empty"):
        compare_models([], image_size=64, progress=False)


def example_rows() -> list[ModelRow]:
    return [
        ModelRow("resnet50", params=25_557_032, macs=4_089_184_256, imagenet_top1=76.13,
                 inference_images_per_s=30.5, training_images_per_s=9.0, peak_memory_mb=None, image_size=224),
        ModelRow("vit_b_16", params=86_567_656, macs=17_563_828_224, imagenet_top1=81.07,
                 inference_images_per_s=6.2, finetuned_acc=0.95, image_size=224),
    ]


def test_comparison_table_has_the_lesson_columns_and_one_row_per_network() -> None:
    table = comparison_table(example_rows())
    assert table.columns == TABLE_COLUMNS
    assert [name for name, _ in table.rows] == ["resnet50", "vit_b_16"]
    vit = table.row("vit_b_16")
    assert vit["params (M)"] == pytest.approx(86.567656) and vit["GMACs"] == pytest.approx(17.563828224)
    assert vit["images/s (training)"] is None and vit["fine-tuned acc"] == 0.95
    markdown = table.markdown()
    assert "| model | params (M) | GMACs |" in markdown
    assert "| vit_b_16 | 86.568 | 17.564 | 81.070 | 6.200 | - | - | 0.950 |" in markdown


def test_plot_rows_feed_the_accuracy_vs_speed_chart() -> None:
    rows = example_rows()
    plotted = rows_for_plot(rows)
    assert plotted[0] == {"name": "resnet50", "top1": 76.13, "images_per_s": 30.5, "params": 25_557_032}
    assert [row["name"] for row in rows_for_plot(rows, speed="training")] == ["resnet50"]  # ViT not measured
    figure = plots.plot_accuracy_vs_speed(plotted)
    assert isinstance(figure, Figure)
    plt.close(figure)
    with pytest.raises(ValueError, match="inference"):
        rows_for_plot(rows, speed="fastest")


def test_published_check_skips_macs_off_224_and_flags_disagreement() -> None:
    small = ModelRow("resnet50", params=25_557_032, macs=1_000, imagenet_top1=76.13, inference_images_per_s=1.0,
                     image_size=112)
    wrong = ModelRow("vit_b_16", params=80_000_000, macs=17_563_828_224, imagenet_top1=81.07,
                     inference_images_per_s=1.0, image_size=224)
    checks = check_against_published([small, wrong], tolerance=0.01)
    assert checks["resnet50"].macs_rel_diff is None and checks["resnet50"].agrees
    assert checks["vit_b_16"].params_rel_diff == pytest.approx(80_000_000 / 86_567_656 - 1)
    assert not checks["vit_b_16"].agrees and "DISAGREES" in str(checks["vit_b_16"])
