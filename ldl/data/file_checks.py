"""What makes a downloaded file usable: the errors that say why not, free disk space, a bad file set aside.

Shared by :mod:`ldl.data.download` (fetching) and :mod:`ldl.data.archives` (checking and
unpacking), so that both tell a student the same things: what was wrong, where, and that
the next run fetches the file again.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

# Free space asked for beyond the bytes themselves: a file system spends a block on each
# small file, and a disk filled to the last byte breaks everything else on the machine.
SPACE_MARGIN = 0.05


SPACE_SLACK = 16 << 20


class ChecksumMismatch(ValueError):
    """The downloaded bytes are not the ones the dataset's owner published."""


class BadDownload(ChecksumMismatch):
    """Not the file at all: a web page, a truncated or corrupt archive, a wrong listing."""


class UnsafeArchive(ValueError):
    """An archive member would be written outside the extraction folder."""


class NotEnoughSpace(OSError):
    """The disk has too little free space for a download or an unpacking."""


def human_size(size: int) -> str:
    """``1000 B``, ``1.5 MiB``: a byte count for a message."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def ensure_free_space(folder: Path, needed: int, what: str) -> None:
    """Raise :class:`NotEnoughSpace` unless ``folder``'s disk has room for ``needed`` bytes.

    ``what`` says what needs it (``"downloading x.zip"``), for the message. A margin is
    added (:data:`SPACE_MARGIN`, :data:`SPACE_SLACK`).
    """
    wanted = int(needed * (1 + SPACE_MARGIN)) + SPACE_SLACK
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent  # the disk a folder not made yet will be on
    free = shutil.disk_usage(existing).free
    if free < wanted:
        raise NotEnoughSpace(
            errno.ENOSPC,
            f"Not enough free disk space for {what}: it needs about {human_size(wanted)} in "
            f"{folder}, and that disk has only {human_size(free)} free. Nothing was written. "
            "Free some space there, or set LDL_DATA to a folder on a disk with more room.",
        )


def bad_path(path: Path) -> Path:
    """Where an unusable file is moved: ``<path>.bad`` (an older one there is replaced)."""
    return path.with_name(path.name + ".bad")


def set_aside(path: Path, error: ValueError, url: str | None = None) -> ValueError:
    """Move an unusable ``path`` to ``<path>.bad`` and return ``error`` retold, to raise.

    Moved, not deleted, so that it can be looked at (an HTML page says why a server
    refused); renamed, so the next run does not find it and downloads it again.
    """
    bad = bad_path(path)
    os.replace(path, bad)
    source = f"{url} did not give a usable {path.name}" if url else f"{path} is not usable"
    return type(error)(
        f"{source}: {error} It was moved aside to {bad}, so it is downloaded again on the "
        f"next run. If that happens again, set LDL_MIRROR to another server, or put a good "
        f"copy at {path} by hand."
    )
