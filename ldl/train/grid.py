"""Train a few configurations under the same seed and compare them: the experiments of lesson 2.

>>> configs = [
...     RunConfig("baseline", lambda: with_adam(RecapCNN())),
...     RunConfig("dropout 0.5", lambda: with_adam(RecapCNN(dropout=0.5))),
...     RunConfig("MixUp", lambda: with_adam(RecapCNN()), train_loader=MixingLoader(train, MixUp(0.2, 2))),
... ]
>>> comparison = run_grid(configs, train, val, epochs=10, seed=0)
baseline: train_accuracy 0.99 - top1_acc 0.68 - gap 0.31 - best top1_acc 0.70 (epoch 6) - 41.2s
...
>>> plots.plot_comparison(comparison); plt.show()   # validation curves overlaid, final accuracies as bars
>>> comparison                      # in a notebook: the table

where ``with_adam = lambda model: (model, torch.optim.Adam(model.parameters(), 1e-3), None)``.

A fair comparison changes one thing at a time. Every run starts from the same random
state: the same initial weights wherever the architectures match, and the same first
epoch of training batches (see :func:`run_grid`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ldl.train.callbacks import Callback
from ldl.core.tables import html_table
from ldl.train.history import History
from ldl.train.trainer import Trainer

# What RunConfig.build returns: the model, its optimizer, and the loss (None: cross-entropy).
Built = tuple[nn.Module, torch.optim.Optimizer, nn.Module | None]


@dataclass
class RunConfig:
    """One run of a grid.

    Args:
        name: how the run is labelled in tables and plots (unique within a grid).
        build: a function with no arguments returning ``(model, optimizer, loss_fn)``;
            ``loss_fn=None`` means ``nn.CrossEntropyLoss()``. A function, not a model,
            so that it runs after the seed is set: every run builds its own fresh model.
        train_loader: replaces the grid's training loader for this run, e.g. a
            ``MixingLoader`` around it for MixUp. Validation always uses the grid's loader.
        callbacks: a function returning fresh callbacks for this run (e.g.
            ``lambda: [BatchNormStats("features.0.1")]``); callbacks keep state, so each run
            gets its own. After the grid, read them in ``comparison.callbacks[name]``.
    """

    name: str
    build: Callable[[], Built]
    train_loader: Iterable | None = None
    callbacks: Callable[[], Sequence[Callback]] | None = None


@dataclass
class Comparison:
    """The results of :func:`run_grid`, keyed by run name, in the order the runs were given.

    Attributes:
        histories: each run's :class:`~ldl.train.history.History`.
        models: each trained model, on the CPU (e.g. for ``plots.plot_weight_histograms``).
        seconds: each run's wall time, building and training.
        callbacks: each run's callbacks, after the fit (e.g. a ``BatchNormStats`` and its records).
    """

    histories: dict[str, History] = field(default_factory=dict)
    models: dict[str, nn.Module] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    callbacks: dict[str, list[Callback]] = field(default_factory=dict)

    def row(self, name: str) -> dict[str, Any]:
        """One run's summary: final train/val accuracy, their gap, the best val accuracy and its epoch."""
        history = self._history(name)
        last = history[-1]
        best = history.best("top1_acc", mode="max")
        return {
            "name": name,
            "train_accuracy": last["train_accuracy"],
            "top1_acc": last["top1_acc"],
            "gap": last["train_accuracy"] - last["top1_acc"],  # > 0: better on photos it has seen
            "best_top1_acc": best["top1_acc"],
            "best_epoch": best["epoch"],
            "seconds": self.seconds.get(name, float("nan")),
        }

    def table(self) -> list[dict[str, Any]]:
        """One :meth:`row` per run (``pandas.DataFrame(comparison.table())`` makes a data frame)."""
        return [self.row(name) for name in self.histories]

    def epochs_to_reach(self, name: str, value: float, key: str = "top1_acc") -> int | None:
        """The first epoch whose ``key`` is at least ``value``; ``None`` if the run never got there."""
        history = self._history(name)
        for logs in history.epochs:
            if logs.get(key, float("nan")) >= value:  # nan >= value is False
                return logs["epoch"]
        return None

    def summary_line(self, name: str) -> str:
        """``baseline: train_accuracy 0.99 - top1_acc 0.68 - gap 0.31 - best top1_acc 0.70 (epoch 6) - 41.2s``."""
        r = self.row(name)
        return (
            f"{name}: train_accuracy {r['train_accuracy']:.2f} - top1_acc {r['top1_acc']:.2f} - gap {r['gap']:.2f}"
            f" - best top1_acc {r['best_top1_acc']:.2f} (epoch {r['best_epoch']}) - {r['seconds']:.1f}s"
        )

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        header = ["run", "train acc", "val acc", "gap", "best val acc", "best epoch", "seconds"]
        rows = [
            [r["name"], f"{r['train_accuracy']:.3f}", f"{r['top1_acc']:.3f}", f"{r['gap']:+.3f}",
             f"{r['best_top1_acc']:.3f}", str(r["best_epoch"]), f"{r['seconds']:.1f}"]
            for r in self.table()
        ]
        return header, rows

    def to_markdown(self) -> str:
        """The table as Markdown, e.g. for a report or ``IPython.display.Markdown``."""
        header, rows = self._cells()
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The table Jupyter shows when a Comparison is a cell's last expression."""
        return html_table(*self._cells())

    def __repr__(self) -> str:
        return f"Comparison({len(self.histories)} runs: {', '.join(self.histories)})"

    def _history(self, name: str) -> History:
        if name not in self.histories:
            raise KeyError(f"No run named {name!r}; the runs are {list(self.histories)}.")
        return self.histories[name]


