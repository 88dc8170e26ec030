"""Learning curves: numbers per epoch from one or several fits, all drawn by :func:`plot_curves`.

>>> plot_curves(history)                                    # a loss panel and an accuracy panel
>>> plot_curves({"L1": h1, "L2": h2}, keys=["val_loss"])    # runs overlaid, one colour per run
>>> plot_overfitting(history)                               # the same, the train/val gap shaded

A history is a :class:`ldl.train.History` or plain columns ``{"epoch": [...], "val_loss": [...]}``:
anything where ``history[key]`` gives one value per epoch and ``history.keys()`` the keys.
Running training curves are dashed, clean training curves dotted, validation curves solid.
Every function returns the Figure, drawn with pyplot: in a notebook, end the cell with ``plt.show()``.

The gap (``gap=True``) is ``clean_train_accuracy - top1_acc`` when a history has clean
training numbers (``Trainer.fit(..., train_eval_loader=...)``): both measured the same way.
Without them it falls back to the running ``train_accuracy - top1_acc``, and says so in the
legend ("running train (augmented)"): augmentation, MixUp and dropout lower the running
accuracy by construction, so that gap shrinks whether or not the network generalises better.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

if TYPE_CHECKING:
    from ldl.train.history import History

# Anything with ``history[key] -> one value per epoch`` and ``history.keys()``.
Curves = Union["History", Mapping[str, Sequence[float]]]

# The default panels: (title, keys drawn there); keys a history lacks are left out.
PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("loss", ("train_loss", "clean_train_loss", "val_loss")),
    ("accuracy", ("train_accuracy", "clean_train_accuracy", "top1_acc", "top5_acc")),
)
# What the overfitting plots draw: loss, and the accuracies whose gap is shaded.
TRAIN_VS_VALIDATION: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Loss", ("train_loss", "clean_train_loss", "val_loss")),
    ("Accuracy", ("train_accuracy", "clean_train_accuracy", "top1_acc")),
)
TRAIN_VAL_LABELS = {"train_loss": "train", "val_loss": "validation",
                    "train_accuracy": "train", "top1_acc": "validation",
                    "clean_train_loss": "clean train", "clean_train_accuracy": "clean train"}
# Shaded between these two when ``gap=True``: the clean pair when a history has it, else the running one.
CLEAN_GAP_KEYS = ("clean_train_accuracy", "top1_acc")
GAP_KEYS = ("train_accuracy", "top1_acc")
GAP_LABELS = {CLEAN_GAP_KEYS: "gap: clean train - validation",
              GAP_KEYS: "gap: running train (augmented) - validation"}


def plot_curves(
    histories: Curves | Mapping[str, Curves],
    keys: Sequence[str] | None = None,
    *,
    panels: Sequence[tuple[str, Sequence[str]]] | None = None,
    per_run: bool = False,
    gap: bool = False,
    best_epoch: int | None = None,
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
    ax: Axes | Sequence[Axes] | None = None,
) -> Figure:
    """Learning curves of one fit, or of several fits overlaid or side by side.

    Args:
        histories: one history, or run name -> history (``{"baseline": h1, "dropout": h2}``).
        keys: draw only these keys, on a single panel. Default: ``panels``.
        panels: ``(title, keys)`` per panel. Default: a loss panel (``train_loss``,
            ``clean_train_loss``, ``val_loss``) and an accuracy panel (``train_accuracy``,
            ``clean_train_accuracy``, ``top1_acc``, ``top5_acc``), with the keys the histories have.
        per_run: one set of panels per run, side by side on a shared y axis, instead of
            every run overlaid on the same panels (one colour per run).
        gap: on panels with ``top1_acc`` and a training accuracy, shade the gap between them
            and write its final value: how much the network has memorised. The gap is
            ``clean_train_accuracy - top1_acc`` when the history has clean numbers, else the
            running ``train_accuracy - top1_acc``, labelled as such.
        best_epoch: mark this epoch on every panel, e.g. the one early stopping restored.
        labels: legend names for keys, e.g. ``{"top1_acc": "validation"}``. Lines are named
            by key, by run (one key, several runs) or ``"run: key"``.
        title: the figure's title (the panel's, when there is one panel).
        ax: where to draw: one Axes per panel (a single Axes when there is one panel).

    Returns:
        The Figure.
    """
    runs = _as_runs(histories)
    named = _is_runs(histories) and not per_run  # several runs share a panel: name them in the legend
    panel_keys = _panels(runs, keys, panels)
    grid = [(name, run) for name, run in runs.items()] if per_run else [(None, None)]
    count = len(grid) * len(panel_keys)

    if ax is None:
        figsize = (7.0, 4.5) if count == 1 else (5.5 * count, 4.0)
        fig, axes_grid = plt.subplots(1, count, figsize=figsize, squeeze=False, sharey=per_run, layout="constrained")
        axes = list(axes_grid[0])
    else:
        axes = [ax] if isinstance(ax, Axes) else list(ax)
        if len(axes) != count:
            raise ValueError(f"plot_curves draws {count} panel(s) but got {len(axes)} Axes.")
        fig = axes[0].get_figure()

    panels_drawn = iter(axes)
    for run_name, run in grid:
        shown = {run_name: run} if per_run else runs
        for panel_title, panel_names in panel_keys:
            axis = next(panels_drawn)
            _draw_panel(axis, shown, panel_names, named=named, labels=labels or {}, gap=gap)
            if best_epoch is not None:
                axis.axvline(best_epoch, color="tab:green", linestyle="--",
                             label=f"best epoch ({best_epoch}): restored")
            ylabel = panel_names[0] if len(panel_names) == 1 else panel_title or "value"
            panel_label = f"{run_name}: {panel_title}" if run_name and len(panel_keys) > 1 else run_name
            axis.set(xlabel="epoch", ylabel=ylabel, title=panel_label or panel_title)
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 1.25
            axis.grid(alpha=0.3)
            axis.legend(fontsize=8)
    if title and count == 1:
        axes[0].set_title(title)
    elif title:
        fig.suptitle(title)
    return fig


def _draw_panel(axis: Axes, shown: Mapping[str | None, Any], keys: Sequence[str], *, named: bool,
                labels: Mapping[str, str], gap: bool) -> None:
    """Each run's ``keys`` on one panel: running training dashed, clean training dotted,
    validation solid; a colour per run when several share the panel, else a colour per key."""
    for i, (name, history) in enumerate(shown.items()):
        drawn = [key for key in keys if key in history.keys()]
        for j, key in enumerate(drawn):
            label = labels.get(key, key)
            if named:
                label = name if len(keys) == 1 else f"{name}: {label}"
            colour = f"C{(i if named and len(shown) > 1 else j) % 10}"
            axis.plot(_epochs(history), history[key], _line_style(key), color=colour, marker="o", markersize=3,
                      label=label)
        pair = _gap_keys(history)
        if gap and pair and "top1_acc" in drawn and any(key in drawn for key in (GAP_KEYS[0], CLEAN_GAP_KEYS[0])):
            _shade_gap(axis, history, pair)


def _line_style(key: str) -> str:
    """Dashed for running training numbers, dotted for clean ones, solid for held-out ones.

    Clean training numbers are a third kind of curve: training photos, measured the way
    validation is (eval mode, unaugmented). Drawn dashed they would pass for the running
    curve, drawn solid for a held-out one.
    """
    if key.startswith("clean_train"):
        return ":"
    return "--" if key.startswith("train") else "-"


def _gap_keys(history: Any) -> tuple[str, str] | None:
    """``(training key, held-out key)`` of the gap: the clean pair when the history has it, else the running one."""
    for pair in (CLEAN_GAP_KEYS, GAP_KEYS):
        if all(key in history.keys() for key in pair):
            return pair
    return None


def _is_runs(histories: Any) -> bool:
    """Run name -> history, rather than one history given as plain columns (name -> list)?"""
    return isinstance(histories, Mapping) and all(hasattr(h, "keys") for h in histories.values())


def _as_runs(histories: Any) -> dict[str | None, Any]:
    """``{name: history}``, with the name ``None`` for a single history; clear errors for empty input."""
    runs = dict(histories) if _is_runs(histories) else {None: histories}
    if not runs:
        raise ValueError("plot_curves needs at least one history, e.g. {'baseline': history}.")
    for name, history in runs.items():
        if not len(history) or not history.keys():
            raise ValueError(f"History {name or ''} is empty: nothing to plot yet (fit for at least one epoch).")
    return runs


def _panels(runs: Mapping[str | None, Any], keys: Sequence[str] | None,
            panels: Sequence[tuple[str, Sequence[str]]] | None) -> list[tuple[str, list[str]]]:
    """``(title, keys)`` of each panel: ``keys`` on one panel, or ``panels`` with the keys some run has."""
    if keys is not None:
        for name, history in runs.items():
            missing = [key for key in keys if key not in history.keys()]
            if missing:
                raise KeyError(f"History {name or ''} has no {missing}; it has {list(history.keys())}.")
        return [("", list(keys))]
    present = {key for history in runs.values() for key in history.keys()}
    chosen = [(title, [key for key in names if key in present]) for title, names in (panels or PANELS)]
    chosen = [(title, names) for title, names in chosen if names]
    if not chosen:
        raise KeyError(f"None of the keys to plot is in the histories; they have {sorted(present)}.")
    return chosen


def _epochs(history: Any) -> list[float]:
    """The ``epoch`` column, or 1, 2, ... when the history has none."""
    if "epoch" in history.keys():
        return list(history["epoch"])
    first = next(iter(history.keys()))
    return list(range(1, len(history[first]) + 1))


def _shade_gap(ax: Axes, history: Any, pair: tuple[str, str]) -> None:
    """The gap between the ``pair`` of accuracies (training, held-out) shaded on ``ax``, its final value written."""
    epochs = _epochs(history)
    train_acc, val_acc = list(history[pair[0]]), list(history[pair[1]])
    ax.fill_between(epochs, val_acc, train_acc, where=[t >= v for t, v in zip(train_acc, val_acc)],
                    alpha=0.2, color="tab:red", label=GAP_LABELS[pair])
    final = train_acc[-1] - val_acc[-1]
    kind = "clean" if pair == CLEAN_GAP_KEYS else "running"
    ax.annotate(f"gap {final:.2f} ({kind})", xy=(epochs[-1], (train_acc[-1] + val_acc[-1]) / 2),
                xytext=(-6, 0), textcoords="offset points", ha="right", color="tab:red")
    ax.set_ylim(0, 1.02)


# ---------------------------------------------------------------- the names the notebooks call


def plot_overfitting(history: Curves, title: str = "Learning curves") -> Figure:
    """Loss and accuracy per epoch, train vs validation, with the accuracy gap shaded.

    The shaded band is what lesson 1 is about: the network keeps improving on the photos
    it has memorised while it stops improving (or gets worse) on photos it has not seen.
    """
    return plot_curves(history, panels=TRAIN_VS_VALIDATION, gap=True, labels=TRAIN_VAL_LABELS, title=title)


def compare_gaps(histories: Mapping[str, Curves], title: str | None = None) -> Figure:
    """One accuracy panel per run, side by side on the same y axis, each with its gap shaded.

    E.g. ``compare_gaps({"without augmentation": h1, "with augmentation": h2})``.
    """
    return plot_curves(histories, panels=TRAIN_VS_VALIDATION[1:], per_run=True, gap=True,
                       labels=TRAIN_VAL_LABELS, title=title)


def compare_histories(histories: Mapping[str, Curves], key: str = "top1_acc", *, ax: Axes | None = None) -> Figure:
    """Overlay one metric of several runs (e.g. ``{"hand-written": h1, "Trainer": h2}``)."""
    return plot_curves(histories, keys=[key], ax=ax)


def plot_runs(
    histories: Mapping[str, Curves],
    keys: Sequence[str] = ("train_accuracy", "top1_acc"),
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Overlay the curves of several runs: one colour per run, training dashed, validation solid.

    E.g. ``plot_runs(comparison.histories)`` or ``plot_runs({"L1": h1, "L2": h2}, keys=("val_loss",))``.
    """
    if not histories:
        raise ValueError("plot_runs needs at least one History, e.g. {'baseline': history}.")
    return plot_curves(histories, keys=keys, ax=ax, title=title or "dashed: training data, solid: validation")


def plot_early_stopping(history: Curves, best_epoch: int) -> Figure:
    """Loss and accuracy of an early-stopped fit, the restored (best) epoch marked."""
    last = _epochs(history)[-1]
    return plot_curves(history, panels=TRAIN_VS_VALIDATION, gap=True, best_epoch=best_epoch, labels=TRAIN_VAL_LABELS,
                       title=f"Early stopping: stopped after epoch {last}, weights of epoch {best_epoch} restored")
