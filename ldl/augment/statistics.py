"""Transforms whose numbers are *fitted* on the training set, then applied to every split.

Like Keras' ``featurewise_center``/``featurewise_std_normalization`` and ``zca_whitening``:
``fit`` reads the training images once; ``transform`` then applies the same numbers to
training, validation and test images. Fitting on the validation images too would leak
what the model is later judged on into its inputs.

>>> standardize = FeatureStandardize().fit(train_images)      # (N, C, H, W) float
>>> standardize.mean_, standardize.std_                        # (C,) each
>>> zca = ZCAWhitening(epsilon=1e-2).fit(train_images_32px)   # D = C*H*W features
>>> white = zca.transform(images)                              # same shape, decorrelated pixels
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import torch
from torchvision.transforms import v2

ROWS_PER_CHUNK = 256  # images converted to float64 at a time, so fitting never doubles memory
# The default limit on D = C*H*W: 3 x 32 x 32 = 3072 fits (a 75 MB covariance matrix in
# float64, seconds to decompose); 3 x 64 x 64 = 12288 would need 1.2 GB per D x D matrix.
DEFAULT_MAX_FEATURES = 4096


def _check_images(images: torch.Tensor, who: str) -> None:
    if images.ndim != 4:
        raise ValueError(f"{who}.fit expects a (N, C, H, W) batch of training images, got shape {tuple(images.shape)}.")
    if not images.is_floating_point():
        raise TypeError(
            f"{who}.fit expects float images, got {images.dtype}: convert with images.float() / 255, "
            "so the fitted numbers are on the same scale as the images you will transform."
        )
    if images.shape[0] < 2:
        raise ValueError(f"{who}.fit needs at least 2 images to measure a spread, got {images.shape[0]}.")


def _float64_chunks(images: torch.Tensor) -> Iterator[torch.Tensor]:
    """The rows of ``images`` as float64, ``ROWS_PER_CHUNK`` at a time."""
    for start in range(0, images.shape[0], ROWS_PER_CHUNK):
        yield images[start : start + ROWS_PER_CHUNK].to(torch.float64)


class FeatureStandardize:
    """Per-channel standardisation with the mean and std of the *training set*.

    ``transform`` computes ``(x - mean_[c]) / (std_[c] + 1e-6)`` for every pixel of channel
    ``c`` (Keras' ``featurewise_center`` + ``featurewise_std_normalization``). Afterwards
    every channel of the training set has mean 0 and standard deviation 1, so no colour
    channel dominates the first layer's gradients just because its values are larger.

    Attributes (after ``fit``): ``mean_`` and ``std_``, ``(C,)`` float32.
    """

    EPS = 1e-6  # keeps a constant channel (std 0) from dividing by zero, as Keras does

    def __init__(self) -> None:
        self.mean_: torch.Tensor | None = None
        self.std_: torch.Tensor | None = None

    def fit(self, images: torch.Tensor) -> FeatureStandardize:
        """Measure ``mean_`` and ``std_`` per channel over ``images`` ``(N, C, H, W)`` float."""
        _check_images(images, type(self).__name__)
        channels = images.shape[1]
        total = torch.zeros(channels, dtype=torch.float64)
        total_sq = torch.zeros(channels, dtype=torch.float64)
        for chunk in _float64_chunks(images):  # sums in float64: millions of pixels, no rounding drift
            total += chunk.sum(dim=(0, 2, 3)).cpu()
            total_sq += (chunk**2).sum(dim=(0, 2, 3)).cpu()
        count = images.numel() // channels
        mean = total / count
        variance = (total_sq / count - mean**2).clamp_min(0.0)  # population variance, as Keras
        self.mean_, self.std_ = mean.float(), variance.sqrt().float()
        return self

    def _fitted(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mean_ is None or self.std_ is None:
            raise RuntimeError("FeatureStandardize is not fitted yet: call .fit(train_images) first.")
        return self.mean_, self.std_

    def _view(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, std = self._fitted()
        if x.ndim < 3 or x.shape[-3] != mean.numel():
            raise ValueError(f"expected (..., {mean.numel()}, H, W) images, got shape {tuple(x.shape)}.")
        shape = (-1, 1, 1)
        return mean.to(x.device, x.dtype).view(shape), (std + self.EPS).to(x.device, x.dtype).view(shape)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., C, H, W)`` float -> same shape, standardised with the fitted numbers."""
        mean, std = self._view(x)
        return (x - mean) / std

    def inverse_transform(self, x: torch.Tensor) -> torch.Tensor:
        """Undo :meth:`transform` (to show standardised images)."""
        mean, std = self._view(x)
        return x * std + mean

    __call__ = transform

    def as_normalize(self) -> v2.Normalize:
        """The same standardisation as a torchvision ``v2.Normalize``, for a v2 pipeline."""
        mean, std = self._fitted()
        return v2.Normalize(mean.tolist(), (std + self.EPS).tolist())

    def __repr__(self) -> str:
        if self.mean_ is None or self.std_ is None:
            return "FeatureStandardize(not fitted)"
        return f"FeatureStandardize(mean={[round(m, 4) for m in self.mean_.tolist()]}, std={[round(s, 4) for s in self.std_.tolist()]})"


class ZCAWhitening:
    """ZCA whitening (Bell and Sejnowski 1997; Krizhevsky 2009 on CIFAR-10), fitted on training images.

    Neighbouring pixels of a photo are strongly correlated: most of the variance is in
    smooth, low-frequency patterns. Whitening decorrelates all ``D = C*H*W`` pixel values
    and scales each direction to variance 1, which flattens the smooth parts and leaves the
    edges. ZCA is the whitening that changes the images the least, so the result still
    looks like an (edge-enhanced) image.

    ``fit``: centre the flattened images ``(N, D)`` by their per-pixel mean, compute the
    ``D x D`` covariance ``S``, decompose ``S = U diag(lambda) U^T``; then
    ``W = U diag(1 / sqrt(lambda + epsilon)) U^T`` and ``transform(x) = (x - mean) W``.

    ``epsilon`` is the knob: directions with variance much smaller than ``epsilon`` (fine
    noise) are left nearly alone instead of being blown up, so a larger ``epsilon`` whitens
    less. With ``epsilon -> 0`` the training data's covariance becomes the identity.
    Images are float in ``[0, 1]`` (or standardised): ``epsilon`` is on the scale of their
    variance. Fewer images than features (``N <= D``) leaves some ``lambda = 0``; ``epsilon``
    is what keeps the whitening finite there.

    Args:
        epsilon: added to every eigenvalue before the inverse square root.
        max_features: refuse to fit when ``D`` is larger (a ``D x D`` matrix in float64
            takes ``8 D^2`` bytes, and several are needed).
        eigh_dtype: precision of the eigendecomposition, the slow step of ``fit``.
            ``torch.float32`` is about 4x faster (about 2 s instead of 10 s at ``D = 3072``
            on 2 cores) and is accurate enough unless ``epsilon`` is tiny (below about 1e-4).

    Attributes (after ``fit``): ``mean_`` ``(D,)``, ``eigenvalues_`` ``(D,)``,
    ``eigenvectors_`` ``(D, D)`` (the columns of ``U``), all float64; ``image_shape_`` ``(C, H, W)``.
    """

    def __init__(
        self,
        epsilon: float = 1e-2,
        max_features: int = DEFAULT_MAX_FEATURES,
        eigh_dtype: torch.dtype = torch.float64,
    ) -> None:
        if not epsilon >= 0:
            raise ValueError(f"epsilon must be 0 or more, got {epsilon}.")
        if eigh_dtype not in (torch.float32, torch.float64):
            raise ValueError(f"eigh_dtype must be torch.float32 or torch.float64, got {eigh_dtype}.")
        self.epsilon = float(epsilon)
        self.max_features = int(max_features)
        self.eigh_dtype = eigh_dtype
        self.mean_: torch.Tensor | None = None
        self.eigenvalues_: torch.Tensor | None = None
        self.eigenvectors_: torch.Tensor | None = None
        self.image_shape_: tuple[int, int, int] | None = None

    def fit(self, images: torch.Tensor) -> ZCAWhitening:
        """Fit on ``images`` ``(N, C, H, W)`` float: per-pixel mean, covariance, eigendecomposition."""
        _check_images(images, type(self).__name__)
        channels, height, width = (int(s) for s in images.shape[1:])
        features = channels * height * width
        if features > self.max_features:
            gigabytes = 8 * features**2 / 1e9
            raise MemoryError(
                f"ZCA on {channels}x{height}x{width} images needs a D x D covariance matrix with "
                f"D = {features} ({gigabytes:.1f} GB per matrix in float64, and an eigendecomposition "
                f"of it), above max_features={self.max_features}. Resize the images first, e.g. to 32 px "
                f"(D = {channels * 32 * 32}) with torchvision.transforms.v2.functional.resize(images, [32, 32]), "
                "or raise max_features if you have the memory and the time."
            )
        count = images.shape[0]
        total = torch.zeros(features, dtype=torch.float64)
        for chunk in _float64_chunks(images):
            total += chunk.reshape(chunk.shape[0], features).sum(dim=0).cpu()
        mean = total / count
        covariance = torch.zeros(features, features, dtype=torch.float64)
        for chunk in _float64_chunks(images):
            centred = chunk.reshape(chunk.shape[0], features).cpu() - mean  # (n, D)
            covariance += centred.T @ centred
        covariance /= count - 1  # unbiased, as torch.cov
        # eigh: the covariance is symmetric, so its eigenvectors are orthonormal (U^T U = I)
        # and its eigenvalues are real; rounding can make the smallest ones a hair negative.
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance.to(self.eigh_dtype))
        self.mean_ = mean
        self.eigenvalues_ = eigenvalues.to(torch.float64).clamp_min(0.0)
        self.eigenvectors_ = eigenvectors.to(torch.float64)
        self.image_shape_ = (channels, height, width)
        return self

    def _fitted(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.mean_ is None or self.eigenvalues_ is None or self.eigenvectors_ is None:
            raise RuntimeError("ZCAWhitening is not fitted yet: call .fit(train_images) first.")
        return self.mean_, self.eigenvalues_, self.eigenvectors_

    def _flatten(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., C, H, W)`` -> ``(M, D)`` float64, after checking the image shape."""
        self._fitted()
        if x.ndim < 3 or tuple(x.shape[-3:]) != self.image_shape_:
            raise ValueError(
                f"ZCAWhitening was fitted on {self.image_shape_} images, got shape {tuple(x.shape)}: "
                "resize them to the size used for fit."
            )
        if not x.is_floating_point():
            raise TypeError(f"expected float images, got {x.dtype}: convert with x.float() / 255 as for fit.")
        return x.reshape(-1, self.mean_.numel()).to(torch.float64)  # type: ignore[union-attr]

    def _scaled(self, x: torch.Tensor, power: float) -> torch.Tensor:
        """``(M, D)`` float64 ``x @ U diag((lambda + eps)^power) U^T``."""
        _, eigenvalues, eigenvectors = self._fitted()
        eigenvectors = eigenvectors.to(x.device)
        scale = (eigenvalues.to(x.device) + self.epsilon) ** power  # (D,)
        # Two thin products instead of forming W: the same result, and changing epsilon
        # afterwards costs nothing (no new D x D matrix).
        return ((x @ eigenvectors) * scale) @ eigenvectors.T

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """Whiten ``x`` ``(..., C, H, W)`` float -> same shape and dtype."""
        flat = self._flatten(x)
        mean = self._fitted()[0].to(x.device)
        if self.epsilon == 0 and bool((self.eigenvalues_ == 0).any()):  # type: ignore[operator]
            raise ValueError("epsilon=0 with a zero eigenvalue divides by zero: use epsilon > 0 (e.g. 1e-5).")
        return self._scaled(flat - mean, -0.5).reshape(x.shape).to(x.dtype)

    def inverse_transform(self, z: torch.Tensor) -> torch.Tensor:
        """Undo :meth:`transform`: ``z W^-1 + mean``, same shape and dtype as ``z``."""
        flat = self._flatten(z)
        mean = self._fitted()[0].to(z.device)
        return (self._scaled(flat, 0.5) + mean).reshape(z.shape).to(z.dtype)

    __call__ = transform

    @property
    def components_(self) -> torch.Tensor:
        """``W = U diag(1 / sqrt(lambda + epsilon)) U^T``, ``(D, D)`` float64 (formed on demand).

        Row ``i`` of ``W``, reshaped to ``(C, H, W)``, is the filter that makes whitened pixel
        ``i``: a centre-surround edge detector for natural images.
        """
        _, eigenvalues, eigenvectors = self._fitted()
        return (eigenvectors * (eigenvalues + self.epsilon) ** -0.5) @ eigenvectors.T

    def with_epsilon(self, epsilon: float) -> ZCAWhitening:
        """A copy with another ``epsilon`` that shares the fitted tensors (no refit)."""
        if not epsilon >= 0:
            raise ValueError(f"epsilon must be 0 or more, got {epsilon}.")
        other = copy.copy(self)
        other.epsilon = float(epsilon)
        return other

    def __repr__(self) -> str:
        fitted = f"image_shape={self.image_shape_}" if self.image_shape_ is not None else "not fitted"
        return f"ZCAWhitening(epsilon={self.epsilon:g}, {fitted})"
