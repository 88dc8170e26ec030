"""Every lesson notebook runs in the smoke profile, and its measured claim holds.

The notebooks run once per session through ``ldl.course.execute.execute_all`` (papermill), the same
code path as the instructor's ``make execute-all``; the tests then read the report.
(``pytest`` also collects the notebooks themselves with nbval in lax mode.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ldl.course.execute import execute_all
from tests.conftest import ROOT, samples_or_skip

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="session")
def smoke_report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    build = tmp_path_factory.mktemp("build")
    execute_all(NOTEBOOKS, profile="smoke", build_dir=build, cell_timeout=600, html=True)
    return json.loads((build / "report.json").read_text())


def test_there_are_lessons() -> None:
    assert NOTEBOOKS, "no notebooks/NN_*.ipynb found"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_smoke_profile(notebook: Path, smoke_report: dict) -> None:
    result = smoke_report["notebooks"][notebook.stem]
    assert result["status"] == "ok", f"{notebook.name} failed: {result['error']}"
    assert Path(result["output"]).exists() and Path(result["html"]).exists()
    assert result["metrics"], f"{notebook.name} recorded no lesson metric with ldl.course.report"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean(notebook: Path) -> None:
    cells = json.loads(notebook.read_text())["cells"]
    assert not any(c.get("outputs") or c.get("execution_count") for c in cells), "strip outputs before committing"
    parameters = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(parameters) == 1 and 'PROFILE = "auto"' in "".join(parameters[0]["source"])


def test_lesson0_scratch_cnn_overfits_on_real_photos(smoke_report: dict) -> None:
    samples_or_skip("cats_and_dogs_sample")
    metrics = smoke_report["notebooks"]["00_recap_cnn_from_scratch"]["metrics"]
    assert metrics["dataset"] == "cats_and_dogs_sample"
    assert metrics["train_val_gap"] == pytest.approx(metrics["train_acc"] - metrics["val_acc"])
    # The lesson's claim: the network memorises its training photos.
    assert metrics["train_val_gap"] >= 0.15, metrics
    assert metrics["val_acc"] > 0.55, "the network should still learn something that generalises"


def test_lesson1_augmentation_at_least_halves_the_gap(smoke_report: dict) -> None:
    samples_or_skip("cats_and_dogs_sample")
    metrics = smoke_report["notebooks"]["01_data_augmentation"]["metrics"]
    assert metrics["dataset"] == "cats_and_dogs_sample"
    # Same network, photos, seed and epochs: the plain run overfits ...
    assert metrics["gap_without_aug"] >= 0.15, metrics
    # ... and augmentation at least halves the train/validation gap.
    assert metrics["gap_with_aug"] <= 0.5 * metrics["gap_without_aug"], metrics


LESSON2_RUNS = ("none", "dropout", "bn", "bn_dropout", "weight_decay", "label_smoothing", "mixup")


def test_lesson2_regularisers_measured(smoke_report: dict) -> None:
    samples_or_skip("cats_and_dogs_sample")
    metrics = smoke_report["notebooks"]["02_dropout_batchnorm"]["metrics"]
    assert metrics["dataset"] == "cats_and_dogs_sample"
    for name in LESSON2_RUNS:
        assert 0.0 <= metrics[f"{name}_val_acc"] <= 1.0 and f"{name}_gap" in metrics
    # Batch norm trains faster: it reaches the plain network's final validation accuracy in at
    # most half the epochs, or ends at least 0.03 higher.
    bn_epochs = metrics["bn_epochs_to_plain_acc"]
    assert (0 < bn_epochs <= metrics["epochs"] / 2) or (
        metrics["bn_sgd_val_acc"] >= metrics["plain_sgd_val_acc"] + 0.03
    ), metrics
    # At least one regulariser cuts the baseline's train/validation gap by a third or more.
    regularised = [metrics[f"{name}_gap"] for name in ("dropout", "weight_decay", "label_smoothing", "mixup")]
    assert metrics["none_gap"] > 0.1, "the baseline should overfit"
    assert min(regularised) <= metrics["none_gap"] * 2 / 3, metrics
    # Early stopping gives back (nearly) the best model it saw.
    # It watches the validation loss, so what it must give back is the lowest-loss epoch's model:
    # the restored model scores exactly what that epoch scored (not the highest accuracy seen,
    # which can belong to another epoch).
    assert metrics["early_stopping_restored_val_loss"] == pytest.approx(metrics["early_stopping_best_val_loss"], abs=1e-4)
    assert metrics["early_stopping_restored_val_acc"] == pytest.approx(metrics["early_stopping_best_epoch_val_acc"], abs=1e-6)
    assert metrics["early_stopping_best_epoch_val_acc"] <= metrics["early_stopping_best_val_acc"]


def test_lesson3_vanishing_gradients_and_clipping(smoke_report: dict) -> None:
    samples_or_skip("cats_and_dogs_sample")
    metrics = smoke_report["notebooks"]["03_initialization_and_gradients"]["metrics"]
    assert metrics["depth"] >= 20
    # Sigmoid with a naive init: the first layer's gradient is at least 1,000 times smaller.
    assert metrics["grad_ratio_sigmoid_naive"] <= 1e-3, metrics
    # ReLU with He init: within 10 times (the median over 8 batches; one batch ranges from 1 to 20).
    assert 0.1 <= metrics["grad_ratio_relu_he"] <= 10, metrics
    # Clipping by norm: no step's gradient was longer than the clipping norm.
    assert metrics["max_norm_after_clip"] <= metrics["clip_norm"] * (1 + 1e-5), metrics


def test_lesson4_pretrained_features_beat_scratch_and_fine_tuning_keeps_them(smoke_report: dict) -> None:
    samples_or_skip("cats_and_dogs_sample")
    metrics = smoke_report["notebooks"]["04_transfer_learning"]["metrics"]
    # Frozen EfficientNet-Lite0 features + a linear head, on real photos, offline.
    assert metrics["features_val_acc"] >= 0.93, metrics
    # ... at least 0.15 above the scratch CNN, which got at least as much wall time.
    assert metrics["features_val_acc"] - metrics["scratch_val_acc"] >= 0.15, metrics
    assert metrics["features_seconds"] <= metrics["scratch_seconds"], metrics
    # Fine-tuning with differential learning rates loses at most 0.01 against the frozen base.
    assert metrics["finetune_val_acc"] >= metrics["frozen_val_acc"] - 0.01, metrics
    # The rate used lies within 10x of the LR finder's suggestion.
    assert metrics["lr_found"] / 10 <= metrics["lr_used"] <= metrics["lr_found"] * 10, metrics
    assert metrics["export_max_diff"] <= 1e-5, metrics
    assert metrics["onnx_max_diff"] <= 1e-4, metrics  # the dev extras install ONNX Runtime
    # The same recipe on another domain (the flowers sample, 5 classes: chance is 0.2) learns.
    assert metrics["also_efficientnet_lite0_on_flowers_sample_finetuned"] >= 0.45, metrics


LESSON5_MODELS = ("mobilenet_v3_large", "resnet50", "convnext_tiny", "swin_t", "vit_b_16")


def test_lesson5_front_end_attention_and_counts(smoke_report: dict) -> None:
    import torchvision

    metrics = smoke_report["notebooks"]["05_vit_vs_convnext"]["metrics"]
    # ViT's front end built by hand gives torchvision's tokens, and attention maps are distributions.
    assert metrics["vit_front_end_rel_diff"] <= 1e-5, metrics
    assert metrics["attention_sum_max_error"] <= 1e-4, metrics
    assert metrics["image_size"] == 224
    for name in LESSON5_MODELS:
        meta = torchvision.models.get_model_weights(name).DEFAULT.meta
        # The table's counts agree with torchvision's published figures within 2%.
        assert metrics[f"{name}_params"] == pytest.approx(meta["num_params"], rel=0.02), name
        assert metrics[f"{name}_macs"] / 1e9 == pytest.approx(meta["_ops"], rel=0.02), name
        assert metrics[f"{name}_images_per_s"] > 0, name
        assert metrics[f"{name}_shift_4px"] >= 0, name
    # MobileNetV3-Large is by far the cheapest of the five, ViT-B/16 the dearest: it shows in the speed.
    speeds = {name: metrics[f"{name}_images_per_s"] for name in LESSON5_MODELS}
    assert max(speeds, key=speeds.get) == "mobilenet_v3_large" and min(speeds, key=speeds.get) == "vit_b_16", speeds


def test_lesson5_fine_tuned_column_is_filled_with_real_accuracies(smoke_report: dict) -> None:
    samples_or_skip("cats_and_dogs_sample")
    metrics = smoke_report["notebooks"]["05_vit_vs_convnext"]["metrics"]
    finetuned = {name: value for name, value in metrics.items() if name.endswith("_finetuned_acc")}
    assert all(0.0 <= value <= 1.0 for value in finetuned.values()), finetuned
    # Offline, EfficientNet-Lite0 stands in (its weights ship with pip): lesson 4's recipe,
    # one epoch at 96 px, tells the sample's cats from its dogs (about 0.94 on 2 cores).
    assert metrics["efficientnet_lite0_finetuned_acc"] >= 0.85, finetuned


def test_a_lesson_runs_without_the_sample_photos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A fresh clone has no LDL_DATA. Lesson 4 asks for two sample sets, one of them
    # (flowers_sample) by name: both must fall back to generated shapes and say so.
    monkeypatch.setenv("LDL_DATA", str(tmp_path / "no-samples"))
    build = tmp_path / "build"
    notebook = ROOT / "notebooks" / "04_transfer_learning.ipynb"
    execute_all([notebook], profile="smoke", build_dir=build, cell_timeout=600, html=False)
    result = json.loads((build / "report.json").read_text())["notebooks"][notebook.stem]
    assert result["status"] == "ok", f"{notebook.name} failed without the sample photos: {result['error']}"
    executed = Path(result["output"]).read_text()
    for name in ("cats_and_dogs_sample", "flowers_sample"):
        assert f"set LDL_DATA to a folder holding {name}/" in executed, f"no word that {name} was replaced"
    assert "falls back to the generated 'synthetic' shapes" in executed