def _check_configs(configs: Sequence[RunConfig]) -> None:
    if not configs:
        raise ValueError("run_grid needs at least one RunConfig.")
    names = [config.name for config in configs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"Run names must be unique, since results are keyed by name; repeated: {duplicates}.")


def _build(config: RunConfig) -> Built:
    built = config.build()
    if not (isinstance(built, tuple) and len(built) == 3 and isinstance(built[0], nn.Module)):
        raise TypeError(
            f"RunConfig {config.name!r}: build() must return (model, optimizer, loss_fn or None); "
            f"got {type(built).__name__}. E.g. lambda: (model, torch.optim.Adam(model.parameters()), None)."
        )
    return built


def run_grid(
    configs: Sequence[RunConfig],
    train_loader: Iterable,
    val_loader: Iterable,
    *,
    epochs: int,
    seed: int,
    device: str | torch.device = "auto",
    verbose: bool = False,
    progress: bool = True,
    **trainer_options: Any,
) -> Comparison:
    """Fit every configuration for ``epochs`` epochs with the course Trainer; collect the results.

    Before each run, ``torch.manual_seed(seed)`` is set twice: before ``build()``, so
    models of the same architecture start from the same weights, and again before the fit,
    so every run starts training from the same random state, whatever its model took from
    the generator: a shuffling loader that uses the global generator (a ``DataLoader``
    without ``generator=``) gives every run the same first epoch. Later epochs match too
    unless the runs draw different amounts of randomness while training (dropout layers
    of different sizes, MixUp): then only the same seed, not the same order, is shared.

    Args:
        configs: the runs, in the order they are trained (and shown).
        train_loader: the training batches; a config's own ``train_loader`` replaces it.
        val_loader: the validation batches, the same for every run.
        epochs: epochs per run.
        seed: the random seed every run starts from.
        device: ``"auto"`` (GPU if any), ``"cpu"``, ``"cuda"``, ...
        verbose: print the Trainer's line per epoch; a summary line per run is always printed.
        progress: a progress bar over the runs (and the Trainer's over batches).
        trainer_options: further keyword arguments for every run's
            :class:`~ldl.train.trainer.Trainer`, e.g. ``channels_last=True``.

    Returns:
        A :class:`Comparison`; trained models are moved to the CPU to free the GPU.
    """
    _check_configs(configs)
    if val_loader is None:
        raise ValueError("run_grid compares validation accuracy: pass a val_loader.")
    comparison = Comparison()
    for config in tqdm(configs, desc="runs", disable=not progress):
        start = time.perf_counter()
        torch.manual_seed(seed)  # same initial weights where the architectures match
        model, optimizer, loss_fn = _build(config)
        callbacks = list(config.callbacks()) if config.callbacks is not None else []
        trainer = Trainer(model, optimizer=optimizer, loss_fn=loss_fn, device=device,
                          callbacks=callbacks, progress=progress, verbose=verbose, **trainer_options)
        torch.manual_seed(seed)  # every fit starts from the same random state (shuffling, dropout)
        loader = config.train_loader if config.train_loader is not None else train_loader
        history = trainer.fit(loader, val_loader, epochs=epochs)
        comparison.histories[config.name] = history
        comparison.models[config.name] = model.to("cpu")  # its optimizer's state goes with the Trainer
        comparison.seconds[config.name] = time.perf_counter() - start
        comparison.callbacks[config.name] = callbacks
        tqdm.write(comparison.summary_line(config.name))
    return comparison

