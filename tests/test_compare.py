"""The side-by-side comparison: counts checked against torchvision, rows filled from the measurer."""

from __future__ import annotations

import statistics

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
    relative_speeds,
    rows_for_plot,
    set_finetuned,
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
    """Stands in for bench.measure_throughput and bench.interleaved_throughput: fixed speeds, a record of each call.

    Inference takes 1/100 s per batch; a training step 1/40 s per image. ``training_error`` is
    raised by the training calls (of the networks named in ``fail``; all of them by default).
    """

    def __init__(self, training_error: BaseException | None = None, fail: tuple[str, ...] | None = None) -> None:
        self.calls: list[dict[str, object]] = []
        self.training_error, self.fail = training_error, fail

    def _result(self, image_size: int, batch_size: int, train: bool, repeats: int) -> Throughput:
        speed, peak = (40.0, 300.0) if train else (100.0 * batch_size, 120.0)
        return Throughput(images_per_s=speed, seconds_per_batch=[batch_size / speed] * repeats, batch_size=batch_size,
                          image_size=image_size, device="cpu", mode="training" if train else "inference",
                          peak_memory_mb=peak)

    def _raise(self, names: list[str], train: bool) -> None:
        if train and self.training_error is not None and (self.fail is None or set(names) & set(self.fail)):
            raise self.training_error

    def __call__(self, model: torch.nn.Module, *, image_size: int, batch_size: int, train: bool = False,
                 repeats: int = 5, **settings: object) -> Throughput:
        self.calls.append({"models": [type(model).__name__], "image_size": image_size, "batch_size": batch_size,
                           "train": train, "repeats": repeats, "threads": torch.get_num_threads(), **settings})
        self._raise([type(model).__name__], train)
        return self._result(image_size, batch_size, train, repeats)

    def interleaved(self, models: dict[str, torch.nn.Module], *, image_size: int, batch_size: int,
                    train: bool = False, repeats: int = 5, **settings: object) -> dict[str, Throughput]:
        self.calls.append({"models": list(models), "image_size": image_size, "batch_size": batch_size,
                           "train": train, "repeats": repeats, "threads": torch.get_num_threads(), **settings})
        self._raise([type(model).__name__ for model in models.values()], train)
        return {name: self._result(image_size, batch_size, train, repeats) for name in models}


def fake_measurer(monkeypatch: pytest.MonkeyPatch, measurer: FakeMeasurer) -> FakeMeasurer:
    monkeypatch.setattr(bench, "measure_throughput", measurer)
    monkeypatch.setattr(bench, "interleaved_throughput", measurer.interleaved)
    return measurer


def test_compare_models_fills_each_row_from_counts_spec_and_measurer(monkeypatch: pytest.MonkeyPatch) -> None:
    measurer = fake_measurer(monkeypatch, FakeMeasurer())
    rows = compare_models(SMALL, image_size=64, batch_size=4, train_batch_size=2, repeats=5, train_repeats=2,
                          warmup=0, mixed_precision=True, channels_last=True, finetuned_acc={"resnet18": 0.9},
                          progress=False)
    assert [row.name for row in rows] == SMALL
    for row in rows:
        spec = backbone_spec(row.name)
        fresh = create_backbone(row.name, pretrained=False)
        assert row.params == spec.num_params
        assert row.macs == bench.count_macs(fresh, 64)
        assert row.imagenet_top1 == spec.imagenet_top1 and row.image_size == 64
        assert row.inference_images_per_s == 400.0 and row.training_images_per_s == 40.0
        assert row.inference_seconds == [0.01] * 5 and row.training_seconds == [0.05] * 2
        assert row.peak_memory_mb == 300.0  # the larger of the two measurements
        assert not row.training_interleaved  # on a CPU: one network at a time
    assert rows[0].finetuned_acc is None and rows[1].finetuned_acc == 0.9 and rows[1].finetuned_seeds == 1
    # On a CPU each network's training is timed alone as it is built, the largest (ResNet-18)
    # first; then one interleaved inference measurement of all, in the order asked for.
    assert [(call["models"], call["train"], call["batch_size"], call["repeats"]) for call in measurer.calls] == [
        (["ResNet"], True, 2, 2), (["MobileNetV3"], True, 2, 2), (SMALL, False, 4, 5)]
    assert all(call["image_size"] == 64 and call["mixed_precision"] and call["channels_last"]
               and call["warmup"] == 0 for call in measurer.calls)


