"""Callbacks: code that watches a fit at named moments, without editing the loop.

The Trainer calls each callback's methods, in the order the callbacks were given, at
these events (``trainer`` is the running Trainer; read ``trainer.epoch``,
``trainer.logs``, ``trainer.batch_loss``, ``trainer.model``, ...)::

    on_fit_start
        on_epoch_start
            on_train_epoch_start  # after model.train(): switch single modules back to eval here
            after_backward      # every batch: gradients exist, the step has not happened
            on_batch_end        # every batch: after optimizer.step()
        on_epoch_end            # trainer.logs holds the epoch's numbers, already in history
    on_fit_end                  # always: after a CancelFit, an error or a KeyboardInterrupt too

To stop the fit, raise :class:`CancelFit` from any event: the Trainer catches it, records
the message in ``trainer.stop_reason`` and still calls ``on_fit_end``.

Why one module: every callback is a few lines on the same events, and reading them side by
side is how a student learns what each event is for.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ldl.train.checkpoint import first_non_finite, save_checkpoint

if TYPE_CHECKING:  # only for type hints: trainer.py imports this module
    from ldl.train.trainer import Trainer


class CancelFit(Exception):
    """Raise it in a callback to stop the fit cleanly; its message becomes ``trainer.stop_reason``."""


class Callback:
    """Base class: every event does nothing. Override the ones you need."""

    def on_fit_start(self, trainer: Trainer) -> None:
        """Before the first epoch."""

    def on_epoch_start(self, trainer: Trainer) -> None:
        """Before the epoch's first batch."""

    def on_train_epoch_start(self, trainer: Trainer) -> None:
        """Right after ``model.train()``, before the first training batch.

        The place to put single modules back into eval mode (see :class:`FreezeBatchNorm`).
        """

    def after_backward(self, trainer: Trainer) -> None:
        """After ``loss.backward()``, before ``optimizer.step()``: inspect or clip gradients here.

        With fp16 mixed precision the gradients are still scaled: call
        ``trainer.scaler.unscale_(trainer.optimizer)`` before clipping them.
        """

    def on_batch_end(self, trainer: Trainer) -> None:
        """After the optimizer step. ``trainer.batch_loss`` is the batch's loss (a tensor)."""

    def on_epoch_end(self, trainer: Trainer) -> None:
        """After training and validation. ``trainer.logs`` holds the epoch's numbers."""

    def on_fit_end(self, trainer: Trainer) -> None:
        """After the last epoch, or after a :class:`CancelFit`, an error or a KeyboardInterrupt."""


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; restore the best weights.

    Args:
        monitor: a key of ``trainer.logs``, e.g. ``"val_loss"`` or ``"top1_acc"``.
        mode: ``"min"`` if lower is better (a loss), ``"max"`` if higher is (an accuracy).
        patience: how many epochs in a row without improvement end the fit.
        min_delta: an improvement smaller than this does not count.
        restore_best: at the end of the fit, load the weights of the best epoch.

    After the fit, ``best_epoch`` and ``best_value`` tell which epoch won.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        mode: str = "min",
        patience: int = 3,
        min_delta: float = 0.0,
        restore_best: bool = True,
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' (for a loss) or 'max' (for an accuracy); got {mode!r}.")
        if patience < 1:
            raise ValueError(f"patience must be at least 1 epoch; got {patience}.")
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.min_delta, self.restore_best = min_delta, restore_best
        self._reset()

    def _reset(self) -> None:
        self.best_value = math.inf if self.mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_epochs = 0

    def on_fit_start(self, trainer: Trainer) -> None:
        self._reset()  # the same callback can watch several fits

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best_value - self.min_delta
        return value > self.best_value + self.min_delta

    def on_epoch_end(self, trainer: Trainer) -> None:
        if self.monitor not in trainer.logs:
            raise KeyError(
                f"EarlyStopping monitors {self.monitor!r} but the epoch logs only have "
                f"{sorted(trainer.logs)}. Pass val_loader to fit() for val_* metrics, or change monitor."
            )
        value = trainer.logs[self.monitor]
        if self._improved(value):
            self.best_value, self.best_epoch, self.bad_epochs = value, trainer.epoch, 0
            # A copy on the CPU: the model's own tensors keep changing in place as training
            # goes on, and a copy on the GPU would take GPU memory the training needs.
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in trainer.model.state_dict().items()}
            return
        self.bad_epochs += 1
        if self.bad_epochs >= self.patience:
            raise CancelFit(
                f"early stopping: {self.monitor} did not improve for {self.patience} epochs "
                f"(best {self.best_value:.4f} at epoch {self.best_epoch})"
            )

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.restore_best and self.best_state is not None:
            trainer.model.load_state_dict(self.best_state)  # copies into the model's tensors, on its device


