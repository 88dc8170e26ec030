"""Each run's models scored once on held-out photos, and what the course's rule says about them.

The last step of a fair comparison: the recipes were trained, and every choice (the epoch
to keep, the recipe to prefer) was made on the validation photos; now each seed's model is
measured once on photos no choice has looked at, the test part.

>>> comparison = run_grid(configs, loaders.train, loaders.val, epochs=12, seeds=[0, 1, 2],
...                       train_eval_loader=loaders.train_eval, keep_best="top1_acc")
>>> scores = comparison.score(loaders.test)          # a HeldOutScores
>>> scores                                           # in a notebook: the table below
>>> scores.difference("dropout", "none")             # (mean, sd) of the paired difference

::

    | run | seeds | test accuracy | minus none | verdict |
    |---|---|---|---|---|
    | none | 3 | 0.713 ± 0.014 | | baseline |
    | dropout | 3 | 0.745 ± 0.012 | +0.032 ± 0.009 | clearly higher |
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ldl.core.tables import html_table
from ldl.train.seed_stats import ensemble_accuracy, format_mean_sd, is_clear, mean_sd, paired_difference


@dataclass
class HeldOutScores:
    """One number per run and seed, measured on held-out photos, e.g. test accuracy.

    Attributes:
        values: run name -> one value per seed, in the order of ``seeds`` (paired across runs).
        seeds: the seeds the runs started from.
        split: what the values were measured on, for the table's header (``"test"``).
        baseline: the run every other is compared with; the first run when not given.
        ensemble: optional run name -> the accuracy of that run's seeds' models averaged
            (``Comparison.ensemble_accuracy``): shown as an extra column.
    """

    values: dict[str, list[float]]
    seeds: list[int]
    split: str = "test"
    baseline: str | None = None
    ensemble: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError("HeldOutScores needs at least one run.")
        if self.baseline is None:
            self.baseline = next(iter(self.values))
        self._check_name(self.baseline)

    def mean_sd(self, name: str) -> tuple[float, float]:
        """The run's mean over seeds and its sample sd (nan with one seed)."""
        return mean_sd(self._values(name))

    def difference(self, a: str, b: str | None = None) -> tuple[float, float]:
        """Mean and sd over seeds of the paired difference ``a - b`` (``b``: the baseline)."""
        return paired_difference(self._values(a), self._values(b or self.baseline))

    def is_clear(self, a: str, b: str | None = None) -> bool:
        """Whether ``a - b`` is larger than its spread over seeds (never with one seed)."""
        return is_clear(*self.difference(a, b))

    def verdict(self, a: str, b: str | None = None) -> str:
        """``"clearly higher"``, ``"clearly lower"`` or ``"unclear"``: ``a`` against ``b`` (the baseline)."""
        mean, _ = self.difference(a, b)
        if not self.is_clear(a, b):
            return "unclear"
        return "clearly higher" if mean > 0 else "clearly lower"

    def table(self) -> list[dict[str, Any]]:
        """One row per run: mean, sd, seeds and, but for the baseline, the paired difference and verdict."""
        rows = []
        for name in self.values:
            mean, sd = self.mean_sd(name)
            row: dict[str, Any] = {"name": name, "mean": mean, "sd": sd, "seeds": len(self.values[name])}
            if name != self.baseline:
                row["difference"], row["difference_sd"] = self.difference(name)
                row["verdict"] = self.verdict(name)
            if name in self.ensemble:
                row["ensemble"] = self.ensemble[name]
            rows.append(row)
        return rows

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        header = ["run", "seeds", f"{self.split} accuracy", f"minus {self.baseline}", "verdict"]
        if self.ensemble:
            header.append(f"ensemble of the seeds ({self.split})")
        cells = []
        for row in self.table():
            difference = (format_mean_sd(row["difference"], row["difference_sd"], "+.3f")
                          if "difference" in row else "")
            line = [row["name"], str(row["seeds"]), format_mean_sd(row["mean"], row["sd"], ".3f"),
                    difference, row.get("verdict", "baseline")]
            if self.ensemble:
                line.append(f"{row['ensemble']:.3f}" if "ensemble" in row else "")
            cells.append(line)
        return header, cells

    def to_markdown(self) -> str:
        """The table as Markdown."""
        header, rows = self._cells()
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])

    def _repr_html_(self) -> str:
        return html_table(*self._cells())

    def __repr__(self) -> str:
        return self.to_markdown()

    def _check_name(self, name: str) -> None:
        if name not in self.values:
            raise KeyError(f"No run named {name!r}; the runs are {list(self.values)}.")

    def _values(self, name: str) -> list[float]:
        self._check_name(name)
        return self.values[name]


def score_models(
    models: Mapping[str, Sequence[nn.Module]],
    loader: Iterable,
    seeds: Sequence[int],
    *,
    split: str = "test",
    baseline: str | None = None,
    device: str | torch.device = "auto",
) -> HeldOutScores:
    """Top-1 accuracy on ``loader`` of every run's models (one per seed), as :class:`HeldOutScores`.

    A model alone is an ensemble of one: :func:`~ldl.train.seed_stats.ensemble_accuracy`
    measures it, in eval mode, and hands it back on the CPU.
    """
    values = {name: [ensemble_accuracy([model], loader, device) for model in run_models]
              for name, run_models in models.items()}
    return HeldOutScores(values, list(seeds), split=split, baseline=baseline)
