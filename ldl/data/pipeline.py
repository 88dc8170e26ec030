"""From a profile to a pair of loaders: the one call most notebooks make.

Two pipelines give the same batches:

- the **per-sample** pipeline (``fast=False``): a ``RobustImageDataset`` decodes each JPEG,
  torchvision ``transforms.v2`` resize and normalise it, a ``DataLoader`` batches them. This is
  the pipeline to read first; it redoes the JPEG decoding every epoch.
- the **fast** pipeline (``fast=True``, the default): every image is decoded and resized once
  into a uint8 tensor cache (kept on disk for the next run), and a ``DeviceLoader`` slices
  batches from it on the training device, where augmentation runs on whole batches.

Both give the same four loaders: ``train`` (augmented, shuffled), ``val`` (the held-out photos
every choice is made on), ``test`` (held-out photos set aside, reported once; only with
``test_fraction > 0``) and ``train_eval`` (a fixed subset of the training photos, unaugmented,
to compare the training accuracy with the validation accuracy). The splits: ``ldl.data.splits``.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import BatchSampler, RandomSampler, SequentialSampler
from torchvision.transforms import v2

from ldl.core.constants import IMAGENET_MEAN, IMAGENET_STD
from ldl.data.cache import TensorCache, build_tensor_cache, default_cache_dir
from ldl.data.folders import ReadableBatches, RobustImageDataset, collate_readable
from ldl.data.index import ImageIndex, different_classes_message
from ldl.data.loader import DeviceLoader
from ldl.data.on_disk import load_index
from ldl.data.registry import REGISTRY, DatasetUnavailable
from ldl.data.splits import split_held_out, stratified_subset
from ldl.profiles import Profile, override


@dataclass
class Loaders:
    """What a lesson trains on.

    Every loader is an iterable of ``(images (B, 3, S, S) float, labels (B,) int64)``.

    Attributes:
        train: the training photos, augmented and shuffled.
        val: the validation part of the held-out photos, unaugmented: what early stopping,
            the LR range test and the choice of a recipe look at.
        classes: class names, indexed by label.
        dataset: registry name of the data actually used.
        image_size: S, the side of the square images.
        skipped: unreadable files that were left out, as ``(path, reason)``.
        test: the test part of the held-out photos (``test_fraction`` of each class),
            unaugmented, to report once at the end; ``None`` when ``test_fraction`` is 0.
        train_eval: a fixed subset of the training photos, as many as ``val`` holds (all of
            them if fewer), stratified by class, unaugmented, in a fixed order, every photo
            kept: the training accuracy without augmentation, beside the validation accuracy.
    """

    train: Iterable
    val: Iterable
    classes: list[str]
    dataset: str
    image_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    skipped: list[tuple[str, str]] = field(default_factory=list)
    test: Iterable | None = None
    train_eval: Iterable | None = None


def resolve_dataset(profile: Profile, dataset: str | None = None) -> str:
    """The dataset a lesson will use: ``dataset`` if given, else the profile's.

    Where the profile allows it (``profile.data.falls_back_to_synthetic``: the smoke profile),
    a missing sample folder (``cats_and_dogs_sample``, ``flowers_sample``: they are never
    downloaded) falls back to the generated ``synthetic`` shapes with a warning, so a fresh
    offline clone still runs every notebook. Everywhere else a missing dataset, or a folder of one's own that is not there, is an error that
    says how to get it.
    """
    name = dataset or profile.data.dataset
    try:
        load_index(name, "train")
    except DatasetUnavailable as error:
        sample_set = name in REGISTRY and REGISTRY[name].local_only
        if not profile.data.falls_back_to_synthetic or not sample_set:
            raise
        reason = str(error).splitlines()[0]
        warnings.warn(
            f"{reason} The {profile.name} profile falls back to the generated 'synthetic' shapes; "
            f"set LDL_DATA to a folder holding {name}/ to see this on real photos.",
            stacklevel=2,
        )
        name = "synthetic"
    return name


def make_loaders(
    profile: Profile,
    *,
    dataset: str | None = None,
    fast: bool = True,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    progress: bool = True,
    image_size: int | None = None,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    test_fraction: float | None = None,
) -> Loaders:
    """Build train, validation (and test) loaders sized by ``profile``.

    Args:
        profile: from ``ldl.profiles.get_profile``; gives image size, subset sizes, batch size
            and device.
        dataset: registry name; defaults to the profile's dataset.
        fast: decoded-tensor cache + ``DeviceLoader`` (True) or per-sample pipeline (False).
        augment: training-time augmentation. For ``fast=True`` a batch transform on
            (B, 3, S, S) floats in [0, 1] (e.g. ``ldl.data.batch_augment.BatchAugment``); for
            ``fast=False`` a per-image ``transforms.v2`` transform on PIL images.
        progress: show progress bars while decoding.
        image_size: side of the square images; defaults to the profile's. A pretrained
            network may want a different size than the scratch CNN (lesson 4).
        mean, std: per-channel normalisation. ImageNet's by default, which most pretrained
            networks expect; a network trained with other values (EfficientNet-Lite: 0.5)
            must be fed what it was trained on.
        test_fraction: share of each class's held-out photos set aside for ``Loaders.test``
            (``ldl.data.splits.split_held_out``), in [0, 0.9]; ``None``: the profile's
            ``data.test_fraction``. The validation and test parts together are the photos
            ``val`` holds with 0.

    Raises:
        ValueError: a bad ``test_fraction`` or ``image_size`` (the message names it).
    """
    # Through override, so a bad value is refused like any profile setting, by its name.
    changes = {"image_size": image_size, "test_fraction": test_fraction}
    changes = {setting: value for setting, value in changes.items() if value is not None}
    if changes:
        profile = override(profile, **changes)
    name = resolve_dataset(profile, dataset)
    train_index = load_index(name, "train").limit_per_class(profile.data.train_per_class)
    held_out = load_index(name, "validation").limit_per_class(profile.data.val_per_class)
    check_same_classes(name, train_index, held_out)
    if fast:
        loaders = _fast_loaders(profile, name, train_index, held_out, augment, progress, mean, std)
    else:
        loaders = _per_sample_loaders(profile, name, train_index, held_out, augment, mean, std)
    loaders.mean, loaders.std = tuple(mean), tuple(std)
    return loaders


def check_same_classes(name: str, train: ImageIndex, val: ImageIndex) -> None:
    """Raise unless both splits share one class list and every class has a photo in each.

    A label is a position in the class list: two lists that differ by one name shift every
    validation label after it, and the accuracy silently measures the wrong thing.
    """
    if train.classes != val.classes:
        folders = {Path(train.root or "train"): train.classes, Path(val.root or "validation"): val.classes}
        raise ValueError(f"Dataset {name!r}: " + different_classes_message(folders))
    for split, index in (("train", train), ("validation", val)):
        empty = [cls for cls, count in index.counts().items() if count == 0]
        if empty:
            raise ValueError(
                f"Dataset {name!r}: class(es) {', '.join(map(repr, empty))} have no photo in its {split} split"
                f"{' (' + str(index.root) + ')' if index.root else ''}: add photos of them, or remove the class."
            )


def _fast_loaders(
    profile: Profile,
    name: str,
    train_index: ImageIndex,
    held_out: ImageIndex,
    augment: Callable[[torch.Tensor], torch.Tensor] | None,
    progress: bool,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
) -> Loaders:
    cache_dir = default_cache_dir()
    train_cache = build_tensor_cache(train_index, profile.data.image_size, cache_dir=cache_dir, progress=progress)
    # The held-out photos are decoded (or reloaded) once, as one cache, then sliced into
    # parts: the cache file stays the one earlier runs saved, whatever test_fraction is.
    held_cache = build_tensor_cache(held_out, profile.data.image_size, cache_dir=cache_dir, progress=progress)
    val_cache, test_cache = _split_cache(held_cache, held_out, profile.data.test_fraction)
    train_readable = ImageIndex(cache_samples(train_index, train_cache), list(train_index.classes), train_index.root)
    eval_cache = cache_part(train_cache, train_index, stratified_subset(train_readable, len(val_cache)))
    common = dict(batch_size=profile.data.batch_size, device=profile.device, mean=mean, std=std)

    def evaluation(cache: TensorCache) -> DeviceLoader:
        # No shuffling, no augmentation, and (not shuffling) every photo kept.
        return DeviceLoader.from_cache(cache, shuffle=False, **common)

    return Loaders(
        train=DeviceLoader.from_cache(train_cache, shuffle=True, augment=augment, **common),
        val=evaluation(val_cache),
        classes=list(train_cache.classes),
        dataset=name,
        image_size=profile.data.image_size,
        skipped=list(train_cache.skipped) + list(held_cache.skipped),
        test=evaluation(test_cache) if test_cache is not None else None,
        train_eval=evaluation(eval_cache),
    )


def _split_cache(
    cache: TensorCache, held_out: ImageIndex, test_fraction: float
) -> tuple[TensorCache, TensorCache | None]:
    """``(validation, test)`` rows of the held-out ``cache``; ``(cache, None)`` for a fraction of 0."""
    if test_fraction == 0:
        return cache, None  # every held-out photo, as before there was a test part
    val_part, test_part = split_held_out(held_out, test_fraction)
    if not test_part.samples:
        warn_no_test_part(held_out)
        return cache, None
    return cache_part(cache, held_out, val_part), cache_part(cache, held_out, test_part)


def warn_no_test_part(held_out: ImageIndex) -> None:
    """Every class has at most one held-out photo: it stays in validation, and there is no test part."""
    warnings.warn(
        f"Too few held-out photos for a test part in {held_out.root or 'the validation split'} "
        f"({len(held_out.samples)} photos, at most one per class, and validation keeps one of each): "
        "loaders.test is None. Add held-out photos, or pass test_fraction=0 to say so.",
        stacklevel=3,
    )


def cache_samples(index: ImageIndex, cache: TensorCache) -> list[tuple[Path, int]]:
    """The samples of ``index`` that ``cache`` holds, one per row of ``cache.images``, in order.

    The cache keeps every readable file of ``index`` in the index's order and lists the
    others in ``cache.skipped``. A cache reloaded from disk names its skipped files as the
    run that decoded them wrote them, maybe through another path to the same folder (a
    link): the resolved paths are compared when the names alone do not account for every row.

    Raises:
        RuntimeError: the cache does not match the index (it was built from other files).
    """
    skipped = {path for path, _ in cache.skipped}
    kept = [(path, label) for path, label in index.samples if str(path) not in skipped]
    if len(kept) != len(cache):
        resolved = {os.path.realpath(path) for path in skipped}
        kept = [(path, label) for path, label in index.samples if os.path.realpath(path) not in resolved]
    if len(kept) != len(cache) or [label for _, label in kept] != cache.labels.tolist():
        raise RuntimeError(
            f"The tensor cache of {index.root or 'this split'} holds {len(cache)} images, but its index "
            f"has {len(kept)} readable files: delete the cache folder ({default_cache_dir()}) and run again."
        )
    return kept


def cache_part(cache: TensorCache, index: ImageIndex, part: ImageIndex) -> TensorCache:
    """The rows of ``cache`` (built from ``index``) whose files are in ``part``, in order.

    ``(N, 3, S, S)`` -> ``(M, 3, S, S)``: an indexed copy, no decoding. Files of ``part``
    that did not decode are not in ``cache``, so not in the result either.
    """
    wanted = set(part.samples)
    rows = [row for row, sample in enumerate(cache_samples(index, cache)) if sample in wanted]
    take = torch.tensor(rows, dtype=torch.int64)
    return TensorCache(cache.images[take], cache.labels[take], list(cache.classes), [])


def per_sample_transform(
    image_size: int,
    augment: Callable | None = None,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
) -> v2.Compose:
    """The per-sample transform: resize the short side, centre-crop, (augment,) to a normalised tensor.

    PIL image -> (3, image_size, image_size) float.
    """
    steps: list[Callable] = [v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size)]
    if augment is not None:
        steps.append(augment)
    steps += [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    return v2.Compose(steps)


def _per_sample_loaders(
    profile: Profile,
    name: str,
    train_index: ImageIndex,
    held_out: ImageIndex,
    augment: Callable | None,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
) -> Loaders:
    plain = per_sample_transform(profile.data.image_size, None, mean, std)
    val_index, test_index = held_out, None
    if profile.data.test_fraction > 0:
        val_index, test_index = split_held_out(held_out, profile.data.test_fraction)
        if not test_index.samples:
            warn_no_test_part(held_out)
            val_index, test_index = held_out, None
    train_set = RobustImageDataset(train_index, transform=per_sample_transform(profile.data.image_size, augment, mean, std))
    val_set = RobustImageDataset(val_index, transform=plain)
    test_set = RobustImageDataset(test_index, transform=plain) if test_index is not None else None
    # Chosen among the files already checked readable, as the fast path chooses among the
    # cache's rows: both pipelines evaluate the same training photos.
    readable = ImageIndex(list(train_set.samples), list(train_index.classes), train_index.root)
    eval_set = RobustImageDataset(stratified_subset(readable, len(val_set)), transform=plain, check=False)
    common = dict(
        num_workers=profile.data.num_workers,
        pin_memory=profile.device == "cuda",  # pinned pages let the copy to the GPU run asynchronously
        persistent_workers=profile.data.num_workers > 0,
    )
    batch_size = profile.data.batch_size
    checked = [train_set, val_set] + ([test_set] if test_set is not None else [])
    skipped = [(str(path), reason) for dataset in checked for path, reason in dataset.skipped]

    def evaluation(dataset: RobustImageDataset) -> ReadableBatches:
        # Evaluation keeps every photo: batch norm uses its running averages in eval mode.
        sampler = BatchSampler(SequentialSampler(dataset), batch_size, drop_last=False)
        return ReadableBatches(dataset, batch_sampler=sampler, collate_fn=collate_readable, **common)

    return Loaders(
        # Training: no batch of one image (batch norm cannot train on it), see NoSingleLastBatch;
        # a file that breaks mid-epoch is left out of its batch (collate_readable), not replaced.
        train=ReadableBatches(
            train_set,
            batch_sampler=NoSingleLastBatch(RandomSampler(train_set), batch_size),
            collate_fn=functools.partial(collate_readable, min_size=2),
            **common,
        ),
        val=evaluation(val_set),
        classes=list(train_set.classes),
        dataset=name,
        image_size=profile.data.image_size,
        skipped=skipped,
        test=evaluation(test_set) if test_set is not None else None,
        train_eval=evaluation(eval_set),
    )


class NoSingleLastBatch(BatchSampler):
    """Batches of ``batch_size`` indices, leaving out a last batch of exactly one.

    In training mode batch norm normalises with the batch's own statistics, and one image
    has none ("Expected more than 1 value per channel when training"). Dropping only a
    batch of one, rather than every incomplete batch (``drop_last=True``), keeps the most
    data; a new order each epoch leaves out a different photo. The same rule as
    :class:`ldl.data.loader.DeviceLoader` in training.
    """

    def __init__(self, sampler: Iterable[int], batch_size: int) -> None:
        super().__init__(sampler, batch_size, drop_last=False)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in super().__iter__():
            if len(batch) > 1 or self.batch_size == 1:
                yield batch

    def __len__(self) -> int:
        size = len(self.sampler)  # type: ignore[arg-type]
        if self.batch_size > 1 and size % self.batch_size == 1:
            return size // self.batch_size
        return super().__len__()
