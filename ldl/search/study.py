"""Optuna studies kept in an SQLite file, and early stopping of bad trials inside the Trainer.

Optuna (Akiba et al. 2019) proposes the next trial's hyperparameters from the finished ones
(its sampler: random, or TPE, which models where good trials were) and can stop a trial that
is doing worse than the others at the same epoch (its pruner). Stored in SQLite, a study is a
file: run the same script in several processes, or on machines that share the file (or a
database server's URL instead), and each asks the file for its next trial::

    study = create_study("runs/search.db", "lesson7", sampler="tpe")
    study.optimize(objective, n_trials=20)     # in each process

The search itself is Optuna's; this module only fixes the course's defaults and adds the
Trainer callback.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from ldl.train.callbacks import Callback, CancelFit

if TYPE_CHECKING:
    from ldl.train.trainer import Trainer

SAMPLERS = ("random", "tpe")


def sqlite_url(path: str | Path) -> str:
    """The storage URL Optuna takes for an SQLite file (the folder is created)."""
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def create_study(
    path: str | Path,
    name: str,
    *,
    sampler: str = "tpe",
    seed: int = 0,
    direction: str = "maximize",
    prune: bool = True,
    startup_trials: int = 4,
) -> optuna.Study:
    """A study stored in the SQLite file ``path``; an existing study of that name is loaded and continued.

    Args:
        sampler: ``"random"`` or ``"tpe"`` (its first ``startup_trials`` trials are random too).
        direction: ``"maximize"`` (e.g. validation accuracy) or ``"minimize"`` (a loss).
        prune: stop a trial whose epoch score is below the median of earlier trials at the
            same epoch (once ``startup_trials`` trials have finished, from its second epoch on).
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}; got {sampler!r}.")
    chosen = (optuna.samplers.RandomSampler(seed=seed) if sampler == "random"
              else optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials))
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=2) if prune
              else optuna.pruners.NopPruner())
    return optuna.create_study(storage=sqlite_url(path), study_name=name, sampler=chosen, pruner=pruner,
                               direction=direction, load_if_exists=True)


class OptunaPruning(Callback):
    """Report each epoch's ``monitor`` to an Optuna trial, and stop the fit when the pruner says so.

    The fit ends with a ``CancelFit`` (its epochs so far stay in the History); then call
    :meth:`raise_if_pruned` in the objective, which tells Optuna the trial was pruned.
    """

    def __init__(self, trial: optuna.Trial, monitor: str = "top1_acc") -> None:
        self.trial, self.monitor = trial, monitor
        self.pruned_at: int | None = None

    def on_epoch_end(self, trainer: Trainer) -> None:
        if self.monitor not in trainer.logs:
            raise KeyError(f"OptunaPruning monitors {self.monitor!r}, which this fit does not log "
                           f"(it logs {sorted(trainer.logs)}); pass a val_loader, or another monitor.")
        self.trial.report(trainer.logs[self.monitor], step=trainer.epoch)
        if self.trial.should_prune():
            self.pruned_at = trainer.epoch
            raise CancelFit(f"pruned by Optuna after epoch {trainer.epoch}: {self.monitor} "
                            f"{trainer.logs[self.monitor]:.3f} is below the median of earlier trials")

    def raise_if_pruned(self) -> None:
        """Raise ``optuna.TrialPruned`` if the fit was stopped by the pruner."""
        if self.pruned_at is not None:
            raise optuna.TrialPruned(f"pruned after epoch {self.pruned_at}")


def trials_table(study: optuna.Study) -> list[dict[str, Any]]:
    """One row per trial: ``number``, ``state`` ("COMPLETE", "PRUNED", ...), ``value``, ``epochs``, and its parameters."""
    rows = []
    for trial in study.trials:
        row: dict[str, Any] = {"number": trial.number, "state": trial.state.name, "value": trial.value,
                               "epochs": max(trial.intermediate_values, default=0)}
        if trial.value is None and trial.intermediate_values:  # pruned: its last reported score
            row["value"] = trial.intermediate_values[max(trial.intermediate_values)]
        row.update(trial.params)
        rows.append(row)
    return rows
