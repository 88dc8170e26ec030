from __future__ import annotations

import pytest
import torch

from ldl.course.exercises import check_flatten_size
from ldl.models import RecapCNN, count_parameters, feature_side


@pytest.mark.parametrize("size", [46, 64, 150])
def test_recap_cnn_shapes(size: int) -> None:
    model = RecapCNN(num_classes=3, image_size=size)
    assert model(torch.zeros(2, 3, size, size)).shape == (2, 3)
    assert model.features(torch.zeros(1, 3, size, size)).shape[-1] == feature_side(size)


def test_slides_model_at_150_px_has_the_keras_sizes() -> None:
    # Chollet's Keras model for 150x150 inputs: a 7x7x128 feature map and 3,453,121 parameters
    # with one sigmoid output; ours has two logits, i.e. 513 more weights.
    assert feature_side(150) == 7
    assert count_parameters(RecapCNN(num_classes=2, image_size=150)) == 3_453_121 + 513


def test_too_small_images_get_a_clear_error() -> None:
    with pytest.raises(ValueError, match="at least 46"):
        RecapCNN(image_size=32)


def test_trainable_count_ignores_frozen() -> None:
    model = RecapCNN(image_size=64)
    for p in model.features.parameters():
        p.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == count_parameters(model.classifier)


def test_flatten_exercise_feedback(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_flatten_size(128 * 7 * 7, image_size=150)
    assert "Correct" in capsys.readouterr().out
    assert not check_flatten_size(128 * 9 * 9, image_size=150)  # forgot the conv's trim
    assert "padding" in capsys.readouterr().out
    assert not check_flatten_size(7 * 7, image_size=150)
    assert "channels" in capsys.readouterr().out


def test_matching_pipeline_exercise_gives_hints(capsys: pytest.CaptureFixture[str]) -> None:
    from torchvision.transforms import v2

    from ldl.course.exercises import check_matching_pipeline

    # a dull, low-contrast image, so that equalisation visibly changes it
    image = torch.randint(100, 140, (3, 48, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert check_matching_pipeline(v2.Compose([v2.RandomEqualize(p=1.0), v2.RandomHorizontalFlip(p=1.0)]), image)
    assert not check_matching_pipeline(v2.RandomHorizontalFlip(p=1.0), image)
    assert "colours" in capsys.readouterr().out.split("\n")[-2]
    assert not check_matching_pipeline(v2.Compose([v2.RandomVerticalFlip(p=1.0), v2.RandomEqualize(p=1.0)]), image)
    assert "wrong mirror" in capsys.readouterr().out
    assert not check_matching_pipeline(v2.Resize(8), image)
    assert "shape" in capsys.readouterr().out


def test_cutmix_lambda_exercise(capsys: pytest.CaptureFixture[str]) -> None:
    from ldl.course.exercises import check_cutmix_lambda

    box, size = (0, 0, 32, 16), (64, 64)  # pastes 1/8 of the image
    assert check_cutmix_lambda(0.875, box, size)
    assert not check_cutmix_lambda(0.125, box, size)
    assert "pasted" in capsys.readouterr().out.split("\n")[-2]
    assert not check_cutmix_lambda(0.7, box, size, sampled_lambda=0.7)
    assert "clipped" in capsys.readouterr().out


def test_lesson2_exercises(capsys: pytest.CaptureFixture[str]) -> None:
    from torch import nn

    from ldl.course.exercises import check_batchnorm_sizes, check_dropout_scale

    assert check_dropout_scale(1 / 0.75, p=0.25)
    assert not check_dropout_scale(0.75, p=0.25)
    assert "evaluation" in capsys.readouterr().out.split("\n")[-2]
    bn = nn.BatchNorm2d(64)
    learned = sum(p.numel() for p in bn.parameters())
    buffers = bn.running_mean.numel() + bn.running_var.numel()
    assert check_batchnorm_sizes(learned, buffers, 64)
    assert not check_batchnorm_sizes(64, buffers, 64)
    assert "gamma" in capsys.readouterr().out.split("\n")[-2]


@pytest.mark.parametrize("batch_norm", [False, True])
def test_recap_cnn_regularisation_options(batch_norm: bool) -> None:
    from torch import nn

    model = RecapCNN(image_size=64, widths=(8, 8, 16, 16), hidden=32, batch_norm=batch_norm, dropout2d=0.2)
    kinds = {type(m) for m in model.modules()}
    assert (nn.BatchNorm2d in kinds) == batch_norm and (nn.BatchNorm1d in kinds) == batch_norm
    assert nn.Dropout2d in kinds
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all((c.bias is None) == batch_norm for c in convs), "BN makes the conv bias redundant"
    assert model(torch.zeros(3, 3, 64, 64)).shape == (3, 2)


def test_lesson3_exercise(capsys: pytest.CaptureFixture[str]) -> None:
    from ldl.course.exercises import check_he_std

    assert check_he_std((2 / 512) ** 0.5, fan_in=512)
    assert not check_he_std((1 / 512) ** 0.5, fan_in=512)
    assert "gain is sqrt(2)" in capsys.readouterr().out
    assert not check_he_std(2 / 512, fan_in=512)
    assert "square root" in capsys.readouterr().out
