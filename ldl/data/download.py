"""Download a file safely, verify it, and unpack archives without half-finished folders.

Three promises, because a workshop room shares one slow network:

- **Resumable.** Bytes go to ``<dest>.part``. When that file exists, the next call asks the
  server for the rest only (an HTTP ``Range: bytes=N-`` request). A server that ignores
  the request (answers ``200`` instead of ``206``) gets a fresh start, never a file glued
  from two different downloads.
- **Verified.** After the transfer the size and the checksum are compared with what the
  dataset's owner published. A mismatch deletes the ``.part`` and raises
  :class:`ChecksumMismatch`; nothing unverified ever gets the final name.
- **Atomic.** The final name appears in one ``os.replace`` (a rename), so a file or folder
  with its final name is always complete.

Only the standard library is used for the network (``urllib.request``) so that the package
installs anywhere; the progress bar is ``tqdm.auto`` (a widget in Jupyter, text in a terminal).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

USER_AGENT = "ldl-course-downloader/0.1 (+urllib)"


class ChecksumMismatch(ValueError):
    """The downloaded bytes are not the ones the dataset's owner published."""


class UnsafeArchive(ValueError):
    """An archive member would be written outside the extraction folder."""


def file_checksum(path: str | Path, algorithm: str = "sha256", chunk_size: int = 1 << 20) -> str:
    """Hex digest of a file, read in chunks so that a 1 GB archive needs only 1 MB of memory.

    Args:
        path: the file to hash.
        algorithm: any name ``hashlib.new`` knows, e.g. ``"md5"`` or ``"sha256"``.
    """
    # usedforsecurity=False: md5 is only an integrity check here, and this keeps it
    # working on FIPS-restricted systems.
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as stream:
        while chunk := stream.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: Path, *, checksum: str | None, algorithm: str, expected_size: int | None) -> None:
    """Raise :class:`ChecksumMismatch` unless ``path`` has the expected size and checksum.

    A ``None`` expectation is not checked. The size is compared first: it is free, and a
    wrong size explains a wrong checksum.
    """
    actual_size = path.stat().st_size
    if expected_size is not None and actual_size != expected_size:
        raise ChecksumMismatch(f"{path.name}: expected {expected_size} bytes, got {actual_size} bytes.")
    if checksum is not None:
        actual = file_checksum(path, algorithm)
        if actual.lower() != checksum.lower():
            raise ChecksumMismatch(
                f"{path.name}: expected {algorithm} {checksum.lower()}, got {actual}."
            )


def _is_verified(path: Path, checksum: str | None, algorithm: str, expected_size: int | None) -> bool:
    try:
        verify_file(path, checksum=checksum, algorithm=algorithm, expected_size=expected_size)
    except ChecksumMismatch:
        return False
    return True


def download_file(
    url: str,
    dest: str | Path,
    *,
    checksum: str | None = None,
    algorithm: str = "sha256",
    expected_size: int | None = None,
    progress: bool = True,
    timeout: float = 30.0,
    chunk_size: int = 1 << 20,
) -> Path:
    """Download ``url`` to ``dest``, resuming a previous attempt and verifying the result.

    Args:
        url: ``http(s)://`` (or ``file://``) address of the file.
        dest: where the verified file ends up. Its folder is created if needed.
        checksum: expected hex digest, or None when the owner publishes none.
        algorithm: ``"md5"`` or ``"sha256"`` (what ``checksum`` was computed with).
        expected_size: expected size in bytes, or None when unknown.
        progress: show a ``tqdm`` progress bar.
        timeout: seconds to wait for the server, per connection attempt and per read.
        chunk_size: bytes read and written at a time.

    Returns:
        ``dest``, complete and verified.

    Raises:
        ChecksumMismatch: the bytes are wrong; the ``.part`` file was deleted, so running
            again downloads from scratch.
        urllib.error.URLError, OSError: the network failed. Whatever arrived is kept in
            ``<dest>.part`` and the next call resumes from there.
    """
    dest = Path(dest)
    if dest.exists() and _is_verified(dest, checksum, algorithm, expected_size):
        return dest  # already here: no network needed
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(dest.suffix + ".part")

    resume_from = part.stat().st_size if part.exists() else 0
    if expected_size is not None and resume_from > expected_size:
        part.unlink()  # longer than the real file: it cannot be a prefix of it
        resume_from = 0

    if expected_size is None or resume_from < expected_size:
        _transfer(url, part, resume_from, expected_size, progress, timeout, chunk_size)

    try:
        verify_file(part, checksum=checksum, algorithm=algorithm, expected_size=expected_size)
    except ChecksumMismatch as error:
        part.unlink()
        raise ChecksumMismatch(
            f"Download of {url} is corrupt: {error} The partial file was deleted; "
            "run the same command again to download it afresh."
        ) from None
    os.replace(part, dest)  # atomic: dest is either absent or complete
    return dest


def _transfer(
    url: str,
    part: Path,
    resume_from: int,
    expected_size: int | None,
    progress: bool,
    timeout: float,
    chunk_size: int,
) -> None:
    """Append the rest of ``url`` to ``part`` (or rewrite it when the server cannot resume)."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if resume_from:
        request.add_header("Range", f"bytes={resume_from}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and resume_from:
            # "Range not satisfiable": the .part already holds the whole file.
            # Verification decides whether it really is the right one.
            return
        raise

    with response:
        # 206 Partial Content: the server sends only the missing tail. Anything else
        # (200, or no status at all for file:// URLs) is the whole file from byte 0.
        resuming = getattr(response, "status", None) == 206
        start = resume_from if resuming else 0
        length_header = response.headers.get("Content-Length")
        body_length = int(length_header) if length_header is not None else None
        total = start + body_length if body_length is not None else expected_size

        received = 0
        with (
            open(part, "ab" if resuming else "wb") as stream,
            tqdm(
                total=total,
                initial=start,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name.removesuffix(".part"),
                disable=not progress,
            ) as bar,
        ):
            while chunk := response.read(chunk_size):
                stream.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))

    # http.client returns b"" (no exception) when the server closes the connection
    # early, so a short body must be detected here.
    if body_length is not None and received < body_length:
        raise ConnectionError(
            f"The connection to {url} closed after {start + received} of {start + body_length} "
            f"bytes. The bytes received are kept in {part}; run again to resume."
        )


# --------------------------------------------------------------------------------------
# Archives
# --------------------------------------------------------------------------------------


def is_archive(path: str | Path) -> bool:
    """True for the archive types :func:`extract_archive` unpacks (.zip, .tar, .tar.gz, .tgz)."""
    name = Path(path).name.lower()
    return name.endswith((".zip", ".tar", ".tar.gz", ".tgz"))


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
        ValueError: the file is not an archive of a known type.
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
            raise ValueError(f"{archive} is not a .zip or .tar(.gz) archive.")
        os.replace(staging, dest)
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
