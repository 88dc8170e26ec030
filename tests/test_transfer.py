"""Lesson 4's recipe as one function: it learns real photos, picks a sane rate, fails early and clearly."""

from __future__ import annotations

import math
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

import ldl.recipes.transfer
from ldl.course.exercises import check_differential_lrs
from ldl.measure.features import FeatureSet, extract_features
from ldl.models import WeightsUnavailable
from ldl.profiles import get_profile
from ldl.train import LRFinderResult, Trainer, lr_find
from ldl.recipes.transfer import LR_FIND_END, LR_FIND_START, TransferResult, default_augment, find_head_lr, transfer_recipe
from tests.conftest import samples_or_skip


@pytest.fixture(scope="module")
def sample_run() -> tuple[TransferResult, list[LRFinderResult]]:
    """EfficientNet-Lite0 on the whole cats-and-dogs sample (800 + 300 photos) at 96 px, one epoch.

    The rate comes from the LR range test; the sweeps it ran are kept to check the choice.
    """
    samples_or_skip("cats_and_dogs_sample")
    sweeps: list[LRFinderResult] = []

    def spy(*args: object, **kwargs: object) -> LRFinderResult:
        sweeps.append(lr_find(*args, **kwargs))
        return sweeps[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ldl.recipes.transfer, "lr_find", spy)
        result = transfer_recipe("efficientnet_lite0", get_profile("smoke"), image_size=96, epochs=1,
                                 augment=default_augment())
    return result, sweeps


def test_recipe_learns_the_sample_photos_and_fine_tuning_keeps_it(sample_run) -> None:
    result, _ = sample_run
    assert result.backbone == "efficientnet_lite0" and result.dataset == "cats_and_dogs_sample"
    assert result.classes == ["cats", "dogs"]
    # ImageNet features separate cats from dogs with a linear head alone ...
    assert result.head_acc >= 0.85, result
    # ... and fine-tuning under that head, with low differential rates, does not undo it.
    assert result.finetuned_acc >= result.head_acc - 0.03, result
    assert result.seconds > 0
    assert "fine-tuned" in str(result) and "efficientnet_lite0" in str(result)


def test_the_head_rate_comes_from_the_range_test_and_is_recorded(sample_run) -> None:
    result, sweeps = sample_run
    assert len(sweeps) == 1, "one LR range test, on the saved features"
    sweep = sweeps[0]
    assert math.isfinite(result.head_lr) and LR_FIND_START <= result.head_lr <= LR_FIND_END
    # Between a hundredth and a tenth of the rate at the lowest loss, at the steepest point when it lies there.
    assert sweep.min_loss_lr / 100 <= result.head_lr <= sweep.min_loss_lr / 10 * (1 + 1e-9), (result.head_lr, sweep)


def _features(n_per_class: int = 200, dim: int = 32, seed: int = 0) -> FeatureSet:
    """Two Gaussian clouds of saved "features" ``(2n, dim)``, well apart: a linear head can separate them.

    The centres depend only on ``dim``, so two seeds give two samples of the same classes.
    """
    centres = torch.randn(2, dim, generator=torch.Generator().manual_seed(dim)) * 2
    labels = torch.arange(2).repeat_interleave(n_per_class)
    noise = torch.randn(2 * n_per_class, dim, generator=torch.Generator().manual_seed(seed))
    return FeatureSet(features=centres[labels] + noise, labels=labels, classes=["a", "b"])


def _sweep(suggestion: float, min_loss_lr: float) -> LRFinderResult:
    return LRFinderResult(lrs=[1e-6, 1.0], losses=[0.7, 0.6], smoothed=[0.7, 0.6], suggestion=suggestion,
                          min_loss_lr=min_loss_lr, stopped_early=False)


@pytest.mark.parametrize(
    ("suggestion", "expected"),
    [
        (3e-4, 3e-4),  # the steepest point, below the cap: taken
        (5e-2, 1e-3),  # above a tenth of the lowest-loss rate: capped
        (1e-5, 1e-3),  # a wiggle on the flat start, 100x below the cap: the cap instead
        (math.nan, 1e-3),  # a sweep too short for a steepest point
    ],
)
def test_find_head_lr_rule(monkeypatch: pytest.MonkeyPatch, suggestion: float, expected: float) -> None:
    monkeypatch.setattr(ldl.recipes.transfer, "lr_find", lambda *args, **kwargs: _sweep(suggestion, min_loss_lr=1e-2))
    rate = find_head_lr(nn.Linear(32, 2), _features(), batch_size=32)
    assert rate == pytest.approx(expected)


def test_find_head_lr_without_a_finite_loss_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ldl.recipes.transfer, "lr_find", lambda *args, **kwargs: _sweep(math.nan, min_loss_lr=math.nan))
    with pytest.raises(RuntimeError, match="head_lr="):
        find_head_lr(nn.Linear(32, 2), _features(), batch_size=32)


def test_the_rate_found_trains_a_head_on_separable_features() -> None:
    torch.manual_seed(0)
    train, val = _features(seed=1), _features(seed=2)
    head = nn.Linear(train.dim, 2)
    before = [p.detach().clone() for p in head.parameters()]
    rate = find_head_lr(head, train, batch_size=32)
    assert math.isfinite(rate) and LR_FIND_START <= rate <= LR_FIND_END
    assert all(torch.equal(a, b) for a, b in zip(before, head.parameters())), "the range test leaves the head as it was"
    history = Trainer(head, optimizer=torch.optim.AdamW(head.parameters(), lr=rate), device="cpu", progress=False,
                      verbose=False).fit(train.loader(batch_size=32, shuffle=True), val.loader(), epochs=5)
    assert history.epochs[-1]["top1_acc"] >= 0.95


@pytest.fixture
def synthetic_smoke(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The smoke profile on generated shapes (3 classes, 60 + 20 per class), in a fresh data folder."""
    monkeypatch.setenv("LDL_DATA", str(tmp_path / "data"))
    return get_profile("smoke", dataset="synthetic")


def test_a_given_head_rate_skips_the_range_test_and_runs_are_repeatable(
    monkeypatch: pytest.MonkeyPatch, synthetic_smoke
) -> None:
    def no_sweep(*args: object, **kwargs: object) -> None:
        raise AssertionError("head_lr was given: no LR range test should run")

    monkeypatch.setattr(ldl.recipes.transfer, "lr_find", no_sweep)
    runs = [transfer_recipe("efficientnet_lite0", synthetic_smoke, image_size=32, epochs=1, head_epochs=3,
                            head_lr=2e-3, seed=1) for _ in range(2)]
    first, second = runs
    assert first.head_lr == 2e-3
    assert first.dataset == "synthetic" and first.classes == ["circle", "square", "triangle"]
    assert 0.0 <= first.head_acc <= 1.0 and 0.0 <= first.finetuned_acc <= 1.0
    # Same seed, same photos: the same head and the same fine-tuning, to the last digit.
    assert (first.head_acc, first.finetuned_acc) == (second.head_acc, second.finetuned_acc)


def test_seeds_reuse_the_features_and_each_seed_runs_as_it_would_alone(
    monkeypatch: pytest.MonkeyPatch, synthetic_smoke
) -> None:
    extractions: list[int] = []

    def counted(*args: object, **kwargs: object) -> FeatureSet:
        extractions.append(1)
        return extract_features(*args, **kwargs)

    monkeypatch.setattr(ldl.recipes.transfer, "extract_features", counted)
    options = dict(image_size=32, epochs=1, head_epochs=3, head_lr=2e-3)
    alone = transfer_recipe("efficientnet_lite0", synthetic_smoke, seed=1, **options)
    extractions.clear()
    both = transfer_recipe("efficientnet_lite0", synthetic_smoke, seeds=[1, 2], **options)
    assert len(extractions) == 3, "train, validation and test features, once for every seed"
    assert alone.seeds == [1] and both.seeds == [1, 2]
    keys = {"head_acc", "finetuned_acc", "head_test_acc", "finetuned_test_acc"}
    assert set(both.per_seed) == keys and all(len(values) == 2 for values in both.per_seed.values())
    # Seed 1's head and fine-tuning do not depend on the seeds after it: paired across recipes.
    assert {key: both.per_seed[key][0] for key in keys} == {key: alone.per_seed[key][0] for key in keys}
    assert both.head_acc == pytest.approx(sum(both.per_seed["head_acc"]) / 2)
    assert both.finetuned_test_acc == pytest.approx(sum(both.per_seed["finetuned_test_acc"]) / 2)
    assert "2 seeds" in str(both) and "test:" in str(both)


def test_the_differential_rates_exercise_starts_from_a_tenth_of_the_head_rate(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_differential_lrs([3e-6, 3e-5, 3e-4], head_lr=3e-3, factor=10, n_groups=3)
    # The head's own rate as the fine-tuning peak is what the lesson advises against.
    capsys.readouterr()
    assert not check_differential_lrs([3e-5, 3e-4, 3e-3], head_lr=3e-3, factor=10, n_groups=3)
    assert "a tenth" in capsys.readouterr().out


@pytest.fixture
def no_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to load photos fails the test: errors must come before that work."""
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("photos were loaded before the arguments were checked")

    monkeypatch.setattr(ldl.recipes.transfer, "make_loaders", fail)


def test_unknown_backbone_or_impossible_size_is_refused_first(no_data: None) -> None:
    smoke = get_profile("smoke")
    with pytest.raises(ValueError, match="Known backbones:.*efficientnet_lite0"):
        transfer_recipe("efficientnet_lite1", smoke)
    with pytest.raises(ValueError, match="224"):
        transfer_recipe("vit_b_16", smoke, image_size=128)
    with pytest.raises(ValueError, match="head_lr"):
        transfer_recipe("efficientnet_lite0", smoke, head_lr=0.0)
    for seeds in ([], [1, 1]):
        with pytest.raises(ValueError, match="seeds"):
            transfer_recipe("efficientnet_lite0", smoke, seeds=seeds)


@pytest.fixture
def empty_hub_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """An empty torch hub cache, and every download failing as it does offline."""
    asked: list[str] = []

    def fail(url: str, *args: object, **kwargs: object) -> None:
        asked.append(url)
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(torch.hub, "download_url_to_file", fail)
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield asked
    torch.hub.set_dir(previous)


def test_missing_weights_fail_before_any_photo_is_loaded(empty_hub_offline: list[str], no_data: None) -> None:
    with pytest.raises(WeightsUnavailable) as caught:
        transfer_recipe("mobilenet_v3_small", get_profile("smoke"))
    assert empty_hub_offline, "the download was tried"
    assert 'create_backbone("efficientnet_lite0")' in str(caught.value), "the message offers the offline network"
