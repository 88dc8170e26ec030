"""History: what happened in each epoch of a fit, as plain numbers.

>>> history = History()
>>> history.append({"epoch": 1, "train_loss": 0.9, "val_loss": 0.8})
>>> history.append({"epoch": 2, "train_loss": 0.5, "val_loss": 0.6})
>>> history["val_loss"]
[0.8, 0.6]
>>> history.best("val_loss", mode="min")["epoch"]
2
>>> History([{"epoch": 1, "clean_train_accuracy": 0.9, "top1_acc": 0.7}]).clean_gap()  # doctest: +ELLIPSIS
0.2...
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ldl.core.tables import html_table


def _plain(value: Any) -> Any:
    """A Python int/float instead of a 0-d tensor or numpy scalar, so it pickles as plain data."""
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


class History:
    """One dict per epoch, e.g. ``{"epoch": 3, "train_loss": 0.98, "val_loss": 0.43, ...}``.

    ``history["val_loss"]`` gives one value per epoch (``nan`` for an epoch without it),
    ``history[-1]`` the last epoch's dict, ``len(history)`` the number of epochs.
    """

    def __init__(self, epochs: Iterable[Mapping[str, Any]] = ()) -> None:
        self.epochs: list[dict[str, Any]] = []
        for logs in epochs:
            self.append(logs)

    def append(self, logs: Mapping[str, Any]) -> None:
        """Add one epoch's numbers (copied, so later changes to ``logs`` do not leak in)."""
        self.epochs.append({key: _plain(value) for key, value in logs.items()})

    def keys(self) -> list[str]:
        """Every key seen in any epoch, in the order first seen."""
        seen: dict[str, None] = {}
        for logs in self.epochs:
            seen.update(dict.fromkeys(logs))
        return list(seen)

    def __len__(self) -> int:
        return len(self.epochs)

    def __getitem__(self, key: str | int) -> list[float] | dict[str, Any]:
        if isinstance(key, int):
            return self.epochs[key]
        if key not in self.keys():
            raise KeyError(f"History has no {key!r}; it has {self.keys()}.")
        return [logs.get(key, math.nan) for logs in self.epochs]

    def best(self, key: str, mode: str = "min") -> dict[str, Any]:
        """The epoch's dict with the lowest (``mode="min"``) or highest (``"max"``) ``key``."""
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max'; got {mode!r}.")
        candidates = [logs for logs in self.epochs if key in logs and not math.isnan(logs[key])]
        if not candidates:
            raise KeyError(f"No epoch has a value for {key!r}; keys are {self.keys()}.")
        choose = min if mode == "min" else max
        return choose(candidates, key=lambda logs: logs[key])

    def clean_gap(self) -> float | None:
        """The last epoch's ``clean_train_accuracy - top1_acc``: the number lessons should assert on.

        How much better the network does on training photos than on held-out ones, both
        measured the same way (eval mode, unaugmented; ``Trainer.fit(..., train_eval_loader=...)``).
        The running ``train_accuracy - top1_acc`` is no such measure: augmentation, MixUp and
        dropout lower the running accuracy by construction, so that gap shrinks whether or not
        the network generalises better. ``None`` when the last epoch lacks either number.
        """
        last = self.epochs[-1] if self.epochs else {}
        clean, held_out = last.get("clean_train_accuracy"), last.get("top1_acc")
        if clean is None or held_out is None:
            return None
        return clean - held_out

    # --- saving: plain lists, so a checkpoint loads with torch.load(weights_only=True) ---

    def to_dict(self) -> dict[str, list[Any]]:
        """Columns ``{key: [value per epoch, None where missing]}`` (fits ``pandas.DataFrame``)."""
        return {key: [logs.get(key) for logs in self.epochs] for key in self.keys()}

    @classmethod
    def from_dict(cls, columns: Mapping[str, Sequence[Any]]) -> History:
        """Rebuild a History from :meth:`to_dict`'s columns."""
        lengths = {len(values) for values in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"History columns must have equal lengths; got lengths {sorted(lengths)}.")
        num_epochs = lengths.pop() if lengths else 0
        rows = [
            {key: values[i] for key, values in columns.items() if values[i] is not None}
            for i in range(num_epochs)
        ]
        return cls(rows)

    # --- showing (the learning curves: ldl.plots.plot_curves(history)) ---

    def _rows_as_text(self) -> tuple[list[str], list[list[str]]]:
        keys = self.keys()
        rows = [[_format(logs.get(key)) for key in keys] for logs in self.epochs]
        return keys, rows

    def to_table(self) -> str:
        """A plain-text table, one line per epoch."""
        keys, rows = self._rows_as_text()
        widths = [max([len(k)] + [len(row[i]) for row in rows]) for i, k in enumerate(keys)]
        lines = ["  ".join(k.rjust(w) for k, w in zip(keys, widths))]
        lines += ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in rows]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The table Jupyter shows when a History is a cell's last expression."""
        return html_table(*self._rows_as_text())

    def __repr__(self) -> str:
        return f"History({len(self)} epochs; keys: {', '.join(self.keys())})"


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 and value != 0 else f"{value:.4f}"
    return str(value)
