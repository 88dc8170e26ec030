"""Lesson 6's measurements: double descent, the spread of a held-out score, selection bias."""

from __future__ import annotations

import math

import pytest
import torch

from ldl.generalisation import (double_descent, estimate_spread, flip_labels, min_norm_least_squares,
                                random_relu_features, selection_bias)


def blobs(n: int, seed: int, d: int = 20, separation: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two overlapping Gaussian classes in ``d`` dimensions: ``(n, d)`` inputs, ``(n,)`` labels."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    centre = torch.zeros(d)
    centre[0] = separation
    x = torch.randn(n, d, generator=generator) + (2 * labels[:, None] - 1) * centre
    return x, labels


def test_random_features_are_reproducible_and_shaped() -> None:
    x = torch.randn(5, 7)
    a, b = random_relu_features(x, 11, seed=3), random_relu_features(x, 11, seed=3)
    assert a.shape == (5, 11) and torch.equal(a, b) and (a >= 0).all()
    assert not torch.equal(a, random_relu_features(x, 11, seed=4))
    with pytest.raises(ValueError, match="Flatten"):
        random_relu_features(torch.randn(2, 3, 4), 5, seed=0)


def test_min_norm_least_squares_fits_exactly_with_the_smallest_weights() -> None:
    generator = torch.Generator().manual_seed(0)
    features, targets = torch.randn(10, 30, generator=generator), torch.randn(10, 2, generator=generator)
    weights = min_norm_least_squares(features, targets)
    assert torch.allclose(features @ weights, targets, atol=1e-4)  # more features than rows: exact
    # Any other exact fit adds a component from the null space, and is longer.
    null = torch.linalg.svd(features.double()).Vh[10:].float().T  # (30, 20)
    other = weights + null @ torch.randn(20, 2, generator=generator)
    assert torch.allclose(features @ other, targets, atol=1e-4)
    assert other.norm() > weights.norm()
    # Fewer features than rows: the ordinary least-squares fit.
    tall = torch.randn(40, 5, generator=generator)
    expected = torch.linalg.pinv(tall.double()) @ targets.repeat(4, 1).double()
    assert torch.allclose(min_norm_least_squares(tall, targets.repeat(4, 1)), expected.float(), atol=1e-5)


def test_flip_labels_changes_the_asked_fraction_to_other_classes() -> None:
    labels = torch.arange(3000) % 3
    noisy = flip_labels(labels, 0.2, 3, seed=0)
    changed = noisy != labels
    assert abs(changed.float().mean().item() - 0.2) < 0.03
    assert noisy.min() >= 0 and noisy.max() <= 2
    assert torch.equal(flip_labels(labels, 0.0, 3, seed=0), labels)
    with pytest.raises(ValueError, match="fraction"):
        flip_labels(labels, 1.5, 3, seed=0)


def test_the_test_error_peaks_at_the_interpolation_threshold_and_falls_beyond_it() -> None:
    train_x, train_y = blobs(60, seed=0)
    test_x, test_y = blobs(400, seed=1)
    counts = [5, 10, 20, 40, 50, 60, 70, 90, 120, 240, 480, 960]
    curve = double_descent(train_x, train_y, test_x, test_y, counts, seeds=5)
    assert curve.threshold == 60
    assert 40 <= curve.peak_count("test_loss") <= 90
    peak = max(curve.mean("test_loss"))
    _, beyond = curve.best("test_loss", beyond_threshold=True)
    assert beyond < 0.5 * peak
    # Past the threshold the training photos are fitted exactly.
    assert all(error == 0 for count, errors in zip(counts, curve.train_error) if count >= 90 for error in errors)
    assert len(curve.sd()) == len(counts) and all(sd >= 0 for sd in curve.sd())


def test_label_noise_raises_the_peak_and_is_measured_against_noisy_training_labels() -> None:
    train_x, train_y = blobs(60, seed=0)
    test_x, test_y = blobs(400, seed=1)
    clean = double_descent(train_x, train_y, test_x, test_y, [45, 60, 75, 960], seeds=5)
    noisy = double_descent(train_x, train_y, test_x, test_y, [45, 60, 75, 960], seeds=5, label_noise=0.3)
    assert noisy.near_threshold()[0] > clean.near_threshold()[0]  # the peak region rises
    assert noisy.mean("test_error")[3] > clean.mean("test_error")[3]  # and the far side is worse
    mean, sd = clean.near_threshold(0.9, 1.1)
    assert mean == pytest.approx(clean.mean()[1]) and sd == pytest.approx(clean.sd()[1])  # one count inside
    with pytest.raises(ValueError, match="No feature count"):
        clean.near_threshold(2.0, 3.0)
    # Far past the threshold the network fits the noisy labels exactly: its training error,
    # measured against the labels it was given, is 0, though 30% of them are wrong.
    assert noisy.train_error[3] == [0.0] * 5
    assert noisy.label_noise == 0.3


def test_double_descent_rejects_bad_input() -> None:
    x, y = blobs(10, seed=0)
    with pytest.raises(ValueError, match="differ in length"):
        double_descent(x, y[:5], x, y, [5])
    with pytest.raises(ValueError, match="at least one seed"):
        double_descent(x, y, x, y, [5], seeds=0)
    curve = double_descent(x, y, x, y, [2, 4], seeds=1)
    with pytest.raises(ValueError, match="sweep further"):
        curve.best(beyond_threshold=True)


def test_the_spread_of_a_held_out_accuracy_follows_one_over_root_n() -> None:
    generator = torch.Generator().manual_seed(0)
    correct = torch.rand(4000, generator=generator) < 0.8
    rows = estimate_spread(correct, [25, 100, 400], draws=400)
    for row in rows:
        assert row["sd"] == pytest.approx(row["predicted_sd"], rel=0.2)
        assert abs(row["mean"] - correct.float().mean().item()) < 0.02
    # Four times the photos, half the spread.
    assert rows[0]["sd"] / rows[1]["sd"] == pytest.approx(2.0, rel=0.25)
    # A "set" as large as the pool is the pool: no spread, as predicted.
    whole = estimate_spread(correct[:50], [50], draws=5)[0]
    assert whole["sd"] == pytest.approx(0.0, abs=1e-9) and whole["predicted_sd"] == 0.0
    with pytest.raises(ValueError, match=r"\[1, 50\]"):
        estimate_spread(correct[:50], [0, 51])


def test_the_best_validation_score_of_equal_candidates_is_optimistic() -> None:
    # 50 equally good candidates (true accuracy 0.7), each scored on 100 validation and 100 test photos.
    generator = torch.Generator().manual_seed(0)
    val = [(torch.rand(100, generator=generator) < 0.7).float().mean().item() for _ in range(50)]
    test = [(torch.rand(100, generator=generator) < 0.7).float().mean().item() for _ in range(50)]
    selection = selection_bias(val, test)
    assert selection.chosen_val == max(val) and selection.chosen == val.index(max(val))
    assert selection.chosen_val > 0.7 + 2 * math.sqrt(0.21 / 100)  # lifted by the noise it was chosen for
    assert abs(selection.chosen_test - 0.7) < 3 * math.sqrt(0.21 / 100)  # the test score is not
    assert selection.optimism == pytest.approx(selection.chosen_val - selection.chosen_test)
    with pytest.raises(ValueError, match="one validation and one test score"):
        selection_bias([0.5], [])