class ModelCheckpoint(Callback):
    """Save a resumable checkpoint to ``path`` every ``save_every`` epochs (overwriting it, atomically).

    Resume with ``trainer.fit(..., epochs=total, resume_from=path)``. A model holding NaN or
    Inf (in a weight or a buffer) is never saved: the file keeps the last good checkpoint,
    and a warning says so. ``saved_epoch`` is the epoch last saved in this fit (under
    ``torchrun`` only rank 0 writes the file, and only its ``saved_epoch`` is set).
    """

    def __init__(self, path: str | Path, save_every: int = 1) -> None:
        if save_every < 1:
            raise ValueError(f"save_every must be at least 1 epoch; got {save_every}.")
        self.path, self.save_every = Path(path), save_every
        self.saved_epoch: int | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        self.saved_epoch = None

    def on_epoch_end(self, trainer: Trainer) -> None:
        if trainer.epoch % self.save_every != 0 and trainer.epoch != trainer.epochs:
            return
        bad = first_non_finite(trainer.model.state_dict().items())  # one wait for the GPU, per saved epoch
        if bad is not None:
            warnings.warn(f"ModelCheckpoint did not save epoch {trainer.epoch}: {bad!r} holds NaN or Inf. "
                          f"{self.path} keeps {self._kept()}; resume from it with a lower learning rate.",
                          RuntimeWarning, stacklevel=2)
            return
        if trainer.is_main_process:  # under torchrun every process holds the same weights: one file
            save_trainer_checkpoint(self.path, trainer)
            self.saved_epoch = trainer.epoch
        trainer.wait_for_all()  # no process goes on (or resumes) before the file is complete

    def _kept(self) -> str:  # what the file holds now, in words
        if self.saved_epoch is not None:
            return f"the last good checkpoint (epoch {self.saved_epoch})"
        return "the checkpoint it held before this fit" if self.path.exists() else "nothing (no good epoch was saved)"


