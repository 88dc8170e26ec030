from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ldl.data import DatasetUnavailable, make_loaders
from ldl.profiles import get_profile, override


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
    # The smoke profile sets half of the held-out photos aside for test: 5 + 5 of 10 + 10.
    for part in ("val", "test"):
        fast_x = torch.cat([x for x, _ in getattr(fast, part)])
        slow_x = torch.cat([x for x, _ in getattr(slow, part)])
        fast_y = torch.cat([y for _, y in getattr(fast, part)])
        assert fast_x.shape == slow_x.shape == (10, 3, 48, 48), part
        assert fast_y.tolist() == [0] * 5 + [1] * 5, part
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


def test_smoke_falls_back_for_a_named_sample_set_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, smoke) -> None:
    # Lesson 4 asks for flowers_sample by name for its second dataset: without the sample
    # photos it must fall back like the profile's own dataset, not stop the notebook.
    monkeypatch.setenv("LDL_DATA", str(tmp_path / "empty"))
    with pytest.warns(UserWarning, match="flowers_sample.*synthetic|synthetic.*flowers_sample"):
        loaders = make_loaders(smoke, dataset="flowers_sample", progress=False)
    assert loaders.dataset == "synthetic"


def test_a_profile_without_the_fallback_fails_on_a_missing_sample(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, smoke
) -> None:
    # The fallback is the profile's setting, not its name: smoke with it off fails like cpu.
    monkeypatch.setenv("LDL_DATA", str(tmp_path / "empty"))
    strict = override(smoke, falls_back_to_synthetic=False)
    assert strict.name == "smoke"
    with pytest.raises(DatasetUnavailable, match="LDL_DATA"):
        make_loaders(strict, progress=False)


def _own_folder(root: Path, classes: tuple[str, ...] = ("apples", "pears"), per_class: int = 4) -> Path:
    """A folder of one's own photos in the train|validation/<class>/ layout."""
    from PIL import Image

    for split in ("train", "validation"):
        for label, name in enumerate(classes):
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                colour = (200 * label, 40 * i, 100)
                Image.new("RGB", (32, 24), colour).save(root / split / name / f"{i}.jpg")
    return root


def test_ldl_dataset_runs_a_profile_on_ones_own_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder = _own_folder(tmp_path / "my photos")
    monkeypatch.setenv("LDL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LDL_DATASET", str(folder))
    monkeypatch.delenv("LDL_PROFILE", raising=False)
    profile = get_profile("cpu", image_size=16, batch_size=4, num_workers=0)
    assert profile.data.dataset == str(folder.resolve())
    loaders = make_loaders(profile, progress=False)
    assert loaders.dataset == str(folder.resolve()) and loaders.classes == ["apples", "pears"]
    assert sum(len(y) for _, y in loaders.train) == 8
    # The held-out photos, split into validation and test halves.
    assert sum(len(y) for _, y in loaders.val) == sum(len(y) for _, y in loaders.test) == 4


def test_a_wrong_ldl_dataset_folder_is_an_error_that_names_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = tmp_path / "no such folder"
    monkeypatch.setenv("LDL_DATASET", str(missing))
    monkeypatch.delenv("LDL_PROFILE", raising=False)
    # Not even the smoke profile falls back: the user asked for these photos by name.
    for name in ("smoke", "cpu"):
        with pytest.raises(DatasetUnavailable, match="LDL_DATASET") as error:
            make_loaders(get_profile(name), progress=False)
        assert str(missing) in str(error.value) and "validation/<class>" in str(error.value)
