"""The translation probe: exact shifts, and feature changes that follow from each architecture."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.models import VisionTransformer

from ldl.measure.inductive_bias import (
    distance_between_images,
    shift_images,
    shifted_features,
    translation_sensitivities,
    translation_sensitivity,
    translation_sensitivity_per_image,
)

SHIFTS = (1, 2, 4, 8, 16)


def smooth_images(batch: int = 2, size: int = 64, seed: int = 0) -> torch.Tensor:
    """``(B, 3, S, S)`` float images with photo-like smooth structure (upsampled noise)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randn(batch, 3, 8, 8, generator=generator)
    return F.interpolate(coarse, size=size, mode="bicubic", align_corners=False)


def circular_patchify_gap(stride: int) -> nn.Module:
    """Non-overlapping ``stride`` x ``stride`` convolution, ReLU, global average pool: ``(B, 8)``."""
    return nn.Sequential(nn.Conv2d(3, 8, kernel_size=stride, stride=stride), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten())


# --- shift_images -------------------------------------------------------------------------


@pytest.mark.parametrize(("dx", "dy"), [(3, 0), (0, 2), (-4, 1), (2, -5), (-1, -1)])
def test_shift_moves_the_interior_by_exactly_dx_dy(dx: int, dy: int) -> None:
    images = torch.rand(2, 3, 12, 16)
    shifted = shift_images(images, dx, dy)
    assert shifted.shape == images.shape and shifted.dtype == images.dtype
    height, width = images.shape[-2:]
    for y in range(height):
        for x in range(width):
            if 0 <= y - dy < height and 0 <= x - dx < width:
                assert torch.equal(shifted[..., y, x], images[..., y - dy, x - dx])


def test_reflect_fills_the_uncovered_strip_with_a_mirror_not_the_far_side() -> None:
    images = torch.arange(2 * 3 * 5 * 6, dtype=torch.float32).reshape(2, 3, 5, 6)
    shifted = shift_images(images, 2, 0)
    # Columns 0 and 1 are uncovered: the mirror about column 0 shows columns 2 and 1.
    assert torch.equal(shifted[..., 0], images[..., 2])
    assert torch.equal(shifted[..., 1], images[..., 1])
    rolled = torch.roll(images, shifts=2, dims=-1)  # brings the last columns round to the front
    assert not torch.equal(shifted[..., :2], rolled[..., :2])
    assert torch.equal(shift_images(images, 2, 0, fill="circular"), rolled)


def test_zero_shift_is_a_copy_and_integer_images_keep_their_dtype() -> None:
    images = torch.randint(0, 256, (1, 3, 8, 8), dtype=torch.uint8)
    same = shift_images(images, 0, 0)
    assert torch.equal(same, images) and same.data_ptr() != images.data_ptr()
    assert shift_images(images, 1, 1, fill="replicate").dtype == torch.uint8


def test_bad_shift_input_says_what_to_do() -> None:
    with pytest.raises(ValueError, match="unsqueeze"):
        shift_images(torch.rand(3, 8, 8), 1, 0)
    with pytest.raises(ValueError, match="shift less"):
        shift_images(torch.rand(1, 3, 8, 8), 8, 0)
    with pytest.raises(ValueError, match="fill must be one of"):
        shift_images(torch.rand(1, 3, 8, 8), 1, 0, fill="wrap")


# --- translation_sensitivity on models whose answer is known --------------------------------


def test_global_average_pool_of_a_circular_shift_does_not_change() -> None:
    images = smooth_images(batch=3, size=32)
    pooling = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())  # (B, 3): the mean colour
    changes = translation_sensitivity(pooling, images, SHIFTS, fill="circular", remove_classifier=False)
    assert set(changes) == set(SHIFTS)
    assert max(changes.values()) < 1e-5


def test_pooled_convolution_is_invariant_exactly_for_multiples_of_its_stride() -> None:
    torch.manual_seed(0)
    network = circular_patchify_gap(stride=4)
    changes = translation_sensitivity(network, smooth_images(size=32), (1, 2, 4, 8), fill="circular",
                                      remove_classifier=False)
    # A shift of 4 or 8 moves whole patches (the same patches, re-ordered: the average is unchanged);
    # 1 or 2 cuts every patch differently.
    assert changes[4] < 1e-5 and changes[8] < 1e-5
    assert changes[1] > 1e-3 and changes[2] > 1e-3


def test_a_model_that_flattens_pixels_changes_a_lot_and_shift_zero_not_at_all() -> None:
    images = smooth_images(batch=2, size=32)
    pooled = translation_sensitivity(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), images, (0, 4, 8),
                                     fill="circular", remove_classifier=False)
    flattened = translation_sensitivity(nn.Flatten(), images, (0, 4, 8), remove_classifier=False)
    assert flattened[0] == 0.0 and pooled[0] == 0.0
    for shift in (4, 8):
        assert flattened[shift] > 0.1
        assert flattened[shift] > 1000 * pooled[shift]


