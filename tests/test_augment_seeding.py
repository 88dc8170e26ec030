"""Seeding: the same seed reproduces augmented images, the caller's random state is untouched."""

from __future__ import annotations

import pytest
import scipy.stats
import torch
from torchvision.transforms import v2

from ldl.augment import GridMask, apply_seeded, sample_beta, seeded, spawn_seeds


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_seeded_repeats_torchvision_draws_and_restores_global_state() -> None:
    image = torch.arange(3 * 8 * 8, dtype=torch.uint8).view(3, 8, 8)
    rotate = v2.RandomRotation(45)
    before = torch.get_rng_state()
    with seeded(7):
        first = rotate(image)
    with seeded(7):
        second = rotate(image)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(first, second)


def test_seeded_with_a_generator_moves_it_on() -> None:
    generator = torch.Generator().manual_seed(0)
    with seeded(generator):
        a = torch.rand(3)
    with seeded(generator):
        b = torch.rand(3)
    with seeded(torch.Generator().manual_seed(0)):
        again = torch.rand(3)
    assert not torch.equal(a, b)
    assert torch.equal(a, again)


def test_seeded_rejects_a_float_seed() -> None:
    with pytest.raises(TypeError, match="int or a torch.Generator"):
        with seeded(0.5):  # type: ignore[arg-type]
            pass


def test_apply_seeded_same_seed_same_grid_other_seed_other_grid(images: torch.Tensor) -> None:
    transform = v2.Compose([v2.RandomResizedCrop(16, scale=(0.3, 1.0), antialias=True), v2.ColorJitter(0.5, 0.5)])
    grid = apply_seeded(transform, images, seed=0)
    assert isinstance(grid, torch.Tensor) and grid.shape == images.shape and grid.dtype == torch.uint8
    assert torch.equal(grid, apply_seeded(transform, images, seed=0))
    assert not torch.equal(grid, apply_seeded(transform, images, seed=1))


def test_apply_seeded_image_result_does_not_depend_on_the_other_images(images: torch.Tensor) -> None:
    mask = GridMask(unit_range=(0.3, 0.6))
    whole = apply_seeded(mask, images, seed=3)
    first_two = apply_seeded(mask, images[:2], seed=3)
    assert torch.equal(whole[:2], first_two)
    assert spawn_seeds(3, 5)[:2] == spawn_seeds(3, 2)


def test_apply_seeded_returns_a_list_for_a_list(images: torch.Tensor) -> None:
    out = apply_seeded(v2.RandomHorizontalFlip(p=1.0), list(images), seed=0)
    assert isinstance(out, list) and len(out) == len(images)
    assert torch.equal(out[0], images[0].flip(-1))


@pytest.mark.parametrize(("a", "b"), [(0.2, 0.2), (1.0, 1.0), (2.0, 5.0)])
def test_sample_beta_follows_the_beta_distribution(a: float, b: float) -> None:
    samples = sample_beta(a, b, 20_000, torch.Generator().manual_seed(0))
    assert samples.dtype == torch.float64 and bool(((samples >= 0) & (samples <= 1)).all())
    # Kolmogorov-Smirnov against scipy's Beta CDF: a wrong sampler gives p-values ~ 0.
    assert scipy.stats.kstest(samples.numpy(), "beta", args=(a, b)).pvalue > 1e-3


def test_sample_beta_small_alpha_never_nan_and_is_reproducible() -> None:
    samples = sample_beta(0.01, 0.01, 1000, torch.Generator().manual_seed(1))
    assert not bool(samples.isnan().any())
    assert torch.equal(samples, sample_beta(0.01, 0.01, 1000, torch.Generator().manual_seed(1)))
    with pytest.raises(ValueError, match="a > 0"):
        sample_beta(0.0, 1.0)