def test_training_is_interleaved_when_asked_and_then_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    measurer = fake_measurer(monkeypatch, FakeMeasurer())
    rows = compare_models(SMALL, image_size=32, batch_size=2, train_batch_size=2, repeats=3,
                          interleave_training=True, progress=False)
    assert [(call["models"], call["train"]) for call in measurer.calls] == [(SMALL, False), (SMALL, True)]
    assert all(row.training_interleaved for row in rows)
    assert relative_speeds(rows, "resnet18", mode="training")["mobilenet_v3_small"].median == pytest.approx(1.0)
    # Timed one at a time, training speeds are not paired, and relative_speeds says so.
    fake_measurer(monkeypatch, FakeMeasurer())
    alone = compare_models(SMALL, image_size=32, batch_size=2, train_batch_size=2, repeats=3, progress=False)
    with pytest.raises(ValueError, match="one network at a time"):
        relative_speeds(alone, "resnet18", mode="training")


def test_threads_apply_to_every_timing_and_are_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    measurer = fake_measurer(monkeypatch, FakeMeasurer())
    compare_models(SMALL, image_size=32, batch_size=2, train_batch_size=2, threads=1, progress=False)
    assert [call["threads"] for call in measurer.calls] == [1, 1, 1]  # two trainings alone, one interleaved inference
    assert torch.get_num_threads() == before


def test_training_speed_is_skipped_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    measurer = fake_measurer(monkeypatch, FakeMeasurer())
    (row,) = compare_models(["mobilenet_v3_small"], image_size=32, batch_size=2, progress=False)
    assert row.training_images_per_s is None and row.peak_memory_mb == 120.0 and row.training_seconds is None
    assert [call["train"] for call in measurer.calls] == [False]


