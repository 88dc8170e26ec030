"""BatchAugment: parameters drawn per image, applied to the whole batch in one warp."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from ldl.data.batch_augment import BatchAugment, per_sample_equivalent


@pytest.fixture
def batch() -> torch.Tensor:
    return torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(0))  # (B, 3, H, W) in [0, 1]


def test_identity_params_reproduce_input(batch: torch.Tensor) -> None:
    augment = BatchAugment(degrees=30, translate=(0.2, 0.2), brightness=0.5, contrast=0.5)
    out = augment.apply(batch, augment.identity_params(len(batch)))
    assert out.shape == batch.shape
    assert torch.allclose(out, batch, atol=1e-4)


def test_flip_params_flip_exactly(batch: torch.Tensor) -> None:
    augment = BatchAugment()
    params = augment.identity_params(len(batch))
    params["flip"][::2] = True
    out = augment.apply(batch, params)
    assert torch.allclose(out[::2], batch[::2].flip(-1), atol=1e-4)
    assert torch.allclose(out[1::2], batch[1::2], atol=1e-4)


@pytest.mark.parametrize("angle", [90.0, -90.0, 30.0])
def test_rotation_matches_torchvision(batch: torch.Tensor, angle: float) -> None:
    augment = BatchAugment()
    params = augment.identity_params(len(batch))
    params["angle"][:] = angle
    expected = TF.rotate(batch, angle, interpolation=v2.InterpolationMode.BILINEAR)
    assert torch.allclose(augment.apply(batch, params), expected, atol=1e-4)


def test_translation_matches_torchvision_on_non_square_images() -> None:
    x = torch.rand(2, 3, 8, 12)
    augment = BatchAugment()
    params = augment.identity_params(2)
    params["ratio"][:] = 12 / 8  # the whole non-square image
    params["translate_x"][:] = 3 / 12  # 3 pixels right
    params["translate_y"][:] = -2 / 8  # 2 pixels up
    expected = TF.affine(x, angle=0.0, translate=[3, -2], scale=1.0, shear=[0.0, 0.0])
    assert torch.allclose(augment.apply(x, params), expected, atol=1e-4)


def test_colour_matches_torchvision(batch: torch.Tensor) -> None:
    augment = BatchAugment()
    params = augment.identity_params(len(batch))
    params["brightness"][:] = 1.3
    params["contrast"][:] = 0.6
    expected = TF.adjust_contrast(TF.adjust_brightness(batch, 1.3), 0.6)
    assert torch.allclose(augment.apply(batch, params), expected, atol=1e-5)


def test_crop_zooms_into_the_chosen_corner() -> None:
    # Top-left quadrant white, the rest black. A 4x4-pixel crop (1/16 of the area) centred
    # at (5, 5) lies inside the white quadrant; centred at (11, 5) inside the black one.
    x = torch.zeros(1, 3, 16, 16)
    x[..., :8, :8] = 1.0
    augment = BatchAugment()
    params = augment.identity_params(1)
    params["scale"][:] = 1 / 16
    params["crop_x"][:] = -0.5  # centre at -0.5 * (1 - 1/4) = -0.375, i.e. pixel 5
    params["crop_y"][:] = -0.5
    assert torch.allclose(augment.apply(x, params), torch.ones_like(x), atol=1e-4)
    params["crop_x"][:] = 0.5  # top-right: all black
    assert torch.allclose(augment.apply(x, params), torch.zeros_like(x), atol=1e-4)


def test_same_generator_seed_same_output(batch: torch.Tensor) -> None:
    augment = BatchAugment(degrees=20, scale=(0.3, 1.0))

    def run(seed: int) -> torch.Tensor:
        params = augment.sample_params(len(batch), torch.Generator().manual_seed(seed), "cpu")
        return augment.apply(batch, params)

    assert torch.equal(run(1), run(1))
    assert not torch.allclose(run(1), run(2))
    torch.manual_seed(4)
    first = augment(batch)
    torch.manual_seed(4)
    assert torch.equal(augment(batch), first)


def test_params_are_per_sample_and_in_range() -> None:
    augment = BatchAugment(flip_p=0.5, scale=(0.4, 0.9), ratio=(0.5, 2.0), translate=(0.1, 0.2),
                           degrees=15, brightness=0.3, contrast=0.4)
    params = augment.sample_params(2000, torch.Generator().manual_seed(0), "cpu")
    assert all(value.shape == (2000,) for value in params.values())
    assert 0.4 < params["flip"].float().mean() < 0.6
    assert params["scale"].min() >= 0.4 and params["scale"].max() <= 0.9
    assert params["ratio"].min() >= 0.5 and params["ratio"].max() <= 2.0
    assert params["translate_y"].abs().max() <= 0.2 and params["translate_y"].abs().max() > 0.15
    assert params["angle"].abs().max() <= 15
    assert params["brightness"].min() >= 0.7 and params["contrast"].max() <= 1.4
    assert params["angle"].std() > 1  # different per image


def test_output_finite_and_in_range_with_strong_settings(batch: torch.Tensor) -> None:
    augment = BatchAugment(flip_p=1.0, scale=(0.05, 1.0), ratio=(0.2, 5.0), translate=(1.0, 1.0),
                           degrees=180, brightness=1.0, contrast=1.0, fill_mode="reflection")
    torch.manual_seed(0)
    out = augment(batch)
    assert torch.isfinite(out).all()
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not torch.allclose(out, batch)


def test_bad_settings_and_inputs_are_refused(batch: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="scale"):
        BatchAugment(scale=(0.0, 1.0))
    with pytest.raises(ValueError, match="fill_mode"):
        BatchAugment(fill_mode="wrap")
    with pytest.raises(ValueError, match="float"):
        BatchAugment()((batch * 255).to(torch.uint8))


def test_repr_lists_settings_and_per_sample_equivalent_matches() -> None:
    augment = BatchAugment(flip_p=0.3, scale=(0.5, 1.0), degrees=12, translate=(0.1, 0.05), brightness=0.2,
                           contrast=0.0)
    text = repr(augment)
    assert "flip_p=0.3" in text and "degrees=12.0" in text and "scale=(0.5, 1.0)" in text
    assert "12 degrees" in augment.describe()
    pipeline = per_sample_equivalent(augment, 24)
    kinds = [type(step) for step in pipeline.transforms]
    assert kinds == [v2.RandomResizedCrop, v2.RandomHorizontalFlip, v2.RandomAffine, v2.ColorJitter]
    crop, flip, affine, jitter = pipeline.transforms
    assert tuple(crop.size) == (24, 24) and tuple(crop.scale) == (0.5, 1.0)
    assert flip.p == 0.3 and list(affine.degrees) == [-12.0, 12.0] and jitter.contrast is None
    out = pipeline(torch.rand(3, 40, 50))
    assert out.shape == (3, 24, 24)
    assert [type(s) for s in per_sample_equivalent(BatchAugment(flip_p=0, degrees=0, translate=(0, 0),
                                                                brightness=0, contrast=0), 8).transforms] == [
        v2.RandomResizedCrop
    ]
