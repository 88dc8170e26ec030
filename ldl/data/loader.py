"""Batches straight from a decoded tensor cache, already on the training device.

A ``DataLoader`` over image files decodes, transforms and collates every image in worker
processes, every epoch. When the whole split already sits in one small uint8 tensor
(:mod:`ldl.data.cache`), a batch is just a slice of it: :class:`DeviceLoader` moves the
tensor to the device once, then each batch is an index, a conversion to float, a batched
augmentation (:class:`ldl.data.batch_augment.BatchAugment`) and a normalisation.

>>> train = DeviceLoader.from_cache(cache, batch_size=32, shuffle=True,
...                                 device="cuda", augment=BatchAugment())
>>> for x, y in train:        # x: (B, 3, S, S) float32 normalised, y: (B,) int64
...     ...
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable, Iterator, Sequence

import torch

from ldl.core.constants import IMAGENET_MEAN, IMAGENET_STD
from ldl.data.cache import TensorCache


class DeviceLoader:
    """Iterate over ``(x, y)`` batches of an in-memory uint8 image tensor.

    Args:
        images: ``(N, 3, H, W) uint8`` images.
        labels: ``(N,)`` class indices.
        batch_size: images per batch.
        shuffle: draw a new order every epoch (else the stored order).
        device: where the images live and batches are made, e.g. ``"cuda"``.
        augment: called on each ``(B, 3, H, W)`` float batch in ``[0, 1]`` on the device,
            before normalisation (e.g. a :class:`~ldl.data.batch_augment.BatchAugment`).
        mean, std: per-channel normalisation (ImageNet's by default, what pretrained
            backbones expect). ``None`` for both leaves images in ``[0, 1]``.
        drop_last: leave out the last, smaller batch.
        drop_single: leave out a last batch of exactly one image. ``None`` (the default):
            when shuffling, i.e. in training. In training mode batch norm normalises with the
            batch's own statistics, and one image has none ("Expected more than 1 value per
            channel when training"); dropping only that one image, not every incomplete batch,
            keeps the most data, and a new order every epoch leaves out a different one.
            Evaluation (``shuffle=False``) keeps every photo: batch norm uses its running
            averages there.
        generator: the source of the shuffling order. ``None`` uses torch's global random
            state, so restoring it (``torch.set_rng_state`` from a checkpoint, or
            ``torch.manual_seed``) repeats the same order.

    Attributes:
        dataset_size: number of images ``N``.
        classes: class names when built with :meth:`from_cache`, else ``None``.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        shuffle: bool,
        device: torch.device | str = "cpu",
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        mean: Sequence[float] | None = IMAGENET_MEAN,
        std: Sequence[float] | None = IMAGENET_STD,
        drop_last: bool = False,
        generator: torch.Generator | None = None,
        drop_single: bool | None = None,
    ) -> None:
        if images.ndim != 4 or images.dtype != torch.uint8:
            raise ValueError(
                f"images must be a (N, 3, H, W) uint8 tensor, got {tuple(images.shape)} {images.dtype}."
            )
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels must be ({images.shape[0]},), one per image, got {tuple(labels.shape)}.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
        if (mean is None) != (std is None):
            raise ValueError("Give both mean and std, or neither (to keep images in [0, 1]).")
        self.device = torch.device(device)
        # Moved once: at 64 px, 800 images are 10 MB, much less than the model's activations.
        self.images = images.to(self.device)  # (N, 3, H, W) uint8
        self.labels = labels.to(self.device, torch.int64)  # (N,)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment
        self.drop_last = drop_last
        self.drop_single = shuffle if drop_single is None else drop_single
        self.generator = generator
        self.dataset_size = int(images.shape[0])
        self.classes: list[str] | None = None
        # Under torchrun each process reads its share (see shard()); one process reads everything.
        self.rank, self.world_size, self.pad, self.epoch = 0, 1, False, 0
        self.shard_seed: int | None = None  # set by shard(): the order comes from it and the epoch
        if mean is not None and std is not None:
            self.mean: torch.Tensor | None = torch.tensor(mean, device=self.device).view(1, -1, 1, 1)
            self.std: torch.Tensor | None = torch.tensor(std, device=self.device).view(1, -1, 1, 1)
        else:
            self.mean = self.std = None

    @classmethod
    def from_cache(cls, cache: TensorCache, **kwargs: Any) -> DeviceLoader:
        """A loader over a :class:`~ldl.data.cache.TensorCache`; keyword arguments as ``__init__``."""
        loader = cls(cache.images, cache.labels, **kwargs)
        loader.classes = list(cache.classes)
        return loader

    def shard(self, rank: int, world_size: int, *, seed: int = 0, pad: bool = True) -> DeviceLoader:
        """This loader's share for process ``rank`` of ``world_size`` (data parallel, lesson 7).

        Every process draws the same order (from ``seed`` and the epoch set by
        :meth:`set_epoch`) and keeps every ``world_size``-th image of it from ``rank``, as
        ``torch.utils.data.DistributedSampler`` does. ``pad``: repeat the first few images so
        that every share is equally long (training: every process must take as many steps);
        without it each image is in exactly one share (measuring). The images are shared,
        not copied.
        """
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in 0 … world_size − 1 = {world_size - 1}; got {rank}.")
        share = copy.copy(self)
        share.rank, share.world_size, share.shard_seed, share.pad, share.epoch = rank, world_size, seed, pad, 0
        return share

    def set_epoch(self, epoch: int) -> None:
        """The epoch about to start: a sharded loader draws its order from it (the Trainer calls this)."""
        self.epoch = epoch

    def _sample_count(self) -> int:
        """How many images this loader yields per epoch: all, or this process's share."""
        if self.world_size == 1:
            return self.dataset_size
        if self.pad:
            return math.ceil(self.dataset_size / self.world_size)
        return len(range(self.rank, self.dataset_size, self.world_size))

    def __len__(self) -> int:
        """Number of batches in one epoch."""
        count = self._sample_count()
        if self.drop_last or (self.drop_single and self.batch_size > 1 and count % self.batch_size == 1):
            return count // self.batch_size
        return math.ceil(count / self.batch_size)

    def _epoch_order(self) -> torch.Tensor:
        """``(n,)`` int64 indices in the order this epoch visits them (``n``: this process's share)."""
        if self.shard_seed is not None:
            return self._shard_order().to(self.device)
        if not self.shuffle:
            return torch.arange(self.dataset_size, device=self.device)
        # Drawn where the generator lives (the CPU for the global RNG), then moved.
        draw_device = self.generator.device if self.generator is not None else torch.device("cpu")
        order = torch.randperm(self.dataset_size, generator=self.generator, device=draw_device)
        return order.to(self.device)

    def _shard_order(self) -> torch.Tensor:
        """This process's indices: the same order in every process (seed + epoch), every world_size-th."""
        if self.shuffle:
            order = torch.randperm(self.dataset_size, generator=torch.Generator().manual_seed(self.shard_seed + self.epoch))
        else:
            order = torch.arange(self.dataset_size)
        if self.pad:
            missing = self._sample_count() * self.world_size - self.dataset_size
            order = torch.cat([order, order[:missing]])
        return order[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self._epoch_order()
        for batch_number in range(len(self)):
            rows = order[batch_number * self.batch_size : (batch_number + 1) * self.batch_size]
            x = self.images[rows].float().div_(255)  # (B, 3, H, W) float in [0, 1]
            if self.augment is not None:
                x = self.augment(x)
            if self.mean is not None and self.std is not None:
                x = (x - self.mean) / self.std
            yield x, self.labels[rows]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.dataset_size} images {tuple(self.images.shape[1:])}, "
            f"batch_size={self.batch_size}, shuffle={self.shuffle}, device={self.device}, "
            f"augment={self.augment!r}"
            + (f", shard {self.rank} of {self.world_size}" if self.world_size > 1 else "") + ")"
        )
