"""Lesson 7's exercises: the feedback says right or wrong for the right reasons."""

from __future__ import annotations

import pytest

from ldl.course.exercises import check_range_test_choice, check_scaled_rate


def test_scaled_rate_is_linear_in_the_batch(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_scaled_rate(0.04, base_lr=0.01, base_batch=32, new_batch=128)
    assert not check_scaled_rate(0.01, base_lr=0.01, base_batch=32, new_batch=128)
    assert "keeps the rate fixed" in capsys.readouterr().out
    assert not check_scaled_rate(0.02, base_lr=0.01, base_batch=32, new_batch=128)
    assert "square-root" in capsys.readouterr().out


def test_range_test_choice_must_sit_below_the_edge_and_above_the_crawl(capsys: pytest.CaptureFixture[str]) -> None:
    edge, steepest = 0.17, 0.012
    assert check_range_test_choice(0.01, edge, steepest)
    assert not check_range_test_choice(0.1, edge, steepest)
    assert "edge" in capsys.readouterr().out
    assert not check_range_test_choice(1e-4, edge, steepest)
    assert "underfits" in capsys.readouterr().out
    assert not check_range_test_choice(0.0, edge, steepest)
