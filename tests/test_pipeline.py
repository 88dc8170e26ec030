from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ldl.data import DatasetUnavailable, make_loaders
from ldl.profiles import get_profile


@pytest.fixture
def smoke(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("LDL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LDL_PROFILE", raising=False)
    return get_profile("smoke", image_size=48, batch_size=16, train_per_class=20, val_per_class=10)


def test_fast_and_per_sample_pipelines_give_the_same_images(cats_and_dogs_sample: Path, smoke) -> None:
    fast = make_loaders(smoke, fast=True, progress=False)
    slow = make_loaders(smoke, fast=False)
    assert fast.classes == slow.classes == ["cats", "dogs"]
    assert fast.dataset == "cats_and_dogs_sample"
    fast_x = torch.cat([x for x, _ in fast.val])
    slow_x = torch.cat([x for x, _ in slow.val])
    fast_y = torch.cat([y for _, y in fast.val])
    assert fast_x.shape == slow_x.shape == (20, 3, 48, 48)
    assert fast_y.tolist() == [0] * 10 + [1] * 10
    # Same photos, decoded at reduced scale (JPEG draft) vs full scale: close, not bit-equal.
    assert (fast_x - slow_x).abs().mean() < 0.1
    assert sum(len(y) for _, y in fast.train) == 40


def test_image_size_and_normalisation_can_be_chosen_per_network(cats_and_dogs_sample: Path, smoke) -> None:
    half = (0.5, 0.5, 0.5)
    for fast in (True, False):
        loaders = make_loaders(smoke, fast=fast, progress=False, image_size=40, mean=half, std=half)
        x, _ = next(iter(loaders.val))
        assert x.shape[-2:] == (40, 40) and loaders.image_size == 40
        assert loaders.mean == loaders.std == half
        # (pixel - 0.5) / 0.5 maps [0, 1] onto [-1, 1], and real photos use most of that range.
        assert x.min() >= -1.0 - 1e-6 and x.max() <= 1.0 + 1e-6
        assert x.min() < -0.9 and x.max() > 0.9


def test_smoke_without_samples_falls_back_to_synthetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, smoke) -> None:
    monkeypatch.setenv("LDL_DATA", str(tmp_path / "empty"))
    with pytest.warns(UserWarning, match="synthetic"):
        loaders = make_loaders(smoke, progress=False)
    assert loaders.dataset == "synthetic"
    x, y = next(iter(loaders.train))
    assert x.shape[1:] == (3, 48, 48) and len(loaders.classes) == 3


def test_other_profiles_say_how_to_get_the_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LDL_DATA", str(tmp_path / "empty"))
    monkeypatch.delenv("LDL_PROFILE", raising=False)
    with pytest.raises(DatasetUnavailable, match="LDL_DATA"):
        make_loaders(get_profile("cpu", dataset="cats_and_dogs_sample"))
