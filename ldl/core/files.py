"""Writing a file so that nobody ever reads half of it.

A file is written under a temporary name in a fresh folder beside its destination, then
renamed into place with ``os.replace``, which is atomic on one file system: a reader sees the
old complete file or the new complete file, and a crash mid-write (or a full disk) leaves the
old file untouched and no stray temporary file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def write_atomically(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(file)`` in a fresh folder beside ``path``, then rename the result into place.

    The file keeps its final name while it is written, since some formats name side files
    after it (an ONNX file's ``model.onnx.data``); those are moved beside ``path`` first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as folder:
        written = Path(folder) / path.name
        write(written)
        for side_file in Path(folder).iterdir():
            if side_file != written:
                os.replace(side_file, path.parent / side_file.name)
        os.replace(written, path)
    return path


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj, path)``, atomically, with the bytes on disk before the rename."""

    def save(file: Path) -> None:
        with open(file, "wb") as stream:
            torch.save(obj, stream)
            stream.flush()
            os.fsync(stream.fileno())  # a power cut after the rename still finds the whole file

    return write_atomically(path, save)


def write_text_atomically(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_atomically(path, lambda file: file.write_text(text, encoding="utf-8"))


def write_json_atomically(path: str | Path, data: object) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    return write_text_atomically(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
