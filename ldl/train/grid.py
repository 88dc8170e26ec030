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

from ldl.train.callbacks import Callback, EarlyStopping
from ldl.core.tables import html_table
from ldl.train.held_out import HeldOutScores, score_models
from ldl.train.history import History
from ldl.train.seed_stats import average_rows, ensemble_accuracy, format_mean_sd, is_clear, paired_difference
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
        histories: each run's :class:`~ldl.train.history.History` (with several seeds: the first seed's).
        models: each trained model, on the CPU (e.g. for ``plots.plot_weight_histograms``); the first seed's.
        seconds: each run's wall time, building and training (the first seed's).
        callbacks: each run's callbacks, after the fit (e.g. a ``BatchNormStats`` and its records).
        seeds: the seeds every configuration ran with, in order.
        seed_histories, seed_models, seed_seconds: per run name, one entry per seed, in the order of ``seeds``.
        chosen_epochs: with ``run_grid(..., keep_best=...)``, per run name the epoch each seed's
            model was restored to (its best validation epoch); empty otherwise.
    """

    histories: dict[str, History] = field(default_factory=dict)
    models: dict[str, nn.Module] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    callbacks: dict[str, list[Callback]] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=list)
    seed_histories: dict[str, list[History]] = field(default_factory=dict)
    seed_models: dict[str, list[nn.Module]] = field(default_factory=dict)
    seed_seconds: dict[str, list[float]] = field(default_factory=dict)
    chosen_epochs: dict[str, list[int]] = field(default_factory=dict)

    @property
    def gap_kind(self) -> str:
        """``"clean"`` when every run logged ``clean_train_accuracy`` (``run_grid(..., train_eval_loader=)``), else ``"running"``.

        The clean gap compares train and validation accuracy measured the same way; the
        running gap uses the training epoch's own accuracy, lowered by dropout and augmentation.
        """
        histories = [h for name in self.histories for h in self._seed_histories(name)]
        clean = histories and all(h.clean_gap() is not None for h in histories)
        return "clean" if clean else "running"

    def row(self, name: str) -> dict[str, Any]:
        """One run's summary: final train/val accuracy, their gap, the best val accuracy and its epoch.

        With several seeds each number is the mean over seeds, with its sample sd in
        ``<key>_sd`` and the number of seeds in ``seeds``. ``gap`` is the clean gap when
        :attr:`gap_kind` is ``"clean"`` (``gap_kind`` says which).
        """
        histories = self._seed_histories(name)
        seconds = self.seed_seconds.get(name) or [self.seconds.get(name, float("nan"))]
        kind = self.gap_kind
        rows = [self._seed_row(name, h, s, kind) for h, s in zip(histories, _pad(seconds, len(histories)))]
        return rows[0] if len(rows) == 1 else average_rows(rows)

    @staticmethod
    def _seed_row(name: str, history: History, seconds: float, gap_kind: str) -> dict[str, Any]:
        last = history[-1]
        best = history.best("top1_acc", mode="max")
        row = {
            "name": name,
            "train_accuracy": last["train_accuracy"],
            "top1_acc": last["top1_acc"],
            "gap": last["train_accuracy"] - last["top1_acc"],  # > 0: better on photos it has seen
            "best_top1_acc": best["top1_acc"],
            "best_epoch": best["epoch"],
            "seconds": seconds,
        }
        if gap_kind == "clean":  # measured like validation: not lowered by dropout or augmentation
            row["clean_train_accuracy"] = last["clean_train_accuracy"]
            row["gap"] = history.clean_gap()
        row["gap_kind"] = gap_kind
        return row

    def table(self) -> list[dict[str, Any]]:
        """One :meth:`row` per run (``pandas.DataFrame(comparison.table())`` makes a data frame)."""
        return [self.row(name) for name in self.histories]

    def difference(self, a: str, b: str, key: str = "top1_acc") -> tuple[float, float]:
        """The mean and sample sd over seeds of the paired difference ``a - b`` in the final epoch's ``key``.

        ``key="clean_gap"`` compares the clean gaps (clean training minus validation accuracy).

        Seed k of ``a`` is compared with seed k of ``b``: both started from the same random
        state, so what is left is the effect and its spread. With one seed the sd is nan.
        """
        return paired_difference(self._final(a, key), self._final(b, key))

    def is_clear(self, a: str, b: str, key: str = "top1_acc") -> bool:
        """Whether ``a`` and ``b`` clearly differ in ``key``: the paired difference's mean exceeds its sd.

        The course's rule: an effect smaller than its spread over seeds is unclear. With
        one seed there is no spread to compare with, so the answer is False (cannot tell).
        """
        return is_clear(*self.difference(a, b, key))

    def ensemble_accuracy(self, name: str, loader: Iterable, device: str | torch.device = "auto") -> float:
        """Top-1 accuracy on ``loader`` of the run's models over all seeds, their softmax outputs averaged.

        A free extra row: the seeds are trained anyway, and an ensemble is usually at least
        as good as its members.
        """
        self._history(name)  # the KeyError that names the runs
        models = self.seed_models.get(name) or [self.models[name]]
        return ensemble_accuracy(models, loader, device)

    def score(
        self,
        loader: Iterable,
        *,
        split: str = "test",
        baseline: str | None = None,
        ensemble: bool = False,
        device: str | torch.device = "auto",
    ) -> HeldOutScores:
        """Every run's models, one per seed, measured once on ``loader``: top-1 accuracy per run and seed.

        With ``run_grid(..., keep_best="top1_acc")`` the models hold the weights of their best
        validation epoch: the epoch was chosen on validation, and ``loader`` (the test part)
        reports it without having been looked at. ``baseline`` (default: the first run) is
        what the others are compared with; ``ensemble=True`` adds the accuracy of each run's
        seeds' models averaged.
        """
        models = {name: self.seed_models.get(name) or [self.models[name]] for name in self.histories}
        scores = score_models(models, loader, self.seeds or [0], split=split, baseline=baseline, device=device)
        if ensemble:
            scores.ensemble = {name: ensemble_accuracy(run_models, loader, device) for name, run_models in models.items()}
        return scores

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
        cell = _cell_maker(r)
        gap = "clean gap" if r["gap_kind"] == "clean" else "gap"
        seeds = f" ({r['seeds']} seeds)" if "seeds" in r else ""
        return (
            f"{name}{seeds}: train_accuracy {cell('train_accuracy', '.2f')} - top1_acc {cell('top1_acc', '.2f')}"
            f" - {gap} {cell('gap', '.2f')} - best top1_acc {cell('best_top1_acc', '.2f')}"
            f" (epoch {cell('best_epoch', '.1f') if seeds else r['best_epoch']}) - {cell('seconds', '.1f')}s"
        )

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        rows = self.table()
        several = any("seeds" in r for r in rows)
        gap = "clean gap" if self.gap_kind == "clean" else "gap"
        header = ["run", "train acc", "val acc", gap, "best val acc", "best epoch", "seconds"]
        cells = []
        for r in rows:
            cell = _cell_maker(r)
            best_epoch = cell("best_epoch", ".1f") if "seeds" in r else str(r["best_epoch"])
            cells.append([r["name"], cell("train_accuracy", ".3f"), cell("top1_acc", ".3f"), cell("gap", "+.3f"),
                          cell("best_top1_acc", ".3f"), best_epoch, cell("seconds", ".1f")])
        if several:  # how many seeds each mean ± sd is over
            header.insert(1, "seeds")
            for r, row_cells in zip(rows, cells):
                row_cells.insert(1, str(r.get("seeds", 1)))
        return header, cells
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

    def _seed_histories(self, name: str) -> list[History]:
        """The run's history per seed; a Comparison built by hand has just ``histories``."""
        return self.seed_histories.get(name) or [self._history(name)]

    def _final(self, name: str, key: str) -> list[float]:
        """The final epoch's ``key`` of each seed's run; ``"clean_gap"``: each run's ``History.clean_gap()``."""
        if key == "clean_gap":
            finals = [history.clean_gap() for history in self._seed_histories(name)]
            if any(value is None for value in finals):
                raise KeyError(f"Run {name!r} has no clean gap: pass train_eval_loader= to run_grid.")
            return finals
        finals = [history[-1].get(key) for history in self._seed_histories(name)]
        if any(value is None for value in finals):
            raise KeyError(f"Run {name!r} has no final {key!r}; it has {self._history(name).keys()}.")
        return finals


