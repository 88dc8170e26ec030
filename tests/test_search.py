"""Hyperparameter search: grid vs random points, Optuna studies in SQLite, pruning inside the Trainer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matplotlib
import optuna
import pytest
import torch
from torch import nn

from ldl import plots
from ldl.search import OptunaPruning, create_study, distinct_values, grid_points, random_points, trials_table
from ldl.train import Trainer

matplotlib.use("Agg")
SPACE = {"lr": (1e-4, 1.0), "weight_decay": (1e-6, 1e-1)}


def test_a_grid_of_nine_tries_three_values_of_each_parameter() -> None:
    grid = grid_points(SPACE, 9)
    assert len(grid) == 9
    assert distinct_values(grid, "lr") == distinct_values(grid, "weight_decay") == 3
    assert {round(p["lr"], 9) for p in grid} == {1e-4, 1e-2, 1.0}  # log-spaced, ends included
    assert len(grid_points(SPACE, 10)) == 9  # a grid cannot use a tenth trial


def test_random_points_try_a_new_value_every_trial_inside_the_range() -> None:
    points = random_points(SPACE, 9, seed=3)
    assert distinct_values(points, "lr") == 9
    assert all(1e-4 <= p["lr"] <= 1 and 1e-6 <= p["weight_decay"] <= 1e-1 for p in points)
    assert points == random_points(SPACE, 9, seed=3) and points != random_points(SPACE, 9, seed=4)


def test_bad_ranges_are_refused() -> None:
    with pytest.raises(ValueError, match="lr"):
        grid_points({"lr": (0.0, 1.0)}, 4)
    with pytest.raises(ValueError, match="trials"):
        random_points(SPACE, 0)


def quadratic(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-4, 1.0, log=True)
    return -((torch.log10(torch.tensor(lr)) + 2) ** 2).item()  # best at lr = 1e-2


def test_a_study_lives_in_an_sqlite_file_that_another_process_continues(tmp_path: Path) -> None:
    path = tmp_path / "search.db"
    study = create_study(path, "lesson7", sampler="tpe", prune=False)
    study.optimize(quadratic, n_trials=12)
    assert path.exists()
    # another process points at the same file and adds its own trials to the same study
    script = (
        "import sys; from ldl.search import create_study; from tests.test_search import quadratic; "
        f"create_study(sys.argv[1], 'lesson7', sampler='random', seed=1, prune=False).optimize(quadratic, n_trials=5)"
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    again = create_study(path, "lesson7", prune=False)
    assert len(again.trials) == 17
    assert abs(again.best_params["lr"] - 1e-2) < 1e-2  # TPE homes in on the optimum
    rows = trials_table(again)
    assert len(rows) == 17 and all(row["state"] == "COMPLETE" and "lr" in row for row in rows)
    assert plots.plot_trials(rows).axes[0].get_xlabel() == "trial"


def test_unknown_sampler_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sampler"):
        create_study(tmp_path / "s.db", "x", sampler="grid")


def test_the_pruner_stops_a_trial_that_learns_nothing(tmp_path: Path) -> None:
    torch.manual_seed(0)
    x = torch.randn(128, 2)
    y = (x[:, 0] > 0).long()
    train = [(x[i:i + 32], y[i:i + 32]) for i in range(0, 128, 32)]
    study = create_study(tmp_path / "prune.db", "prune", sampler="random", startup_trials=3)

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-7, 1.0, log=True)
        torch.manual_seed(trial.number)
        model = nn.Linear(2, 2)
        pruning = OptunaPruning(trial)
        trainer = Trainer(model, optimizer=torch.optim.SGD(model.parameters(), lr=lr), device="cpu",
                          callbacks=[pruning], progress=False, verbose=False)
        history = trainer.fit(train, train, epochs=8)
        pruning.raise_if_pruned()
        return history["top1_acc"][-1]

    for _ in range(3):
        study.enqueue_trial({"lr": 0.5})
    study.enqueue_trial({"lr": 1e-7})
    study.optimize(objective, n_trials=4)
    rows = trials_table(study)
    assert [row["state"] for row in rows] == ["COMPLETE"] * 3 + ["PRUNED"]
    assert 2 <= rows[-1]["epochs"] < 8 and rows[-1]["value"] < min(row["value"] for row in rows[:3])


def test_pruning_names_a_missing_monitor() -> None:
    study = optuna.create_study()
    trainer = Trainer(nn.Linear(2, 2), device="cpu", callbacks=[OptunaPruning(study.ask())], progress=False, verbose=False)
    with pytest.raises(KeyError, match="top1_acc"):
        trainer.fit([(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]))], epochs=1)


def test_search_points_plot_one_panel_per_method() -> None:
    grid, random = grid_points(SPACE, 9), random_points(SPACE, 9)
    fig = plots.plot_search_points({"grid": grid, "random": random}, {"grid": [0.5] * 9, "random": [0.6] * 9})
    panels = [ax for ax in fig.axes if ax.get_xscale() == "log"]
    assert [ax.get_title() for ax in panels] == ["grid: 3 values of lr", "random: 9 values of lr"]
    with pytest.raises(ValueError, match="points"):
        plots.plot_search_points({"grid": grid}, {"random": [0.5] * 9})
