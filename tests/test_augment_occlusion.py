"""GridMask (hand-written) and the random-erasing helpers (torchvision)."""

from __future__ import annotations

import PIL.Image
import pytest
import torch
from torchvision import tv_tensors

from ldl.augment import GridMask, GridMaskParams, cutout


def test_fixed_params_erase_the_hand_computed_holes() -> None:
    mask = GridMask.mask(8, 8, GridMaskParams(unit=4, hole=2, offset_x=0, offset_y=0))
    rows_cols = {0, 1, 4, 5}
    expected = torch.tensor([[y in rows_cols and x in rows_cols for x in range(8)] for y in range(8)])
    assert torch.equal(mask, expected)


def test_offset_wraps_around_the_cell() -> None:
    # (v - 3) mod 4 < 2 holds for v = 3, 4, 7 and for v = 0 ((0 - 3) mod 4 = 1).
    mask = GridMask.mask(8, 8, GridMaskParams(unit=4, hole=2, offset_x=3, offset_y=1))
    columns, rows = {0, 3, 4, 7}, {1, 2, 5, 6}
    expected = torch.tensor([[y in rows and x in columns for x in range(8)] for y in range(8)])
    assert torch.equal(mask, expected)


def test_apply_fills_holes_and_keeps_the_rest_for_uint8_and_float() -> None:
    params = GridMaskParams(unit=5, hole=2, offset_x=1, offset_y=2)
    holes = GridMask.mask(10, 10, params)
    image = torch.randint(1, 256, (3, 10, 10), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out = GridMask(fill=0).apply(image, params)
    assert out.dtype == torch.uint8 and out.shape == image.shape
    assert bool((out[:, holes] == 0).all()) and torch.equal(out[:, ~holes], image[:, ~holes])
    as_float = GridMask(fill=0.5).apply(image.float() / 255, params)
    assert as_float.dtype == torch.float32 and bool((as_float[:, holes] == 0.5).all())


def test_erased_fraction_is_one_minus_keep_ratio_squared() -> None:
    # A 60 px image holds whole cells of 10 px: with keep_ratio 0.6 the holes are 4 px, 16 %.
    grid = GridMask(unit_range=(1 / 6, 1 / 6), keep_ratio=0.6)
    params = grid.sample_params(60, 60, torch.Generator().manual_seed(0))
    assert (params.unit, params.hole) == (10, 4)
    assert GridMask.mask(60, 60, params).float().mean().item() == pytest.approx(0.16)
    rotated = GridMaskParams(unit=10, hole=4, offset_x=0, offset_y=0, angle=30.0)
    assert GridMask.mask(60, 60, rotated).float().mean().item() == pytest.approx(0.16, abs=0.02)
    assert not torch.equal(GridMask.mask(60, 60, rotated), GridMask.mask(60, 60, params))


def test_sampled_params_stay_in_range_and_follow_the_generator() -> None:
    grid = GridMask(unit_range=(0.2, 0.5), keep_ratio=0.7, max_angle=90)
    draws = [grid.sample_params(40, 50, torch.Generator().manual_seed(s)) for s in range(30)]
    assert all(8 <= p.unit <= 20 and 0 <= p.offset_x < p.unit and 0 <= p.offset_y < p.unit for p in draws)
    assert all(p.hole == p.unit - round(p.unit * 0.7) and 0 <= p.angle < 90 for p in draws)
    assert draws[0] == grid.sample_params(40, 50, torch.Generator().manual_seed(0))
    assert len({(p.unit, p.offset_x, p.offset_y) for p in draws}) > 10


def test_gridmask_accepts_pil_tv_image_and_batches() -> None:
    grid = GridMask()
    pil = PIL.Image.new("RGB", (20, 16), (200, 100, 50))
    out = grid(pil, generator=torch.Generator().manual_seed(0))
    assert isinstance(out, PIL.Image.Image) and out.size == (20, 16)
    assert (0, 0, 0) in {pixel for _, pixel in out.getcolors()}
    image = tv_tensors.Image(torch.full((3, 16, 20), 9, dtype=torch.uint8))
    assert isinstance(grid(image), tv_tensors.Image)
    batch = torch.full((4, 3, 16, 20), 9, dtype=torch.uint8)
    masked = grid(batch, generator=torch.Generator().manual_seed(1))
    assert masked.shape == batch.shape and torch.equal(masked[0], masked[3])  # one mask for the batch
    with pytest.raises(TypeError, match="PIL"):
        grid.apply(torch.zeros(16, 20), GridMaskParams(4, 2, 0, 0))


def test_gridmask_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="keep_ratio"):
        GridMask(keep_ratio=1.5)
    with pytest.raises(ValueError, match="unit_range"):
        GridMask(unit_range=(0.5, 0.2))


def test_cutout_erases_one_square_of_the_given_area() -> None:
    image = torch.full((3, 20, 20), 255, dtype=torch.uint8)
    out = cutout(area=0.25)(image)
    erased = (out == 0).all(dim=0)
    assert int(erased.sum()) == 100  # a 10 x 10 square
    rows, cols = erased.nonzero(as_tuple=True)
    assert int(rows.max() - rows.min()) == 9 and int(cols.max() - cols.min()) == 9
