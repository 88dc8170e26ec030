"""Reproducible randomness: one seed gives the same augmented grid, every time.

The transforms written in this package take a ``generator: torch.Generator | None`` and draw
every random number from it. torchvision's ``transforms.v2`` draw from torch's *global*
random state instead, so for them :func:`seeded` seeds that global state for the length of
a ``with`` block and puts the caller's state back afterwards:

>>> with seeded(0):
...     a = v2.RandomRotation(30)(image)
>>> with seeded(0):
...     b = v2.RandomRotation(30)(image)
>>> torch.equal(a, b)
True
>>> grid = apply_seeded(v2.RandomRotation(30), images, seed=0)   # (N, 3, H, W), reproducible
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

# Seeds are drawn below 2**62: torch.manual_seed accepts any value a signed 64-bit int holds.
SEED_LIMIT = 2**62


def draw_device(generator: torch.Generator | None) -> torch.device:
    """Where random numbers are drawn: the generator's device (a CUDA generator draws on
    the GPU), or the CPU for torch's global random state."""
    return generator.device if generator is not None else torch.device("cpu")


def seed_from(seed_or_generator: int | torch.Generator) -> int:
    """An int seed: ``seed_or_generator`` itself, or the next number drawn from the generator.

    Drawing from a generator moves it on, so two ``seeded(generator)`` blocks in a row get
    different seeds, while re-seeding the generator repeats them.
    """
    if isinstance(seed_or_generator, torch.Generator):
        drawn = torch.randint(SEED_LIMIT, (1,), generator=seed_or_generator, device=seed_or_generator.device)
        return int(drawn)
    if isinstance(seed_or_generator, bool) or not isinstance(seed_or_generator, int):
        raise TypeError(
            f"seed must be an int or a torch.Generator, got {type(seed_or_generator).__name__}: "
            "e.g. seeded(0) or seeded(torch.Generator().manual_seed(0))."
        )
    return seed_or_generator


def spawn_seeds(seed_or_generator: int | torch.Generator, count: int) -> list[int]:
    """``count`` int seeds, one per image, all fixed by ``seed_or_generator``.

    Image ``i`` gets the ``i``-th seed of the sequence, so its augmentation does not depend
    on how many random numbers the transforms of the other images used.
    """
    generator = torch.Generator().manual_seed(seed_from(seed_or_generator))
    return torch.randint(SEED_LIMIT, (count,), generator=generator).tolist()


@contextmanager
def seeded(seed_or_generator: int | torch.Generator) -> Iterator[None]:
    """Seed torch's global random state inside the block; restore the caller's state after it.

    ``torch.random.fork_rng`` saves the CPU random state (and the current CUDA device's, when
    CUDA is in use) on entry and restores it on exit, so seeding here does not change
    what the caller's own random calls draw after the block.
    """
    seed = seed_from(seed_or_generator)
    # Forking the CUDA state would initialise CUDA; only do it when CUDA is already in use.
    cuda_devices = [torch.cuda.current_device()] if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)
        yield


def apply_seeded(
    transform: Callable[[Any], Any],
    images: torch.Tensor | Sequence[Any],
    seed: int | torch.Generator,
) -> torch.Tensor | list[Any]:
    """Augment each image with its own reproducible random draw.

    Args:
        transform: a one-image transform, e.g. a torchvision ``v2`` transform or ``GridMask``.
        images: ``(N, 3, H, W)`` tensor, or a sequence of ``(3, H, W)`` tensors / PIL images.
        seed: the same seed gives the same outputs; image ``i`` always gets the ``i``-th
            seed derived from it (see :func:`spawn_seeds`).

    Returns:
        ``(N, ...)`` tensor when ``images`` is a tensor and every output is a tensor of one
        shape; otherwise a list of the outputs, in order.
    """
    seeds = spawn_seeds(seed, len(images))
    outputs = []
    for image, image_seed in zip(images, seeds):
        with seeded(image_seed):
            outputs.append(transform(image))
    same_shape_tensors = all(isinstance(out, torch.Tensor) for out in outputs) and len(
        {tuple(out.shape) for out in outputs}
    ) == 1
    if isinstance(images, torch.Tensor) and same_shape_tensors:
        # as_subclass: tv_tensors.Image outputs become one plain tensor.
        return torch.stack([out.as_subclass(torch.Tensor) for out in outputs])
    return outputs
