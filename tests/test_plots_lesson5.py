"""Lesson 5's plots: an image cut into patches, attention maps laid over photos."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ldl import plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def numbers(ax: plt.Axes) -> list[str]:
    return [text.get_text() for text in ax.texts]


def test_show_patch_grid_numbers_every_patch_in_both_panels() -> None:
    image = torch.randint(0, 256, (3, 32, 48), dtype=torch.uint8)
    fig = plots.show_patch_grid(image, 16)  # 2 rows x 3 columns of patches
    assert isinstance(fig, Figure)
    ax_image, ax_strip = fig.axes
    assert len(ax_image.images) == 1 and len(ax_strip.images) == 1
    assert numbers(ax_image) == numbers(ax_strip) == [str(i) for i in range(6)]
    assert len(ax_image.lines) == (3 + 1) + (2 + 1)  # the grid: a line at every patch border
    strip = ax_strip.images[0].get_array()
    assert strip.shape[0] == 16  # six patches fit on one row of the sequence
    np.testing.assert_allclose(strip[:, :16], image[:, :16, :16].permute(1, 2, 0).numpy() / 255, rtol=1e-6)


def test_show_patch_grid_shows_patches_in_row_major_order() -> None:
    image = torch.zeros(3, 8, 8)
    image[:, 4:, :4] = 1.0  # only patch 2 (second row, first column) is white
    fig = plots.show_patch_grid(image, 4, normalized=False, per_row=2)
    strip = fig.axes[1].images[0].get_array()  # 2 rows of 2 patches, a 1 px white gap between them
    assert strip.shape[:2] == (9, 9)
    assert strip[5:, :4].min() == 1.0  # patch 2: bottom left of the strip
    assert strip[:4, :4].max() == 0.0 and strip[5:, 5:].max() == 0.0


def test_show_patch_grid_can_show_the_first_patches_only() -> None:
    fig = plots.show_patch_grid(torch.randn(3, 64, 64), 8, max_patches=10)
    ax_image, ax_strip = fig.axes
    assert numbers(ax_image) == numbers(ax_strip) == [str(i) for i in range(10)]
    assert "first 10 of 64" in ax_strip.get_title()


def test_show_patch_grid_refuses_bad_input_clearly() -> None:
    with pytest.raises(ValueError, match="not a multiple of the patch size 16"):
        plots.show_patch_grid(torch.randn(3, 40, 48), 16)
    with pytest.raises(ValueError, match=r"images\[0\]"):
        plots.show_patch_grid(torch.randn(2, 3, 32, 32), 16)
    with pytest.raises(ValueError, match="max_patches"):
        plots.show_patch_grid(torch.randn(3, 32, 32), 16, max_patches=0)


def test_show_attention_overlay_puts_an_image_sized_heat_map_on_each_photo() -> None:
    images = torch.randn(5, 3, 32, 32)
    maps = torch.rand(5, 4, 4)  # on the patch grid
    fig = plots.show_attention_overlay(images, maps, [f"photo {i}" for i in range(5)], ncols=3)
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 6 and len(drawn) == 5  # 2 x 3, the last cell empty
    assert [ax.get_title() for ax in drawn] == [f"photo {i}" for i in range(5)]
    for ax in drawn:
        photo, heat = ax.images
        assert photo.get_array().shape == (32, 32, 3)
        assert heat.get_array().shape == (32, 32) and heat.get_alpha() == 0.5
        assert heat.get_array().min() == pytest.approx(0.0) and heat.get_array().max() == pytest.approx(1.0)


def test_show_attention_overlay_accepts_uint8_photos() -> None:
    images = torch.full((2, 3, 16, 16), 255, dtype=torch.uint8)
    fig = plots.show_attention_overlay(images, torch.rand(2, 16, 16))
    assert fig.axes[0].images[0].get_array().max() == pytest.approx(1.0)


def test_show_attention_overlay_refuses_mismatched_shapes_clearly() -> None:
    with pytest.raises(ValueError, match="one map per image"):
        plots.show_attention_overlay(torch.randn(3, 3, 32, 32), torch.rand(2, 4, 4))
    with pytest.raises(ValueError, match="one map per image"):
        plots.show_attention_overlay(torch.randn(2, 3, 32, 32), torch.rand(2, 16))
    with pytest.raises(ValueError, match="unsqueeze"):
        plots.show_attention_overlay(torch.randn(3, 32, 32), torch.rand(1, 4, 4))
    with pytest.raises(ValueError, match="one title per image"):
        plots.show_attention_overlay(torch.randn(2, 3, 32, 32), torch.rand(2, 4, 4), ["only one"])
