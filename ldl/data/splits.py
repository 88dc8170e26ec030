"""Deterministic, stratified splits: validation and test from the held-out photos, and a
fixed subset of the training photos.

Early stopping, the LR range test and the choice of the best recipe all look at the
validation photos, so an accuracy measured on those same photos flatters the recipe that
was chosen on them. :func:`split_held_out` sets a test part aside, reported once.
:func:`stratified_subset` picks the fixed, unaugmented training photos the Trainer
evaluates each epoch, to set the training accuracy beside the validation accuracy.

Which part a file lands in depends only on a CRC-32 of its path relative to the dataset
root, ranked within its class: the same on every machine and run, whatever the order of
the index, and adding a photo to one class never moves a photo of another.

>>> val, test = split_held_out(load_index("cats_and_dogs", "validation"), test_fraction=0.5)
>>> len(val) + len(test) == 1000, set(val.samples).isdisjoint(test.samples)
(True, True)
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

from ldl.data.index import ImageIndex
from ldl.profiles.sections import MAX_TEST_FRACTION


def relative_name(path: Path, root: Path | None) -> str:
    """``path`` relative to ``root`` with ``/`` separators: the same on every machine.

    A file outside ``root`` (or no root) is named by its file name alone: an absolute
    path would differ between two machines, and so would the split.
    """
    if root is not None:
        try:
            return Path(path).relative_to(root).as_posix()
        except ValueError:  # not under root
            pass
    return Path(path).name


def order_key(path: Path, root: Path | None, seed: int = 0) -> tuple[int, bytes]:
    """The rank of a file within its class: CRC-32 of its relative path (bytes as on disk).

    ``seed`` 0 is the plain ``zlib.crc32(os.fsencode(relative_path))``; another seed
    prefixes the bytes, which gives another (equally fixed) order. The bytes themselves
    break a tie of two equal checksums, so the order is total.
    """
    # fsencode: a name that is not valid UTF-8 still has its bytes, and hashes without error.
    name = os.fsencode(relative_name(path, root))
    data = name if seed == 0 else f"ldl-split-{seed}/".encode() + name
    return zlib.crc32(data), name


def check_test_fraction(test_fraction: float) -> None:
    """Raise ``ValueError`` naming ``test_fraction`` unless it is a number in [0, 0.9]."""
    bad_type = isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float))
    if bad_type or not 0.0 <= test_fraction <= MAX_TEST_FRACTION:
        raise ValueError(
            f"test_fraction must be a number from 0 to {MAX_TEST_FRACTION} (the share of the held-out "
            f"photos set aside for the test part), got {test_fraction!r}."
        )


def count_for_test(size: int, test_fraction: float) -> int:
    """How many of a class's ``size`` held-out photos go to the test part.

    ``size * test_fraction`` rounded half up, then moved into ``[1, size - 1]`` when the
    class has at least 2 photos and ``test_fraction > 0``: each part then has every such
    class (a class missing from validation could never be chosen on; missing from test,
    never reported). A class of 1 photo keeps it for validation, where every choice is made.
    """
    if test_fraction == 0 or size < 2:
        return 0
    # The small epsilon: 45 * 0.7 is 31.499999999999996 in floating point, and means 31.5.
    wanted = math.floor(size * test_fraction + 0.5 + 1e-9)
    return min(max(wanted, 1), size - 1)


def _positions_by_class(index: ImageIndex) -> list[list[int]]:
    """The positions in ``index.samples`` of each class's photos, by label."""
    groups: list[list[int]] = [[] for _ in index.classes]
    for position, (_, label) in enumerate(index.samples):
        groups[label].append(position)
    return groups


def _first_ranked(index: ImageIndex, group: list[int], count: int, seed: int) -> set[int]:
    """The ``count`` positions of ``group`` whose files come first in the fixed hashed order."""
    ranked = sorted(group, key=lambda position: order_key(index.samples[position][0], index.root, seed))
    return set(ranked[:count])


def _choose(index: ImageIndex, counts: Sequence[int], seed: int) -> set[int]:
    """Positions of ``counts[label]`` photos of each class, first in the hashed order."""
    chosen: set[int] = set()
    for group, count in zip(_positions_by_class(index), counts):
        chosen |= _first_ranked(index, group, count, seed)
    return chosen


def _part(index: ImageIndex, positions: Sequence[int]) -> ImageIndex:
    """The samples at ``positions`` (in the index's order), with its classes and root."""
    return ImageIndex([index.samples[position] for position in positions], list(index.classes), index.root)


def split_held_out(index: ImageIndex, test_fraction: float, seed: int = 0) -> tuple[ImageIndex, ImageIndex]:
    """Split held-out photos into a validation part (for every choice) and a test part (reported once).

    Stratified: each class is split in the proportion ``test_fraction`` (see
    :func:`count_for_test` for the rounding); within a class, the photos first in the order of
    :func:`order_key` go to test. Both parts keep the index's order, and together they are
    ``index``, disjoint.

    Args:
        index: the held-out photos (N samples).
        test_fraction: share of each class for the test part, in [0, 0.9]; 0 puts every
            photo in validation and leaves the test part empty.
        seed: another seed gives another fixed split.

    Returns:
        ``(validation, test)``, two indexes with ``index``'s classes and root.

    Raises:
        ValueError: ``test_fraction`` outside [0, 0.9].
    """
    check_test_fraction(test_fraction)
    counts = [count_for_test(len(group), test_fraction) for group in _positions_by_class(index)]
    chosen = _choose(index, counts, seed)
    positions = range(len(index.samples))
    validation = [position for position in positions if position not in chosen]
    return _part(index, validation), _part(index, sorted(chosen))


def apportion(sizes: Sequence[int], total: int) -> list[int]:
    """Share ``total`` among classes of ``sizes`` in proportion, summing exactly to ``total``.

    Largest remainders (Hamilton's method): each class gets the whole part of its share, and
    the photos left over go to the largest fractional parts (ties: the lower label).
    """
    whole = sum(sizes)
    total = min(total, whole)
    if whole == 0:
        return [0] * len(sizes)
    shares = [size * total / whole for size in sizes]
    counts = [min(math.floor(share), size) for share, size in zip(shares, sizes)]
    by_remainder = sorted(range(len(sizes)), key=lambda label: (counts[label] - shares[label], label))
    for label in by_remainder[: total - sum(counts)]:
        counts[label] += 1
    return counts


def stratified_subset(index: ImageIndex, size: int, seed: int = 0) -> ImageIndex:
    """A fixed subset of ``size`` photos of ``index`` (all of them if it has fewer), stratified.

    Each class gives its share (:func:`apportion`), the photos first in the order of
    :func:`order_key`; the result keeps the index's order. Used for the training photos
    evaluated each epoch without augmentation (``Loaders.train_eval``).
    """
    counts = apportion([len(group) for group in _positions_by_class(index)], max(size, 0))
    return _part(index, sorted(_choose(index, counts, seed)))
