"""The augmentation recipe: settings -> pipeline, its copyable code, reproducible grids, mixing."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
import torch
from PIL import Image

from ldl.augment import CutMix, MixUp, apply_seeded
from ldl.augment.preview import augment_grid, mix_preview, prepare_images
from ldl.augment.recipe import KNOBS, AugmentSettings, batch_mixers, build_pipeline, pipeline_code

SIZE = 48

# Every per-image knob turned up far enough that each augmented copy must differ from the
# photo (probabilities at 1). The mixing knobs are batch-level and tested separately.
ACTIVE = {
    "hflip_p": {"hflip_p": 1.0},
    "vflip_p": {"vflip_p": 1.0},
    "crop_scale": {"crop_scale": 0.3},
    "degrees": {"degrees": 40.0},
    "translate": {"translate": 0.3},
    "zoom": {"zoom": 0.4},
    "shear": {"shear": 30.0},
    "perspective": {"perspective": 0.6},
    "brightness": {"brightness": 0.8},
    "contrast": {"contrast": 0.8},
    "saturation": {"saturation": 0.9},
    "hue": {"hue": 0.4},
    "grayscale_p": {"grayscale_p": 1.0},
    "equalize_p": {"equalize_p": 1.0},
    "noise_sigma": {"noise_sigma": 0.2},
    "erasing_p": {"erasing_p": 1.0, "erasing_scale": 0.3},
    "gridmask": {"gridmask": True, "gridmask_ratio": 0.5},
}
EVERYTHING = AugmentSettings(
    hflip_p=0.5, vflip_p=0.2, crop_scale=0.5, degrees=20, translate=0.1, zoom=0.2, shear=10,
    perspective=0.3, brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05, grayscale_p=0.1,
    equalize_p=0.2, noise_sigma=0.05, erasing_p=0.5, erasing_scale=0.2, gridmask=True,
    gridmask_ratio=0.7, mixup_alpha=0.4, cutmix_alpha=1.0,
)


@pytest.fixture
def photos() -> torch.Tensor:
    """Two (3, SIZE, SIZE) uint8 pictures with structure in every direction and colour."""
    ys, xs = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    first = torch.stack([xs * 5, ys * 5, (xs * ys) % 256]) % 256
    second = torch.stack([(xs + 2 * ys) * 3, 255 - ys * 4, (xs * 7) % 200]) % 256
    return torch.stack([first, second]).to(torch.uint8)  # (2, 3, SIZE, SIZE)


def copies_of(grid: torch.Tensor, n_augmented: int) -> torch.Tensor:
    """(N * (1 + n), 3, S, S) grid -> (N, n, 3, S, S): the augmented copies only."""
    return grid.view(-1, 1 + n_augmented, *grid.shape[1:])[:, 1:]


# ---------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------


def test_every_numeric_setting_has_a_knob_and_every_knob_a_setting() -> None:
    numeric = {f.name for f in fields(AugmentSettings) if f.type != "bool"}
    assert numeric == {knob.name for knob in KNOBS}
    for knob in KNOBS:
        default = getattr(AugmentSettings(), knob.name)
        assert knob.low <= default <= knob.high and knob.step > 0, knob


def test_defaults_change_nothing() -> None:
    assert AugmentSettings().changed() == {}
    assert AugmentSettings(degrees=15).changed() == {"degrees": 15}


@pytest.mark.parametrize(("values", "error"), [
    ({"degrees": 500}, ValueError), ({"hflip_p": -0.1}, ValueError), ({"hue": 0.6}, ValueError),
    ({"brightness": "lots"}, TypeError), ({"gridmask": 1}, TypeError),
])
def test_bad_settings_are_refused_with_the_name_and_the_range(values: dict, error: type) -> None:
    with pytest.raises(error, match=next(iter(values))):
        AugmentSettings(**values)


# ---------------------------------------------------------------------------------------
# Pipeline
# ---------------------------------------------------------------------------------------


def test_identity_copies_equal_the_photo(photos: torch.Tensor) -> None:
    grid = augment_grid(photos, AugmentSettings(), n_augmented=3, image_size=SIZE, seed=0)
    assert grid.shape == (2 * 4, 3, SIZE, SIZE) and grid.dtype == torch.uint8
    expected = photos.unsqueeze(1).expand(2, 3, 3, SIZE, SIZE)
    assert torch.equal(copies_of(grid, 3), expected)
    assert torch.equal(grid[::4], photos)  # each row starts with the photo itself


@pytest.mark.parametrize("knob", sorted(ACTIVE))
def test_each_knob_changes_every_copy_and_appears_in_the_code(photos: torch.Tensor, knob: str) -> None:
    settings = AugmentSettings(**ACTIVE[knob])
    grid = augment_grid(photos, settings, n_augmented=4, image_size=SIZE, seed=1)
    copies = copies_of(grid, 4)
    for row, photo in zip(copies, photos):
        for copy in row:
            assert not torch.equal(copy, photo), f"{knob} left a copy unchanged"
    assert len(build_pipeline(settings, SIZE).transforms) > 1  # ToImage + the knob's transform
    assert pipeline_code(settings, SIZE) != pipeline_code(AugmentSettings(), SIZE)


def test_flip_at_probability_one_flips_exactly(photos: torch.Tensor) -> None:
    grid = augment_grid(photos, AugmentSettings(hflip_p=1.0), n_augmented=2, image_size=SIZE, seed=0)
    assert torch.equal(copies_of(grid, 2)[:, 0], photos.flip(-1))


def test_mixing_knobs_leave_the_per_image_pipeline_alone(photos: torch.Tensor) -> None:
    settings = AugmentSettings(mixup_alpha=0.4, cutmix_alpha=1.0)
    grid = augment_grid(photos, settings, n_augmented=2, image_size=SIZE, seed=0)
    assert torch.equal(copies_of(grid, 2)[:, 1], photos)
    assert [type(m) for m in batch_mixers(settings)] == [MixUp, CutMix]
    assert batch_mixers(AugmentSettings()) == []


@pytest.mark.parametrize("settings", [AugmentSettings(), EVERYTHING, AugmentSettings(**ACTIVE["noise_sigma"])],
                         ids=["identity", "everything", "noise"])
def test_generated_code_builds_the_same_pipeline(photos: torch.Tensor, settings: AugmentSettings) -> None:
    code = pipeline_code(settings, SIZE, num_classes=3)
    namespace: dict = {}
    exec(compile(code, "<pipeline_code>", "exec"), namespace)  # what a student does by pasting it
    copies = photos.repeat_interleave(5, dim=0)
    from_code = apply_seeded(namespace["train_transform"], copies, seed=7)
    grid = augment_grid(photos, settings, n_augmented=5, image_size=SIZE, seed=7)
    assert torch.equal(from_code.view(2, 5, 3, SIZE, SIZE), copies_of(grid, 5))
    expected_mixers = batch_mixers(settings, num_classes=3)
    assert [repr(m) for m in namespace.get("mixers", [])] == [repr(m) for m in expected_mixers]


def test_code_follows_the_settings() -> None:
    code = pipeline_code(AugmentSettings(degrees=30, hflip_p=0.5, erasing_p=0.25), SIZE)
    assert "v2.RandomAffine(degrees=30" in code and "v2.RandomHorizontalFlip(p=0.5)" in code
    assert "v2.RandomErasing(p=0.25" in code and "ColorJitter" not in code
    # A slider's float noise is written the way a person would write it.
    assert "brightness=0.3)" in pipeline_code(AugmentSettings(brightness=0.1 + 0.2), SIZE)


def test_pipeline_works_on_pil_images_too() -> None:
    picture = Image.new("RGB", (SIZE, SIZE), (200, 30, 30))
    out = build_pipeline(AugmentSettings(noise_sigma=0.1, degrees=10), SIZE)(picture)
    assert out.shape == (3, SIZE, SIZE) and out.dtype == torch.uint8


# ---------------------------------------------------------------------------------------
# Seeds
# ---------------------------------------------------------------------------------------


def test_same_seed_same_grid_other_seed_other_grid(photos: torch.Tensor) -> None:
    def grid(seed: int) -> torch.Tensor:
        return augment_grid(photos, EVERYTHING, n_augmented=4, image_size=SIZE, seed=seed)

    assert torch.equal(grid(3), grid(3))
    assert not torch.equal(grid(3), grid(4))


def test_the_callers_random_state_is_untouched(photos: torch.Tensor) -> None:
    torch.manual_seed(123)
    expected = torch.rand(5)
    torch.manual_seed(123)
    augment_grid(photos, EVERYTHING, n_augmented=3, image_size=SIZE, seed=0)
    mix_preview(photos, EVERYTHING, image_size=SIZE, seed=0)
    assert torch.equal(torch.rand(5), expected)


def test_a_photo_keeps_its_copies_when_another_photo_is_added(photos: torch.Tensor) -> None:
    alone = augment_grid(photos[:1], EVERYTHING, n_augmented=3, image_size=SIZE, seed=5)
    together = augment_grid(photos, EVERYTHING, n_augmented=3, image_size=SIZE, seed=5)
    assert torch.equal(alone, together[:4])


# ---------------------------------------------------------------------------------------
# Mixing preview
# ---------------------------------------------------------------------------------------


def test_mixup_blends_pixels_and_labels_with_one_weight() -> None:
    black, white = torch.zeros(3, SIZE, SIZE, dtype=torch.uint8), torch.full((3, SIZE, SIZE), 255, dtype=torch.uint8)
    preview = mix_preview([black, white], AugmentSettings(mixup_alpha=1.0), labels=["cat", "dog"],
                          n_mixed=3, image_size=SIZE, seed=0)
    assert preview.kinds == ["MixUp"] * 3 and preview.classes == ["cat", "dog"]
    assert torch.allclose(preview.soft_labels.sum(dim=1), torch.ones(3))
    for image, (_, dog_share) in zip(preview.images, preview.soft_labels):
        # The dog is the white photo, whichever of the pair it is: its share is the whiteness.
        assert image.float().mean() / 255 == pytest.approx(float(dog_share), abs=0.01)
    assert len({round(float(share), 3) for share in preview.soft_labels[:, 1]}) == 3  # a new weight each time


def test_cutmix_labels_are_the_pixel_shares() -> None:
    black, white = torch.zeros(3, SIZE, SIZE, dtype=torch.uint8), torch.full((3, SIZE, SIZE), 255, dtype=torch.uint8)
    preview = mix_preview([black, white], AugmentSettings(cutmix_alpha=1.0), labels=["cat", "dog"],
                          n_mixed=4, image_size=SIZE, seed=2)
    assert preview.kinds == ["CutMix"] * 4
    for image, (_, dog_share), caption in zip(preview.images, preview.soft_labels, preview.captions()):
        white_pixels = (image[0] == 255).float().mean()  # the dog is the white photo
        assert float(dog_share) == pytest.approx(float(white_pixels), abs=1e-6)
        assert caption.startswith("CutMix: ") and f"dog {float(dog_share):.2f}" in caption


def test_mix_preview_is_empty_without_mixing_or_with_one_photo(photos: torch.Tensor) -> None:
    assert mix_preview(photos, AugmentSettings(), image_size=SIZE).images.shape[0] == 0
    assert mix_preview(photos[:1], AugmentSettings(mixup_alpha=1.0), image_size=SIZE).images.shape[0] == 0
    with pytest.raises(ValueError, match="one class name per photo"):
        mix_preview(photos, AugmentSettings(mixup_alpha=1.0), labels=["cat"], image_size=SIZE)


# ---------------------------------------------------------------------------------------
# Photos in
# ---------------------------------------------------------------------------------------


def test_photos_come_in_any_form_and_leave_as_squares(tmp_path: Path) -> None:
    wide = Image.new("RGB", (90, 60), (10, 200, 30))
    wide.save(tmp_path / "wide.png")
    gray = torch.full((1, 70, 50), 77, dtype=torch.uint8)
    out = prepare_images([wide, tmp_path / "wide.png", str(tmp_path / "wide.png"), gray], SIZE)
    assert out.shape == (4, 3, SIZE, SIZE) and out.dtype == torch.uint8
    assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])
    assert torch.all(out[3] == 77)


@pytest.mark.parametrize(("images", "message"), [
    ([], "No images"), (torch.rand(3, 8, 8), "uint8"), ([torch.zeros(4, 8, 8, dtype=torch.uint8)], "shape"),
    ([42], "PIL image"),
])
def test_bad_photos_get_an_error_that_says_what_to_pass(images: object, message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        prepare_images(images, SIZE)


def test_real_photos_identity_and_augmented(cats_and_dogs_sample: Path) -> None:
    paths = [sorted((cats_and_dogs_sample / "train" / kind).glob("*.jpg"))[0] for kind in ("cats", "dogs")]
    identity = augment_grid(paths, AugmentSettings(), n_augmented=2, image_size=64, seed=0)
    assert torch.equal(identity[1], identity[0]) and torch.equal(identity[5], identity[3])
    augmented = augment_grid(paths, EVERYTHING, n_augmented=2, image_size=64, seed=0)
    assert torch.equal(augmented[::3], identity[::3]) and not torch.equal(augmented, identity)


@pytest.mark.parametrize("seed", [-1, 2**70, 1.5, True])
def test_bad_seeds_are_refused(photos: torch.Tensor, seed: object) -> None:
    with pytest.raises(ValueError, match="seed must be"):
        augment_grid(photos, AugmentSettings(degrees=10), n_augmented=1, image_size=SIZE, seed=seed)
