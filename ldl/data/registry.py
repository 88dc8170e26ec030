"""Named datasets: where to get them, how to verify them, where they live, how to index them.

Making a dataset ready and indexing it is :mod:`ldl.data.on_disk`; reading each layout is
:mod:`ldl.data.indexers`.

>>> from ldl.data import load_index
>>> train = load_index("cats_and_dogs_sample", "train")   # doctest: +SKIP
>>> len(train), train.classes                              # doctest: +SKIP
(800, ['cats', 'dogs'])

Everything lives under one data folder, :func:`data_dir`::

    <data_dir>/downloads/<archive>        verified archives, kept so a folder can be re-made
    <data_dir>/<name>/...                 the unpacked dataset

A dataset is *ready* when its folder has the expected layout (and, where known, the expected
number of images). A missing one is downloaded with progress, resumed when interrupted,
verified against the checksum its owner (or torchvision/tfds) publishes, unpacked into a
hidden temporary folder and renamed into place, so a half-finished dataset never looks
complete. Without a network, :class:`DatasetUnavailable` says which URL failed, where the
files are expected and how to put them there by hand, before any training starts.

Environment variables:

- ``LDL_DATA``: the data folder (default ``$XDG_CACHE_HOME/ldl/data``, else
  ``~/.cache/ldl/data``). CI and offline machines point it at a folder holding the
  ``*_sample`` datasets, e.g. ``LDL_DATA=../shared/data``.
- ``LDL_MIRROR``: base URL of a mirror. When set, every file is fetched from
  ``$LDL_MIRROR/<filename>`` instead of its official URL; checksums are unchanged. Useful
  for an instructor's server in a classroom (``python -m http.server`` in a folder holding
  the archives) and for tests, which serve archives from 127.0.0.1.
"""

from __future__ import annotations

import http.client
import os
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ldl.data.indexers import (
    index_flower_photos,
    index_flowers102,
    index_oxford_pets,
    index_pet_images,
    index_split_folders,
)
from ldl.data.index import ImageIndex
from ldl.data.synthetic import write_synthetic_shapes

DATA_ENV = "LDL_DATA"
MIRROR_ENV = "LDL_MIRROR"

# Errors that mean "the network did not deliver": URLError (DNS, refused, HTTP errors),
# OSError (timeouts, resets, a connection closed early) and http.client's protocol errors.
NETWORK_ERRORS = (urllib.error.URLError, OSError, http.client.HTTPException)


class DatasetUnavailable(RuntimeError):
    """A dataset is neither on disk nor downloadable right now.

    The message names the dataset, every URL, the expected path on disk, how to place the
    files by hand, and the ``LDL_DATA`` variable. ``dataset`` holds the dataset's name.
    """

    def __init__(self, dataset: str, message: str) -> None:
        super().__init__(message)
        self.dataset = dataset


# --------------------------------------------------------------------------------------
# Where things live
# --------------------------------------------------------------------------------------


def data_dir() -> Path:
    """The data folder: ``$LDL_DATA``, else ``$XDG_CACHE_HOME/ldl/data``, else ``~/.cache/ldl/data``."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home).expanduser() / "ldl" / "data"


def check_data_dir() -> Path:
    """``data_dir()``, or ``NotADirectoryError`` naming ``LDL_DATA`` when it is (or lies under) a file.

    Without this, ``LDL_DATA=~/notes.txt`` surfaced as a bare ``FileExistsError`` from deep
    inside a download.
    """
    folder = data_dir()
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        origin = f"{DATA_ENV} points at" if os.environ.get(DATA_ENV) else "The default data folder is"
        raise NotADirectoryError(
            f"{origin} {folder}, which cannot be the data folder: {existing} is a file, not a "
            f"folder. Set {DATA_ENV} to a folder (it is created if missing), or unset {DATA_ENV} "
            "to use the default ($XDG_CACHE_HOME/ldl/data, else ~/.cache/ldl/data)."
        )
    return folder


def downloads_dir() -> Path:
    """Where verified archives are kept: ``data_dir()/downloads``."""
    return data_dir() / "downloads"


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset, as its owner publishes it.

    Attributes:
        url: official download address.
        filename: name of the file in ``downloads/`` (and on a mirror).
        checksum: hex digest published by the owner (or torchvision/tfds); None if none is.
        algorithm: ``"md5"`` or ``"sha256"``.
        size: size in bytes, or None when unknown. Checked even without a checksum.
        listing: for an archive without a published checksum, ``(folder inside the
            archive, number of images under it)`` pairs its listing must show before the
            download is kept, so that a truncated or wrong archive is caught at once.
    """

    url: str
    filename: str
    checksum: str | None
    algorithm: str
    size: int | None = None
    listing: tuple[tuple[str, int], ...] = ()


