"""Synthetic shapes: deterministic files, the promised layout, and the registry entry."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from PIL import Image

from ldl.data import on_disk
from ldl.data.synthetic import SHAPE_CLASSES, write_synthetic_shapes

SMALL = dict(per_class_train=4, per_class_val=2, image_size=32)


def file_bytes(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*.png"))}


def test_same_seed_writes_byte_identical_files(tmp_path):
    first = file_bytes(write_synthetic_shapes(tmp_path / "a", seed=3, **SMALL))
    second = file_bytes(write_synthetic_shapes(tmp_path / "b", seed=3, **SMALL))
    other = file_bytes(write_synthetic_shapes(tmp_path / "c", seed=4, **SMALL))
    assert len(first) == 3 * (4 + 2)
    assert first == second
    assert first.keys() == other.keys()
    assert all(first[name] != other[name] for name in first)


def test_layout_and_images(tmp_path):
    root = write_synthetic_shapes(tmp_path / "shapes", **SMALL)
    for split, count in (("train", 4), ("validation", 2)):
        assert sorted(p.name for p in (root / split).iterdir()) == sorted(SHAPE_CLASSES)
        for shape in SHAPE_CLASSES:
            files = sorted((root / split / shape).glob("*.png"))
            assert len(files) == count
            with Image.open(files[0]) as image:
                assert image.size == (32, 32) and image.mode == "RGB"
    assert [p.name for p in tmp_path.iterdir()] == ["shapes"]  # no temporary folder left


def test_more_images_keep_the_first_ones(tmp_path):
    few = file_bytes(write_synthetic_shapes(tmp_path / "few", **SMALL))
    more = file_bytes(
        write_synthetic_shapes(tmp_path / "more", per_class_train=6, per_class_val=2, image_size=32)
    )
    assert all(more[name] == data for name, data in few.items())
    assert len(more) == len(few) + 3 * 2


def test_classes_differ_in_the_drawn_shape(tmp_path):
    """A circle fills about pi/4 of its box; a triangle much less: check via the mask area."""
    import numpy as np

    from ldl.data.synthetic import draw_shape_image

    def filled_fraction(shape: str) -> float:
        image = np.asarray(draw_shape_image(shape, 64, np.random.default_rng(7)), dtype=np.int16)
        # The same generator seed gives the same background and colour for every class,
        # so the pixels far from the median background are the shape.
        background = np.median(image.reshape(-1, 3), axis=0)
        return float((np.abs(image - background).sum(axis=2) > 100).mean())

    assert filled_fraction("circle") > filled_fraction("square") > filled_fraction("triangle") > 0.01


def test_existing_root_is_not_overwritten(tmp_path):
    (tmp_path / "shapes").mkdir()
    (tmp_path / "shapes" / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError):
        write_synthetic_shapes(tmp_path / "shapes", **SMALL)
    assert (tmp_path / "shapes" / "mine.txt").read_text() == "keep"


def test_registry_generates_synthetic_on_first_use(tmp_path, monkeypatch):
    monkeypatch.setenv("LDL_DATA", str(tmp_path))
    assert on_disk.dataset_status("synthetic") == "ready"
    train = on_disk.load_index("synthetic", "train")
    validation = on_disk.load_index("synthetic", "validation")
    assert train.classes == ["circle", "square", "triangle"]
    assert train.counts() == {"circle": 60, "square": 60, "triangle": 60}
    assert len(validation) == 60
    assert train.root == tmp_path / "synthetic" / "train"
    first_file = train.samples[0][0]
    modified = first_file.stat().st_mtime_ns
    on_disk.load_index("synthetic", "train")  # second use: found, not rewritten
    assert first_file.stat().st_mtime_ns == modified


def test_read_only_data_dir_generates_synthetic_in_the_temp_folder(tmp_path, monkeypatch):
    read_only = tmp_path / "shared"
    read_only.mkdir()
    read_only.chmod(0o555)
    monkeypatch.setenv("LDL_DATA", str(read_only))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    try:
        train = on_disk.load_index("synthetic", "train")
        assert train.root == tmp_path / "tmp" / "ldl-data" / "synthetic" / "train"
        assert len(train) == 180
        assert list(read_only.iterdir()) == []
    finally:
        read_only.chmod(0o755)  # let pytest clean tmp_path up