def test_out_of_memory_in_training_keeps_the_other_measurements(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_measurer(monkeypatch, FakeMeasurer(torch.OutOfMemoryError("CUDA out of memory")))
    with pytest.warns(UserWarning, match="smaller train_batch_size"):
        rows = compare_models(SMALL, image_size=32, batch_size=2, train_batch_size=64, progress=False)
    assert [row.name for row in rows] == SMALL
    assert all(row.training_images_per_s is None and row.inference_images_per_s == 200.0 for row in rows)


def test_when_interleaved_training_does_not_fit_each_network_is_tried_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    # Together they run out of memory; alone only ResNet-18 does: MobileNet keeps its speed.
    measurer = fake_measurer(monkeypatch, FakeMeasurer(torch.OutOfMemoryError("CUDA out of memory"), fail=("ResNet",)))
    with pytest.warns(UserWarning, match="resnet18: out of GPU memory"):
        rows = compare_models(SMALL, image_size=32, batch_size=2, train_batch_size=64, interleave_training=True,
                              progress=False)
    assert [call["models"] for call in measurer.calls if call["train"]] == [SMALL, ["MobileNetV3"], ["ResNet"]]
    assert rows[0].training_images_per_s == 40.0 and rows[1].training_images_per_s is None
    assert not any(row.training_interleaved for row in rows)


def timed_row(name: str, inference_seconds: list[float]) -> ModelRow:
    return ModelRow(name, params=1, macs=1, imagenet_top1=70.0, inference_images_per_s=2 / statistics.median(
        inference_seconds), image_size=224, inference_seconds=inference_seconds)


def test_relative_speeds_pair_the_rounds_and_read_their_middle_half() -> None:
    # Round 2 was a slow spell for both: the paired ratio barely moves. In round 4 MobileNet
    # alone stalled (a busy CPU): that one ratio strays past 1, the middle half does not.
    rows = [timed_row("mobilenet_v3_large", [0.1, 0.1, 0.5, 0.1, 2.0]),
            timed_row("vit_b_16", [1.0, 1.25, 5.0, 0.8, 1.0]),
            timed_row("resnet50", [0.12, 0.08, 0.55, 0.11, 1.5])]
    speeds = relative_speeds(rows, "mobilenet_v3_large")
    vit = speeds["vit_b_16"]
    assert vit.median == pytest.approx(0.1) and (vit.q1, vit.q3) == pytest.approx((0.1, 0.125))
    assert (vit.low, vit.high) == pytest.approx((0.08, 2.0)) and vit.rounds == 5
    assert vit.faster is False and "slower" in str(vit) and "all 0.08–2" in str(vit)
    assert vit.cell() == "0.1 (0.1–0.125)"
    close = speeds["resnet50"]  # 0.83, 1.25, 0.91, 0.91, 1.33: the middle half includes 1
    assert close.q1 < 1 < close.q3 and close.faster is None and "not ranked" in str(close)
    assert speeds["mobilenet_v3_large"].median == 1.0
    with pytest.raises(ValueError, match="reference"):
        relative_speeds(rows, "swin_t")
    with pytest.raises(ValueError, match="one compare_models call"):
        relative_speeds([*rows, timed_row("swin_t", [0.3, 0.3])], "mobilenet_v3_large")


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
    with pytest.raises(ValueError, match="more than once"):
        compare_models(["resnet18", "resnet18"], image_size=64, progress=False)


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


def test_the_table_shows_speed_ratios_with_their_range_and_fine_tuning_as_mean_sd() -> None:
    rows = [timed_row("mobilenet_v3_large", [0.1] * 5), timed_row("vit_b_16", [1.0, 0.8, 1.25, 0.4, 2.0])]
    set_finetuned(rows, {"vit_b_16": [0.90, 0.92, 0.94]})
    table = comparison_table(rows, reference="mobilenet_v3_large")
    ratio = "images/s vs mobilenet_v3_large (IQR)"
    assert table.columns[table.columns.index("images/s (inference)") + 1] == ratio
    assert table.row("vit_b_16")[ratio] == "0.1 (0.08–0.125)"
    assert table.row("vit_b_16")["fine-tuned acc"] == "0.920 ± 0.020 (3 seeds)"
    assert table.row("mobilenet_v3_large")["fine-tuned acc"] is None and rows[0].finetuned_seeds == 0
    set_finetuned(rows, {"vit_b_16": [0.9]})  # one seed: a plain number, no spread to show
    assert rows[1].finetuned_acc == 0.9 and rows[1].finetuned_acc_sd is None
    assert comparison_table(rows).row("vit_b_16")["fine-tuned acc"] == 0.9


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
    # With its rounds kept, a point carries the middle half of the rounds' images/s, drawn as a bar.
    (timed,) = rows_for_plot([timed_row("vit_b_16", [1.0, 0.5, 2.0, 1.0, 20.0])])
    assert timed["images_per_s"] == pytest.approx(2.0) and timed["images_per_s_iqr"] == pytest.approx((1.0, 2.0))
    figure = plots.plot_accuracy_vs_speed([timed])
    assert len(figure.axes[0].collections) == 2  # the marker and its bar
    plt.close(figure)


def test_published_check_skips_macs_off_224_and_flags_disagreement() -> None:
    small = ModelRow("resnet50", params=25_557_032, macs=1_000, imagenet_top1=76.13, inference_images_per_s=1.0,
                     image_size=112)
    wrong = ModelRow("vit_b_16", params=80_000_000, macs=17_563_828_224, imagenet_top1=81.07,
                     inference_images_per_s=1.0, image_size=224)
    checks = check_against_published([small, wrong], tolerance=0.01)
    assert checks["resnet50"].macs_rel_diff is None and checks["resnet50"].agrees
    assert checks["vit_b_16"].params_rel_diff == pytest.approx(80_000_000 / 86_567_656 - 1)
    assert not checks["vit_b_16"].agrees and "DISAGREES" in str(checks["vit_b_16"])
