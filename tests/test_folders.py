"""Robust image folders: odd images load as RGB, bad files are skipped and listed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from ldl.data.folders import RobustImageDataset, UnreadableImage, check_image, collate_readable, load_rgb
from ldl.data.index import index_image_folder

BAD_FILES = ("empty.jpg", "truncated.jpg", "text.jpg")


def _noise(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def make_odd_folder(root: Path) -> Path:
    """A class folder tree with good RGB/gray/CMYK/RGBA/palette images and three bad files.

    ``cats/`` holds 3 good images and the bad ones, ``dogs/`` holds 4 good images.
    """
    cats, dogs = root / "cats", root / "dogs"
    cats.mkdir(parents=True)
    dogs.mkdir(parents=True)
    # Good files.
    Image.fromarray(_noise(48, 64, 0)).save(cats / "rgb.jpg", quality=90)
    Image.fromarray(_noise(40, 40, 1)[..., 0], mode="L").save(cats / "gray.jpg")
    Image.new("CMYK", (30, 20), (0, 255, 0, 0)).save(cats / "cmyk.jpg")
    rgba = np.zeros((20, 20, 4), dtype=np.uint8)
    rgba[..., 0] = 255  # red where opaque
    rgba[:10, :, 3] = 255  # top half opaque, bottom half fully transparent
    Image.fromarray(rgba, mode="RGBA").save(dogs / "rgba.png")
    palette = Image.new("P", (16, 16), 0)
    palette.putpalette([0, 0, 255] + [0, 0, 0] * 255)  # colour 0 is blue
    palette.save(dogs / "palette.png")
    Image.fromarray(_noise(32, 32, 2)).save(dogs / "a.jpg")
    Image.fromarray(_noise(32, 48, 3)).save(dogs / "b.png")
    # Bad files.
    (cats / "empty.jpg").write_bytes(b"")
    whole = (cats / "rgb.jpg").read_bytes()
    (cats / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (cats / "text.jpg").write_text("this is not a picture\n")
    return root


@pytest.fixture
def odd_folder(tmp_path: Path) -> Path:
    return make_odd_folder(tmp_path / "odd")


def test_odd_modes_load_as_rgb(odd_folder: Path) -> None:
    for path in [odd_folder / "cats" / "gray.jpg", odd_folder / "cats" / "cmyk.jpg",
                 odd_folder / "dogs" / "rgba.png", odd_folder / "dogs" / "palette.png"]:
        image = load_rgb(path)
        assert image.mode == "RGB", path
        assert image.size == Image.open(path).size, path
    assert Image.open(odd_folder / "cats" / "cmyk.jpg").mode == "CMYK"  # the fixture really is CMYK


def test_transparent_areas_become_white_not_black(odd_folder: Path) -> None:
    image = np.asarray(load_rgb(odd_folder / "dogs" / "rgba.png"))
    assert image[0, 0].tolist() == [255, 0, 0]  # opaque red stays red
    assert image[-1, -1].tolist() == [255, 255, 255]  # transparent becomes white


def test_palette_colours_are_kept(odd_folder: Path) -> None:
    assert np.asarray(load_rgb(odd_folder / "dogs" / "palette.png"))[3, 3].tolist() == [0, 0, 255]


def test_sixteen_bit_grayscale_is_rescaled(tmp_path: Path) -> None:
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    image = np.asarray(load_rgb(tmp_path / "deep.png"))
    assert image.shape == (8, 8, 3)
    assert image[0, 0, 0] < 10 and image[-1, -1, 0] > 200  # a ramp, not clipped to white


@pytest.mark.parametrize(
    ("name", "reason_word"),
    [("empty.jpg", "empty"), ("truncated.jpg", "truncated"), ("text.jpg", "not an image")],
)
def test_bad_files_raise_unreadable_with_path_and_reason(odd_folder: Path, name: str, reason_word: str) -> None:
    path = odd_folder / "cats" / name
    for read in (load_rgb, check_image):
        with pytest.raises(UnreadableImage) as caught:
            read(path)
        assert caught.value.path == path
        assert reason_word in caught.value.reason
        assert str(path) in str(caught.value)
        assert isinstance(caught.value, ValueError)


def test_draft_size_decodes_jpeg_smaller_but_not_below_request(tmp_path: Path) -> None:
    Image.fromarray(_noise(400, 600, 4)).save(tmp_path / "big.jpg")
    full = load_rgb(tmp_path / "big.jpg")
    small = load_rgb(tmp_path / "big.jpg", draft_size=64)
    assert full.size == (600, 400)
    assert small.size[0] < 600 and min(small.size) >= 64


def test_dataset_skips_and_lists_bad_files(odd_folder: Path) -> None:
    with pytest.warns(UserWarning, match="Skipped 3 unreadable"):
        dataset = RobustImageDataset(index_image_folder(odd_folder))
    assert len(dataset) == 7
    assert sorted(path.name for path, _ in dataset.skipped) == sorted(BAD_FILES)
    assert all(reason for _, reason in dataset.skipped)
    assert dataset.classes == ["cats", "dogs"]
    assert dataset.targets == [0, 0, 0, 1, 1, 1, 1]
    image, label = dataset[0]
    assert isinstance(image, Image.Image) and image.mode == "RGB" and label == 0


def test_without_check_nothing_is_dropped_up_front(odd_folder: Path) -> None:
    dataset = RobustImageDataset(index_image_folder(odd_folder), check=False)
    assert len(dataset) == 10 and dataset.skipped == []


def _count_batches(dataset: RobustImageDataset) -> int:
    seen = 0
    for x, y in torch.utils.data.DataLoader(dataset, batch_size=4, collate_fn=collate_readable):
        assert x.shape[1:] == (3, 16, 16) and x.dtype == torch.float32
        seen += len(y)
    return seen


def test_dataloader_epoch_over_bad_folder_never_raises(odd_folder: Path) -> None:
    transform = v2.Compose([v2.ToImage(), v2.Resize((16, 16), antialias=True), v2.ToDtype(torch.float32, scale=True)])
    with pytest.warns(UserWarning):
        checked = RobustImageDataset(index_image_folder(odd_folder), transform=transform)
    assert _count_batches(checked) == 7


def test_unchecked_dataset_leaves_bad_files_out_of_their_batch(odd_folder: Path) -> None:
    transform = v2.Compose([v2.ToImage(), v2.Resize((16, 16), antialias=True), v2.ToDtype(torch.float32, scale=True)])
    unchecked = RobustImageDataset(index_image_folder(odd_folder), transform=transform, check=False)
    with pytest.warns(UserWarning, match="left out of its batch"):
        seen = _count_batches(unchecked)
    assert seen == 7  # the 3 bad files are left out, not replaced by good ones seen twice
    assert sorted(path.name for path, _ in unchecked.skipped) == sorted(BAD_FILES)


def test_decode_time_failure_gives_none_recorded_once(odd_folder: Path) -> None:
    with pytest.warns(UserWarning):
        dataset = RobustImageDataset(index_image_folder(odd_folder))
    broken_path, _ = dataset.samples[3]
    # The file passed the check, then got damaged on disk before the epoch reached it.
    broken_path.write_bytes(broken_path.read_bytes()[:40])
    with pytest.warns(UserWarning, match="left out of its batch"):
        assert dataset[3] is None
    assert dataset.skipped[-1][0] == broken_path
    count = len(dataset.skipped)
    assert dataset[3] is None
    assert len(dataset.skipped) == count  # recorded once, not once per visit
    assert collate_readable([None, None]) is None  # a batch of nothing is no batch


def test_all_bad_folder_gives_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "only" / "cls").mkdir(parents=True)
    (tmp_path / "only" / "cls" / "x.jpg").write_bytes(b"")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="No readable images"):
        RobustImageDataset(index_image_folder(tmp_path / "only"))
