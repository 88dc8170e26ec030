"""Learning rates: the LR range test and learning-rate schedules.

>>> plot_lr_finder(lr_find(model, train_loader))
>>> plot_lr_schedule(preview_schedule(lambda opt: one_cycle(opt, epochs=5, steps_per_epoch=100), steps=500),
...                  steps_per_epoch=100)
>>> plot_lr_schedule(recorder)      # an LRRecorder after a fit: the rates actually used

Both take ``ax=`` to draw on a panel of a larger figure, and return the Figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ldl.plots._layout import figure_and_axes

if TYPE_CHECKING:
    from ldl.train.lr_finder import LRFinderResult
    from ldl.train.schedules import LRRecorder


def plot_lr_finder(result: LRFinderResult, ax: Axes | None = None) -> Figure:
    """The LR range test: loss against learning rate (log x axis).

    Raw batch losses are drawn faint, the smoothed loss bold. Two rates are marked: the
    steepest descent of the smoothed loss (``result.suggestion``) and a tenth of the rate
    of the lowest loss. The y axis stops a little above the loss the sweep started from,
    so the divergence at the end does not squash the part of the curve that matters.
    """
    lrs = np.asarray(result.lrs, dtype=float)
    losses = np.asarray(result.losses, dtype=float)
    smoothed = np.asarray(result.smoothed, dtype=float)
    if lrs.size == 0:
        raise ValueError("plot_lr_finder got a result with no points: run lr_find first.")
    fig, ax = figure_and_axes(ax, (7, 4.2))
    ax.plot(lrs, losses, color="tab:blue", alpha=0.3, linewidth=1, label="loss of each batch")
    ax.plot(lrs, smoothed, color="tab:blue", linewidth=2.2, label="smoothed loss")
    marks = (
        (result.suggestion, "o", "tab:red", "steepest descent"),
        (result.min_loss_lr / 10, "s", "tab:green", "min loss / 10"),
    )
    for lr, marker, colour, name in marks:
        if not np.isfinite(lr):
            continue
        nearest = int(np.argmin(np.abs(np.log10(lrs) - np.log10(lr))))  # the sweep's point closest on the log axis
        ax.plot([lr], [smoothed[nearest]], marker, color=colour, markersize=9, zorder=3,
                label=f"{name}: {lr:.1e}")
    ax.set_xscale("log")
    ax.set_ylim(*_lr_finder_ylim(smoothed, losses))
    ax.set(xlabel="learning rate (log scale)", ylabel="training loss",
           title="LR range test" + (" (stopped: the loss diverged)" if result.stopped_early else ""))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def _lr_finder_ylim(smoothed: np.ndarray, losses: np.ndarray) -> tuple[float, float]:
    """Bottom: just below the lowest loss, raw or smoothed. Top: the highest smoothed loss up
    to the minimum, plus half the fall; the divergence tail above that is cut off."""
    finite = np.isfinite(smoothed)
    if not finite.any():
        return (0.0, 1.0)
    lowest = int(np.nanargmin(np.where(finite, smoothed, np.nan)))
    low = min(smoothed[lowest], float(np.min(losses[np.isfinite(losses)], initial=smoothed[lowest])))
    high = float(np.max(smoothed[: lowest + 1][finite[: lowest + 1]]))
    # The fall from the start to the minimum; a flat curve still gets some room.
    span = high - smoothed[lowest] if high > smoothed[lowest] else max(abs(high) * 0.1, 1e-3)
    return (low - 0.05 * (high - low + span), high + 0.5 * span)


def plot_lr_schedule(
    lrs: torch.Tensor | Sequence[float] | Sequence[Sequence[float]] | LRRecorder,
    ax: Axes | None = None,
    steps_per_epoch: int | None = None,
    labels: Sequence[str] | None = None,
    *,
    log: bool = False,
) -> Figure:
    """The learning rate at every step, one line per parameter group.

    Args:
        lrs: ``(steps,)`` or ``(steps, groups)``, e.g. from ``preview_schedule``; or an
            ``LRRecorder`` after a fit (its ``lrs``, and its ``steps_per_epoch`` by default).
        steps_per_epoch: if given, a faint vertical line marks where each new epoch begins.
        labels: one name per group (default ``"group 0"``, ``"group 1"``... or ``"lr"`` for one).
        log: a log y axis, to see the small rates at the ends of a one-cycle schedule.
    """
    if hasattr(lrs, "lrs"):  # an LRRecorder: read by duck typing, the training code is not imported here
        steps_per_epoch = steps_per_epoch if steps_per_epoch is not None else lrs.steps_per_epoch
        lrs = lrs.lrs
    rates = torch.as_tensor(lrs, dtype=torch.float64)
    if rates.ndim == 1:
        rates = rates.unsqueeze(1)  # (steps,) -> (steps, 1)
    if rates.ndim != 2 or rates.numel() == 0:
        raise ValueError("lrs must be (steps,) or (steps, groups) with at least one step; "
                         f"got shape {tuple(rates.shape)}.")
    steps, groups = rates.shape
    if labels is None:
        labels = ["lr"] if groups == 1 else [f"group {g}" for g in range(groups)]
    if len(labels) != groups:
        raise ValueError(f"labels has {len(labels)} names for {groups} parameter groups: give one per group.")
    if steps_per_epoch is not None and steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be at least 1 (len(train_loader)); got {steps_per_epoch}.")
    fig, ax = figure_and_axes(ax, (7, 3.8))
    x = np.arange(steps)
    for g in range(groups):
        ax.plot(x, rates[:, g].numpy(), color=f"C{g % 10}", linewidth=1.8, label=labels[g])
    if steps_per_epoch is not None:
        for boundary in range(steps_per_epoch, steps, steps_per_epoch):
            ax.axvline(boundary - 0.5, color="grey", alpha=0.3, linewidth=0.8)  # between two epochs' batches
    if log:
        ax.set_yscale("log")
    ax.set(xlabel="training step (batch)", ylabel="learning rate",
           title="Learning-rate schedule" + (" (grey lines: epochs)" if steps_per_epoch is not None else ""))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig
