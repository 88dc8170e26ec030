"""A named dataset on disk: is it ready, make it ready, index it.

:func:`prepare` downloads (with progress, resumed when interrupted), verifies, unpacks into a
hidden temporary folder and renames it into place, so a half-finished dataset never looks
complete; :func:`load_index` indexes one split of a ready dataset. Which datasets exist and
where their files come from is :mod:`ldl.data.registry`.

Two processes preparing one dataset (two notebooks started at once on one ``LDL_DATA``)
take turns: a lock file ``<data_dir>/.<name>.lock`` is held around download and unpacking,
and the second process waits, says so once, and then finds the dataset ready.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ldl.data.archives import archive_members, check_archive, extract_archive, is_archive
from ldl.data.download import download_file, verify_file
from ldl.data.file_checks import ChecksumMismatch, NotEnoughSpace, UnsafeArchive, ensure_free_space, set_aside
from ldl.data.index import IMAGE_SUFFIXES, ImageIndex
from ldl.data.registry import (
    DATA_ENV,
    MIRROR_ENV,
    NETWORK_ERRORS,
    REGISTRY,
    DatasetSpec,
    DatasetUnavailable,
    check_data_dir,
    data_dir,
    downloads_dir,
    get_spec,
    source_url,
)

if sys.platform == "win32":
    import msvcrt

    # Windows has no flock: msvcrt locks the file's first byte, and a blocked process polls.
    # (Not exercised by the tests, which run on Linux.)
    def _try_lock(handle: IO[bytes]) -> bool:
        handle.seek(0)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _wait_for_lock(handle: IO[bytes]) -> None:
        while not _try_lock(handle):
            time.sleep(0.5)

    def _unlock(handle: IO[bytes]) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(handle: IO[bytes]) -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _wait_for_lock(handle: IO[bytes]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)

    def _unlock(handle: IO[bytes]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def _exclusive(lock_path: Path, name: str) -> Iterator[None]:
    """Hold ``lock_path`` so that one process at a time prepares dataset ``name``.

    The operating system releases the lock when its process dies, so a crash never
    leaves the dataset locked. The empty lock file stays: deleting it would let a third
    process lock a new file of the same name while the second still holds the old one.
    """
    try:
        handle = open(lock_path, "a+b")
    except PermissionError:
        # A read-only data folder: no process can prepare anything there, so there is
        # nothing to take turns on, and the next step raises its own clearer error.
        yield
        return
    with handle:
        if not _try_lock(handle):
            print(
                f"ldl: waiting for another process preparing {name!r} (it holds {lock_path}) ...",
                file=sys.stderr,
                flush=True,
            )
            _wait_for_lock(handle)
        try:
            yield
        finally:
            _unlock(handle)


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
                if is_archive(path):
                    check_archive(path, remote.listing)
            except (FileNotFoundError, ChecksumMismatch, UnsafeArchive) as error:
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
                    listing=remote.listing,
                    progress=progress,
                )
            except (ChecksumMismatch, NotEnoughSpace):
                raise  # not a network problem: its own message says what to do
            except NETWORK_ERRORS as error:
                raise DatasetUnavailable(
                    spec.name,
                    _explain(spec, f"downloading {url} failed ({type(error).__name__}: {error})."),
                ) from error
        paths.append(path)
    return paths


def _unpacked_size(files: list[Path]) -> int:
    """Bytes the files take once unpacked or copied, from the archives' listings."""
    return sum(
        sum(size for _, size in archive_members(path)) if is_archive(path) else path.stat().st_size
        for path in files
    )


def _assemble(spec: DatasetSpec, files: list[Path], progress: bool) -> None:
    """Unpack/copy ``files`` into ``data_dir()/<name>`` atomically, after checking the layout.

    Everything goes into a hidden temporary sibling folder first; only when the layout
    checks pass is it renamed to ``data_dir()/<name>``. An archive that fails to unpack is
    moved aside (:func:`~ldl.data.file_checks.set_aside`), so the next run fetches it again.
    """
    names = ", ".join(path.name for path in files)
    ensure_free_space(data_dir(), _unpacked_size(files), f"unpacking {names}")
    target = data_dir() / spec.name
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}.tmp-", dir=data_dir()))
    try:
        for path in files:
            if is_archive(path):
                if progress:
                    print(f"Unpacking {path.name} ...", flush=True)
                try:
                    unpacked = extract_archive(path, staging / f".unpack-{path.name}")
                except (ChecksumMismatch, UnsafeArchive) as error:  # damaged or unsafe
                    raise set_aside(path, error) from error
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
        BadDownload, UnsafeArchive: not a usable archive (moved aside; run again).
        NotEnoughSpace: too little free disk space to download or unpack; nothing written.
        NotADirectoryError: ``LDL_DATA`` names a file.
    """
    spec = get_spec(name)
    if spec.name in REGISTRY:  # one's own folder does not live in the data folder
        check_data_dir()
    root = dataset_root(name)
    if not layout_problems(spec, root):
        return root
    if spec.local_only:
        raise DatasetUnavailable(name, _explain(spec, f"{root} was not found."))
    # Generated datasets may live outside data_dir() (see dataset_root); lock beside them.
    lock_folder = root.parent if spec.generator is not None else data_dir()
    lock_folder.mkdir(parents=True, exist_ok=True)
    with _exclusive(lock_folder / f".{spec.name}.lock", spec.name):
        return _prepare_unshared(spec, root, download, progress)


def _prepare_unshared(spec: DatasetSpec, root: Path, download: bool, progress: bool) -> Path:
    """:func:`prepare`'s work, run by one process at a time (it holds the dataset's lock)."""
    name = spec.name
    problems = layout_problems(spec, root)
    if not problems:
        return root  # another process made it ready while this one waited
    if spec.generator is not None:
        if root.exists():
            raise DatasetUnavailable(
                name,
                f"{root} exists but is incomplete ({'; '.join(problems)}). "
                "Delete it: it is generated again on the next use.",
            )
        return spec.generator(root)

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
