"""The decoded-tensor cache and the DeviceLoader that batches from it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from ldl.data import cache as cache_module
from ldl.data.cache import TensorCache, build_tensor_cache, cache_key, default_cache_dir
from ldl.data.index import index_image_folder
from ldl.data.loader import DeviceLoader
BAD_FILES = ("empty.jpg", "truncated.jpg", "text.jpg")


@pytest.fixture
def odd_folder(tmp_path: Path) -> Path:
    """``cats/``: 3 good images of different sizes and modes plus 3 bad files; ``dogs/``: 4 good."""
    root = tmp_path / "odd"
    rng = np.random.default_rng(0)
    for name in ("cats", "dogs"):
        (root / name).mkdir(parents=True)
    for folder, file, height, width in [
        ("cats", "a.jpg", 48, 64), ("cats", "b.jpg", 30, 30), ("cats", "c.png", 20, 40),
        ("dogs", "a.jpg", 32, 32), ("dogs", "b.jpg", 64, 48), ("dogs", "c.png", 25, 25), ("dogs", "d.jpg", 16, 24),
    ]:
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(root / folder / file)
    Image.open(root / "dogs" / "c.png").convert("RGBA").save(root / "dogs" / "c.png")  # odd mode
    (root / "cats" / "empty.jpg").write_bytes(b"")
    whole = (root / "cats" / "a.jpg").read_bytes()
    (root / "cats" / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (root / "cats" / "text.jpg").write_text("this is not a picture\n")
    return root


@pytest.fixture
def cats_and_dogs() -> Path:
    """``$LDL_DATA/cats_and_dogs_sample``; fails in CI, skips elsewhere when it is missing."""
    folder = Path(os.environ.get("LDL_DATA", "")) / "cats_and_dogs_sample"
    if not os.environ.get("LDL_DATA") or not folder.is_dir():
        message = (
            "needs the sample photos: set LDL_DATA to a folder holding cats_and_dogs_sample/ (e.g. ../shared/data)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return folder


def _build(folder: Path, size: int, **kwargs: Any) -> TensorCache:
    """Build a cache of the odd folder, expecting the warning about its 3 bad files."""
    with pytest.warns(UserWarning, match="Skipped 3 unreadable"):
        return build_tensor_cache(index_image_folder(folder), size, progress=False, **kwargs)


# ---- cache ------------------------------------------------------------------------------


def test_cache_shapes_dtypes_and_skipped(odd_folder: Path) -> None:
    cache = _build(odd_folder, 16)
    assert len(cache) == 7
    assert cache.images.shape == (7, 3, 16, 16) and cache.images.dtype == torch.uint8
    assert cache.labels.dtype == torch.int64 and cache.labels.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert cache.classes == ["cats", "dogs"]
    assert sorted(Path(path).name for path, _ in cache.skipped) == sorted(BAD_FILES)
    assert all(isinstance(path, str) and reason for path, reason in cache.skipped)


def test_cache_rows_are_centre_crops_of_the_right_image(tmp_path: Path) -> None:
    # A 40x20 image: left quarter red, middle half green, right quarter blue. Resizing to
    # 20x10 and cropping the centre 10x10 keeps only green.
    (tmp_path / "f" / "c").mkdir(parents=True)
    image = Image.new("RGB", (40, 20), (0, 255, 0))
    image.paste((255, 0, 0), (0, 0, 10, 20))
    image.paste((0, 0, 255), (30, 0, 40, 20))
    image.save(tmp_path / "f" / "c" / "wide.png")
    cache = build_tensor_cache(index_image_folder(tmp_path / "f"), 10, progress=False)
    assert cache.images.shape == (1, 3, 10, 10)
    inner = cache.images[0, :, :, 1:-1]  # the outer columns blend a little red/blue (antialiasing)
    assert inner[1].min() >= 250 and inner[0].max() <= 5 and inner[2].max() <= 5


def test_threads_give_the_same_cache(odd_folder: Path) -> None:
    serial = _build(odd_folder, 16)
    threaded = _build(odd_folder, 16, num_workers=2)
    assert torch.equal(serial.images, threaded.images) and torch.equal(serial.labels, threaded.labels)
    assert serial.skipped == threaded.skipped


def test_reload_from_disk_is_equal_and_does_not_decode(odd_folder: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cache_dir = tmp_path / "cache"
    first = _build(odd_folder, 16, cache_dir=cache_dir)
    saved = list(cache_dir.iterdir())
    assert [p.name for p in saved] == [f"{cache_key(index_image_folder(odd_folder), 16)}.pt"]  # no temp files left

    def no_decoding(*args: object) -> torch.Tensor:
        raise AssertionError("decoded again instead of reloading the cache")

    monkeypatch.setattr(cache_module, "decode_square", no_decoding)
    second = build_tensor_cache(index_image_folder(odd_folder), 16, cache_dir=cache_dir, progress=False)
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    assert second.classes == first.classes and second.skipped == first.skipped
    # The file loads with weights_only=True: no pickled code inside.
    assert set(torch.load(saved[0], weights_only=True)) >= {"images", "labels", "classes"}


def test_damaged_cache_file_is_rebuilt(odd_folder: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    first = _build(odd_folder, 16, cache_dir=cache_dir)
    (saved,) = cache_dir.iterdir()
    saved.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="Ignoring unreadable tensor cache"):
        again = _build(odd_folder, 16, cache_dir=cache_dir)
    assert torch.equal(first.images, again.images)
    assert torch.load(saved, weights_only=True)["images"].shape == (7, 3, 16, 16)


def test_cache_key_follows_size_and_files(odd_folder: Path) -> None:
    index = index_image_folder(odd_folder)
    assert cache_key(index, 16) == cache_key(index_image_folder(odd_folder), 16)
    assert cache_key(index, 16) != cache_key(index, 32)
    before = cache_key(index, 16)
    changed = odd_folder / "dogs" / "a.jpg"
    changed.write_bytes(changed.read_bytes() + b"\0")  # new size (and mtime)
    assert cache_key(index, 16) != before


def test_default_cache_dir_follows_ldl_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LDL_CACHE", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    monkeypatch.delenv("LDL_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "ldl" / "tensors"


def test_subset_keeps_first_per_class(odd_folder: Path) -> None:
    cache = _build(odd_folder, 8)
    small = cache.subset(2)
    assert small.labels.tolist() == [0, 0, 1, 1]
    assert torch.equal(small.images[2], cache.images[3])  # first dog
    assert cache.subset(None) is cache


def test_folder_without_readable_images_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad" / "c").mkdir(parents=True)
    (tmp_path / "bad" / "c" / "x.jpg").write_text("not a picture")
    with pytest.raises(ValueError, match="No readable images.*x.jpg"):
        build_tensor_cache(index_image_folder(tmp_path / "bad"), 8, progress=False, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()  # nothing useless saved


@pytest.mark.samples
def test_cache_of_real_validation_photos(cats_and_dogs: Path) -> None:
    index = index_image_folder(cats_and_dogs / "validation")
    cache = build_tensor_cache(index, 32, progress=False, num_workers=2)
    assert cache.images.shape == (len(index), 3, 32, 32) and len(index) == 300
    assert cache.skipped == []
    assert cache.classes == ["cats", "dogs"]
    assert torch.bincount(cache.labels).tolist() == [150, 150]
    per_image_std = cache.images.float().std(dim=(1, 2, 3))
    assert bool((per_image_std > 5).all())  # real pictures, not blank rows


# ---- DeviceLoader -----------------------------------------------------------------------


def _numbered(n: int = 20, size: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose every pixel holds the image's number, and labels equal to it."""
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, size, size).contiguous()
    return images, torch.arange(n)