def _pad(values: list[float], n: int) -> list[float]:
    """``values`` stretched to ``n`` entries with nan (a hand-built Comparison may lack per-seed seconds)."""
    return (list(values) + [float("nan")] * n)[:n]


def _cell_maker(row: dict[str, Any]) -> Callable[[str, str], str]:
    """Formats a row's number as ``mean ± sd`` where the row has an ``<key>_sd``, else the number alone."""
    return lambda key, spec: format_mean_sd(row[key], row.get(f"{key}_sd"), spec)


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
    seed: int | None = None,
    seeds: Sequence[int] | None = None,
    train_eval_loader: Iterable | None = None,
    keep_best: str | None = None,
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

    With ``seeds=[0, 1, 2]`` every configuration runs once per seed, paired: run k of
    every configuration starts from seed k, so configurations are compared on the same
    seeds. The table then shows mean ± sd over seeds, and :meth:`Comparison.is_clear`
    says whether a difference exceeds its spread.

    Args:
        configs: the runs, in the order they are trained (and shown).
        train_loader: the training batches; a config's own ``train_loader`` replaces it.
        val_loader: the validation batches, the same for every run.
        epochs: epochs per run.
        seed: the random seed every run starts from (give this or ``seeds``).
        seeds: several seeds, each configuration run once per seed (give this or ``seed``).
        train_eval_loader: fixed, unaugmented training batches passed to every fit, so the
            runs log ``clean_train_accuracy`` and the table shows the clean gap.
        keep_best: a validation metric, ``"top1_acc"`` (highest wins) or ``"val_loss"``
            (lowest wins): every run trains all ``epochs``, then its model gets back the weights
            of its best epoch by that metric (``Comparison.chosen_epochs`` says which). Each
            recipe is then compared at its own best epoch, chosen on validation, and
            ``Comparison.score(loaders.test)`` reports it on photos the choice never saw.
        device: ``"auto"`` (GPU if any), ``"cpu"``, ``"cuda"``, ...
        verbose: print the Trainer's line per epoch; a summary line per run is always printed.
        progress: a progress bar over the runs. The runs' own Trainers show none: a grid of
            dozens of runs would print hundreds of bars (and a notebook's output would lag
            behind); the bar over the runs and one summary line per configuration say enough.
        trainer_options: further keyword arguments for every run's
            :class:`~ldl.train.trainer.Trainer`, e.g. ``channels_last=True``.

    Returns:
        A :class:`Comparison`; trained models are moved to the CPU to free the GPU.
    """
    _check_configs(configs)
    if val_loader is None:
        raise ValueError("run_grid compares validation accuracy: pass a val_loader.")
    seed_list = _seed_list(seed, seeds)
    if keep_best not in (None, "top1_acc", "val_loss"):
        raise ValueError(f"keep_best must be None, 'top1_acc' or 'val_loss' (the metric that picks each run's "
                         f"best validation epoch); got {keep_best!r}.")
    comparison = Comparison(seeds=seed_list)
    bar = tqdm(total=len(configs) * len(seed_list), desc="runs", disable=not progress)
    for config in configs:
        for run_seed in seed_list:
            keeper = _best_epoch_keeper(keep_best, epochs)
            history, model, callbacks, seconds = _run_one(
                config, train_loader, val_loader, train_eval_loader, epochs=epochs, seed=run_seed,
                device=device, verbose=verbose, trainer_options=trainer_options,
                extra_callbacks=[keeper] if keeper is not None else [])
            _record(comparison, config.name, history, model, callbacks, seconds)
            if keeper is not None:
                comparison.chosen_epochs.setdefault(config.name, []).append(keeper.best_epoch)
            bar.update()
        tqdm.write(comparison.summary_line(config.name))
    bar.close()
    return comparison


def _seed_list(seed: int | None, seeds: Sequence[int] | None) -> list[int]:
    """The seeds to run: exactly one of ``seed`` and ``seeds`` must be given."""
    if (seed is None) == (seeds is None):
        raise ValueError("run_grid needs exactly one of seed=0 (one run per config) or seeds=[0, 1, 2] "
                         f"(one run per config and seed); got seed={seed!r}, seeds={seeds!r}.")
    if seeds is not None:
        seed_list = [int(s) for s in seeds]
        if not seed_list or len(set(seed_list)) != len(seed_list):
            raise ValueError(f"seeds must be a non-empty list of distinct seeds; got {list(seeds)!r}.")
        return seed_list
    return [seed]


def _best_epoch_keeper(keep_best: str | None, epochs: int) -> EarlyStopping | None:
    """An EarlyStopping that never stops (patience: the whole fit) but restores the best epoch."""
    if keep_best is None:
        return None
    return EarlyStopping(monitor=keep_best, mode="max" if keep_best == "top1_acc" else "min",
                         patience=epochs + 1, restore_best=True)


def _run_one(
    config: RunConfig,
    train_loader: Iterable,
    val_loader: Iterable,
    train_eval_loader: Iterable | None,
    *,
    epochs: int,
    seed: int,
    device: str | torch.device,
    verbose: bool,
    trainer_options: dict[str, Any],
    extra_callbacks: Sequence[Callback] = (),
) -> tuple[History, nn.Module, list[Callback], float]:
    """One configuration trained from one seed: its history, model (on the CPU), callbacks and seconds.

    ``extra_callbacks`` run after the config's own (the keeper of the best epoch restores last).
    """
    start = time.perf_counter()
    torch.manual_seed(seed)  # same initial weights where the architectures match
    model, optimizer, loss_fn = _build(config)
    callbacks = list(config.callbacks()) if config.callbacks is not None else []
    trainer = Trainer(model, optimizer=optimizer, loss_fn=loss_fn, device=device,
                      callbacks=[*callbacks, *extra_callbacks], progress=False, verbose=verbose,
                      **trainer_options)
    torch.manual_seed(seed)  # every fit starts from the same random state (shuffling, dropout)
    loader = config.train_loader if config.train_loader is not None else train_loader
    history = trainer.fit(loader, val_loader, epochs=epochs, train_eval_loader=train_eval_loader)
    model = model.to("cpu")  # its optimizer's state goes with the Trainer
    return history, model, callbacks, time.perf_counter() - start


def _record(comparison: Comparison, name: str, history: History, model: nn.Module,
            callbacks: list[Callback], seconds: float) -> None:
    """Adds one seed's run; the first seed's run is also the run's ``histories``/``models``/``callbacks``."""
    if name not in comparison.histories:
        comparison.histories[name], comparison.models[name] = history, model
        comparison.seconds[name], comparison.callbacks[name] = seconds, callbacks
    comparison.seed_histories.setdefault(name, []).append(history)
    comparison.seed_models.setdefault(name, []).append(model)
    comparison.seed_seconds.setdefault(name, []).append(seconds)
