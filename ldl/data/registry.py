"""Named datasets: where to get them, how to verify them, where they live, how to index them.

>>> from ldl.data.registry import load_index
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
import shutil
import stat
import tempfile
import urllib.error
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ldl.data.download import ChecksumMismatch, download_file, extract_archive, is_archive, verify_file
from ldl.data.index import IMAGE_SUFFIXES, ImageIndex, index_image_folder
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
        size: size in bytes, or None when unknown.
    """

    url: str
    filename: str
    checksum: str | None
    algorithm: str
    size: int | None = None


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
# Indexers: unpacked files -> ImageIndex per split
# --------------------------------------------------------------------------------------


def index_split_folders(root: Path, split: str) -> ImageIndex:
    """``root/<split>/<class>/<image>``: the ``cats_and_dogs_filtered`` layout."""
    return index_image_folder(root / split)


def in_validation(name: str, one_in: int) -> bool:
    """Deterministic hold-out: a file is in validation when ``crc32(name) % one_in == 0``.

    It depends on the file's own name only (not on its position in a listing), so deleting
    a broken file never moves another file from train to validation, and it is the same on
    every machine and Python version (unlike ``hash()``).
    """
    return zlib.crc32(name.encode("utf-8")) % one_in == 0


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


# --------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------

REGISTRY: dict[str, DatasetSpec] = {
    "cats_and_dogs": DatasetSpec(
        name="cats_and_dogs",
        description="Google's cats_and_dogs_filtered: 2000 train + 1000 validation Kaggle photos.",
        # Google publishes no checksum for this archive, so the download is verified by
        # its layout and exact image counts instead (1000+1000 train, 500+500 validation).
        files=(
            RemoteFile(
                url="https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip",
                filename="cats_and_dogs_filtered.zip",
                checksum=None,
                algorithm="sha256",
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


# --------------------------------------------------------------------------------------
# Status, prepare, load
# --------------------------------------------------------------------------------------


def _is_writable(folder: Path) -> bool:
    """Can ``folder`` be written, or created under its nearest existing parent?"""
    while not folder.exists():
        if folder.parent == folder:
            return False
        folder = folder.parent
    # os.access is always True for root (CI containers often run as root), so the owner's
    # write bit is checked too: a folder made read-only (chmod a-w) is not to be written.
    owner_may_write = bool(folder.stat().st_mode & stat.S_IWUSR)
    return owner_may_write and os.access(folder, os.W_OK)


def dataset_root(name: str) -> Path:
    """The folder a ready dataset lives in (whether or not it is there yet).

    Generated datasets fall back to the system's temporary folder when ``data_dir()`` is
    read-only (e.g. ``LDL_DATA`` pointing at a shared read-only folder), because they are
    promised to be always available.
    """
    spec = get_spec(name)
    root = data_dir() / spec.folder
    if spec.generator is not None and not root.exists() and not _is_writable(data_dir()):
        return Path(tempfile.gettempdir()) / "ldl-data" / spec.folder
    return root


def _count_images(folder: Path) -> int:
    return sum(
        1 for path in folder.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
    )


def layout_problems(spec: DatasetSpec, root: Path) -> list[str]:
    """What is wrong with ``root`` as the dataset's folder; an empty list means ready."""
    if not root.is_dir():
        return [f"{root} does not exist"]
    problems = [f"{root / rel} is missing" for rel in spec.required if not (root / rel).exists()]
    for rel, expected in spec.image_counts:
        found = _count_images(root / rel)
        if found != expected:
            problems.append(f"{(root / rel).resolve()} holds {found} images, expected {expected}")
    return problems


def dataset_status(name: str) -> str:
    """``"ready"`` (on disk, or generated on demand), ``"missing"`` (downloadable) or
    ``"unavailable"`` (local-only and absent)."""
    spec = get_spec(name)
    if spec.generator is not None or not layout_problems(spec, dataset_root(name)):
        return "ready"
    return "unavailable" if spec.local_only else "missing"


def _explain(spec: DatasetSpec, reason: str) -> str:
    """The :class:`DatasetUnavailable` message: what failed and how to fix it by hand."""
    root = data_dir() / spec.folder
    lines = [f"Dataset {spec.name!r} is not available: {reason}", f"Expected at: {root}"]
    if spec.name not in REGISTRY:  # one's own folder, e.g. from LDL_DATASET
        lines.append(
            f"A folder of your own photos must hold {spec.layout}. "
            "Check the path (LDL_DATASET, or the dataset= argument), or unset LDL_DATASET to use the profile's data."
        )
        return "\n".join(lines)
    if spec.local_only:
        lines += [
            f"It is never downloaded: it is a small local copy, a folder {root}/ holding {spec.layout}.",
            f"Point the environment variable {DATA_ENV} at a folder that holds {spec.folder}/ "
            f"(for example the course's shared data folder: {DATA_ENV}=../shared/data), "
            f"or copy {spec.folder}/ into {data_dir()}.",
        ]
        return "\n".join(lines)

    lines.append("It is downloaded from:")
    for remote in spec.files:
        check = f"  ({remote.algorithm} {remote.checksum})" if remote.checksum else ""
        lines.append(f"    {remote.url}{check}")
        if source_url(remote) != remote.url:
            lines.append(f"    (via {MIRROR_ENV}: {source_url(remote)})")
    names = ", ".join(remote.filename for remote in spec.files)
    lines += [
        "To place the files by hand (e.g. downloaded on another machine), either",
        f"  - put {names} into {downloads_dir()}/ and run again: they are verified and unpacked; or",
        f"  - unpack them into {data_dir() / spec.name}/ so that {root}/ holds {spec.layout}.",
        f"The data folder is {data_dir()}; set the environment variable {DATA_ENV} to use another "
        f"one (e.g. a shared folder that already holds {spec.folder}).",
    ]
    return "\n".join(lines)


def _fetch(spec: DatasetSpec, download: bool, progress: bool) -> list[Path]:
    """Make sure every file of ``spec`` is in ``downloads/`` and verified; return their paths."""
    paths = []
    for remote in spec.files:
        path = downloads_dir() / remote.filename
        url = source_url(remote)
        if not download:
            try:
                verify_file(
                    path, checksum=remote.checksum, algorithm=remote.algorithm, expected_size=remote.size
                )
            except (FileNotFoundError, ChecksumMismatch) as error:
                raise DatasetUnavailable(
                    spec.name,
                    _explain(spec, f"download=False and {path} is not there or not verified ({error})."),
                ) from error
        else:
            try:
                download_file(
                    url,
                    path,
                    checksum=remote.checksum,
                    algorithm=remote.algorithm,
                    expected_size=remote.size,
                    progress=progress,
                )
            except ChecksumMismatch:
                raise  # not a network problem: its own message says to run again
            except NETWORK_ERRORS as error:
                raise DatasetUnavailable(
                    spec.name,
                    _explain(spec, f"downloading {url} failed ({type(error).__name__}: {error})."),
                ) from error
        paths.append(path)
    return paths


def _assemble(spec: DatasetSpec, files: list[Path], progress: bool) -> None:
    """Unpack/copy ``files`` into ``data_dir()/<name>`` atomically, after checking the layout.

    Everything goes into a hidden temporary sibling folder first; only when the layout
    checks pass is it renamed to ``data_dir()/<name>``.
    """
    target = data_dir() / spec.name
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}.tmp-", dir=data_dir()))
    try:
        for path in files:
            if is_archive(path):
                if progress:
                    print(f"Unpacking {path.name} ...", flush=True)
                unpacked = extract_archive(path, staging / f".unpack-{path.name}")
                for entry in unpacked.iterdir():  # merge several archives into one folder
                    os.replace(entry, staging / entry.name)
                unpacked.rmdir()
            else:
                shutil.copy2(path, staging / path.name)
        staged_root = staging / Path(spec.folder).relative_to(spec.name)
        problems = layout_problems(spec, staged_root)
        if problems:
            raise DatasetUnavailable(
                spec.name,
                _explain(
                    spec,
                    "the downloaded files do not have the expected layout: " + "; ".join(problems) + ".",
                ),
            )
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def prepare(name: str, *, download: bool = True, progress: bool = True) -> Path:
    """Return the root folder of a ready dataset, downloading and unpacking it if needed.

    Args:
        name: a key of :data:`REGISTRY`.
        download: allow network access. With False, files already in ``downloads/`` are
            still verified and unpacked, but nothing is fetched.
        progress: show progress bars and messages.

    Raises:
        KeyError: unknown name.
        DatasetUnavailable: no network, ``download=False`` with files missing, a local-only
            dataset absent, or a dataset folder that exists but is incomplete.
        ChecksumMismatch: downloaded bytes are corrupt (deleted; run again).
    """
    spec = get_spec(name)
    root = dataset_root(name)
    problems = layout_problems(spec, root)
    if not problems:
        return root
    if spec.generator is not None:
        if root.exists():
            raise DatasetUnavailable(
                name,
                f"{root} exists but is incomplete ({'; '.join(problems)}). "
                "Delete it: it is generated again on the next use.",
            )
        return spec.generator(root)
    if spec.local_only:
        raise DatasetUnavailable(name, _explain(spec, f"{root} was not found."))

    target = data_dir() / spec.name
    if target.exists():
        # Never delete someone's folder: a partial manual copy, or images removed by hand.
        raise DatasetUnavailable(
            name,
            _explain(
                spec,
                f"{target} exists but is incomplete: {'; '.join(problems)}. "
                f"Delete or rename {target} and run again "
                f"(archives already in {downloads_dir()} are reused).",
            ),
        )
    data_dir().mkdir(parents=True, exist_ok=True)
    files = _fetch(spec, download, progress)
    _assemble(spec, files, progress)
    return root


def load_index(name: str, split: str = "train") -> ImageIndex:
    """The :class:`~ldl.data.index.ImageIndex` of one split, preparing the dataset first.

    Raises:
        KeyError: unknown dataset name (the message lists the known ones).
        ValueError: unknown split (the message lists the dataset's splits).
        DatasetUnavailable: see :func:`prepare`.
    """
    spec = get_spec(name)
    if split not in spec.splits:
        raise ValueError(
            f"Dataset {name!r} has no split {split!r}; choose one of {', '.join(spec.splits)}."
        )
    root = prepare(name)
    return spec.indexer(root, split)
