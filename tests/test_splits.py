"""The validation / test split of the held-out photos, and the fixed training subset.

The loader tests use small generated folders of solid-colour PNG photos: each photo's colour
is its number, so a batch says exactly which photos it holds (PNG is lossless and an 8 px
photo at 8 px is not resized).
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

import ldl.data.cache
from ldl.data import ImageIndex, build_tensor_cache, index_image_folder, make_loaders, split_held_out
from ldl.data.splits import stratified_subset
from ldl.profiles import PROFILES, get_profile

SIZE = 8
# Validation photos are numbered from here, so that no training photo has the same colour.
HELD_OUT_START = 1000
PLAIN = dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))  # batches in [0, 1]: x * 255 is the pixel


# --- split_held_out on plain indexes (the files need not exist) --------------------------


def make_index(counts: dict[str, int], root: Path = Path("/data/pets/validation")) -> ImageIndex:
    """``counts[name]`` files per class, ``root/<name>/<name>_<i>.jpg``, sorted as an indexer lists them."""
    classes = sorted(counts)
    samples = [
        (root / name / f"{name}_{i:03d}.jpg", label)
        for label, name in enumerate(classes)
        for i in range(counts[name])
    ]
    return ImageIndex(samples, classes, root)


def per_class(index: ImageIndex) -> dict[str, int]:
    return index.counts()


def names(index: ImageIndex) -> set[str]:
    return {path.name for path, _ in index.samples}


def test_each_class_is_split_in_the_same_proportion() -> None:
    val, test = split_held_out(make_index({"cats": 10, "dogs": 6}), test_fraction=0.5)
    assert per_class(val) == per_class(test) == {"cats": 5, "dogs": 3}
    val, test = split_held_out(make_index({"cats": 20, "dogs": 8}), test_fraction=0.25)
    assert per_class(test) == {"cats": 5, "dogs": 2}
    assert per_class(val) == {"cats": 15, "dogs": 6}


def test_the_parts_are_disjoint_and_together_the_whole() -> None:
    index = make_index({"cats": 13, "dogs": 7, "fish": 4})
    val, test = split_held_out(index, test_fraction=0.3)
    assert set(val.samples).isdisjoint(test.samples)
    assert sorted(val.samples + test.samples) == sorted(index.samples)
    assert val.classes == test.classes == index.classes and val.root == test.root == index.root
    # Each part keeps the index's order.
    assert val.samples == [sample for sample in index.samples if sample in set(val.samples)]


def test_the_split_is_deterministic_and_ignores_the_order_of_the_index() -> None:
    index = make_index({"cats": 30, "dogs": 17})
    first = split_held_out(index, test_fraction=0.4)
    assert split_held_out(index, test_fraction=0.4) == first
    shuffled = ImageIndex(random.Random(3).sample(index.samples, len(index)), index.classes, index.root)
    val, test = split_held_out(shuffled, test_fraction=0.4)
    assert set(val.samples) == set(first[0].samples) and set(test.samples) == set(first[1].samples)


def test_the_split_depends_on_the_path_below_the_root_only() -> None:
    # The same dataset unpacked in two places (two machines) is split the same way.
    here = split_held_out(make_index({"cats": 25, "dogs": 25}, Path("/home/a/data/x/validation")), 0.5)
    there = split_held_out(make_index({"cats": 25, "dogs": 25}, Path("/mnt/b/validation")), 0.5)
    assert names(here[1]) == names(there[1])


def test_the_test_part_is_chosen_by_hash_not_by_position() -> None:
    val, test = split_held_out(make_index({"cats": 40}), test_fraction=0.5)
    # The first half of the sorted files would be cats_000 ... cats_019.
    assert names(test) != {f"cats_{i:03d}.jpg" for i in range(20)}
    assert split_held_out(make_index({"cats": 40}), 0.5, seed=1)[1] != test


def test_adding_a_photo_to_one_class_leaves_the_other_classes_alone() -> None:
    before = split_held_out(make_index({"cats": 21, "dogs": 11}), test_fraction=0.5)
    after = split_held_out(make_index({"cats": 21, "dogs": 12}), test_fraction=0.5)

    def cats(index: ImageIndex) -> set[str]:
        return {name for name in names(index) if name.startswith("cats")}

    assert cats(after[0]) == cats(before[0]) and cats(after[1]) == cats(before[1])
    assert per_class(after[1])["dogs"] == 6


@pytest.mark.parametrize("fraction", [0.01, 0.5, 0.9])
def test_every_class_of_two_photos_or_more_is_in_both_parts(fraction: float) -> None:
    index = make_index({"a": 2, "b": 3, "c": 5, "d": 40, "e": 1})
    val, test = split_held_out(index, test_fraction=fraction)
    assert all(count >= 1 for name, count in per_class(val).items())
    assert all(count >= 1 for name, count in per_class(test).items() if name != "e")
    # A single photo is kept for validation, where every choice is made.
    assert per_class(val)["e"] == 1 and per_class(test)["e"] == 0


def test_a_zero_test_fraction_keeps_every_photo_for_validation() -> None:
    index = make_index({"cats": 5, "dogs": 4})
    val, test = split_held_out(index, test_fraction=0.0)
    assert val.samples == index.samples and test.samples == []


@pytest.mark.parametrize("fraction", [1.0, -0.1, 0.95, True])
def test_a_bad_test_fraction_is_refused_by_name(fraction: float) -> None:
    with pytest.raises(ValueError, match="test_fraction"):
        split_held_out(make_index({"cats": 5}), test_fraction=fraction)
    with pytest.raises(ValueError, match="test_fraction"):
        get_profile("smoke", test_fraction=fraction)


def test_every_preset_sets_a_test_part_aside() -> None:
    # Choices are made on validation and reported once on test: every profile needs both parts.
    assert all(0.2 <= profile.data.test_fraction <= 0.5 for profile in PROFILES.values()), {
        name: profile.data.test_fraction for name, profile in PROFILES.items()
    }


def test_a_stratified_subset_has_the_size_asked_for_in_proportion() -> None:
    index = make_index({"cats": 30, "dogs": 10})
    subset = stratified_subset(index, 8)
    assert per_class(subset) == {"cats": 6, "dogs": 2}
    assert stratified_subset(index, 7) == stratified_subset(index, 7) and len(stratified_subset(index, 7)) == 7
    assert stratified_subset(index, 100).samples == index.samples


# --- make_loaders on generated photo folders ---------------------------------------------


def write_photos(folder: Path, counts: dict[str, int], start: int) -> None:
    """``counts[name]`` solid-colour PNGs per class; photo ``n`` (from ``start``) has red ``n % 256``,
    green ``n // 256``."""
    number = start
    for name, count in counts.items():
        (folder / name).mkdir(parents=True)
        for i in range(count):
            colour = (number % 256, number // 256, 128)
            Image.new("RGB", (SIZE, SIZE), colour).save(folder / name / f"{name}_{i:03d}.png")
            number += 1


def photo_numbers(loader) -> list[int]:
    """The number of each photo ``loader`` yields, in order (from its colour)."""
    numbers: list[int] = []
    for x, _ in loader:
        pixels = (x[:, :, 0, 0] * 255).round().long()  # (B, 3): every pixel of a photo is the same
        numbers += (pixels[:, 0] + 256 * pixels[:, 1]).tolist()
    return numbers


def labels(loader) -> list[int]:
    return torch.cat([y for _, y in loader]).tolist()


@pytest.fixture
def photos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A dataset folder: 12 cats + 9 dogs to train on, 6 cats + 5 dogs held out."""
    monkeypatch.setenv("LDL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LDL_PROFILE", raising=False)
    monkeypatch.delenv("LDL_DATASET", raising=False)
    root = tmp_path / "photos"
    write_photos(root / "train", {"cats": 12, "dogs": 9}, start=0)
    write_photos(root / "validation", {"cats": 6, "dogs": 5}, start=HELD_OUT_START)
    return root


def profile(batch_size: int = 4, test_fraction: float = 0.0):
    # No test part unless a test asks for one: the presets' own (0.5) is checked on its own below.
    return get_profile("smoke", image_size=SIZE, batch_size=batch_size, test_fraction=test_fraction)


def test_the_smoke_profile_sets_half_of_the_held_out_photos_aside(photos: Path) -> None:
    preset = get_profile("smoke", image_size=SIZE, batch_size=4)
    loaders = make_loaders(preset, dataset=str(photos), progress=False, **PLAIN)
    val, test = photo_numbers(loaders.val), photo_numbers(loaders.test)
    assert sorted(val + test) == list(range(HELD_OUT_START, HELD_OUT_START + 11)) and not set(val) & set(test)
    assert Counter(labels(loaders.val)) == {0: 3, 1: 2} and Counter(labels(loaders.test)) == {0: 3, 1: 3}


@pytest.mark.parametrize("fast", [True, False])
def test_validation_and_test_together_are_the_old_validation(photos: Path, fast: bool) -> None:
    before = make_loaders(profile(), dataset=str(photos), fast=fast, progress=False, **PLAIN)
    after = make_loaders(profile(), dataset=str(photos), fast=fast, progress=False, test_fraction=0.5, **PLAIN)
    old, val, test = photo_numbers(before.val), photo_numbers(after.val), photo_numbers(after.test)
    assert len(old) == 11 and sorted(val + test) == sorted(old) and not set(val) & set(test)
    # Stratified: 6 cats -> 3 + 3, 5 dogs -> 2 + 3 (2.5 rounds up to the test part).
    assert Counter(labels(after.val)) == {0: 3, 1: 2} and Counter(labels(after.test)) == {0: 3, 1: 3}
    # The same files as split_held_out chooses, in both pipelines.
    _, test_index = split_held_out(index_image_folder(photos / "validation"), 0.5)
    assert sorted(test) == sorted(HELD_OUT_START + int(path.stem[-3:]) + (6 if label else 0) for path, label in test_index.samples)


def test_both_pipelines_split_alike(photos: Path) -> None:
    fast = make_loaders(profile(), dataset=str(photos), fast=True, progress=False, test_fraction=0.3, **PLAIN)
    slow = make_loaders(profile(), dataset=str(photos), fast=False, test_fraction=0.3, **PLAIN)
    for part in ("val", "test", "train_eval"):
        assert photo_numbers(getattr(fast, part)) == photo_numbers(getattr(slow, part)), part


@pytest.mark.parametrize("fast", [True, False])
def test_no_test_fraction_gives_no_test_part_and_the_same_validation(photos: Path, fast: bool) -> None:
    default = make_loaders(profile(), dataset=str(photos), fast=fast, progress=False, **PLAIN)
    zero = make_loaders(profile(), dataset=str(photos), fast=fast, progress=False, test_fraction=0.0, **PLAIN)
    assert default.test is None and zero.test is None
    every_held_out_photo = list(range(HELD_OUT_START, HELD_OUT_START + 11))
    assert photo_numbers(default.val) == photo_numbers(zero.val) == every_held_out_photo


@pytest.mark.parametrize("fraction", [1.0, -0.1])
def test_make_loaders_refuses_a_bad_test_fraction_by_name(photos: Path, fraction: float) -> None:
    with pytest.raises(ValueError, match="test_fraction"):
        make_loaders(profile(), dataset=str(photos), progress=False, test_fraction=fraction)


def test_the_held_out_photos_are_decoded_once(photos: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[str] = []
    real = ldl.data.cache.decode_square

    def counting(path, image_size):
        decoded.append(str(path))
        return real(path, image_size)

    monkeypatch.setattr(ldl.data.cache, "decode_square", counting)
    make_loaders(profile(), dataset=str(photos), fast=True, progress=False, test_fraction=0.5)
    assert len(decoded) == len(set(decoded)) == 21 + 11


def test_train_eval_is_the_unaugmented_train_cache(photos: Path) -> None:
    # 11 validation photos and batches of 5: the last batch holds one photo, and is kept.
    invert = lambda x: 1.0 - x  # noqa: E731 - an augmentation no photo survives unchanged
    loaders = make_loaders(profile(batch_size=5), dataset=str(photos), augment=invert, progress=False, **PLAIN)
    cache = build_tensor_cache(index_image_folder(photos / "train"), SIZE, progress=False)
    numbers = photo_numbers(loaders.train_eval)
    assert len(numbers) == len(set(numbers)) == 11  # as many as validation, each once
    assert [len(y) for _, y in loaders.train_eval] == [5, 5, 1]
    assert Counter(labels(loaders.train_eval)) == {0: 6, 1: 5}  # 12 : 9 of the training photos
    x = torch.cat([x for x, _ in loaders.train_eval])
    assert torch.equal((x * 255).round().to(torch.uint8), cache.images[numbers])  # photo n is row n
    assert torch.equal(torch.cat([y for _, y in loaders.train_eval]), cache.labels[numbers])
    assert photo_numbers(loaders.train_eval) == numbers  # a fixed order, not shuffled
    # ...while the training loader does augment (else this test would prove nothing).
    assert not set(photo_numbers(loaders.train)) <= set(range(21))


def test_train_eval_of_the_per_sample_pipeline_is_unaugmented_too(photos: Path) -> None:
    loaders = make_loaders(profile(batch_size=5), dataset=str(photos), fast=False, augment=v2.RandomInvert(p=1.0), **PLAIN)
    numbers = photo_numbers(loaders.train_eval)
    assert len(numbers) == len(set(numbers)) == 11 and set(numbers) <= set(range(21))
    assert [len(y) for _, y in loaders.train_eval] == [5, 5, 1]
    assert not set(photo_numbers(loaders.train)) <= set(range(21))


def test_train_eval_holds_every_training_photo_when_there_are_fewer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LDL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LDL_PROFILE", raising=False)
    write_photos(tmp_path / "few" / "train", {"cats": 3, "dogs": 2}, start=0)
    write_photos(tmp_path / "few" / "validation", {"cats": 6, "dogs": 5}, start=HELD_OUT_START)
    loaders = make_loaders(profile(), dataset=str(tmp_path / "few"), progress=False, **PLAIN)
    assert photo_numbers(loaders.train_eval) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("fast", [True, False])
def test_unreadable_files_are_left_out_of_every_part(photos: Path, fast: bool) -> None:
    # A broken file shifts every later row of the tensor cache: the parts must still be the right photos.
    (photos / "validation" / "cats" / "cats_000_broken.png").write_bytes(b"")
    (photos / "train" / "cats" / "cats_000_broken.png").write_bytes(b"")
    with pytest.warns(UserWarning, match="unreadable"):
        loaders = make_loaders(profile(), dataset=str(photos), fast=fast, progress=False, test_fraction=0.5, **PLAIN)
    val, test = photo_numbers(loaders.val), photo_numbers(loaders.test)
    assert sorted(val + test) == list(range(HELD_OUT_START, HELD_OUT_START + 11))
    assert Counter(labels(loaders.val)) + Counter(labels(loaders.test)) == {0: 6, 1: 5}
    train_eval = photo_numbers(loaders.train_eval)
    assert len(train_eval) == len(val) and set(train_eval) <= set(range(21))
    assert len(loaders.skipped) == 2


@pytest.mark.parametrize("fast", [True, False])
def test_too_few_held_out_photos_give_no_test_part_and_say_so(tmp_path: Path, fast: bool,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LDL_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "tiny"
    write_photos(root / "train", {"cats": 4, "dogs": 4}, start=0)
    write_photos(root / "validation", {"cats": 1, "dogs": 1}, start=HELD_OUT_START)
    with pytest.warns(UserWarning, match="Too few held-out photos for a test part.*test_fraction=0"):
        loaders = make_loaders(profile(test_fraction=0.5), dataset=str(root), fast=fast, progress=False, **PLAIN)
    assert loaders.test is None
    # Validation keeps the one photo of each class, where every choice is made.
    assert photo_numbers(loaders.val) == [HELD_OUT_START, HELD_OUT_START + 1]
