"""The lesson's gallery: every transform visible, on tensors and PIL images, reproducible."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torchvision.transforms.v2 import functional as TF

from ldl.augment import gallery_images, gallery_transforms, show_gallery
from ldl.data.cache import decode_square

SIZE = 32
EXPECTED = {
    "horizontal flip", "vertical flip", "rotation", "zoom (resized crop)", "translation", "shear", "perspective",
    "brightness", "contrast", "saturation", "hue", "gaussian noise", "equalize", "erasing", "gridmask",
}


@pytest.fixture
def image() -> torch.Tensor:
    """``(3, 32, 32)`` uint8: smooth colour blobs, no symmetry, so every change shows."""
    coarse = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    smooth = F.interpolate(coarse, size=(SIZE, SIZE), mode="bilinear", align_corners=False)[0]
    return (smooth * 200 + 20).to(torch.uint8)


def test_gallery_has_every_lesson_transform_and_each_changes_the_image(image: torch.Tensor) -> None:
    transforms = gallery_transforms(SIZE)
    assert set(transforms) == EXPECTED
    for name, outs in gallery_images(image, transforms, seed=0, n_per=3).items():
        for out in outs:
            assert out.shape == (3, SIZE, SIZE) and out.dtype == torch.uint8, name
            change = (out.float() - image.float()).abs().mean().item()
            assert change > 3.0, f"{name} changed the image by only {change:.1f} grey levels on average"


def test_gallery_transforms_accept_pil_images(image: torch.Tensor) -> None:
    pil = TF.to_pil_image(image)
    for name, transform in gallery_transforms(SIZE).items():
        out = transform(pil)
        assert isinstance(out, torch.Tensor) and out.shape == (3, SIZE, SIZE) and out.dtype == torch.uint8, name


def test_same_seed_same_gallery_other_seed_other_gallery(image: torch.Tensor) -> None:
    transforms = gallery_transforms(SIZE)
    first = gallery_images(image, transforms, seed=0)
    again = gallery_images(image, transforms, seed=0)
    other = gallery_images(image, transforms, seed=1)
    assert all(torch.equal(first[name][0], again[name][0]) for name in transforms)
    random_ones = set(transforms) - {"horizontal flip", "vertical flip", "equalize"}  # these have no randomness
    assert all(not torch.equal(first[name][0], other[name][0]) for name in random_ones)


def shown_arrays(fig: Figure) -> list:
    return [ax.images[0].get_array() for ax in fig.axes if ax.images]


def test_show_gallery_titles_panels_and_is_reproducible(image: torch.Tensor) -> None:
    transforms = gallery_transforms(SIZE)
    fig = show_gallery(image, transforms, seed=0)
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert titles == ["original", *transforms]
    again = shown_arrays(show_gallery(image, transforms, seed=0))
    assert all((a == b).all() for a, b in zip(shown_arrays(fig), again))
    grid = show_gallery(image, {"rotation": transforms["rotation"]}, seed=0, n_per=3)
    assert len(shown_arrays(grid)) == 4  # the original + 3 draws


def test_gallery_on_a_real_photo(cats_and_dogs_sample: Path) -> None:
    photo = decode_square(next((cats_and_dogs_sample / "train" / "cats").glob("*.jpg")), 64)
    results = gallery_images(photo, gallery_transforms(64), seed=0)
    assert len(results) == len(EXPECTED)
    assert all(outs[0].shape == photo.shape for outs in results.values())
    gridmask = results["gridmask"][0]
    assert (gridmask == 0).all(dim=0).float().mean().item() > 0.1  # holes a student can see
