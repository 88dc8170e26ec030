"""Lesson 6's exercises give feedback that points at the misunderstanding."""

from __future__ import annotations

import pytest

from ldl.course.exercises import check_capacity_choice, check_double_descent_peak


def test_the_peak_follows_the_training_photos(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_double_descent_peak(400, train_photos=400)
    assert check_double_descent_peak(430, train_photos=400)  # within 10%
    assert "one per training photo" in capsys.readouterr().out
    assert not check_double_descent_peak(800, train_photos=400)
    assert "twice the photos" in capsys.readouterr().out
    assert not check_double_descent_peak(0, train_photos=400)
    assert "Give a number" in capsys.readouterr().out
    assert not check_double_descent_peak(100, train_photos=400)
    assert "N equations, N unknowns" in capsys.readouterr().out


WIDTHS = [1, 2, 4, 64, 256]
VAL_MEAN = [0.70, 0.66, 0.68, 0.90, 1.20]
VAL_SD = [0.05, 0.01, 0.03, 0.04, 0.08]


def test_a_capacity_within_the_spread_of_the_lowest_validation_loss_is_defensible(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert check_capacity_choice(2, WIDTHS, VAL_MEAN, VAL_SD)
    assert check_capacity_choice(4, WIDTHS, VAL_MEAN, VAL_SD)  # 0.02 above, within its own sd of 0.03
    assert "Defensible" in capsys.readouterr().out


def test_choosing_by_training_fit_or_off_the_curve_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    assert not check_capacity_choice(256, WIDTHS, VAL_MEAN, VAL_SD)
    assert "fit the training photos best" in capsys.readouterr().out
    assert not check_capacity_choice(64, WIDTHS, VAL_MEAN, VAL_SD)
    assert "more than the spread" in capsys.readouterr().out
    assert not check_capacity_choice(None, WIDTHS, VAL_MEAN, VAL_SD)
    assert not check_capacity_choice(3, WIDTHS, VAL_MEAN, VAL_SD)
    assert "Choose one of the widths" in capsys.readouterr().out
