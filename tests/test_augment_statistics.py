"""FeatureStandardize and ZCAWhitening, fitted on training images."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from ldl.augment import FeatureStandardize, ZCAWhitening
from ldl.plots import plot_whitening


def smooth_images(count: int, size: int = 4, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``(count, 3, size, size)`` images with correlated neighbouring pixels, in about [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, 2, 2, generator=g, dtype=dtype)
    fine = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return fine + 0.05 * torch.rand(count, 3, size, size, generator=g, dtype=dtype)


def test_feature_standardize_matches_per_channel_statistics() -> None:
    images = smooth_images(64, size=6, dtype=torch.float32) * torch.tensor([1.0, 0.5, 2.0]).view(1, 3, 1, 1)
    standardize = FeatureStandardize().fit(images)
    expected_mean = images.mean(dim=(0, 2, 3))
    expected_std = images.permute(1, 0, 2, 3).reshape(3, -1).std(dim=1, unbiased=False)
    assert torch.allclose(standardize.mean_, expected_mean, atol=1e-6)
    assert torch.allclose(standardize.std_, expected_std, atol=1e-6)
    out = standardize.transform(images)
    assert out.shape == images.shape and out.dtype == torch.float32
    assert torch.allclose(out.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(out.permute(1, 0, 2, 3).reshape(3, -1).std(dim=1, unbiased=False), torch.ones(3), atol=1e-4)
    assert torch.allclose(standardize.inverse_transform(out), images, atol=1e-5)
    assert torch.allclose(standardize.as_normalize()(images[0]), out[0], atol=1e-5)


def test_feature_standardize_refuses_uint8_and_unfitted_use() -> None:
    with pytest.raises(TypeError, match="float"):
        FeatureStandardize().fit(torch.zeros(4, 3, 2, 2, dtype=torch.uint8))
    with pytest.raises(RuntimeError, match="fit"):
        FeatureStandardize().transform(torch.zeros(3, 2, 2))


def test_zca_whitened_training_data_has_identity_covariance() -> None:
    images = smooth_images(1500)  # N = 1500 > D = 3 * 4 * 4 = 48
    zca = ZCAWhitening(epsilon=1e-12).fit(images)
    white = zca.transform(images)
    assert white.shape == images.shape and white.dtype == images.dtype
    covariance = torch.cov(white.reshape(len(white), -1).T)
    assert torch.allclose(covariance, torch.eye(48, dtype=torch.float64), atol=1e-6)
    original = torch.cov(images.reshape(len(images), -1).T)
    assert (original - torch.diag(original.diagonal())).abs().max() > 0.01  # it was correlated before
    assert torch.allclose(zca.inverse_transform(white), images, atol=1e-8)


def test_zca_components_are_the_symmetric_whitening_matrix() -> None:
    images = smooth_images(200)
    zca = ZCAWhitening(epsilon=1e-2).fit(images)
    w = zca.components_
    assert torch.allclose(w, w.T)
    flat = images.reshape(len(images), -1)
    assert torch.allclose(zca.transform(images).reshape(len(images), -1), (flat - zca.mean_) @ w, atol=1e-9)


def eigenvalue_spread(zca: ZCAWhitening, images: torch.Tensor) -> float:
    """Largest / smallest eigenvalue of the whitened covariance: 1 means perfectly white."""
    white = zca.transform(images).reshape(len(images), -1)
    eigenvalues = torch.linalg.eigvalsh(torch.cov(white.T))
    return float(eigenvalues.max() / eigenvalues.min())


def test_larger_epsilon_whitens_less() -> None:
    images = smooth_images(800)
    zca = ZCAWhitening().fit(images)
    spreads = [eigenvalue_spread(zca.with_epsilon(eps), images) for eps in (1e-6, 1e-4, 1e-3, 1e-2, 1e-1)]
    assert spreads[0] < 1.01
    assert all(a < b for a, b in zip(spreads, spreads[1:])), spreads


def test_zca_refuses_too_many_features_with_advice() -> None:
    with pytest.raises(MemoryError, match="32 px"):
        ZCAWhitening().fit(torch.zeros(4, 3, 64, 64))
    with pytest.raises(RuntimeError, match="fit"):
        ZCAWhitening().transform(torch.zeros(3, 4, 4))
    zca = ZCAWhitening().fit(smooth_images(20))
    with pytest.raises(ValueError, match="resize"):
        zca.transform(torch.zeros(3, 8, 8, dtype=torch.float64))


def test_zca_float32_eigh_agrees_when_epsilon_is_not_tiny() -> None:
    images = smooth_images(300, size=6)
    exact = ZCAWhitening(epsilon=1e-2).fit(images).transform(images)
    fast = ZCAWhitening(epsilon=1e-2, eigh_dtype=torch.float32).fit(images).transform(images)
    assert torch.allclose(exact, fast, atol=1e-3)


def test_plot_whitening_shows_a_row_per_epsilon() -> None:
    images = smooth_images(50, dtype=torch.float32)
    fig = plot_whitening(images, ZCAWhitening().fit(images), epsilons=(1e-3, 1e-1), max_images=3)
    assert isinstance(fig, Figure)
    assert sum(1 for ax in fig.axes if ax.images) == 9  # (1 original + 2 epsilons) x 3 images
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert "whitened, epsilon=0.001" in titles and "original" in titles
