"""Double descent: random ReLU features fitted by minimum-norm least squares (lesson 6).

The classical picture says test error is U-shaped in the model's capacity: too few
parameters underfit, too many overfit. Belkin et al. ("Reconciling modern machine-learning
practice and the classical bias-variance trade-off", PNAS 2019) showed the whole curve: the
test error rises to a peak where the model has *just* enough parameters to fit every
training photo exactly (the interpolation threshold: as many features as photos), then falls
again, often below the best underparameterised model. Past the threshold many weight vectors
fit the photos exactly; the minimum-norm one is the smoothest, and it gets smoother the more
features there are to spread the weight over.

The model is the simplest one that shows it, written out because it is the lesson:
``features = relu(x @ W)`` with a random, fixed ``W`` (only the output layer is fitted), and
the output layer solved in closed form (``torch.linalg.lstsq`` with the SVD-based ``gelsd``
driver returns the minimum-norm solution when there are more features than photos).

>>> curve = double_descent(train_x, train_y, test_x, test_y, [50, 400, 800, 1600, 6400], seeds=3)
>>> curve.threshold, curve.peak_count()          # 800 photos: the peak sits at about 800 features
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor


def random_relu_features(x: Tensor, n_features: int, *, seed: int) -> Tensor:
    """``relu(x @ W)`` with ``W`` drawn from ``N(0, 1/d)`` by ``seed``: ``(n, d)`` -> ``(n, n_features)``.

    The same ``seed`` gives the same ``W`` for the training and the test inputs (call it on
    each with the same seed), and does not touch the global random state.
    """
    if x.ndim != 2:
        raise ValueError(f"random_relu_features needs (n, d) inputs; got shape {tuple(x.shape)}. Flatten them first.")
    if n_features < 1:
        raise ValueError(f"n_features must be at least 1; got {n_features}.")
    generator = torch.Generator().manual_seed(seed)
    weights = torch.randn(x.shape[1], n_features, generator=generator) / math.sqrt(x.shape[1])
    return torch.relu(x.float().cpu() @ weights)


def min_norm_least_squares(features: Tensor, targets: Tensor) -> Tensor:
    """The ``(N, k)`` weights ``B`` minimising ``|features @ B - targets|²``, the smallest such when many fit.

    ``features`` ``(n, N)``, ``targets`` ``(n, k)``. With ``N >= n`` (generic features) the
    fit is exact and, among the exact fits, ``B`` has the smallest norm.
    """
    # float64: near the threshold the system is badly conditioned, and float32 would add its own noise.
    return torch.linalg.lstsq(features.double(), targets.double(), driver="gelsd").solution.float()


def flip_labels(labels: Tensor, fraction: float, num_classes: int, *, seed: int) -> Tensor:
    """A copy of ``(n,)`` int64 ``labels`` with a random ``fraction`` of them changed to another class."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"label noise must be a fraction in [0, 1]; got {fraction}.")
    generator = torch.Generator().manual_seed(seed)
    noisy = labels.clone()
    flip = torch.rand(len(labels), generator=generator) < fraction
    # Adding 1 .. num_classes-1 (mod num_classes) always lands on a different class.
    shift = torch.randint(1, num_classes, (len(labels),), generator=generator)
    noisy[flip] = (labels[flip] + shift[flip]) % num_classes
    return noisy


