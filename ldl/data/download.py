"""Download a file safely, verify it, and unpack archives without half-finished folders.

Five promises, because a workshop room shares one slow network and one full disk:

- **Resumable.** Bytes go to ``<dest>.part``. When that file exists, the next call asks the
  server for the rest only (an HTTP ``Range: bytes=N-`` request, with ``If-Range``). The
  answer is appended only when it is a ``206`` whose ``Content-Range`` starts where the
  ``.part`` ends and whose ``ETag``/``Last-Modified`` are those of the first attempt (kept in
  ``<dest>.part.json``); anything else starts over, never gluing two different files.
- **Verified.** After the transfer the size and the checksum are compared with what the
  dataset's owner published, and an archive must open, list its members, hold something
  and (where the registry says so) list the expected images. Without a published checksum
  this is what catches an HTML error page served with status 200, or a truncated file.
- **Never kept when bad.** A wrong checksum deletes the ``.part``; an unusable or unsafe
  archive is moved aside to ``<dest>.bad``, so the next run downloads it again instead of
  failing the same way forever, and the message says so.
- **Bounded.** Free disk space is checked before a download or an unpacking starts
  (:class:`NotEnoughSpace`), and a server that trickles bytes trips a stall rule
  (:class:`DownloadStalled`) that a per-read timeout never would.
- **Atomic.** The final name appears in one ``os.replace`` (a rename), so a file or folder
  with its final name is always complete.

Only the standard library is used for the network (``urllib.request``) so that the package
installs anywhere; the progress bar is ``tqdm.auto`` (a widget in Jupyter, text in a terminal).

Checking and unpacking an archive is :mod:`ldl.data.archives`; the errors, the free-space
check and setting a bad file aside are :mod:`ldl.data.file_checks`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from email.message import Message
from pathlib import Path
from typing import IO

from tqdm.auto import tqdm

from ldl.data.archives import check_archive, is_archive
from ldl.data.file_checks import (
    BadDownload,
    ChecksumMismatch,
    NotEnoughSpace,
    UnsafeArchive,
    bad_path,
    ensure_free_space,
    set_aside,
)

USER_AGENT = "ldl-course-downloader/0.1 (+urllib)"

# The stall rule: fewer than STALL_MIN_BYTES in STALL_WINDOW_S seconds ends a download. A
# per-read timeout alone never fires on a server sending one byte a second; 64 KiB a minute
# is slower than any network a lesson can use, so a slow but real download is never cut.
STALL_WINDOW_S = 60.0
STALL_MIN_BYTES = 64 * 1024


class DownloadStalled(TimeoutError):
    """A server sends so slowly that the download would never end."""


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


# --------------------------------------------------------------------------------------
# Downloading
# --------------------------------------------------------------------------------------


def download_file(
    url: str,
    dest: str | Path,
    *,
    checksum: str | None = None,
    algorithm: str = "sha256",
    expected_size: int | None = None,
    listing: tuple[tuple[str, int], ...] = (),
    progress: bool = True,
    timeout: float = 30.0,
    chunk_size: int = 1 << 20,
    stall_window: float | None = None,
    stall_bytes: int | None = None,
) -> Path:
    """Download ``url`` to ``dest``, resuming a previous attempt and verifying the result.

    Args:
        url: ``http(s)://`` (or ``file://``) address of the file.
        dest: where the verified file ends up. Its folder is created if needed.
        checksum: expected hex digest, or None when the owner publishes none.
        algorithm: ``"md5"`` or ``"sha256"`` (what ``checksum`` was computed with).
        expected_size: expected size in bytes, or None when unknown.
        listing: for an archive, ``(folder inside it, number of images)`` pairs its
            listing must show (see :func:`check_archive`).
        progress: show a ``tqdm`` progress bar.
        timeout: seconds to wait for the server, per connection attempt and per read.
        chunk_size: bytes read and written at a time.
        stall_window, stall_bytes: the stall rule; default :data:`STALL_WINDOW_S` and
            :data:`STALL_MIN_BYTES`.

    Returns:
        ``dest``, complete and verified.

    Raises:
        ChecksumMismatch: the bytes are wrong; the ``.part`` file was deleted, so running
            again downloads from scratch.
        BadDownload, UnsafeArchive: not a usable archive; it was moved to ``<dest>.bad``.
        NotEnoughSpace: the disk cannot hold the file; nothing was written.
        DownloadStalled: the server sent too little for too long; the ``.part`` is kept.
        urllib.error.URLError, OSError: the network failed. Whatever arrived is kept in
            ``<dest>.part`` and the next call resumes from there.
    """
    dest = Path(dest)
    if dest.exists():
        try:
            _verify(dest, checksum, algorithm, expected_size, listing)
            return dest  # already here: no network needed
        except (ChecksumMismatch, UnsafeArchive) as error:
            # Left by an older version, or copied by hand: say so, and fetch it again.
            bad = bad_path(dest)
            os.replace(dest, bad)
            print(f"{dest} is not usable ({error}); moved it aside to {bad}, downloading it again.",
                  file=sys.stderr, flush=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(dest.suffix + ".part")

    resume_from = part.stat().st_size if part.exists() else 0
    if expected_size is not None and resume_from > expected_size:
        _discard(part)  # longer than the real file: it cannot be a prefix of it
        resume_from = 0

    if expected_size is None or resume_from < expected_size:
        stall = (
            STALL_WINDOW_S if stall_window is None else stall_window,
            STALL_MIN_BYTES if stall_bytes is None else stall_bytes,
        )
        _transfer(url, part, resume_from, expected_size, progress, timeout, chunk_size, stall)

    try:
        _verify(part, checksum, algorithm, expected_size, listing, dest.name)
    except (BadDownload, UnsafeArchive) as error:
        _meta_path(part).unlink(missing_ok=True)
        os.replace(part, dest)  # the name set_aside reports and the next run looks for
        raise set_aside(dest, error, url) from None
    except ChecksumMismatch as error:
        _discard(part)
        raise ChecksumMismatch(
            f"Download of {url} is corrupt: {error} The partial file was deleted; "
            "run the same command again to download it afresh."
        ) from None
    _meta_path(part).unlink(missing_ok=True)
    os.replace(part, dest)  # atomic: dest is either absent or complete
    return dest


def _verify(
    path: Path,
    checksum: str | None,
    algorithm: str,
    expected_size: int | None,
    listing: tuple[tuple[str, int], ...],
    name: str | None = None,
) -> None:
    """:func:`verify_file`, then :func:`check_archive` when ``name`` (default ``path``'s) is an archive's."""
    verify_file(path, checksum=checksum, algorithm=algorithm, expected_size=expected_size)
    if is_archive(name or path.name):
        check_archive(path, listing, name)


def _meta_path(part: Path) -> Path:
    """Where the first attempt's ``ETag``/``Last-Modified`` are kept, to check a resume."""
    return part.with_name(part.name + ".json")


def _discard(part: Path) -> None:
    part.unlink(missing_ok=True)
    _meta_path(part).unlink(missing_ok=True)


def _validators(headers: Mapping[str, str] | Message) -> dict[str, str]:
    """The headers that identify one version of a file on the server."""
    found = {"etag": headers.get("ETag"), "last_modified": headers.get("Last-Modified")}
    return {key: value for key, value in found.items() if value}


def resume_is_consistent(
    status: int | None,
    content_range: str | None,
    resume_from: int,
    saved: Mapping[str, str],
    now: Mapping[str, str],
) -> bool:
    """May the answer to a ``Range: bytes=<resume_from>-`` request be appended to the .part?

    Only a ``206`` whose ``Content-Range`` starts at ``resume_from``, from the same version
    of the file: an ``ETag`` or ``Last-Modified`` that changed since the first attempt
    means the bytes kept belong to another file.
    """
    if status != 206 or not content_range:
        return False
    if not re.fullmatch(rf"bytes {resume_from}-\d+/(\d+|\*)", content_range.strip()):
        return False
    return all(now[key] == value for key, value in saved.items() if key in now)


def _open(url: str, resume_from: int, saved: Mapping[str, str], timeout: float):
    """The server's response, or None when a resume finds the .part already complete (416)."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if resume_from:
        request.add_header("Range", f"bytes={resume_from}-")
        # If-Range: a server that sees the file changed answers 200 with all of it.
        # A weak ETag ("W/...") may not be used in If-Range; Last-Modified may.
        etag = saved.get("etag")
        validator = etag if etag and not etag.startswith("W/") else saved.get("last_modified")
        if validator:
            request.add_header("If-Range", validator)
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and resume_from:
            # "Range not satisfiable": the .part already holds the whole file.
            # Verification decides whether it really is the right one.
            return None
        raise


def _transfer(
    url: str,
    part: Path,
    resume_from: int,
    expected_size: int | None,
    progress: bool,
    timeout: float,
    chunk_size: int,
    stall: tuple[float, int],
) -> None:
    """Append the rest of ``url`` to ``part``, or rewrite it when a resume is not safe."""
    saved = _read_validators(part) if resume_from else {}
    response = _open(url, resume_from, saved, timeout)
    if response is None:
        return
    if resume_from and not resume_is_consistent(
        getattr(response, "status", None),  # None for file:// URLs
        response.headers.get("Content-Range"),
        resume_from,
        saved,
        _validators(response.headers),
    ):
        if getattr(response, "status", None) == 206:
            response.close()  # a tail of something else: ask for the whole file
            response = _open(url, 0, {}, timeout)
        resume_from = 0  # a 200 (or file://) already is the whole file from byte 0
    with response:
        _receive(response, url, part, resume_from, expected_size, progress, chunk_size, stall)


def _read_validators(part: Path) -> dict[str, str]:
    try:
        return json.loads(_meta_path(part).read_text())
    except (OSError, ValueError):
        return {}  # none kept (an older version's .part): the checks after the transfer decide


def _receive(
    response,
    url: str,
    part: Path,
    resume_from: int,
    expected_size: int | None,
    progress: bool,
    chunk_size: int,
    stall: tuple[float, int],
) -> None:
    """Write the response's body to ``part`` (appended from ``resume_from`` when > 0)."""
    name = part.name.removesuffix(".part")
    _refuse_web_page(response.headers, url, name)
    length_header = response.headers.get("Content-Length")
    body_length = int(length_header) if length_header is not None else None
    remaining = body_length if body_length is not None else (
        expected_size - resume_from if expected_size is not None else None
    )
    if remaining:
        ensure_free_space(part.parent, remaining, f"downloading {name}")
    if not resume_from:
        validators = _validators(response.headers)
        _meta_path(part).unlink(missing_ok=True)
        if validators:
            _meta_path(part).write_text(json.dumps(validators))

    total = resume_from + body_length if body_length is not None else expected_size
    with (
        open(part, "ab" if resume_from else "wb") as stream,
        tqdm(
            total=total,
            initial=resume_from,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=name,
            disable=not progress,
        ) as bar,
    ):
        received = _copy_body(response, stream, bar, chunk_size, stall, url, part)

    # http.client returns b"" (no exception) when the server closes the connection
    # early, so a short body must be detected here.
    if body_length is not None and received < body_length:
        raise ConnectionError(
            f"The connection to {url} closed after {resume_from + received} of "
            f"{resume_from + body_length} bytes. The bytes received are kept in {part}; "
            "run again to resume."
        )


def _refuse_web_page(headers: Mapping[str, str] | Message, url: str, name: str) -> None:
    """Raise :class:`BadDownload` when the server answers a file request with an HTML page."""
    content_type = (headers.get("Content-Type") or "").lower()
    if "text/html" in content_type and not name.lower().endswith((".html", ".htm")):
        raise BadDownload(
            f"{url} answered with a web page (Content-Type: {content_type}) instead of {name}: "
            "an error, quota or login page. Nothing was kept. Run again later, set LDL_MIRROR "
            f"to another server, or download {name} elsewhere and put it in place by hand."
        )


def _copy_body(
    response,
    stream: IO[bytes],
    bar: tqdm,
    chunk_size: int,
    stall: tuple[float, int],
    url: str,
    part: Path,
) -> int:
    """Copy the body to ``stream``; return the bytes copied. Enforces the stall rule."""
    # read1 returns what has arrived; read(n) would wait for all n bytes, so a trickle
    # would never come back here for the stall rule to look at.
    read = getattr(response, "read1", response.read)
    window, least = stall
    received, window_start, window_bytes = 0, time.monotonic(), 0
    try:
        while chunk := read(chunk_size):
            stream.write(chunk)
            received += len(chunk)
            window_bytes += len(chunk)
            bar.update(len(chunk))
            if time.monotonic() - window_start >= window:
                if window_bytes < least:
                    raise DownloadStalled(_stall_message(url, part, window_bytes, window, least))
                window_start, window_bytes = time.monotonic(), 0
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        stream.close()
        _discard(part)  # a .part that filled the disk must not stay to fill it again
        raise NotEnoughSpace(
            errno.ENOSPC,
            f"The disk holding {part.parent} filled up while downloading {url}; the partial "
            "file was deleted. Free some space there, or set LDL_DATA to a folder on a disk "
            "with more room.",
        ) from error
    return received


def _stall_message(url: str, part: Path, got: int, window: float, least: int) -> str:
    name = part.name.removesuffix(".part")
    return (
        f"Downloading {url} stalled: only {got} bytes arrived in {window:g} s (at least "
        f"{least} expected). The bytes received are kept in {part}; run again to resume. "
        f"If the network stays this slow, set LDL_MIRROR to a nearby server (e.g. the "
        f"instructor's), or download {name} on another machine and put it by hand into "
        f"{part.parent}/."
    )