def test_metrics_measure_different_things_and_check_their_input() -> None:
    images = smooth_images(batch=2, size=32)
    flatten = nn.Flatten()
    base, moved = shifted_features(flatten, images, (4,), remove_classifier=False)
    relative = translation_sensitivity(flatten, images, (4,), remove_classifier=False)
    cosine = translation_sensitivity(flatten, images, (4,), metric="cosine", remove_classifier=False)
    versus = translation_sensitivity(flatten, images, (4,), metric="vs_other_images", remove_classifier=False)
    expected_relative = ((moved[4] - base).norm(dim=1) / base.norm(dim=1)).mean()
    assert relative[4] == pytest.approx(float(expected_relative))
    assert cosine[4] == pytest.approx(float((1 - F.cosine_similarity(base, moved[4])).mean()), abs=1e-6)
    assert 0 < cosine[4] < 2
    between = float((base[0] - base[1]).norm())
    assert versus[4] == pytest.approx(float((moved[4] - base).norm(dim=1).mean()) / between, rel=1e-5)
    assert distance_between_images(base) == pytest.approx(between, rel=1e-5)
    with pytest.raises(ValueError, match="at least 2 images"):
        translation_sensitivity(flatten, images[:1], (4,), metric="vs_other_images", remove_classifier=False)
    with pytest.raises(ValueError, match="metric must be one of"):
        translation_sensitivity(flatten, images, (4,), metric="l2", remove_classifier=False)


@pytest.mark.parametrize("metric", ["relative", "cosine", "vs_other_images"])
def test_per_image_changes_average_to_the_sensitivity_and_show_its_spread(metric: str) -> None:
    # Image 1 is image 0 with its left half flattened: a shift moves it less, so the two differ.
    images = smooth_images(batch=3, size=32)
    images[1, :, :, :16] = 0.0
    flatten = nn.Flatten()
    per_image = translation_sensitivity_per_image(flatten, images, (2, 4), metric=metric, remove_classifier=False)
    mean = translation_sensitivity(flatten, images, (2, 4), metric=metric, remove_classifier=False)
    for shift in (2, 4):
        assert len(per_image[shift]) == 3 and per_image[shift][1] != pytest.approx(per_image[shift][0])
        assert sum(per_image[shift]) / 3 == pytest.approx(mean[shift], rel=1e-6)
    resnet = torchvision.models.resnet18(num_classes=2)
    many = translation_sensitivities({"resnet18": resnet}, images, (2, 4), metric=metric, per_image=True)
    alone = translation_sensitivity_per_image(resnet, images, (2, 4), metric=metric)
    assert list(many["resnet18"]) == [2, 4]
    assert all(many["resnet18"][shift] == pytest.approx(alone[shift]) for shift in (2, 4))


def test_a_too_large_shift_fails_before_any_forward_pass() -> None:
    calls: list[int] = []

    class Counting(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            calls.append(len(x))
            return x.flatten(1)

    with pytest.raises(ValueError, match="shift less"):
        translation_sensitivity(Counting(), smooth_images(size=32), (1, 40), remove_classifier=False)
    assert calls == []


def test_unknown_models_need_remove_classifier_false() -> None:
    with pytest.raises(TypeError, match="remove_classifier=False"):
        translation_sensitivity(nn.Flatten(), smooth_images(size=32), (1,))


# --- real architectures, random weights ---------------------------------------------------------


def small_vit() -> VisionTransformer:
    """ViT with ViT-B/16's patch size on 64 px images: a 4 x 4 patch grid, two thin layers."""
    return VisionTransformer(image_size=64, patch_size=16, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64,
                             num_classes=10)


def test_resnet18_and_a_small_vit_give_positive_finite_changes_and_are_left_untouched() -> None:
    torch.manual_seed(0)
    models = {"resnet18": torchvision.models.resnet18(num_classes=10), "vit": small_vit()}
    results = translation_sensitivities(models, smooth_images(batch=2, size=64), SHIFTS)
    assert set(results) == {"resnet18", "vit"}
    for changes in results.values():
        assert list(changes) == list(SHIFTS)
        assert all(math.isfinite(value) and value > 0 for value in changes.values())
    # The probe works on copies: heads still in place, still in training mode.
    assert isinstance(models["resnet18"].fc, nn.Linear) and isinstance(models["vit"].heads.head, nn.Linear)
    assert all(model.training for model in models.values())


def test_penultimate_features_have_the_backbones_feature_size() -> None:
    torch.manual_seed(0)
    base, moved = shifted_features(torchvision.models.resnet18(num_classes=10), smooth_images(size=64), (2,))
    assert base.shape == moved[2].shape == (2, 512)  # pooled features, not the 10 logits