def _epoch_labels(loader: DeviceLoader) -> list[int]:
    return torch.cat([y for _, y in loader]).tolist()


@pytest.mark.parametrize("shuffle", [False, True])
def test_every_sample_once_per_epoch(shuffle: bool) -> None:
    images, labels = _numbered(20)
    loader = DeviceLoader(images, labels, batch_size=7, shuffle=shuffle, mean=None, std=None)
    assert len(loader) == 3 and loader.dataset_size == 20
    sizes = []
    for epoch in range(2):
        seen = []
        for x, y in loader:
            assert x.dtype == torch.float32 and y.dtype == torch.int64
            # Images travel with their labels.
            assert torch.allclose(x[:, 0, 0, 0] * 255, y.float())
            seen += y.tolist()
            sizes.append(len(y))
        assert sorted(seen) == list(range(20))
    assert sizes[:3] == [7, 7, 6]


def test_drop_last() -> None:
    images, labels = _numbered(20)
    loader = DeviceLoader(images, labels, batch_size=7, shuffle=False, drop_last=True)
    assert len(loader) == 2 and [len(y) for _, y in loader] == [7, 7]


def test_shuffle_follows_global_seed() -> None:
    images, labels = _numbered(50)
    loader = DeviceLoader(images, labels, batch_size=8, shuffle=True)
    torch.manual_seed(0)
    first = _epoch_labels(loader)
    second_epoch = _epoch_labels(loader)
    torch.manual_seed(0)
    assert _epoch_labels(loader) == first
    torch.manual_seed(1)
    assert _epoch_labels(loader) != first
    assert second_epoch != first  # a new order every epoch
    assert first != list(range(50))


def test_restoring_rng_state_resumes_the_same_order() -> None:
    images, labels = _numbered(50)
    loader = DeviceLoader(images, labels, batch_size=8, shuffle=True)
    torch.manual_seed(3)
    _epoch_labels(loader)
    state = torch.get_rng_state()  # what a checkpoint would save
    next_epoch = _epoch_labels(loader)
    torch.manual_seed(99)
    torch.set_rng_state(state)
    assert _epoch_labels(loader) == next_epoch


