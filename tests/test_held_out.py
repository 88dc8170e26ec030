"""Choosing on validation, reporting on test: run_grid(keep_best=...), Comparison.score and HeldOutScores."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ldl.train import HeldOutScores, RunConfig
from ldl.train.seed_stats import ensemble_accuracy
from tests.test_grid_seeds import SEEDS, data, grid, mlp


def accuracy(model: nn.Module, loader) -> float:
    return ensemble_accuracy([model], loader, "cpu")


def test_keep_best_restores_each_runs_best_validation_epoch() -> None:
    _, _, val = data()
    comparison = grid([RunConfig("a", mlp(lr=0.5))], seeds=SEEDS, epochs=6, keep_best="top1_acc")
    chosen = comparison.chosen_epochs["a"]
    assert len(chosen) == 3
    for history, model, epoch in zip(comparison.seed_histories["a"], comparison.seed_models["a"], chosen):
        accuracies = history["top1_acc"]
        assert len(accuracies) == 6, "keep_best never stops a run early"
        # The first epoch with the highest validation accuracy, and its weights, measured again.
        assert epoch == accuracies.index(max(accuracies)) + 1
        assert accuracy(model, val) == pytest.approx(max(accuracies))


def test_keep_best_by_loss_picks_the_lowest_validation_loss() -> None:
    comparison = grid([RunConfig("a", mlp(lr=0.5))], seeds=[0], epochs=5, keep_best="val_loss")
    losses = comparison.histories["a"]["val_loss"]
    assert comparison.chosen_epochs["a"] == [losses.index(min(losses)) + 1]


def test_without_keep_best_the_models_are_the_last_epochs() -> None:
    _, _, val = data()
    comparison = grid([RunConfig("a", mlp(lr=0.5))], seeds=[0], epochs=4)
    assert comparison.chosen_epochs == {}
    assert accuracy(comparison.models["a"], val) == pytest.approx(comparison.histories["a"]["top1_acc"][-1])


def test_a_bad_keep_best_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="keep_best"):
        grid([RunConfig("a", mlp())], seeds=[0], keep_best="train_accuracy")


def test_score_measures_every_seeds_model_on_the_loader_given() -> None:
    _, train_eval, _ = data()
    comparison = grid([RunConfig("narrow", mlp(hidden=4)), RunConfig("wide", mlp(hidden=32))], seeds=SEEDS)
    scores = comparison.score(train_eval, split="train", ensemble=True)
    assert scores.split == "train" and scores.seeds == SEEDS and scores.baseline == "narrow"
    for name in ("narrow", "wide"):
        assert scores.values[name] == [accuracy(m, train_eval) for m in comparison.seed_models[name]]
        assert scores.ensemble[name] == comparison.ensemble_accuracy(name, train_eval, device="cpu")


def scores(values: dict[str, list[float]], **options) -> HeldOutScores:
    return HeldOutScores(values, seeds=[0, 1, 2], **options)


def test_the_verdict_follows_the_course_rule() -> None:
    result = scores({"none": [0.70, 0.72, 0.71], "up": [0.75, 0.76, 0.77],
                     "down": [0.60, 0.65, 0.62], "noise": [0.74, 0.69, 0.70]})
    assert result.difference("up") == pytest.approx((0.05, 0.01))
    assert result.verdict("up") == "clearly higher" and result.is_clear("up")
    assert result.verdict("down") == "clearly lower"
    # Differences +0.04, -0.03, -0.01: a mean of 0 against a spread of 0.036.
    assert result.verdict("noise") == "unclear" and not result.is_clear("noise")
    assert result.verdict("none", "noise") == "unclear"  # any pair, not only against the baseline


def test_one_seed_cannot_be_clear() -> None:
    result = HeldOutScores({"none": [0.70], "up": [0.90]}, seeds=[0])
    mean, sd = result.difference("up")
    assert mean == pytest.approx(0.2) and math.isnan(sd)
    assert result.verdict("up") == "unclear"


def test_the_table_shows_mean_sd_difference_and_verdict() -> None:
    result = scores({"none": [0.70, 0.72, 0.71], "up": [0.75, 0.76, 0.77]}, ensemble={"none": 0.73, "up": 0.78})
    markdown = result.to_markdown()
    assert "| test accuracy | minus none | verdict |" in markdown
    assert "| up | 3 | 0.760 ± 0.010 | +0.050 ± 0.010 | clearly higher | 0.780 |" in markdown
    assert "| none | 3 | 0.710 ± 0.010 |  | baseline | 0.730 |" in markdown
    assert "<td>clearly higher</td>" in result._repr_html_()


def test_unknown_runs_are_named() -> None:
    with pytest.raises(KeyError, match="No run named 'b'; the runs are \\['a'\\]"):
        scores({"a": [0.1, 0.2, 0.3]}).difference("b")
    with pytest.raises(KeyError, match="'x'"):
        scores({"a": [0.1, 0.2, 0.3]}, baseline="x")
    with pytest.raises(ValueError, match="at least one run"):
        scores({})


def test_scores_are_paired_by_seed() -> None:
    with pytest.raises(ValueError, match="as many values"):
        scores({"a": [0.1, 0.2, 0.3], "b": [0.1, 0.2]}).difference("b")


def test_models_come_back_in_their_mode_on_the_cpu() -> None:
    _, train_eval, _ = data()
    comparison = grid([RunConfig("a", mlp())], seeds=[0])
    model = comparison.models["a"].train()
    comparison.score(train_eval)
    assert model.training and next(model.parameters()).device == torch.device("cpu")


def test_the_clean_gaps_of_two_runs_are_compared_seed_by_seed() -> None:
    train, train_eval, val = data()
    configs = [RunConfig("wide", mlp(hidden=64, dropout=0.0, lr=0.5)), RunConfig("narrow", mlp(hidden=2, lr=0.5))]
    comparison = grid(configs, seeds=SEEDS, epochs=4, train_eval_loader=train_eval)
    gaps = {name: [h.clean_gap() for h in comparison.seed_histories[name]] for name in ("wide", "narrow")}
    expected = [w - n for w, n in zip(gaps["wide"], gaps["narrow"])]
    mean, sd = comparison.difference("wide", "narrow", key="clean_gap")
    assert mean == pytest.approx(sum(expected) / 3)
    assert sd == pytest.approx(torch.tensor(expected).std().item())
    without = grid(configs, seeds=[0], epochs=1)
    with pytest.raises(KeyError, match="train_eval_loader"):
        without.difference("wide", "narrow", key="clean_gap")