class BatchNormStats(Callback):
    """Record a batch-norm layer's running mean and variance after every training batch.

    Lesson 2 watches them converge: they start at 0 and 1 and settle, batch after batch,
    on the statistics of the layer's input, which :meth:`~torch.nn.Module.eval` then uses.
    A forward pre-hook also records each batch's own mean and variance of the layer's
    input (the numbers training normalises with), removed again when the fit ends.

    Args:
        layer: the layer (``nn.BatchNorm2d``, ``nn.BatchNorm1d``, or any module with
            ``running_mean``/``running_var`` buffers), or its name in
            ``model.named_modules()``, e.g. ``"features.0.1"``.
        channels: which channels to record.
        every: record every ``every``-th batch.

    After (or during) the fit, ``records`` holds one dict per recorded step::

        {"step": 12, "epoch": 2,                              # step: batches trained so far
         "running_mean": (k,), "running_var": (k,),           # the layer's buffers after the step
         "batch_mean": (k,), "batch_var": (k,)}               # that batch's input; var biased

    float32 CPU tensors with ``k = len(channels)``. The first record, step 0, is the state
    before training (batch statistics ``nan``). Copying to the CPU makes the GPU wait each
    time: a teaching tool, not for long fits. Plot with ``ldl.plots.plot_batchnorm_stats``.
    """

    def __init__(self, layer: torch.nn.Module | str, channels: tuple[int, ...] = (0, 1, 2, 3), every: int = 1) -> None:
        if every < 1:
            raise ValueError(f"every must be at least 1 batch; got {every}.")
        if not channels:
            raise ValueError("Give at least one channel to record, e.g. channels=(0, 1).")
        self.layer, self.channels, self.every = layer, tuple(int(c) for c in channels), every
        self.records: list[dict[str, torch.Tensor | int]] = []
        self.module: torch.nn.Module | None = None
        self.step = 0
        self._hook: torch.utils.hooks.RemovableHandle | None = None
        self._batch_stats: tuple[torch.Tensor, torch.Tensor] | None = None

    def _resolve(self, model: torch.nn.Module) -> torch.nn.Module:
        """The layer to watch, found in ``model``; a clear error if it is not there."""
        norm_layers = [name for name, m in model.named_modules() if getattr(m, "running_mean", None) is not None]
        if isinstance(self.layer, str):
            modules = dict(model.named_modules())
            if self.layer not in modules:
                raise KeyError(f"The model has no layer named {self.layer!r}; its batch-norm layers are {norm_layers}.")
            module = modules[self.layer]
        else:
            module = self.layer
            if not any(m is module for m in model.modules()):
                raise ValueError("BatchNormStats was given a layer that is not part of the model being trained: "
                                 f"pass one of the model's own layers or its name, e.g. {norm_layers[:3]}.")
        if getattr(module, "running_mean", None) is None or getattr(module, "running_var", None) is None:
            raise TypeError(f"{type(module).__name__} keeps no running_mean/running_var: choose a batch-norm "
                            f"layer (with track_running_stats=True), e.g. {norm_layers[:3]}.")
        num_features = module.running_mean.shape[0]
        if max(self.channels) >= num_features or min(self.channels) < 0:
            raise ValueError(f"channels {self.channels} out of range: the layer has {num_features} channels.")
        return module

    def on_fit_start(self, trainer: Trainer) -> None:
        self._remove_hook()  # left over from a fit that crashed
        self.module = self._resolve(trainer.model)
        self.records, self.step, self._batch_stats = [], 0, None
        self._hook = self.module.register_forward_pre_hook(self._remember_batch_stats)
        self._record(epoch=0)  # step 0: the initial state, mean 0 and variance 1

    def _remember_batch_stats(self, module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        """Forward pre-hook: the per-channel mean and biased variance of the layer's input."""
        if not module.training or (self.step + 1) % self.every != 0:
            return  # validation batches, and steps that will not be recorded, are skipped
        x = inputs[0].detach()[:, list(self.channels)].float()  # (B, k, H, W) or (B, k)
        dims = [0, *range(2, x.ndim)]  # every dimension but the channel one
        self._batch_stats = (x.mean(dims).cpu(), x.var(dims, unbiased=False).cpu())

    def on_batch_end(self, trainer: Trainer) -> None:
        self.step += 1
        if self.step % self.every == 0:
            self._record(epoch=trainer.epoch)

    def _record(self, epoch: int) -> None:
        index = list(self.channels)
        nan = torch.full((len(index),), float("nan"))
        batch_mean, batch_var = self._batch_stats if self._batch_stats is not None else (nan, nan)
        self.records.append({
            "step": self.step,
            "epoch": epoch,
            "running_mean": self.module.running_mean.detach()[index].float().cpu(),  # indexing copies
            "running_var": self.module.running_var.detach()[index].float().cpu(),
            "batch_mean": batch_mean,
            "batch_var": batch_var,
        })
        self._batch_stats = None

    def on_fit_end(self, trainer: Trainer) -> None:
        self._remove_hook()

    def _remove_hook(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None


class GradientStats(Callback):
    """Record the gradient norm of every weight after backward, every ``every``-th batch.

    Lesson 3 plots them layer by layer to see gradients vanish or explode. Only weights
    (parameters with 2 or more dimensions) are recorded: biases add little to the picture.
    ``records`` holds one dict per recorded step::

        {"step": 12, "epoch": 2, "norms": {"0.weight": 0.031, "3.weight": 0.12, ...}}

    The norms are gathered in one tensor and copied to the CPU once per recorded step (each
    copy makes the CPU wait for the GPU: raise ``every`` for long fits). With fp16 mixed
    precision they include the loss scale unless the gradients were unscaled before.
    """

    def __init__(self, every: int = 1) -> None:
        if every < 1:
            raise ValueError(f"every must be at least 1 batch; got {every}.")
        self.every = every
        self.records: list[dict] = []
        self.step = 0

    def on_fit_start(self, trainer: Trainer) -> None:
        self.records, self.step = [], 0

    def after_backward(self, trainer: Trainer) -> None:
        self.step += 1
        if self.step % self.every != 0:
            return
        named = [(name, p.grad) for name, p in trainer.model.named_parameters() if p.ndim >= 2 and p.grad is not None]
        if not named:
            return
        norms = torch.stack([grad.detach().float().norm() for _, grad in named]).tolist()  # one copy to the CPU
        self.records.append({
            "step": self.step,
            "epoch": trainer.epoch,
            "norms": {name: norm for (name, _), norm in zip(named, norms)},
        })


class NonFiniteGuard(Callback):
    """Stop the fit as soon as a weight, a buffer or a gradient turns NaN or infinite, and say where.

    After each backward, checks every weight (as the last step left it), buffer (as this
    batch's forward left it: batch norm's ``running_var`` overflows on huge inputs while
    every gradient stays finite) and gradient, in one copy to the CPU per batch. The first
    NaN/Inf raises :class:`CancelFit` naming the first bad tensor, in that order and in model
    order: where to look for the cause (a too-high learning rate, a log of 0, a division by a
    tiny number, unnormalised inputs). The weights are not updated with that gradient.

    Args:
        checkpoint_path: if given, a resumable checkpoint (see ``ModelCheckpoint``) is saved
            there at the end of every epoch whose weights, buffers and gradients were all
            finite: the last good state to go back to, with a lower learning rate. A
            non-finite state is never saved over it.

    ``message`` holds the reason after a stop (also in ``trainer.stop_reason``).
    """

    def __init__(self, checkpoint_path: str | Path | None = None) -> None:
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else None
        self.message: str | None = None
        self.step = 0
        self.saved_epoch: int | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        self.message, self.step, self.saved_epoch = None, 0, None

    def after_backward(self, trainer: Trainer) -> None:
        self.step += 1
        model = trainer.model
        # In the order things happen in a step: weights, the forward's buffers, gradients.
        named = [(f"weight {name!r}", p) for name, p in model.named_parameters()]
        named += [(f"buffer {name!r}", b) for name, b in model.named_buffers()]
        named += [(f"gradient of {name!r}", p.grad) for name, p in model.named_parameters()]
        bad = first_non_finite(named)
        if bad is not None:
            self._stop(f"non-finite {bad} (NaN or Inf) at step {self.step}, epoch {trainer.epoch}")

    def on_epoch_end(self, trainer: Trainer) -> None:
        # The epoch's last step can still overflow a weight: never save that.
        bad = first_non_finite(trainer.model.state_dict().items())
        if bad is not None:
            self._stop(f"non-finite {bad!r} (NaN or Inf) at the end of epoch {trainer.epoch}")
        if self.checkpoint_path is not None:
            if trainer.is_main_process:  # rank 0 alone writes under torchrun
                save_trainer_checkpoint(self.checkpoint_path, trainer)
            self.saved_epoch = trainer.epoch
            trainer.wait_for_all()

    def _stop(self, what: str) -> None:
        """Raise CancelFit with ``what`` went wrong, where the last good state is, and what to try."""
        if self.checkpoint_path is None:
            where = "no checkpoint_path was given"
        elif self.saved_epoch is None:
            where = f"no epoch finished before it, so nothing was saved at {self.checkpoint_path}"
        else:
            where = f"the last good checkpoint (epoch {self.saved_epoch}) is at {self.checkpoint_path}"
        self.message = (f"{what}; {where}. Lower the learning rate, clip gradients (Trainer(clip_grad_norm=1.0)) "
                        "or check that layer's inputs (their scale, a log of 0, a division by a tiny number).")
        raise CancelFit(self.message)


class FreezeBatchNorm(Callback):
    """Keep batch-norm layers in eval mode while the rest of the model trains.

    ``model.train()`` makes every BatchNorm layer normalise with the statistics of the
    current batch and update its running averages. In a frozen pretrained base those
    averages were measured on ImageNet and are part of what we froze: a few small batches
    of our photos would overwrite them, and the features would drift although no weight
    was trained. So after every ``model.train()`` a batch-norm layer whose parameters are
    all frozen goes back into eval mode (Keras does the same for ``trainable=False``).

    ``only_frozen=False`` keeps *every* batch-norm layer in eval mode, also those being
    fine-tuned: their scale and shift still learn, their statistics stay ImageNet's. This
    is the usual advice when fine-tuning on a small dataset (Keras's transfer-learning
    guide gives it), since batch statistics from a few dozen augmented photos are noisy.
    """

    def __init__(self, only_frozen: bool = True) -> None:
        self.only_frozen = only_frozen

    def on_train_epoch_start(self, trainer: Trainer) -> None:
        frozen_batchnorm_to_eval(trainer.model, only_frozen=self.only_frozen)


def frozen_batchnorm_to_eval(model: torch.nn.Module, only_frozen: bool = True) -> None:
    """Put batch-norm layers whose parameters are all frozen (or all of them) in eval mode.

    See :class:`FreezeBatchNorm`.
    """
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            frozen = not any(p.requires_grad for p in module.parameters())
            if frozen or not only_frozen:
                module.eval()


class TimeBudget(Callback):
    """Stop the fit before an epoch that would end after ``seconds`` of training.

    Used to compare two methods fairly: "the same wall time" for each. The next epoch is
    assumed to take as long as the last one, so the budget is not overrun by a whole
    epoch; the first epoch always runs. ``clock``: wall time by default; ``time.process_time``
    (this process's CPU time) keeps other jobs on a shared CPU from eating the budget.
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.perf_counter) -> None:
        if not seconds > 0:
            raise ValueError(f"seconds must be positive; got {seconds!r}.")
        self.seconds, self.clock = seconds, clock
        self._fit_start = self._epoch_start = 0.0

    def on_fit_start(self, trainer: Trainer) -> None:
        self._fit_start = self.clock()

    def on_epoch_start(self, trainer: Trainer) -> None:
        self._epoch_start = self.clock()

    def on_epoch_end(self, trainer: Trainer) -> None:
        now = self.clock()
        elapsed, last_epoch = now - self._fit_start, now - self._epoch_start
        # Under torchrun each process has its own clock: rank 0's decides for all of them.
        if trainer.rank0_decides(elapsed + last_epoch > self.seconds and trainer.epoch < trainer.epochs):
            raise CancelFit(f"time budget of {self.seconds:g} s reached after {trainer.epoch} epochs ({elapsed:.1f} s)")


def save_trainer_checkpoint(path: str | Path, trainer: Trainer) -> Path:
    """Everything needed to resume ``trainer``'s fit after its current epoch, written atomically."""
    return save_checkpoint(
        path,
        model=trainer.model,
        optimizer=trainer.optimizer,
        scheduler=trainer.scheduler,
        epoch=trainer.epoch,
        history=trainer.history,
        scaler=trainer.scaler,
    )
