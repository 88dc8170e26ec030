"""Image indexes: which files make up a split, and which class each belongs to.

An :class:`ImageIndex` is only a list of ``(path, class_index)`` pairs plus the class
names. Every dataset layout (class folders, Oxford's annotation files, ...) is turned
into one, so the rest of ``ldl.data`` never cares where the photos came from.
"""

from __future__ import annotations

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


def index_image_folder(root: str | Path) -> ImageIndex:
    """Index a folder laid out as ``root/<class_name>/<image file>``.

    Class names are the sub-folder names, sorted (as torchvision's ``ImageFolder`` does).
    Files are kept by suffix only; whether they really decode is checked later, by
    :class:`ldl.data.folders.RobustImageDataset`, which skips and lists bad ones.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"No image folder at {root}: expected {root}/<class>/<images>.")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise FileNotFoundError(f"{root} has no class sub-folders: expected {root}/<class>/<images>.")
    samples = [
        (path, label)
        for label, name in enumerate(classes)
        for path in sorted((root / name).rglob("*"))
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
    ]
    return ImageIndex(samples, classes, root)
