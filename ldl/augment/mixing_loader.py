"""Wrap a loader so that every training batch comes out mixed (MixUp, CutMix, Mosaic).

>>> train = MixingLoader(DeviceLoader.from_cache(cache, batch_size=32, shuffle=True),
...                      [MixUp(0.2, num_classes=2), CutMix(1.0, num_classes=2)])
>>> for x, soft_y in train:     # x: (B, 3, H, W), soft_y: (B, 2) float, rows sum to 1
...     ...
>>> Trainer(model).fit(train, val_loader)   # cross-entropy takes the soft labels as they are

Only the training loader is wrapped: validation keeps real photos and hard labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

import torch

from ldl.augment.seeding import draw_device


class BatchMixer(Protocol):
    """Anything called as ``mixer(images, labels, generator=...) -> (images, soft_labels)``."""

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


class MixingLoader:
    """Yield ``mixer(x, y)`` for every ``(x, y)`` batch of ``loader``.

    Args:
        loader: any iterable of ``(images (B, C, H, W), labels (B,))`` batches, e.g. a
            ``DataLoader`` or :class:`ldl.data.loader.DeviceLoader`.
        mixer: a mixer (``MixUp``, ``CutMix``, ``Mosaic``), or several: then one of them,
            chosen uniformly at random, mixes each batch (torchvision's recipe alternates
            MixUp and CutMix this way).
        generator: the source of every random draw (which mixer, lambda, boxes, partners);
            ``None`` uses torch's global random state.

    ``len()`` is the wrapped loader's number of batches.
    """

    def __init__(
        self,
        loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
        mixer: BatchMixer | Sequence[BatchMixer],
        generator: torch.Generator | None = None,
    ) -> None:
        mixers = list(mixer) if isinstance(mixer, Sequence) else [mixer]
        if not mixers:
            raise ValueError("Give at least one mixer, e.g. MixUp(alpha=0.2, num_classes=2).")
        if not all(callable(m) for m in mixers):
            raise TypeError("Every mixer must be callable as mixer(images, labels, generator=...).")
        self.loader = loader
        self.mixers = mixers
        self.generator = generator

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def _choose(self) -> BatchMixer:
        if len(self.mixers) == 1:
            return self.mixers[0]
        choice = torch.randint(len(self.mixers), (1,), generator=self.generator, device=draw_device(self.generator))
        return self.mixers[int(choice)]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, labels in self.loader:
            yield self._choose()(images, labels, generator=self.generator)

    def __repr__(self) -> str:
        return f"MixingLoader({self.loader!r}, mixers={self.mixers})"
