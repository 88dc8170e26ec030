"""Indexers: a dataset's unpacked files -> one :class:`ImageIndex` per split.

Each dataset of :data:`ldl.data.registry.REGISTRY` names the indexer that reads its layout:
class folders per split, a file list, or a deterministic hashed hold-out where the publisher
gives no validation split.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

from ldl.data.index import ImageIndex, class_folders, different_classes_message, index_image_folder

# The split folders of the ``root/<split>/<class>/<image>`` layout that must share classes.
SPLIT_FOLDERS = ("train", "validation", "test")


def index_split_folders(root: Path, split: str) -> ImageIndex:
    """``root/<split>/<class>/<image>``: the ``cats_and_dogs_filtered`` layout.

    Each split is labelled with one class list, checked against every split folder present:
    indexing each folder alone would let an extra (even empty) ``train/birds/`` shift every
    validation label by one, silently.

    Raises:
        ValueError: the split folders' class folders differ (the message names them), or a
            class folder holds no image.
    """
    classes = class_folders(root / split) if (root / split).is_dir() else []
    folders = {root / name: class_folders(root / name) for name in SPLIT_FOLDERS if (root / name).is_dir()}
    every = sorted({name for found in folders.values() for name in found})
    if any(found != every for found in folders.values()):
        raise ValueError(different_classes_message(folders))
    return index_image_folder(root / split, classes=classes or None)


def in_validation(name: str, one_in: int) -> bool:
    """Deterministic hold-out: a file is in validation when ``crc32(name) % one_in == 0``.

    It depends on the file's own name only (not on its position in a listing), so deleting
    a broken file never moves another file from train to validation, and it is the same on
    every machine and Python version (unlike ``hash()``).
    """
    # fsencode: the file name's bytes as on disk (UTF-8 for valid names, so the split is
    # unchanged), and no UnicodeEncodeError for a name that is not valid UTF-8.
    return zlib.crc32(os.fsencode(name)) % one_in == 0


def _hashed_split(index: ImageIndex, split: str, one_in: int) -> ImageIndex:
    """Keep the samples of ``split`` ("train" or "validation") of a split-less folder."""
    want_validation = split == "validation"
    samples = [
        (path, label)
        for path, label in index.samples
        if in_validation(path.name, one_in) == want_validation
    ]
    return ImageIndex(samples, list(index.classes), index.root)


def index_pet_images(root: Path, split: str) -> ImageIndex:
    """Microsoft's ``PetImages/{Cat,Dog}``, which has no split: 1 file in 10 is validation.

    The files are listed, not opened: the archive really holds zero-byte and truncated
    JPEGs, which the robust dataset skips and reports when it reads them.
    """
    return _hashed_split(index_image_folder(root), split, one_in=10)


def index_flower_photos(root: Path, split: str) -> ImageIndex:
    """TensorFlow's ``flower_photos/<5 classes>``, which has no split: 1 file in 5 is validation
    (the 80/20 split TensorFlow's own tutorials use)."""
    return _hashed_split(index_image_folder(root), split, one_in=5)


def flowers102_class_names() -> list[str]:
    """The 102 flower names, in label order, as torchvision lists them (``Flowers102.classes``)."""
    from torchvision.datasets import Flowers102  # lazy: only this dataset needs it

    names = getattr(Flowers102, "classes", None)  # absent in old torchvision releases
    return list(names) if names else [f"class_{k:03d}" for k in range(1, 103)]


def index_flowers102(root: Path, split: str) -> ImageIndex:
    """Oxford 102 Flowers from its label files.

    ``imagelabels.mat`` holds ``labels``: (8189,) ints in 1..102, one per image;
    ``setid.mat`` holds the 1-based image ids of each split (``trnid``, ``valid``,
    ``tstid``). Note the official split is unusual: 10 images per class for train and
    for validation, and the remaining 6149 for test.
    """
    from scipy.io import loadmat  # lazy: scipy is only needed for this dataset

    set_key = {"train": "trnid", "validation": "valid", "test": "tstid"}[split]
    labels = loadmat(root / "imagelabels.mat", squeeze_me=True)["labels"]  # (8189,)
    image_ids = loadmat(root / "setid.mat", squeeze_me=True)[set_key]  # (N,) 1-based
    samples = [
        (root / "jpg" / f"image_{image_id:05d}.jpg", int(labels[image_id - 1]) - 1)
        for image_id in sorted(int(i) for i in image_ids)
    ]
    return ImageIndex(samples, flowers102_class_names(), root)


def _read_pet_list(path: Path) -> list[tuple[str, int]]:
    """``annotations/<list>.txt`` rows ``Abyssinian_100 1 1 1`` -> ``[("Abyssinian_100", 0), ...]``."""
    rows = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            image_id, class_id, *_ = line.split()
            rows.append((image_id, int(class_id) - 1))
    return rows


def index_oxford_pets(root: Path, split: str) -> ImageIndex:
    """Oxford-IIIT Pets (37 breeds) from ``annotations/trainval.txt`` and ``test.txt``.

    ``test`` is the official test list. The official ``trainval`` list is split
    deterministically: 1 image in 10 (by name, see :func:`in_validation`) is validation.
    Class names follow torchvision: ``american_bulldog`` -> ``American Bulldog``.
    """
    trainval = _read_pet_list(root / "annotations" / "trainval.txt")
    test = _read_pet_list(root / "annotations" / "test.txt")

    # A breed's name is its image ids' prefix: "american_bulldog_12" -> "american_bulldog".
    raw_names = {label: image_id.rsplit("_", 1)[0] for image_id, label in trainval + test}
    classes = [
        " ".join(part.title() for part in raw_names[label].split("_")) for label in sorted(raw_names)
    ]

    if split == "test":
        rows = test
    else:
        want_validation = split == "validation"
        rows = [
            (image_id, label)
            for image_id, label in trainval
            if in_validation(image_id, 10) == want_validation
        ]
    samples = sorted((root / "images" / f"{image_id}.jpg", label) for image_id, label in rows)
    return ImageIndex(samples, classes, root)