def test_shuffle_follows_generator() -> None:
    images, labels = _numbered(50)

    def order(seed: int) -> list[int]:
        generator = torch.Generator().manual_seed(seed)
        return _epoch_labels(DeviceLoader(images, labels, batch_size=8, shuffle=True, generator=generator))

    torch.manual_seed(0)
    a = order(5)
    torch.manual_seed(1)  # the global state does not matter with a generator
    assert order(5) == a
    assert order(6) != a


def test_normalisation_and_augment_order() -> None:
    images = torch.randint(0, 256, (10, 3, 6, 6), dtype=torch.uint8)
    labels = torch.arange(10) % 2
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    seen_ranges = []

    def augment(x: torch.Tensor) -> torch.Tensor:
        seen_ranges.append((float(x.min()), float(x.max())))
        return 1.0 - x  # an easy-to-check "augmentation"

    loader = DeviceLoader(images, labels, batch_size=4, shuffle=False, augment=augment, mean=mean, std=std)
    x = torch.cat([x for x, _ in loader])
    expected = (1.0 - images.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(x, expected, atol=1e-6)
    assert all(0.0 <= low and high <= 1.0 for low, high in seen_ranges)  # augment sees [0, 1]


def test_from_cache_and_bad_input(odd_folder: Path) -> None:
    cache = _build(odd_folder, 8)
    loader = DeviceLoader.from_cache(cache, batch_size=4, shuffle=False)
    assert loader.classes == ["cats", "dogs"] and loader.dataset_size == 7
    assert torch.equal(torch.cat([y for _, y in loader]), cache.labels)
    with pytest.raises(ValueError, match="uint8"):
        DeviceLoader(cache.images.float(), cache.labels, batch_size=4, shuffle=False)
    with pytest.raises(ValueError, match="one per image"):
        DeviceLoader(cache.images, cache.labels[:3], batch_size=4, shuffle=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_loader_with_batch_augment_on_cuda() -> None:
    from ldl.data.batch_augment import BatchAugment

    images, labels = _numbered(40, size=8)
    loader = DeviceLoader(images, labels, batch_size=16, shuffle=True, device="cuda",
                          augment=BatchAugment(degrees=10), generator=torch.Generator().manual_seed(0))
    batches = list(loader)
    assert all(x.is_cuda and y.is_cuda and torch.isfinite(x).all() for x, y in batches)
    assert sorted(torch.cat([y for _, y in batches]).tolist()) == list(range(40))


# ---------------------------------------------------------------- the JPEG decoder


def test_torchcodec_and_pil_decode_a_real_photo_to_nearly_the_same_pixels(cats_and_dogs: Path, monkeypatch) -> None:
    pytest.importorskip("torchcodec.decoders", reason="the fast-decode extra (TorchCodec) is not installed")
    if cache_module.torchcodec_jpeg_decoder() is None:
        pytest.skip("TorchCodec is installed but does not load with this torch")
    photo = next((cats_and_dogs / "train" / "cats").glob("*.jpg"))
    assert cache_module.jpeg_decoder() == "torchcodec"
    calls = []
    decode = cache_module.torchcodec_jpeg_decoder()
    counting = lambda *a, **k: calls.append(a) or decode(*a, **k)  # noqa: E731
    monkeypatch.setattr(cache_module, "torchcodec_jpeg_decoder", lambda: counting)
    # A photo of a few hundred pixels: PIL's draft cannot shrink it 4x for 160 px, so TorchCodec decodes it ...
    fast = cache_module.decode_square(photo, 160)
    assert len(calls) == 1
    # ... while for 32 px PIL decodes it at 1/8 scale, faster than any full-size decode.
    cache_module.decode_square(photo, 32)
    assert len(calls) == 1
    monkeypatch.setattr(cache_module, "torchcodec_jpeg_decoder", lambda: None)
    assert cache_module.jpeg_decoder() == "pil"
    slow = cache_module.decode_square(photo, 160)
    assert fast.shape == slow.shape == (3, 160, 160) and fast.dtype == slow.dtype == torch.uint8
    # Two resizers (tensor vs PIL with draft) differ by a few grey levels, not by content.
    assert (fast.float() - slow.float()).abs().mean() < 4.0


def test_a_jpeg_torchcodec_rejects_falls_back_to_pil(tmp_path: Path) -> None:
    png_named_jpg = tmp_path / "really_a_png.jpg"
    Image.fromarray(np.full((20, 30, 3), 200, dtype=np.uint8)).save(png_named_jpg, format="PNG")
    image = cache_module.decode_square(png_named_jpg, 16)
    assert image.shape == (3, 16, 16) and int(image.float().mean().round()) == 200


def test_the_decoder_is_part_of_the_cache_key(odd_folder: Path, monkeypatch) -> None:
    index = index_image_folder(odd_folder)
    monkeypatch.setattr(cache_module, "torchcodec_jpeg_decoder", lambda: (lambda *args, **kwargs: None))
    with_codec = cache_key(index, 32)
    monkeypatch.setattr(cache_module, "torchcodec_jpeg_decoder", lambda: None)
    assert cache_key(index, 32) != with_codec