def source_url(remote: RemoteFile) -> str:
    """The URL to fetch: ``$LDL_MIRROR/<filename>`` when ``LDL_MIRROR`` is set, else ``remote.url``."""
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        return f"{mirror.rstrip('/')}/{remote.filename}"
    return remote.url


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the registry knows about one dataset.

    Attributes:
        name: registry key; the dataset is unpacked into ``data_dir()/<name>/``.
        description: one line for humans.
        files: what to download; empty for local-only and generated datasets.
        folder: the dataset's root folder, relative to ``data_dir()``.
        splits: split names :func:`load_index` accepts.
        local_only: never downloaded, only found in ``data_dir()`` (the ``*_sample`` sets).
        indexer: ``indexer(root, split) -> ImageIndex``.
        layout: the expected content of the root folder, for error messages.
        required: paths (relative to the root) that must exist when the dataset is ready.
        image_counts: ``(folder relative to the root, exact number of images)`` pairs
            checked when no checksum covers the content, or to catch a partial extraction.
        generator: for generated datasets, ``generator(root)`` writes the root folder.
    """

    name: str
    description: str
    files: tuple[RemoteFile, ...]
    folder: str
    splits: tuple[str, ...]
    local_only: bool
    indexer: Callable[[Path, str], ImageIndex]
    layout: str
    required: tuple[str, ...] = ()
    image_counts: tuple[tuple[str, int], ...] = ()
    generator: Callable[[Path], Path] | None = None


# --------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------

REGISTRY: dict[str, DatasetSpec] = {
    "cats_and_dogs": DatasetSpec(
        name="cats_and_dogs",
        description="Google's cats_and_dogs_filtered: 2000 train + 1000 validation Kaggle photos.",
        # Google publishes no checksum for this archive, so the download is verified by
        # its listing before it is kept and by its layout after unpacking: exact image
        # counts (1000+1000 train, 500+500 validation). Its size and sha256 are still to
        # be recorded (size=, checksum=) from a download verified this way on a machine
        # with a network; until then a wrong size is caught by the listing alone.
        files=(
            RemoteFile(
                url="https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip",
                filename="cats_and_dogs_filtered.zip",
                checksum=None,
                algorithm="sha256",
                listing=(
                    ("cats_and_dogs_filtered/train/cats", 1000),
                    ("cats_and_dogs_filtered/train/dogs", 1000),
                    ("cats_and_dogs_filtered/validation/cats", 500),
                    ("cats_and_dogs_filtered/validation/dogs", 500),
                ),
            ),
        ),
        folder="cats_and_dogs/cats_and_dogs_filtered",
        splits=("train", "validation"),
        local_only=False,
        indexer=index_split_folders,
        layout="train/{cats,dogs}/*.jpg and validation/{cats,dogs}/*.jpg",
        image_counts=(
            ("train/cats", 1000),
            ("train/dogs", 1000),
            ("validation/cats", 500),
            ("validation/dogs", 500),
        ),
    ),
    "cats_vs_dogs_full": DatasetSpec(
        name="cats_vs_dogs_full",
        description="Microsoft's PetImages: 25,000 Kaggle cat and dog photos, some broken.",
        # The archive TensorFlow Datasets' `cats_vs_dogs` uses. Its size is the
        # Content-Length download.microsoft.com serves; the sha256 is the one the gomlx
        # project (examples/dogsvscats) pins for this URL. tfds's own checksum file for
        # this version of the archive was not available to check against.
        files=(
            RemoteFile(
                url=(
                    "https://download.microsoft.com/download/3/E/1/"
                    "3E1C3F21-ECDB-4869-8368-6DEBA77B919F/kagglecatsanddogs_5340.zip"
                ),
                filename="kagglecatsanddogs_5340.zip",
                checksum="b7974bd00a84a99921f36ee4403f089853777b5ae8d151c76a86e64900334af9",
                algorithm="sha256",
                size=824887076,
            ),
        ),
        folder="cats_vs_dogs_full/PetImages",
        splits=("train", "validation"),
        local_only=False,
        indexer=index_pet_images,
        layout="Cat/<n>.jpg and Dog/<n>.jpg (12,500 files each)",
        image_counts=(("Cat", 12500), ("Dog", 12500)),
    ),
    "flowers102": DatasetSpec(
        name="flowers102",
        description="Oxford 102 Flowers: 8189 photos of 102 species, official splits.",
        # URLs and md5s as in torchvision.datasets.Flowers102 (_download_url_prefix and
        # _file_dict); tests/test_registry.py checks they still agree.
        files=(
            RemoteFile(
                url="https://www.robots.ox.ac.uk/~vgg/data/flowers/102/102flowers.tgz",
                filename="102flowers.tgz",
                checksum="52808999861908f626f3c1f4e79d11fa",
                algorithm="md5",
            ),
            RemoteFile(
                url="https://www.robots.ox.ac.uk/~vgg/data/flowers/102/imagelabels.mat",
                filename="imagelabels.mat",
                checksum="e0620be6f572b9609742df49c70aed4d",
                algorithm="md5",
            ),
            RemoteFile(
                url="https://www.robots.ox.ac.uk/~vgg/data/flowers/102/setid.mat",
                filename="setid.mat",
                checksum="a5357ecc9cb78c4bef273ce3793fc85c",
                algorithm="md5",
            ),
        ),
        folder="flowers102",
        splits=("train", "validation", "test"),
        local_only=False,
        indexer=index_flowers102,
        layout="jpg/image_00001.jpg ... jpg/image_08189.jpg, imagelabels.mat, setid.mat",
        required=("imagelabels.mat", "setid.mat"),
        image_counts=(("jpg", 8189),),
    ),
    "oxford_pets": DatasetSpec(
        name="oxford_pets",
        description="Oxford-IIIT Pets: 37 cat and dog breeds, official trainval/test lists.",
        # URLs and md5s as in torchvision.datasets.OxfordIIITPet._RESOURCES;
        # tests/test_registry.py checks they still agree.
        files=(
            RemoteFile(
                url="https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz",
                filename="images.tar.gz",
                checksum="5c4f3ee8e5d25df40f4fd59a7f44e54c",
                algorithm="md5",
            ),
            RemoteFile(
                url="https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz",
                filename="annotations.tar.gz",
                checksum="95a8c909bbe2e81eed6a22bccdf3f68f",
                algorithm="md5",
            ),
        ),
        folder="oxford_pets",
        splits=("train", "validation", "test"),
        local_only=False,
        indexer=index_oxford_pets,
        layout="images/<Breed_n>.jpg, annotations/trainval.txt, annotations/test.txt",
        required=("images", "annotations/trainval.txt", "annotations/test.txt"),
    ),
    "flower_photos": DatasetSpec(
        name="flower_photos",
        description="TensorFlow's flower_photos: 3670 photos of 5 kinds of flowers.",
        # Size and sha256 from TensorFlow Datasets' tf_flowers checksums.tsv, which lists
        # the same object under http://download.tensorflow.org/example_images/.
        files=(
            RemoteFile(
                url="https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz",
                filename="flower_photos.tgz",
                checksum="4c54ace7911aaffe13a365c34f650e71dd5bf1be0a58b464e5a7183e3e595d9c",
                algorithm="sha256",
                size=228813984,
            ),
        ),
        folder="flower_photos/flower_photos",
        splits=("train", "validation"),
        local_only=False,
        indexer=index_flower_photos,
        layout="{daisy,dandelion,roses,sunflowers,tulips}/*.jpg (3670 photos)",
        required=("daisy", "dandelion", "roses", "sunflowers", "tulips"),
        image_counts=((".", 3670),),
    ),
    "cats_and_dogs_sample": DatasetSpec(
        name="cats_and_dogs_sample",
        description="Small local copy of real cats and dogs photos (400+400 train, 150+150 validation).",
        files=(),
        folder="cats_and_dogs_sample",
        splits=("train", "validation"),
        local_only=True,
        indexer=index_split_folders,
        layout="train/{cats,dogs}/*.jpg and validation/{cats,dogs}/*.jpg",
        required=("train", "validation"),
    ),
    "flowers_sample": DatasetSpec(
        name="flowers_sample",
        description="Small local copy of 5-class flower photos, 128x128.",
        files=(),
        folder="flowers_sample",
        splits=("train", "validation"),
        local_only=True,
        indexer=index_split_folders,
        layout="train/<class>/*.jpg and validation/<class>/*.jpg",
        required=("train", "validation"),
    ),
    "synthetic": DatasetSpec(
        name="synthetic",
        description="Generated circles, squares and triangles (64x64 PNG); always available.",
        files=(),
        folder="synthetic",
        splits=("train", "validation"),
        local_only=False,
        indexer=index_split_folders,
        layout="train/{circle,square,triangle}/*.png and validation/{circle,square,triangle}/*.png",
        required=("train", "validation"),
        generator=write_synthetic_shapes,
    ),
}


def is_folder_name(name: str) -> bool:
    """Does ``name`` name a folder of one's own photos (a path) rather than a registry entry?"""
    return "/" in name or os.sep in name or name.startswith(("~", "."))


