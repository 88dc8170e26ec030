"""Hostile folders: the data path must fail loudly or cope honestly, never mislabel or duplicate.

Every test builds its own small folder of generated images under ``tmp_path``; nothing is
downloaded. New helpers are reached through their module (``folders.collate_readable``), so
on code without them only the test that needs them fails.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision.transforms import v2

from ldl.data import folders
from ldl.data.cache import build_tensor_cache
from ldl.data.folders import RobustImageDataset, load_rgb
from ldl.data.index import index_image_folder
from ldl.data.indexers import in_validation, index_split_folders
from ldl.data.loader import DeviceLoader
from ldl.data.pipeline import make_loaders
from ldl.profiles import get_profile

NON_UTF8_NAME = os.fsdecode(b"caf\xe9.jpg")  # on Linux: 'caf\udce9.jpg', a surrogate escape


def _photo(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (12, 10)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def _split_folder(root: Path, classes: tuple[str, ...] = ("cats", "dogs"), per_class: int = 3) -> Path:
    """``root/{train,validation}/<class>/<i>.png``: solid colours, a different one per photo."""
    for split in ("train", "validation"):
        for label, name in enumerate(classes):
            for i in range(per_class):
                _photo(root / split / name / f"{i}.png", (100 * label, 20 * i, 50 if split == "train" else 150))
    return root


@pytest.fixture
def own_profile(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """``make_loaders`` on a folder of one's own (``LDL_DATASET``), with a private cache folder."""

    def profile(folder: Path, image_size: int = 16, batch_size: int = 4):
        monkeypatch.setenv("LDL_DATASET", str(folder))
        monkeypatch.setenv("LDL_CACHE", str(tmp_path / "cache"))
        monkeypatch.delenv("LDL_PROFILE", raising=False)
        # No test part: these folders hold a photo or two per class, and the split has its own tests.
        return get_profile("cpu", image_size=image_size, batch_size=batch_size, num_workers=0, test_fraction=0.0)

    return profile


# ---- 1. one class list for all splits ------------------------------------------------------


def test_an_empty_class_folder_in_train_only_is_an_error_not_shifted_labels(tmp_path: Path, own_profile) -> None:
    # Before: train had classes [birds, cats, dogs], validation [cats, dogs], so every
    # validation cat carried label 0, which train calls "birds".
    root = _split_folder(tmp_path / "photos")
    (root / "train" / "birds").mkdir()
    for split in ("train", "validation"):
        with pytest.raises(ValueError, match="different class folders") as error:
            index_split_folders(root, split)
        message = str(error.value)
        assert str(root / "train" / "birds") in message and "holds no image file" in message
        assert f"{root / 'validation' / 'birds'} does not" in message
    with pytest.raises(ValueError, match="birds"):
        make_loaders(own_profile(root), progress=False)


def test_an_empty_class_folder_in_every_split_is_an_error_naming_it(tmp_path: Path) -> None:
    # Before: a silent class with no photo, a label the network never sees.
    root = _split_folder(tmp_path / "photos")
    (root / "train" / "birds").mkdir()
    (root / "validation" / "birds").mkdir()
    with pytest.raises(ValueError, match="holds no image file") as error:
        index_split_folders(root, "train")
    assert str(root / "train" / "birds") in str(error.value)


