"""Learning-rate schedules of the course, stepped after every batch, and ways to see them.

The one-cycle policy (Smith 2018; fastai's ``fit_one_cycle``) warms up from ``max_lr / 25``
to ``max_lr`` over the first 30 % of the steps, then anneals along a cosine to almost
nothing. SGDR (Loshchilov & Hutter 2017) anneals along a cosine and restarts, each cycle
``cycle_mult`` times longer than the one before. :func:`warmup_cosine` rises linearly, then
decays along one cosine (the large-batch recipe of Goyal et al. 2017).

Both change the rate at every batch, so tell the Trainer to step them per batch::

    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)      # lr here = max_lr
    scheduler = one_cycle(optimizer, epochs=5, steps_per_epoch=len(train_loader))
    recorder = LRRecorder()
    Trainer(model, optimizer=optimizer, scheduler=scheduler, scheduler_step="batch",
            callbacks=[recorder]).fit(train_loader, val_loader, epochs=5)
    ldl.plots.plot_lr_schedule(recorder)                           # the rates actually used

To see a schedule before training, with no model and no data::

    lrs = preview_schedule(lambda opt: one_cycle(opt, epochs=5, steps_per_epoch=100), steps=500)
    ldl.plots.plot_lr_schedule(lrs, steps_per_epoch=100)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, CosineAnnealingWarmRestarts, LinearLR, OneCycleLR, SequentialLR

from ldl.train.callbacks import Callback

if TYPE_CHECKING:
    from ldl.train.trainer import Trainer


def one_cycle(
    optimizer: torch.optim.Optimizer,
    *,
    max_lr: float | Sequence[float] | None = None,
    epochs: int,
    steps_per_epoch: int,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    cycle_momentum: bool | None = None,
) -> OneCycleLR:
    """A OneCycleLR over ``epochs * steps_per_epoch`` batches: pass ``scheduler_step="batch"`` to the Trainer.

    The rate starts at ``max_lr / div_factor``, rises to ``max_lr`` over the first
    ``pct_start`` of the steps, then falls to ``max_lr / (div_factor * final_div_factor)``
    at the last batch of the last epoch.

    Args:
        optimizer: its parameter groups are scheduled together.
        max_lr: the peak. None: each group's current ``lr``, so differential learning rates
            keep their ratios. A float: the same peak for every group. A list: one per group.
        epochs: exactly the ``epochs`` you will pass to ``fit`` (more would step past the end,
            which OneCycleLR refuses with a ValueError).
        steps_per_epoch: ``len(train_loader)``: batches per epoch.
        cycle_momentum: move momentum (Adam's beta1) opposite to the rate, 0.95 -> 0.85 -> 0.95.
            None: only if the optimizer uses momentum (Adam's betas, or SGD with momentum > 0),
            so a plain SGD is never given momentum behind your back.
    """
    total_steps = _total_steps(epochs, steps_per_epoch)
    peaks = _peak_lrs(optimizer, max_lr, "one_cycle")
    if cycle_momentum is None:
        cycle_momentum = "betas" in optimizer.defaults or any(g.get("momentum", 0) > 0 for g in optimizer.param_groups)
    return OneCycleLR(
        optimizer,
        max_lr=peaks,
        total_steps=total_steps,
        pct_start=float(pct_start),  # OneCycleLR rejects an int such as 0
        div_factor=div_factor,
        final_div_factor=final_div_factor,
        cycle_momentum=cycle_momentum,
    )


def warm_restarts(
    optimizer: torch.optim.Optimizer,
    *,
    first_cycle_epochs: int,
    steps_per_epoch: int,
    cycle_mult: int = 2,
    min_lr: float = 0.0,
    max_lr: float | Sequence[float] | None = None,
) -> CosineAnnealingWarmRestarts:
    """SGDR, stepped per batch (pass ``scheduler_step="batch"`` to the Trainer).

    Each cycle anneals every group's rate from its peak down to ``min_lr`` along a cosine,
    then jumps back to the peak. The first cycle lasts ``first_cycle_epochs`` epochs, each
    next one ``cycle_mult`` times longer: with 1 and 2, restarts after epochs 1, 3, 7, 15...
    End a fit at one of those epochs, where the rate is lowest.

    Args:
        steps_per_epoch: ``len(train_loader)``.
        cycle_mult: a whole number >= 1 (1: every cycle the same length).
        max_lr: the peaks, as in :func:`one_cycle` (None: each group's current ``lr``).
    """
    first_cycle_steps = _total_steps(first_cycle_epochs, steps_per_epoch)
    if not isinstance(cycle_mult, int) or cycle_mult < 1:
        raise ValueError(f"cycle_mult must be a whole number >= 1; got {cycle_mult!r}.")
    peaks = _peak_lrs(optimizer, max_lr, "warm_restarts")
    for group, peak in zip(optimizer.param_groups, peaks):
        group["lr"] = peak
        # The scheduler takes its peak from "initial_lr" if a group already has one: set it
        # here, so that a rate left by an earlier scheduler is never used by mistake.
        group["initial_lr"] = peak
    return CosineAnnealingWarmRestarts(optimizer, T_0=first_cycle_steps, T_mult=cycle_mult, eta_min=float(min_lr))


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    *,
    warmup_steps: int,
    total_steps: int,
    start_factor: float = 0.01,
    min_lr: float = 0.0,
) -> SequentialLR:
    """Linear warm-up, then cosine decay: stepped per batch (``scheduler_step="batch"``).

    Over the first ``warmup_steps`` batches every group's rate rises linearly from
    ``start_factor`` times its ``lr`` to its ``lr``; over the remaining ones it falls along
    a cosine to ``min_lr``, reached at batch ``total_steps``. The warm-up is what lets a
    large batch start at a large rate (Goyal et al. 2017): the first steps, taken while the
    weights are still random and the gradients large, are kept small.
    """
    if not 0 < warmup_steps < total_steps:
        raise ValueError(f"warmup_steps must be between 1 and total_steps - 1 ({total_steps - 1}); got {warmup_steps}.")
    if not 0 < start_factor <= 1:
        raise ValueError(f"start_factor must be in (0, 1]; got {start_factor}.")
    warmup = LinearLR(optimizer, start_factor=start_factor, end_factor=1.0, total_iters=warmup_steps)
    decay = CosineAnnealingLR(optimizer, T_max=total_steps - warmup_steps, eta_min=float(min_lr))
    return SequentialLR(optimizer, schedulers=[warmup, decay], milestones=[warmup_steps])


def preview_schedule(
    make_scheduler: Callable[[torch.optim.Optimizer], Any],
    *,
    steps: int,
    base_lrs: Sequence[float] = (1e-3,),
) -> torch.Tensor:
    """The rate of every group at every step of a schedule, without a model or data.

    ``make_scheduler(optimizer)`` builds the scheduler, e.g. ``lambda opt: one_cycle(opt,
    epochs=3, steps_per_epoch=50)``; it is run on a throwaway SGD optimizer (with momentum,
    so one-cycle cycles it as usual) over one dummy parameter per group, whose rates start
    at ``base_lrs``. The scheduler is stepped once per step, as the Trainer does with
    ``scheduler_step="batch"``.

    Returns: ``(steps, groups)`` float64: row ``i`` is the rate used for batch ``i``, what
    :class:`LRRecorder` records in a real fit.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1; got {steps}.")
    if len(base_lrs) == 0:
        raise ValueError("base_lrs needs one rate per parameter group, e.g. (1e-3,) or (1e-4, 1e-3).")
    groups = [{"params": [torch.zeros(1, requires_grad=True)], "lr": float(lr)} for lr in base_lrs]
    optimizer = torch.optim.SGD(groups, lr=float(base_lrs[0]), momentum=0.9)
    scheduler = make_scheduler(optimizer)
    lrs = torch.empty(steps, len(base_lrs), dtype=torch.float64)
    for step in range(steps):
        lrs[step] = torch.tensor([float(group["lr"]) for group in optimizer.param_groups], dtype=torch.float64)
        # No gradients, so nothing moves; stepping the optimizer first keeps the scheduler's
        # "step() before optimizer.step()" check quiet, as in a real loop.
        optimizer.step()
        if step < steps - 1:  # the rate after the last step is never used: do not ask for it
            scheduler.step()
    return lrs


class LRRecorder(Callback):
    """Record every parameter group's learning rate at every training batch of a fit.

    The rate is read after backward and before the optimizer step, so it is the one that
    batch was trained with (a per-batch scheduler has already moved on by ``on_batch_end``).

    After the fit: ``lrs`` is a ``(steps, groups)`` float64 tensor, ``epochs`` the epoch
    (1-based) of each step; ``ldl.plots.plot_lr_schedule(recorder)`` draws them with epoch boundaries.
    """

    def __init__(self) -> None:
        self._rows: list[list[float]] = []
        self.epochs: list[int] = []

    @property
    def lrs(self) -> torch.Tensor:
        """``(steps, groups)`` float64: the rate of each group at each batch."""
        if not self._rows:
            return torch.empty(0, 0, dtype=torch.float64)
        return torch.tensor(self._rows, dtype=torch.float64)

    @property
    def steps_per_epoch(self) -> int | None:
        """Batches in the first epoch recorded (None before any)."""
        return self.epochs.count(self.epochs[0]) if self.epochs else None

    def on_fit_start(self, trainer: Trainer) -> None:
        self._rows, self.epochs = [], []

    def after_backward(self, trainer: Trainer) -> None:
        self._rows.append([float(group["lr"]) for group in trainer.optimizer.param_groups])
        self.epochs.append(trainer.epoch)


def _total_steps(epochs: int, steps_per_epoch: int) -> int:
    """``epochs * steps_per_epoch``, after checking both are positive whole numbers."""
    for name, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1; got {value!r}. "
                             "steps_per_epoch is usually len(train_loader).")
    return epochs * steps_per_epoch


def _peak_lrs(optimizer: torch.optim.Optimizer, max_lr: float | Sequence[float] | None, caller: str) -> list[float]:
    """One peak rate per parameter group, from ``max_lr`` or the groups' current rates."""
    groups = optimizer.param_groups
    if max_lr is None:
        if any("initial_lr" in group for group in groups):
            # A scheduler has driven this optimizer already (e.g. the cell was run twice):
            # its current rates are wherever that schedule left them, not the peaks you chose.
            raise ValueError(
                f"{caller}: this optimizer was already given a scheduler, so its current rates "
                f"{[float(g['lr']) for g in groups]} are not the peaks you set. Build a fresh optimizer, "
                "or pass max_lr explicitly (a float, or one per parameter group)."
            )
        peaks = [float(group["lr"]) for group in groups]
    elif isinstance(max_lr, (int, float)):
        peaks = [float(max_lr)] * len(groups)
    else:
        peaks = [float(lr) for lr in max_lr]
        if len(peaks) != len(groups):
            raise ValueError(f"{caller}: max_lr has {len(peaks)} rates but the optimizer has {len(groups)} "
                             "parameter groups: give one per group, or a single float for all.")
    if not all(peak > 0 for peak in peaks):
        raise ValueError(f"{caller}: every peak learning rate must be positive; got {peaks}.")
    return peaks