def folder_spec(folder: str | Path) -> DatasetSpec:
    """A dataset made of one's own folder of photos laid out as ``train|validation/<class>/``.

    This is what ``LDL_DATASET=/path/to/photos`` gives every lesson (see ``ldl.profiles``):
    an instructor's own photos, or the sample photos run at another profile's sizes. Its
    name is the folder's absolute path, so the tensor cache and the report say which it was.
    """
    root = Path(folder).expanduser().resolve()
    return DatasetSpec(
        name=str(root),
        description=f"Photos in {root}",
        files=(),
        folder=str(root),  # absolute: data_dir() / folder is the folder itself
        splits=("train", "validation"),
        local_only=True,
        indexer=index_split_folders,
        layout="train/<class>/<images> and validation/<class>/<images>, the same classes in both",
        required=("train", "validation"),
    )


def get_spec(name: str) -> DatasetSpec:
    """The registry entry for ``name`` (or a folder's, for a path); ``KeyError`` listing the known names otherwise."""
    if name in REGISTRY:
        return REGISTRY[name]
    if is_folder_name(name):
        return folder_spec(name)
    raise KeyError(
        f"Unknown dataset {name!r}. Known datasets: {', '.join(sorted(REGISTRY))}, "
        "or a path to a folder holding train/<class>/ and validation/<class>/."
    )