def test_same_class_folders_give_the_same_labels_in_every_split(tmp_path: Path) -> None:
    root = _split_folder(tmp_path / "photos", classes=("apples", "pears", "plums"))
    train, val = index_split_folders(root, "train"), index_split_folders(root, "validation")
    assert train.classes == val.classes == ["apples", "pears", "plums"]
    assert [label for _, label in val.samples] == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_a_class_whose_every_file_is_unreadable_is_an_error_naming_it(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _photo(root / "cats" / "a.png", (10, 10, 10))
    (root / "birds").mkdir()
    (root / "birds" / "zero.jpg").write_bytes(b"")
    index = index_image_folder(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the "Skipped 1 unreadable image" warning
        with pytest.raises(ValueError, match="'birds'.*no readable image.*zero.jpg"):
            RobustImageDataset(index)
        with pytest.raises(ValueError, match="'birds'.*no readable image.*zero.jpg"):
            build_tensor_cache(index, 8, progress=False, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()  # no cache saved with an empty class


# ---- 2. EXIF orientation -------------------------------------------------------------------


def _rotated_jpeg(path: Path) -> None:
    """A 60x40 photo, left half white, right half black, tagged "rotate 90° clockwise to view".

    Upright it is 40 wide and 60 tall, with the white half on top.
    """
    pixels = np.zeros((40, 60, 3), dtype=np.uint8)
    pixels[:, :30] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; rotate 90° clockwise to display
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, exif=exif, quality=95)


def test_load_rgb_turns_an_exif_rotated_photo_upright(tmp_path: Path) -> None:
    _rotated_jpeg(tmp_path / "phone.jpg")
    image = np.asarray(load_rgb(tmp_path / "phone.jpg")).astype(float)
    assert image.shape == (60, 40, 3)  # before: (40, 60, 3), the sensor's sideways pixels
    assert image[:25].mean() > 240 and image[35:].mean() < 15  # white on top


@pytest.mark.parametrize("image_size", [16, 8])  # 16: TorchCodec decodes (when installed); 8: PIL's draft
def test_both_pipelines_give_the_same_pixels_for_an_exif_rotated_photo(
    tmp_path: Path, own_profile, image_size: int
) -> None:
    root = tmp_path / "photos"
    for split in ("train", "validation"):
        for name in ("a", "b"):
            _rotated_jpeg(root / split / name / "phone.jpg")
    profile = own_profile(root, image_size=image_size, batch_size=4)
    fast = torch.cat([x for x, _ in make_loaders(profile, fast=True, progress=False).val])
    slow = torch.cat([x for x, _ in make_loaders(profile, fast=False).val])
    assert fast.shape == slow.shape == (2, 3, image_size, image_size)
    assert (fast - slow).abs().mean() < 0.1  # normalised units: a few grey levels
    for x in (fast, slow):  # upright: the white half is on top of the centre crop
        half = image_size // 2
        assert x[:, :, : half - 1].mean() > 1.5 and x[:, :, half + 1 :].mean() < -1.5


# ---- 3. a file name that is not valid UTF-8 -------------------------------------------------


def test_a_non_utf8_file_name_works_in_both_pipelines(tmp_path: Path, own_profile) -> None:
    # Before: UnicodeEncodeError ("surrogates not allowed") in cache_key, fast pipeline only.
    root = _split_folder(tmp_path / "photos")
    for split in ("train", "validation"):
        _photo(root / split / "cats" / NON_UTF8_NAME, (250, 0, 0))
    profile = own_profile(root)
    for fast in (True, False):
        loaders = make_loaders(profile, fast=fast, progress=False)
        assert sum(len(y) for _, y in loaders.val) == 7
    again = make_loaders(profile, fast=True, progress=False)  # reloaded from the saved cache
    assert sum(len(y) for _, y in again.val) == 7
    in_validation(NON_UTF8_NAME, 10)  # the hashed split hashes the same name without raising


def test_an_unreadable_non_utf8_file_is_listed_and_survives_the_cache_reload(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _photo(root / "cats" / "a.png", (1, 2, 3))
    (root / "cats" / NON_UTF8_NAME).write_text("not a picture")
    index = index_image_folder(root)
    for _ in range(2):  # built, then reloaded from disk
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cache = build_tensor_cache(index, 8, progress=False, cache_dir=tmp_path / "cache")
        assert [Path(path).name for path, _ in cache.skipped] == [NON_UTF8_NAME]


# ---- 4. no training batch of one image ------------------------------------------------------


def test_a_training_device_loader_leaves_out_a_last_batch_of_one() -> None:
    images, labels = torch.zeros(33, 3, 4, 4, dtype=torch.uint8), torch.arange(33)
    train = DeviceLoader(images, labels, batch_size=32, shuffle=True)
    val = DeviceLoader(images, labels, batch_size=32, shuffle=False)
    assert [len(y) for _, y in train] == [32] and len(train) == 1
    assert [len(y) for _, y in val] == [32, 1] and len(val) == 2
    images, labels = torch.zeros(34, 3, 4, 4, dtype=torch.uint8), torch.arange(34)
    assert [len(y) for _, y in DeviceLoader(images, labels, batch_size=32, shuffle=True)] == [32, 2]


@pytest.mark.parametrize("fast", [True, False])
def test_make_loaders_never_trains_on_a_batch_of_one(tmp_path: Path, own_profile, fast: bool) -> None:
    # Before: the 33rd photo came alone, and batch norm raised "Expected more than 1 value
    # per channel when training".
    root = tmp_path / "photos"
    for split in ("train", "validation"):
        for i in range(33):
            _photo(root / split / ("a" if i % 2 else "b") / f"{i}.png", (i * 7, 0, 0), size=(8, 8))
    loaders = make_loaders(own_profile(root, image_size=8, batch_size=32), fast=fast, progress=False)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4), nn.BatchNorm1d(4)).train()
    sizes = []
    for x, _ in loaders.train:
        model(x)  # a batch of one would raise here
        sizes.append(len(x))
    assert sizes == [32] and len(loaders.train) == 1
    assert [len(y) for _, y in loaders.val] == [32, 1]  # evaluation keeps every photo


# ---- 5. dangling symbolic links --------------------------------------------------------------


def test_a_dangling_symlink_is_listed_among_the_skipped_files(tmp_path: Path, own_profile) -> None:
    # Before: the index dropped it without a word; nothing listed it.
    root = _split_folder(tmp_path / "photos")
    link = root / "train" / "cats" / "gone.jpg"
    link.symlink_to(tmp_path / "deleted-long-ago.jpg")
    assert link in [path for path, _ in index_image_folder(root / "train").samples]
    for fast in (True, False):
        with pytest.warns(UserWarning, match="Skipped 1 unreadable"):
            loaders = make_loaders(own_profile(root), fast=fast, progress=False)
        assert [(Path(path).name, reason.split(" (")[0]) for path, reason in loaders.skipped] == [
            ("gone.jpg", "broken symbolic link")
        ]
        assert "deleted-long-ago.jpg" in loaders.skipped[0][1]


# ---- 6. a damaged tensor-cache file ----------------------------------------------------------


def test_random_bytes_in_the_cached_pixels_are_caught_and_the_cache_rebuilt(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for i in range(4):
        path = root / "noise" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)
    index = index_image_folder(root)
    first = build_tensor_cache(index, 16, progress=False, cache_dir=tmp_path / "cache")
    (saved,) = (tmp_path / "cache").iterdir()
    data = bytearray(saved.read_bytes())
    start = data.find(first.images.numpy().tobytes()[:256])  # where the pixels are stored
    assert start > 0
    data[start + 100 : start + 400] = rng.integers(0, 256, 300, dtype=np.uint8).tobytes()
    saved.write_bytes(bytes(data))
    # Before: it loaded without complaint, 300 random pixels and all.
    with pytest.warns(UserWarning, match=f"Ignoring unreadable tensor cache {saved}.*checksum"):
        again = build_tensor_cache(index, 16, progress=False, cache_dir=tmp_path / "cache")
    assert torch.equal(again.images, first.images)  # decoded again, not the damaged pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt file was saved and loads cleanly
        assert torch.equal(build_tensor_cache(index, 16, progress=False, cache_dir=tmp_path / "cache").images,
                           first.images)


# ---- 7. a file deleted after indexing --------------------------------------------------------


def _numbered_folder(root: Path, count: int) -> Path:
    """``root/{train,validation}/<a|b>/<i>.png``, photo ``i`` a solid (i*10, 0, 0): its red says which."""
    for split in ("train", "validation"):
        for i in range(count):
            _photo(root / split / ("a" if i % 2 else "b") / f"{i}.png", (i * 10, 0, 0), size=(8, 8))
    return root


def _ids(batches) -> list[int]:
    """The photo numbers in ``batches`` of unnormalised (B, 3, H, W) floats in [0, 1]."""
    return sorted(round(float(x[k, 0, 0, 0]) * 255 / 10) for x, _ in batches for k in range(len(x)))


def test_a_file_deleted_after_indexing_is_left_out_not_replaced_by_a_duplicate(tmp_path: Path) -> None:
    root = _numbered_folder(tmp_path / "photos", 6)
    to_float = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
    dataset = RobustImageDataset(index_image_folder(root / "train"), transform=to_float)
    deleted = root / "train" / "b" / "2.png"
    deleted.unlink()
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, collate_fn=folders.collate_readable)
    # Before: photo 4 (the next in the list) took the place of photo 2, and was seen twice.
    with pytest.warns(UserWarning, match=f"{deleted}.*left out of its batch"):
        assert _ids(loader) == [0, 1, 3, 4, 5]
    assert [path for path, _ in dataset.skipped] == [deleted]


def test_per_sample_training_loader_skips_a_deleted_file_without_a_duplicate(tmp_path: Path, own_profile) -> None:
    root = _numbered_folder(tmp_path / "photos", 12)  # 3 full batches: no last batch of one to drop
    profile = own_profile(root, image_size=8, batch_size=4)
    loaders = make_loaders(profile, fast=False, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    (root / "train" / "b" / "0.png").unlink()
    with pytest.warns(UserWarning, match="0.png.*left out of its batch"):
        assert _ids(loaders.train) == list(range(1, 12))
