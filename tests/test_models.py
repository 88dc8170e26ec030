from __future__ import annotations

import pytest
import torch

from ldl.exercises import check_flatten_size
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
