"""The dataset registry: names, folders, errors a student can act on, and the indexers."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import numpy as np
import pytest

from ldl.data import indexers, on_disk, registry
from ldl.data.registry import DatasetSpec, DatasetUnavailable, RemoteFile


@pytest.fixture
def sample_data_dir() -> Path:
    """``$LDL_DATA`` when it holds ``cats_and_dogs_sample/``; skip (or fail in CI) otherwise."""
    folder = os.environ.get("LDL_DATA")
    if folder and (Path(folder) / "cats_and_dogs_sample").is_dir():
        return Path(folder)
    message = "set LDL_DATA to a folder holding cats_and_dogs_sample/ (e.g. ../shared/data)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


# --------------------------------------------------------------------------------------
# Sample datasets (real photos, found through LDL_DATA)
# --------------------------------------------------------------------------------------


@pytest.mark.samples
def test_cats_and_dogs_sample_index(sample_data_dir):
    train = on_disk.load_index("cats_and_dogs_sample", "train")
    validation = on_disk.load_index("cats_and_dogs_sample", "validation")
    assert len(train) == 800
    assert train.classes == ["cats", "dogs"]
    assert train.counts() == {"cats": 400, "dogs": 400}
    assert validation.counts() == {"cats": 150, "dogs": 150}
    assert on_disk.dataset_status("cats_and_dogs_sample") == "ready"
    assert on_disk.prepare("cats_and_dogs_sample") == sample_data_dir / "cats_and_dogs_sample"


@pytest.mark.samples
def test_flowers_sample_index(sample_data_dir):
    if not (sample_data_dir / "flowers_sample").is_dir():
        pytest.skip("flowers_sample/ is not in LDL_DATA")
    train = on_disk.load_index("flowers_sample", "train")
    assert len(train.classes) == 5
    assert all(count > 0 for count in train.counts().values())


def test_missing_local_only_dataset_explains_ldl_data(tmp_path, monkeypatch):
    monkeypatch.setenv("LDL_DATA", str(tmp_path))
    assert on_disk.dataset_status("cats_and_dogs_sample") == "unavailable"
    with pytest.raises(DatasetUnavailable) as caught:
        on_disk.load_index("cats_and_dogs_sample", "train")
    message = str(caught.value)
    assert "LDL_DATA" in message
    assert str(tmp_path / "cats_and_dogs_sample") in message
    assert caught.value.dataset == "cats_and_dogs_sample"


# --------------------------------------------------------------------------------------
# Offline: a closed port on 127.0.0.1
# --------------------------------------------------------------------------------------


def closed_port_url(filename: str) -> str:
    """A URL on 127.0.0.1 where nothing listens (a port just bound and released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/{filename}"


def test_network_failure_becomes_dataset_unavailable(tmp_path, monkeypatch):
    url = closed_port_url("offline.zip")
    spec = DatasetSpec(
        name="offline",
        description="unreachable",
        files=(RemoteFile(url, "offline.zip", None, "sha256"),),
        folder="offline/offline_root",
        splits=("train", "validation"),
        local_only=False,
        indexer=indexers.index_split_folders,
        layout="train/<class>/*.jpg and validation/<class>/*.jpg",
    )
    monkeypatch.setitem(registry.REGISTRY, "offline", spec)
    monkeypatch.setenv("LDL_DATA", str(tmp_path))
    monkeypatch.delenv("LDL_MIRROR", raising=False)

    assert on_disk.dataset_status("offline") == "missing"
    with pytest.raises(DatasetUnavailable) as caught:
        on_disk.load_index("offline", "train")
    message = str(caught.value)
    assert url in message
    assert str(tmp_path / "offline" / "offline_root") in message
    assert str(tmp_path / "downloads") in message  # where to put the archive by hand
    assert "LDL_DATA" in message
    assert isinstance(caught.value.__cause__, OSError)  # URLError is an OSError
    assert not (tmp_path / "offline").exists()


def test_incomplete_existing_folder_is_reported_and_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("LDL_DATA", str(tmp_path))
    keep = tmp_path / "cats_and_dogs" / "cats_and_dogs_filtered" / "train" / "cats"
    keep.mkdir(parents=True)
    (keep / "mine.jpg").write_bytes(b"not really")
    assert on_disk.dataset_status("cats_and_dogs") == "missing"
    with pytest.raises(DatasetUnavailable, match="exists but is incomplete"):
        on_disk.prepare("cats_and_dogs", progress=False)
    assert (keep / "mine.jpg").read_bytes() == b"not really"


# --------------------------------------------------------------------------------------
# Names, folders, mirror
# --------------------------------------------------------------------------------------


def test_unknown_name_and_split_list_the_valid_ones():
    with pytest.raises(KeyError, match="cats_and_dogs_sample"):
        on_disk.load_index("cats_and_doggos", "train")
    with pytest.raises(ValueError, match="train, validation"):
        on_disk.load_index("cats_and_dogs_sample", "test")


def test_data_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("LDL_DATA", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert registry.data_dir() == tmp_path / "explicit"
    monkeypatch.delenv("LDL_DATA")
    assert registry.data_dir() == tmp_path / "xdg" / "ldl" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert registry.data_dir() == tmp_path / "home" / ".cache" / "ldl" / "data"


def test_mirror_rewrites_every_url(monkeypatch):
    remote = registry.REGISTRY["flowers102"].files[1]
    monkeypatch.delenv("LDL_MIRROR", raising=False)
    assert registry.source_url(remote) == remote.url
    monkeypatch.setenv("LDL_MIRROR", "http://classroom.local:8000/data/")
    assert registry.source_url(remote) == "http://classroom.local:8000/data/imagelabels.mat"


@pytest.mark.parametrize("name", sorted(registry.REGISTRY))
def test_registry_entries_are_consistent(name):
    spec = registry.REGISTRY[name]
    assert spec.name == name
    assert spec.splits and "train" in spec.splits
    if spec.files:
        # Downloads are unpacked into data_dir()/<name>, so the root must lie inside it.
        assert spec.folder == name or spec.folder.startswith(f"{name}/")
        assert not spec.local_only
    for remote in spec.files:
        assert remote.url.startswith("https://")
        assert remote.url.endswith(remote.filename)
        assert remote.algorithm in ("md5", "sha256")
        if remote.checksum is not None:
            length = {"md5": 32, "sha256": 64}[remote.algorithm]
            assert re.fullmatch(f"[0-9a-f]{{{length}}}", remote.checksum)
    if spec.local_only:
        assert spec.files == () and spec.generator is None


def test_flowers102_and_pets_match_torchvision():
    from torchvision.datasets import Flowers102, OxfordIIITPet

    flowers = {
        remote.filename: (remote.url, remote.checksum)
        for remote in registry.REGISTRY["flowers102"].files
    }
    expected_flowers = {
        filename: (Flowers102._download_url_prefix + filename, md5)
        for filename, md5 in Flowers102._file_dict.values()
    }
    assert flowers == expected_flowers

    pets = {(remote.url, remote.checksum) for remote in registry.REGISTRY["oxford_pets"].files}
    assert pets == set(OxfordIIITPet._RESOURCES)


# --------------------------------------------------------------------------------------
# Indexers, on tiny fake copies of the real layouts
# --------------------------------------------------------------------------------------


def touch_images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")  # listing only: the indexers never open files


def test_pet_images_split_is_disjoint_complete_and_stable(tmp_path):
    root = tmp_path / "PetImages"
    touch_images(root / "Cat", [f"{i}.jpg" for i in range(300)])
    touch_images(root / "Dog", [f"{i}.jpg" for i in range(300)])
    (root / "Cat" / "Thumbs.db").write_bytes(b"")

    train = indexers.index_pet_images(root, "train")
    validation = indexers.index_pet_images(root, "validation")
    train_paths = {path for path, _ in train.samples}
    validation_paths = {path for path, _ in validation.samples}
    assert train.classes == ["Cat", "Dog"]
    assert not train_paths & validation_paths
    assert len(train_paths | validation_paths) == 600
    assert 30 <= len(validation_paths) <= 90  # about 1 in 10

    # Removing a broken file moves no other file between splits.
    removed = sorted(train_paths)[0]
    removed.unlink()
    assert {
        path for path, _ in indexers.index_pet_images(root, "validation").samples
    } == validation_paths


def test_flowers102_indexer_reads_the_label_files(tmp_path):
    from scipy.io import savemat

    root = tmp_path / "flowers102"
    touch_images(root / "jpg", [f"image_{i:05d}.jpg" for i in range(1, 7)])
    savemat(root / "imagelabels.mat", {"labels": np.array([[3, 1, 2, 3, 1, 102]])})
    savemat(
        root / "setid.mat",
        {"trnid": np.array([[2, 1]]), "valid": np.array([[3, 4]]), "tstid": np.array([[5, 6]])},
    )

    train = indexers.index_flowers102(root, "train")
    test = indexers.index_flowers102(root, "test")
    assert train.samples == [
        (root / "jpg" / "image_00001.jpg", 2),
        (root / "jpg" / "image_00002.jpg", 0),
    ]
    assert [label for _, label in test.samples] == [0, 101]
    assert len(train.classes) == 102
    assert train.classes[0] == "pink primrose"


def test_oxford_pets_indexer_reads_the_lists(tmp_path):
    root = tmp_path / "oxford_pets"
    (root / "annotations").mkdir(parents=True)
    trainval = [f"Abyssinian_{i} 1 1 1" for i in range(1, 41)] + [
        f"american_bulldog_{i} 2 2 1" for i in range(1, 41)
    ]
    (root / "annotations" / "trainval.txt").write_text("\n".join(trainval) + "\n")
    (root / "annotations" / "test.txt").write_text("Abyssinian_99 1 1 1\namerican_bulldog_99 2 2 1\n")

    train = indexers.index_oxford_pets(root, "train")
    validation = indexers.index_oxford_pets(root, "validation")
    test = indexers.index_oxford_pets(root, "test")
    assert train.classes == ["Abyssinian", "American Bulldog"]
    assert test.samples == [
        (root / "images" / "Abyssinian_99.jpg", 0),
        (root / "images" / "american_bulldog_99.jpg", 1),
    ]
    assert len(train) + len(validation) == 80
    assert 0 < len(validation) < 30
    assert not {p for p, _ in train.samples} & {p for p, _ in validation.samples}


def test_layout_problems_name_what_is_wrong(tmp_path):
    spec = registry.REGISTRY["cats_and_dogs"]
    root = tmp_path / "cats_and_dogs_filtered"
    for folder, count in spec.image_counts:
        (root / folder).mkdir(parents=True)
        for i in range(count):
            (root / folder / f"{i}.jpg").touch()
    assert on_disk.layout_problems(spec, root) == []
    (root / "validation" / "dogs" / "0.jpg").unlink()
    problems = on_disk.layout_problems(spec, root)
    assert len(problems) == 1 and "holds 499 images, expected 500" in problems[0]
