"""The learning-rate range test (Smith 2015, "Cyclical Learning Rates"; fastai's ``lr_find``).

Train for a few dozen mini-batches while the learning rate grows exponentially, from far
too small (nothing happens) to far too large (the loss explodes), and watch the loss:

>>> result = lr_find(model, train_loader)          # ~100 batches, then everything is put back
>>> plots.plot_lr_finder(result)                  # from ldl import plots
>>> print(result.summary())
>>> optimizer = torch.optim.Adam(model.parameters(), lr=result.suggestion)

The useful rates are where the loss falls fastest: well below the rate at which it is
lowest, because by then the steps are already so large that training is about to diverge.
The test changes the weights, so the model, the optimizer and the random generators are
saved first and restored afterwards, bit for bit: the test leaves no trace.

The sweep is a :class:`~ldl.train.trainer.Trainer` fit with one callback, :class:`LRFinder`
(as in fastai): the batches go through the very loop that will train the model, with its
mixed precision and channels-last order, so the loss curve is the one training will see.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ldl.core.device import resolve_device
from ldl.train.callbacks import Callback, CancelFit, frozen_batchnorm_to_eval
from ldl.train.checkpoint import rng_states, restore_rng_states
from ldl.train.trainer import Trainer

MIN_NUM_ITER = 10  # fewer points than this cannot show a curve, let alone its steepest part
SKIP_END = 5  # the last few points are ignored for the suggestion: the loss is already exploding there


@dataclass
class LRFinderResult:
    """What :func:`lr_find` measured: one entry per mini-batch of the sweep.

    Attributes:
        lrs: the learning rate of each batch (of the last parameter group, the head's).
        losses: the raw loss of each batch: noisy, since every batch is different.
        smoothed: the bias-corrected exponential moving average of ``losses``.
        suggestion: the rate where the smoothed loss falls fastest against ``log10(lr)``
            (fastai's "steep"); ``nan`` if the sweep stopped before it had enough points.
        min_loss_lr: the rate of the lowest smoothed loss. Too high to train with: a tenth
            of it (fastai's "minimum") is a second, usually bolder, choice.
        stopped_early: whether the loss diverged before ``end_lr`` was reached.
    """

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float
    min_loss_lr: float
    stopped_early: bool

    def summary(self) -> str:
        """A few lines that say what the sweep found and which rate to try."""
        ending = (f"stopped early at lr={self.lrs[-1]:.1e}: the loss diverged" if self.stopped_early
                  else f"reached lr={self.lrs[-1]:.1e} without diverging")
        lines = [f"LR range test: {len(self.lrs)} batches from lr={self.lrs[0]:.1e}, {ending}."]
        best = _lowest_index(self.smoothed)
        if best is None:
            lines.append("The loss was never finite: check the data and the loss function.")
        else:
            lines.append(f"Lowest smoothed loss {self.smoothed[best]:.4f} at lr={self.min_loss_lr:.1e} "
                         f"(a tenth of it: {self.min_loss_lr / 10:.1e}).")
        if math.isnan(self.suggestion):
            lines.append("Too few points for a suggestion: lower start_lr or raise num_iter.")
        else:
            lines.append(f"Steepest descent at lr={self.suggestion:.1e}: a good learning rate to start from.")
        return "\n".join(lines)


def lr_find(
    model: nn.Module,
    train_loader: Iterable,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    loss_fn: nn.Module | None = None,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_iter: int = 100,
    smooth: float = 0.98,
    diverge: float = 4.0,
    device: str | torch.device = "auto",
    progress: bool = True,
    frozen_bn_eval: bool = True,
    mixed_precision: bool | str = "auto",
    channels_last: bool | str = "auto",
) -> LRFinderResult:
    """Run the learning-rate range test, then put the model and the optimizer back as they were.

    Args:
        model: the network; it ends on the device it started on, with the same weights,
            batch-norm buffers and train/eval mode.
        train_loader: yields ``(x, y)`` batches: ``x`` e.g. ``(B, 3, H, W)`` float32, ``y``
            ``(B,)`` int64 class indices or ``(B, C)`` soft targets. Cycled if shorter than ``num_iter``.
        optimizer: the one you will train with (its state is restored afterwards). With
            several parameter groups (differential learning rates) every group's rate is
            multiplied by the same factor, so their ratios are kept, and the rates reported
            are those of the last group (the head's). Default: ``Adam(model.parameters())``.
        loss_fn: default ``nn.CrossEntropyLoss()``.
        start_lr, end_lr: the first and last rate of the sweep (of the last group).
        num_iter: how many mini-batches the sweep takes (at least 10).
        smooth: ``beta`` of the exponential moving average of the loss (0 = no smoothing).
        diverge: stop when the smoothed loss exceeds ``diverge`` times the best one so far.
        device: ``"auto"`` (CUDA if available), or e.g. ``"cpu"``.
        progress: show a progress bar.
        frozen_bn_eval: keep batch-norm layers whose parameters are all frozen in eval mode
            during the sweep, as ``FreezeBatchNorm`` does in a fit: a frozen pretrained base
            then gives the features it will give in training (the rest of the model trains).
        mixed_precision, channels_last: as for the :class:`~ldl.train.trainer.Trainer`
            (the defaults are its defaults); give the values you will train with.
    """
    finder = LRFinder(start_lr, end_lr, num_iter, smooth=smooth, diverge=diverge, frozen_bn_eval=frozen_bn_eval)
    original_device = _model_device(model)
    run_device = resolve_device(device)
    default_optimizer = optimizer is None
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters())
    loss_fn = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()

    # Copies in memory, on the CPU, rather than a file: the test is over in seconds, a
    # notebook may have no writable folder (Binder) and an interrupted run would leave a
    # stray file behind. On the CPU so that the copy takes no GPU memory the sweep needs.
    saved_model = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    saved_modes = [module.training for module in model.modules()]
    saved_grads = [None if p.grad is None else p.grad.detach().to("cpu", copy=True) for p in model.parameters()]
    saved_optimizer = _cpu_copy(optimizer.state_dict())
    saved_rng = {"rng": rng_states()}  # dropout masks and shuffling draw from these generators
    # The Trainer may store the weights channels-last (NHWC); afterwards they go back to the
    # order they had, so that nothing but speed could tell the test ran.
    original_format = torch.channels_last if _is_channels_last(model) else torch.contiguous_format

    try:
        # The Trainer moves the model to the device, in the memory order its rule picks.
        # verbose=False: a sweep is not an epoch, and its line would only confuse.
        trainer = Trainer(model, optimizer=optimizer, loss_fn=loss_fn, device=run_device,
                          mixed_precision=mixed_precision, channels_last=channels_last,
                          callbacks=[finder], progress=progress, verbose=False)
        # load_state_dict moves the optimizer's state (Adam's moments) to its parameters' new
        # device. Given a copy: where no move is needed it keeps the very tensors it is given,
        # and the sweep updates those in place, which would spoil the saved state.
        optimizer.load_state_dict(copy.deepcopy(saved_optimizer))
        # One "epoch" of num_iter batches, going round the loader as often as needed; the
        # finder stops the fit sooner if the loss diverges.
        trainer.fit(_Batches(train_loader, num_iter), epochs=1)
    finally:
        # Put everything back even when the sweep failed (a bad batch, Ctrl-C in a notebook).
        model.to(original_device, memory_format=original_format)
        model.load_state_dict(saved_model)  # copies into the model's own tensors, on its device
        for module, was_training in zip(model.modules(), saved_modes):
            module.train(was_training)
        for parameter, grad in zip(model.parameters(), saved_grads):
            parameter.grad = None if grad is None else grad.to(parameter.device)
        if not default_optimizer:
            optimizer.load_state_dict(saved_optimizer)  # the last use of the saved copy: no need to copy it again
        restore_rng_states(saved_rng)

    lowest = _lowest_index(finder.smoothed)
    return LRFinderResult(
        lrs=finder.lrs,
        losses=finder.losses,
        smoothed=finder.smoothed,
        suggestion=steepest_descent_lr(finder.lrs, finder.smoothed),
        min_loss_lr=math.nan if lowest is None else finder.lrs[lowest],
        stopped_early=finder.stopped_early,
    )


class LRFinder(Callback):
    """The LR range test as a Trainer callback (fastai's ``LRFinder``); :func:`lr_find` runs it.

    At every batch the rate of the last parameter group climbs one step of an exponential
    ramp from ``start_lr`` to ``end_lr`` (the other groups keep their ratio to it); the
    batch's loss is recorded with its bias-corrected moving average, and the fit is
    stopped (:class:`~ldl.train.callbacks.CancelFit`) when that average diverges or after
    ``num_iter`` batches. It restores nothing: :func:`lr_find` does.

    Attributes, one entry per batch: ``lrs``, ``losses``, ``smoothed``; and ``stopped_early``.
    """

    def __init__(self, start_lr: float, end_lr: float, num_iter: int, *, smooth: float = 0.98,
                 diverge: float = 4.0, frozen_bn_eval: bool = True) -> None:
        _check_arguments(start_lr, end_lr, num_iter, smooth, diverge)
        self.start_lr, self.num_iter, self.smooth, self.diverge = start_lr, num_iter, smooth, diverge
        self.frozen_bn_eval = frozen_bn_eval
        self.growth = (end_lr / start_lr) ** (1 / (num_iter - 1))  # the same factor at every step: exponential
        self._reset()

    def _reset(self) -> None:
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.stopped_early = False
        self._average, self._best = 0.0, math.inf
        self._ratios: list[float] = []

    def on_fit_start(self, trainer: Trainer) -> None:
        self._reset()
        # Each group keeps its ratio to the last group's rate, which runs from start_lr to end_lr.
        groups = trainer.optimizer.param_groups
        last_lr = float(groups[-1]["lr"])
        if not last_lr > 0:
            raise ValueError(f"The optimizer's last parameter group has lr={last_lr!r}: the other groups' rates are "
                             "kept as ratios to it, so give it a positive lr (it is the head's, the one reported).")
        self._ratios = [float(group["lr"]) / last_lr for group in groups]

    def on_train_epoch_start(self, trainer: Trainer) -> None:
        if self.frozen_bn_eval:  # as FreezeBatchNorm does in the fit this test prepares
            frozen_batchnorm_to_eval(trainer.model)

    def after_backward(self, trainer: Trainer) -> None:
        # The rate is read only by optimizer.step(), which comes right after this event, so
        # the batch's rate is set here (the Trainer has no event before the forward pass).
        lr = self.start_lr * self.growth ** len(self.lrs)
        for group, ratio in zip(trainer.optimizer.param_groups, self._ratios):
            group["lr"] = lr * ratio
        value = trainer.batch_loss.item()  # the CPU waits for the GPU: one number per batch is what we came for
        # The moving average starts at 0, so its first values are too small; dividing by
        # (1 - beta^(i+1)) corrects that bias (as Adam does for its moments).
        self._average = self.smooth * self._average + (1 - self.smooth) * value
        smoothed = self._average / (1 - self.smooth ** (len(self.lrs) + 1))
        self.lrs.append(lr)
        self.losses.append(value)
        self.smoothed.append(smoothed)
        if not math.isfinite(smoothed) or smoothed > self.diverge * self._best:
            self.stopped_early = True
            # Raised before the step: a step at a diverging rate would teach nothing.
            raise CancelFit(f"LR range test: the loss diverged at lr={lr:.1e}")
        self._best = min(self._best, smoothed)

    def on_batch_end(self, trainer: Trainer) -> None:
        if len(self.lrs) >= self.num_iter:
            raise CancelFit(f"LR range test: {self.num_iter} batches done")


class _Batches:
    """Exactly ``num_batches`` batches of ``loader``, going round it again when it ends.

    Has a length, so the Trainer's progress bar knows how far the sweep has to go.
    """

    def __init__(self, loader: Iterable, num_batches: int) -> None:
        self.loader, self.num_batches = loader, num_batches

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return itertools.islice(_cycle(self.loader), self.num_batches)


def steepest_descent_lr(lrs: list[float], smoothed: list[float]) -> float:
    """The rate where ``smoothed`` falls fastest against ``log10(lr)``: fastai's "steep" suggestion.

    The first tenth of the points is ignored (the average is still settling), and so are
    the last few and everything after the minimum: the loss is exploding there, and a
    brief drop in that tail is noise, not learning. ``nan`` when fewer than 2 points remain.
    """
    lowest = _lowest_index(smoothed)
    if lowest is None or len(lrs) < 2:
        return math.nan
    first = max(1, len(lrs) // 10)
    last = min(len(lrs) - SKIP_END, lowest + 1)  # exclusive
    if last - first < 2:  # a short sweep: use every point up to the minimum instead
        first, last = 0, max(lowest + 1, 2)
    slopes = [
        (smoothed[i + 1] - smoothed[i]) / (math.log10(lrs[i + 1]) - math.log10(lrs[i]))
        for i in range(first, last - 1)
    ]
    steepest = min(range(len(slopes)), key=lambda k: slopes[k])
    return lrs[first + steepest]


def _lowest_index(values: list[float]) -> int | None:
    """Index of the smallest finite value (NaN compares false with everything); None if there is none."""
    finite = [i for i, value in enumerate(values) if math.isfinite(value)]
    return min(finite, key=lambda i: values[i]) if finite else None


def _cycle(loader: Iterable) -> Iterator[tuple[Tensor, Tensor]]:
    """Batches of ``loader`` forever: a new pass (reshuffled by a DataLoader) when one ends."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("train_loader yields no batches: is the dataset empty, or is drop_last=True "
                             "with fewer samples than batch_size?")


def _is_channels_last(model: nn.Module) -> bool:
    """Whether some 4-D weight of ``model`` is stored channels-last (NHWC) rather than NCHW."""
    return any(
        p.dim() == 4 and not p.is_contiguous() and p.is_contiguous(memory_format=torch.channels_last)
        for p in model.parameters()
    )


def _model_device(model: nn.Module) -> torch.device:
    """The device the model's weights are on (to put it back there afterwards)."""
    tensors = list(model.parameters()) + list(model.buffers())
    if not tensors:
        raise ValueError("The model has no parameters: there is nothing for a learning rate to change.")
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        raise ValueError(f"The model is spread over several devices {sorted(map(str, devices))}: "
                         "move it to one with model.to(device) before lr_find.")
    return devices.pop()


def _cpu_copy(state: Any) -> Any:
    """A deep copy of an optimizer's ``state_dict`` with every tensor copied to the CPU."""
    if isinstance(state, Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {key: _cpu_copy(value) for key, value in state.items()}
    if isinstance(state, list):
        return [_cpu_copy(value) for value in state]
    if isinstance(state, tuple):
        return tuple(_cpu_copy(value) for value in state)
    return copy.deepcopy(state)


def _check_arguments(start_lr: float, end_lr: float, num_iter: int, smooth: float, diverge: float) -> None:
    if not 0 < start_lr < end_lr:
        raise ValueError(f"Need 0 < start_lr < end_lr; got start_lr={start_lr!r}, end_lr={end_lr!r}. "
                         "The usual range is start_lr=1e-7, end_lr=10.")
    if num_iter < MIN_NUM_ITER:
        raise ValueError(f"num_iter must be at least {MIN_NUM_ITER} batches to draw a curve; got {num_iter}. "
                         "100 is usual.")
    if not 0 <= smooth < 1:
        raise ValueError(f"smooth is the moving average's beta, in [0, 1); got {smooth!r}. 0.98 is usual.")
    if not diverge > 1:
        raise ValueError(f"diverge must be above 1 (stop when the loss is that many times its best); got {diverge!r}.")
