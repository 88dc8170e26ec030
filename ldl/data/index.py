"""Image indexes: which files make up a split, and which class each belongs to.

An :class:`ImageIndex` is only a list of ``(path, class_index)`` pairs plus the class
names. Every dataset layout (class folders, Oxford's annotation files, ...) is turned
into one, so the rest of ``ldl.data`` never cares where the photos came from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@dataclass
class ImageIndex:
    """The files of one split.

    Attributes:
        samples: ``(path, class_index)`` pairs, in a stable (sorted) order.
        classes: class names; ``classes[class_index]`` names a sample's class.
    """

    samples: list[tuple[Path, int]]
    classes: list[str]
    root: Path | None = field(default=None)

    def __len__(self) -> int:
        return len(self.samples)

    def counts(self) -> dict[str, int]:
        """Number of samples per class name."""
        result = {name: 0 for name in self.classes}
        for _, label in self.samples:
            result[self.classes[label]] += 1
        return result

    def limit_per_class(self, per_class: int | None) -> "ImageIndex":
        """Keep at most ``per_class`` samples of each class (the first ones, in order)."""
        if per_class is None:
            return self
        kept: list[tuple[Path, int]] = []
        seen = [0] * len(self.classes)
        for path, label in self.samples:
            if seen[label] < per_class:
                kept.append((path, label))
                seen[label] += 1
        return ImageIndex(kept, list(self.classes), self.root)


def _image_files(folder: Path) -> list[Path]:
    """The image files under ``folder``, sorted, by suffix.

    A symbolic link whose target is gone is kept: the robust dataset and the tensor cache
    then skip it and list it with their other unreadable files ("broken symbolic link"),
    instead of it vanishing from the count unnoticed.
    """
    return [
        path
        for path in sorted(folder.rglob("*"))
        if path.suffix.lower() in IMAGE_SUFFIXES and (path.is_file() or is_dangling_link(path))
    ]


def is_dangling_link(path: Path) -> bool:
    """``path`` is a symbolic link to something that does not exist (any more)."""
    return path.is_symlink() and not path.exists()


def class_folders(root: Path) -> list[str]:
    """The class sub-folder names of ``root``, sorted (as torchvision's ``ImageFolder``)."""
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def index_image_folder(root: str | Path, classes: list[str] | None = None) -> ImageIndex:
    """Index a folder laid out as ``root/<class_name>/<image file>``.

    Class names are the sub-folder names, sorted (as torchvision's ``ImageFolder`` does).
    Files are kept by suffix only; whether they really decode is checked later, by
    :class:`ldl.data.folders.RobustImageDataset`, which skips and lists bad ones.

    Args:
        root: the folder.
        classes: the class list to label with, when several folders must share one (the
            splits of a dataset): ``root``'s class folders must then be exactly these.

    Raises:
        FileNotFoundError: ``root`` is missing or has no class folders.
        ValueError: a class folder holds no image file (an empty class would train a label
            that never appears), or ``root``'s class folders differ from ``classes``.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"No image folder at {root}: expected {root}/<class>/<images>.")
    found = class_folders(root)
    if not found:
        raise FileNotFoundError(f"{root} has no class sub-folders: expected {root}/<class>/<images>.")
    if classes is not None and found != list(classes):
        raise ValueError(
            f"The class folders of {root} ({found}) differ from the classes it must share with the "
            f"other splits ({list(classes)}): give every split the same class folders."
        )
    samples: list[tuple[Path, int]] = []
    for label, name in enumerate(found):
        files = _image_files(root / name)
        if not files:
            raise ValueError(
                f"Class folder {root / name} holds no image file ({', '.join(IMAGE_SUFFIXES)}): "
                f"add photos of {name!r} to it, or delete it (an empty class is a label the network never sees)."
            )
        samples += [(path, label) for path in files]
    return ImageIndex(samples, found, root)


def different_classes_message(folders: dict[Path, list[str]]) -> str:
    """Say, for each class not in every one of ``folders``, where it is and where it is missing."""
    every = sorted({name for found in folders.values() for name in found})
    lines = ["The splits of this dataset have different class folders:"]
    for name in every:
        present = [folder / name for folder, found in folders.items() if name in found]
        absent = [folder / name for folder, found in folders.items() if name not in found]
        if absent:
            described = [f"{path}{'' if _image_files(path) else ' (holds no image file)'}" for path in present]
            lines.append(f"  {name!r}: {', '.join(described)} exists, {', '.join(map(str, absent))} does not")
    lines.append(
        "Labels are positions in one class list, so every split needs the same class folders: "
        "add the missing folders (with photos) or remove the extra ones."
    )
    return "\n".join(lines)


def check_every_class_readable(
    index: ImageIndex, kept_labels: Iterable[int], skipped: Iterable[tuple[str | Path, str]]
) -> None:
    """Raise if a class of ``index`` had files but none of them decodes.

    Such a class would silently become a label with no photo: the network could never learn
    it, and its accuracy would read 0 with no hint why.

    Args:
        index: the split as indexed.
        kept_labels: the label of every image that decoded.
        skipped: ``(path, reason)`` of the files that did not.
    """
    kept = set(kept_labels)
    indexed = {label for _, label in index.samples}
    unreadable = [index.classes[label] for label in sorted(indexed - kept)]
    if not unreadable:
        return
    reasons = {Path(path): reason for path, reason in skipped}
    examples = [
        f"{path}: {reasons[Path(path)]}"
        for path, label in index.samples
        if index.classes[label] in unreadable and Path(path) in reasons
    ][:3]
    raise ValueError(
        f"Class(es) {', '.join(repr(name) for name in unreadable)} of {index.root or 'the index'} "
        f"have files but no readable image ({'; '.join(examples)}): replace the damaged files, "
        "or remove the class folder."
    )