@dataclass
class DoubleDescentCurve:
    """Test and training error of the random-features model at each feature count, over seeds.

    ``test_error[i]`` and friends are lists with one value per seed for ``feature_counts[i]``;
    errors are the fraction of photos misclassified, losses the squared error against one-hot
    targets (summed over classes, averaged over photos).
    """

    feature_counts: list[int]
    threshold: int  # the number of training photos: where the fit becomes exact
    label_noise: float = 0.0
    test_error: list[list[float]] = field(default_factory=list)
    test_loss: list[list[float]] = field(default_factory=list)
    train_error: list[list[float]] = field(default_factory=list)
    train_loss: list[list[float]] = field(default_factory=list)

    def mean(self, key: str = "test_error") -> list[float]:
        """The mean over seeds at each feature count of ``key`` (``"test_error"``, ``"test_loss"``, ...)."""
        return [statistics.mean(values) for values in getattr(self, key)]

    def sd(self, key: str = "test_error") -> list[float]:
        """The standard deviation over seeds at each feature count (0 with one seed)."""
        return [statistics.stdev(values) if len(values) > 1 else 0.0 for values in getattr(self, key)]

    def peak_count(self, key: str = "test_error") -> int:
        """The feature count with the highest mean ``key``."""
        means = self.mean(key)
        return self.feature_counts[means.index(max(means))]

    def near_threshold(self, low: float = 0.75, high: float = 1.25, key: str = "test_error") -> tuple[float, float]:
        """Mean and sd over seeds of ``key`` averaged over the feature counts from ``low`` to ``high`` x the threshold.

        The height of the whole peak region, steadier than the single worst point (exactly at
        the threshold the fit is at the mercy of its smallest singular value).
        """
        inside = [i for i, count in enumerate(self.feature_counts) if low * self.threshold <= count <= high * self.threshold]
        if not inside:
            raise ValueError(f"No feature count between {low} and {high} x the threshold {self.threshold}.")
        values = getattr(self, key)
        per_seed = [statistics.mean(values[i][seed] for i in inside) for seed in range(len(values[inside[0]]))]
        return statistics.mean(per_seed), statistics.stdev(per_seed) if len(per_seed) > 1 else 0.0

    def best(self, key: str = "test_error", *, beyond_threshold: bool | None = None) -> tuple[int, float]:
        """``(feature count, mean key)`` of the lowest mean: everywhere, or only above/below the threshold."""
        pairs = [(count, value) for count, value in zip(self.feature_counts, self.mean(key))
                 if beyond_threshold is None or (count > self.threshold) == beyond_threshold]
        if not pairs:
            side = "above" if beyond_threshold else "below"
            raise ValueError(f"No feature count {side} the threshold {self.threshold}: sweep further.")
        return min(pairs, key=lambda pair: pair[1])


def _errors(features: Tensor, weights: Tensor, labels: Tensor, targets: Tensor) -> tuple[float, float]:
    """(fraction misclassified, mean squared error summed over classes) of ``features @ weights``."""
    scores = features @ weights
    error = (scores.argmax(dim=1) != labels).float().mean().item()
    loss = (scores - targets).pow(2).sum(dim=1).mean().item()
    return error, loss


def double_descent(
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    feature_counts: Sequence[int],
    *,
    seeds: int = 3,
    label_noise: float = 0.0,
    num_classes: int | None = None,
) -> DoubleDescentCurve:
    """Sweep the random-features model across ``feature_counts``; ``seeds`` draws of ``W`` each.

    Args:
        train_x, test_x: ``(n, d)`` float inputs, e.g. a frozen network's features,
            standardised with the training set's mean and std.
        train_y, test_y: ``(n,)`` int64 class indices.
        label_noise: the fraction of *training* labels flipped to another class (a new
            draw per seed); the test labels stay clean.

    The training targets are one-hot rows of the (possibly noisy) labels; the training
    error is measured against those noisy labels, the test error against the clean ones.
    """
    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise ValueError(f"Inputs and labels differ in length: train {len(train_x)} vs {len(train_y)}, "
                         f"test {len(test_x)} vs {len(test_y)}.")
    if seeds < 1 or not feature_counts:
        raise ValueError(f"Need at least one seed and one feature count; got seeds={seeds}, "
                         f"feature_counts={list(feature_counts)}.")
    num_classes = num_classes or int(max(train_y.max(), test_y.max())) + 1
    curve = DoubleDescentCurve(feature_counts=list(feature_counts), threshold=len(train_x), label_noise=label_noise)
    test_targets = torch.nn.functional.one_hot(test_y, num_classes).float()
    for count in feature_counts:
        per_seed: dict[str, list[float]] = {"test_error": [], "test_loss": [], "train_error": [], "train_loss": []}
        for seed in range(seeds):
            labels = flip_labels(train_y, label_noise, num_classes, seed=seed) if label_noise else train_y
            targets = torch.nn.functional.one_hot(labels, num_classes).float()
            train_features = random_relu_features(train_x, count, seed=seed)
            weights = min_norm_least_squares(train_features, targets)
            for split, (features, split_labels, split_targets) in {
                "train": (train_features, labels, targets),
                "test": (random_relu_features(test_x, count, seed=seed), test_y, test_targets),
            }.items():
                error, loss = _errors(features, weights, split_labels, split_targets)
                per_seed[f"{split}_error"].append(error)
                per_seed[f"{split}_loss"].append(loss)
        for key, values in per_seed.items():
            getattr(curve, key).append(values)
    return curve
