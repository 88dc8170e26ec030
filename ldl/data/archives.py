"""Archives: read a listing, check a download is a usable archive, unpack it safely.

An archive is usable when it opens, lists its members, holds something, its zip sizes fit
in the file, and (where the registry says so) it lists the expected images. Unpacking
refuses members that would land outside the target folder (``../``, absolute paths,
links), and writes into a fresh folder renamed into place, so a half-unpacked dataset never
looks complete.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from ldl.data.file_checks import BadDownload, UnsafeArchive
from ldl.data.index import IMAGE_SUFFIXES

# What reading a damaged archive raises, from zipfile, tarfile, gzip and zlib.
_ARCHIVE_ERRORS = (zipfile.BadZipFile, tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error)


def is_archive(path: str | Path) -> bool:
    """True for the archive types :func:`extract_archive` unpacks (.zip, .tar, .tar.gz, .tgz)."""
    name = Path(path).name.lower()
    return name.endswith((".zip", ".tar", ".tar.gz", ".tgz"))


def archive_members(path: Path, name: str | None = None) -> list[tuple[str, int]]:
    """``(name, unpacked size)`` of every member, or :class:`BadDownload` if none can be read.

    For a .tar.gz this reads the whole file (a gzip stream has no index), which is also
    what finds a truncated one. ``name`` is the file's name in messages (default its own,
    but a ``.part`` is reported under the name it is meant to get).
    """
    name = name or path.name
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as bundle:
                infos = bundle.infolist()
            if sum(info.compress_size for info in infos) > path.stat().st_size:
                raise BadDownload(f"{name} lists more compressed bytes than it holds.")
            return [(info.filename, info.file_size) for info in infos]
        if tarfile.is_tarfile(path):
            with tarfile.open(path, "r:*") as bundle:
                return [(member.name, member.size) for member in bundle.getmembers()]
    except _ARCHIVE_ERRORS as error:
        raise BadDownload(f"{name} is damaged or truncated ({type(error).__name__}: {error}).") from error
    raise BadDownload(f"{name} is not a .zip or .tar(.gz) archive, or is truncated{_looks_like(path)}.")


def _looks_like(path: Path) -> str:
    """`` (it is a web page ...)`` when the file starts like HTML, else ``""``."""
    with open(path, "rb") as stream:
        head = stream.read(1024).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return " (it is a web page: an error or login page served instead of the file)"
    return ""


def check_archive(path: Path, listing: tuple[tuple[str, int], ...] = (), name: str | None = None) -> int:
    """Check that ``path`` is a usable archive; return the bytes it unpacks to.

    Usable: it opens, its listing reads, it holds something, every member stays inside
    the extraction folder, and each ``(folder, count)`` of ``listing`` holds exactly
    ``count`` images (counted under ``folder/``, at any depth). ``name`` is the file's
    name in messages (default its own).

    Raises:
        BadDownload: not an archive, damaged, empty, or the wrong images.
        UnsafeArchive: a member would land outside the extraction folder.
    """
    shown = Path(name) if name else path
    members = archive_members(path, shown.name)
    if not members:
        raise BadDownload(f"{shown.name} is an archive with nothing in it.")
    for member, _ in members:
        _check_member_name(member, shown)
    for folder, expected in listing:
        prefix = folder.rstrip("/") + "/"
        found = sum(
            1
            for member, _ in members
            if member.startswith(prefix) and PurePosixPath(member).suffix.lower() in IMAGE_SUFFIXES
        )
        if found != expected:
            raise BadDownload(f"{shown.name}: {prefix} holds {found} images in its listing, expected {expected}.")
    return sum(size for _, size in members)


def extract_archive(archive: str | Path, dest: str | Path) -> Path:
    """Unpack a .zip, .tar, .tar.gz or .tgz archive so that ``dest`` is complete or absent.

    Members are first written to a hidden sibling folder ``.<dest name>.tmp-<random>``,
    which is renamed to ``dest`` only when every member is out. On an error the temporary
    folder is deleted; a killed process may leave it behind, but never a ``dest`` that
    looks finished.

    Args:
        archive: the archive file.
        dest: the folder to create; it must not exist yet.

    Returns:
        ``dest``.

    Raises:
        FileExistsError: ``dest`` exists (nothing is overwritten).
        UnsafeArchive: a member's name would land outside ``dest`` (``../x``, ``/etc/x``),
            or is a link or device file in a tar without the ``data`` filter.
        BadDownload: the file is not an archive of a known type, or is damaged (a
            member's data fails its CRC, the stream ends early). A ``ValueError``.
    """
    archive, dest = Path(archive), Path(dest)
    if dest.exists():
        raise FileExistsError(
            f"Cannot extract {archive.name} into {dest}: that folder already exists. "
            "Delete or rename it, then run again."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, staging)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, staging)
        else:
            raise BadDownload(f"{archive} is not a .zip or .tar(.gz) archive{_looks_like(archive)}.")
        os.replace(staging, dest)
    except _ARCHIVE_ERRORS as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise BadDownload(f"{archive.name} is damaged ({type(error).__name__}: {error}).") from error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest


def _check_member_name(name: str, archive: Path) -> None:
    """Refuse absolute names and names with ``..`` (the "zip slip" attack)."""
    # Archives may use either separator; normalise to "/" before looking at the parts.
    pure = PurePosixPath(name.replace("\\", "/"))
    has_drive = len(name) > 1 and name[1] == ":"
    if pure.is_absolute() or has_drive or ".." in pure.parts:
        raise UnsafeArchive(
            f"{archive.name} contains the member {name!r}, which would be written outside "
            "the extraction folder. The archive is refused; get it from the official URL."
        )


def _extract_zip(archive: Path, into: Path) -> None:
    with zipfile.ZipFile(archive) as bundle:
        # Check every name before writing anything, so a bad archive writes nothing.
        for name in bundle.namelist():
            _check_member_name(name, archive)
        bundle.extractall(into)


def _extract_tar(archive: Path, into: Path) -> None:
    with tarfile.open(archive, "r:*") as bundle:
        members = bundle.getmembers()
        # Same rule as for zips, before anything is written (the "data" filter below
        # would silently strip a leading "/" instead of refusing the archive).
        for member in members:
            _check_member_name(member.name, archive)
        if hasattr(tarfile, "data_filter"):
            # Python >= 3.10.12 / 3.11.4: the "data" filter also refuses links that point
            # outside the folder, device files, and unsafe permissions.
            try:
                bundle.extractall(into, members=members, filter="data")
            except tarfile.FilterError as error:
                raise UnsafeArchive(f"{archive.name} was refused: {error}") from error
            return
        # Older Pythons: accept only plain files and folders.
        for member in members:
            if not (member.isfile() or member.isdir()):
                raise UnsafeArchive(
                    f"{archive.name} contains {member.name!r}, which is a link or special "
                    "file; refusing it. Upgrade Python (3.11.4+) to extract it safely."
                )
        bundle.extractall(into, members=members)
