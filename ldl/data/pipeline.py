"""From a profile to a pair of loaders: the one call most notebooks make.

Two pipelines give the same batches:

- the **per-sample** pipeline (``fast=False``): a ``RobustImageDataset`` decodes each JPEG,
  torchvision ``transforms.v2`` resize and normalise it, a ``DataLoader`` batches them. This is
  the pipeline to read first; it redoes the JPEG decoding every epoch.
- the **fast** pipeline (``fast=True``, the default): every image is decoded and resized once
  into a uint8 tensor cache (kept on disk for the next run), and a ``DeviceLoader`` slices
  batches from it on the training device, where augmentation runs on whole batches.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import BatchSampler, RandomSampler, SequentialSampler
from torchvision.transforms import v2

from ldl.core.constants import IMAGENET_MEAN, IMAGENET_STD
from ldl.data.cache import build_tensor_cache, default_cache_dir
from ldl.data.folders import ReadableBatches, RobustImageDataset, collate_readable
from ldl.data.index import ImageIndex, different_classes_message
from ldl.data.loader import DeviceLoader
from ldl.data.on_disk import load_index
from ldl.data.registry import REGISTRY, DatasetUnavailable
from ldl.profiles import Profile, override



@dataclass
class Loaders:
    """What a lesson trains on.

    Attributes:
        train, val: iterables of ``(images (B, 3, S, S) float, labels (B,) int64)``.
        classes: class names, indexed by label.
        dataset: registry name of the data actually used.
        image_size: S, the side of the square images.
        skipped: unreadable files that were left out, as ``(path, reason)``.
    """

    train: Iterable
    val: Iterable
    classes: list[str]
    dataset: str
    image_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    skipped: list[tuple[str, str]] = field(default_factory=list)


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
) -> Loaders:
    """Build train and validation loaders sized by ``profile``.

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
    """
    if image_size is not None:
        profile = override(profile, image_size=image_size)
    name = resolve_dataset(profile, dataset)
    train_index = load_index(name, "train").limit_per_class(profile.data.train_per_class)
    val_index = load_index(name, "validation").limit_per_class(profile.data.val_per_class)
    check_same_classes(name, train_index, val_index)
    if fast:
        loaders = _fast_loaders(profile, name, train_index, val_index, augment, progress, mean, std)
    else:
        loaders = _per_sample_loaders(profile, name, train_index, val_index, augment, mean, std)
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
    val_index: ImageIndex,
    augment: Callable[[torch.Tensor], torch.Tensor] | None,
    progress: bool,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
) -> Loaders:
    cache_dir = default_cache_dir()
    train_cache = build_tensor_cache(train_index, profile.data.image_size, cache_dir=cache_dir, progress=progress)
    val_cache = build_tensor_cache(val_index, profile.data.image_size, cache_dir=cache_dir, progress=progress)
    common = dict(batch_size=profile.data.batch_size, device=profile.device, mean=mean, std=std)
    return Loaders(
        train=DeviceLoader.from_cache(train_cache, shuffle=True, augment=augment, **common),
        val=DeviceLoader.from_cache(val_cache, shuffle=False, **common),
        classes=list(train_cache.classes),
        dataset=name,
        image_size=profile.data.image_size,
        skipped=list(train_cache.skipped) + list(val_cache.skipped),
    )


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
    val_index: ImageIndex,
    augment: Callable | None,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
) -> Loaders:
    train_set = RobustImageDataset(train_index, transform=per_sample_transform(profile.data.image_size, augment, mean, std))
    val_set = RobustImageDataset(val_index, transform=per_sample_transform(profile.data.image_size, None, mean, std))
    common = dict(
        num_workers=profile.data.num_workers,
        pin_memory=profile.device == "cuda",  # pinned pages let the copy to the GPU run asynchronously
        persistent_workers=profile.data.num_workers > 0,
    )
    batch_size = profile.data.batch_size
    skipped = [(str(path), reason) for path, reason in train_set.skipped + val_set.skipped]
    return Loaders(
        # Training: no batch of one image (batch norm cannot train on it), see NoSingleLastBatch;
        # a file that breaks mid-epoch is left out of its batch (collate_readable), not replaced.
        train=ReadableBatches(
            train_set,
            batch_sampler=NoSingleLastBatch(RandomSampler(train_set), batch_size),
            collate_fn=functools.partial(collate_readable, min_size=2),
            **common,
        ),
        # Evaluation keeps every photo: batch norm uses its running averages in eval mode.
        val=ReadableBatches(
            val_set,
            batch_sampler=BatchSampler(SequentialSampler(val_set), batch_size, drop_last=False),
            collate_fn=collate_readable,
            **common,
        ),
        classes=list(train_set.classes),
        dataset=name,
        image_size=profile.data.image_size,
        skipped=skipped,
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
