"""Trainer: the training loop of the course, small enough to read in one screen.

>>> trainer = Trainer(model)                      # Adam(lr=1e-3), cross-entropy, GPU if any
>>> history = trainer.fit(train_loader, val_loader, epochs=12)
Epoch 1/12 - 4.1s - train_loss: 0.69 - train_accuracy: 0.50 - val_loss: ... - top1_acc: ... - top5_acc: 1.00
>>> plots.plot_curves(history)                 # from ldl import plots

A fit is epochs of batches. Read :meth:`Trainer.fit` and :meth:`Trainer.train_one_epoch`:
everything else is helpers. Callbacks (see ``ldl.train.callbacks``) watch named events
and may stop the fit by raising ``CancelFit``.

A loader is anything iterable that yields ``(x, y)`` batches: ``x`` the inputs, e.g.
``(B, 3, H, W)`` float32, ``y`` either ``(B,)`` int64 class indices or ``(B, C)`` soft
targets (MixUp, label smoothing). A ``torch.utils.data.DataLoader`` is one.

``train_accuracy`` is a running number, lowered by augmentation, MixUp and dropout by
construction; ``fit(..., train_eval_loader=loaders.train_eval)`` adds ``clean_train_accuracy``,
measured like validation: the train/validation gap to trust (``History.clean_gap()``).

Started by ``torchrun --nproc_per_node=N script.py`` the same Trainer trains data parallel:
N processes, each on its share of every loader, with their gradients averaged in every step
(see :mod:`ldl.train.distributed`). Nothing in the script changes.

Why one module: the loop is the lesson, and a reader should find all of it, with the
helpers it calls, in one file.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ldl.core.device import resolve_amp_dtype, resolve_channels_last, resolve_device
from ldl.train.callbacks import Callback, CancelFit
from ldl.train.checkpoint import check_resumable, load_checkpoint, restore_rng_states
from ldl.train.distributed import (
    all_reduce_meters,
    detect,
    join_process_group,
    process_device,
    rank0_decides,
    set_epoch,
    shard_loader,
    shared_seed,
    wait_for_all,
)
from ldl.train.history import History
from ldl.train.metrics import MeanMeter, topk_accuracy

# The keys of the one line printed per epoch, in the order the course slides show them.
EPOCH_LINE_KEYS = ("train_loss", "train_accuracy", "clean_train_accuracy", "val_loss", "top1_acc", "top5_acc")
# Shorter names on that line, where a key is long (the History keeps the full key).
EPOCH_LINE_NAMES = {"clean_train_accuracy": "clean_train_acc"}
POSTFIX_EVERY_S = 1.0  # refresh the running loss on the progress bar at most once a second

# The device, mixed-precision and channels-last rules live in ldl.core.device, shared with
# the LR finder and the benchmarks; re-exported here, where the lessons first meet them.
__all__ = ["EPOCH_LINE_KEYS", "EPOCH_LINE_NAMES", "Trainer",
           "resolve_amp_dtype", "resolve_channels_last", "resolve_device"]


class Trainer:
    """Fits a classifier; callbacks read the public attributes below while it runs.

    Args:
        model: the network, moved to ``device``.
        optimizer: default ``torch.optim.Adam(model.parameters(), lr=1e-3)``.
        loss_fn: default ``nn.CrossEntropyLoss()`` (takes class indices or soft targets).
        scheduler: a learning-rate scheduler, stepped after every epoch, or after every
            batch with ``scheduler_step="batch"`` (e.g. OneCycleLR). ReduceLROnPlateau is
            given ``val_loss`` (``train_loss`` without validation).
        device: ``"auto"`` (CUDA if available, else CPU), or e.g. ``"cpu"``, ``"cuda:1"``.
        mixed_precision: see :func:`ldl.core.device.resolve_amp_dtype`. float16 uses a GradScaler.
        callbacks: :class:`~ldl.train.callbacks.Callback` objects, called in this order.
        progress: show a progress bar over each epoch's batches.
        verbose: print one line per epoch.
        clip_grad_norm: if given, rescale the gradients after each backward so that their
            total (L2) norm is at most this; their direction is kept.
        clip_grad_value: if given, clamp every gradient element to ``[-value, value]``.
            With either, ``logs["grad_norm"]`` is the epoch's mean total gradient norm
            *before* clipping (how hard clipping works), and ``grad_norm`` the last step's.
        channels_last: store the weights and each ``(B, C, H, W)`` batch in channels-last
            order (NHWC), see :func:`ldl.core.device.resolve_channels_last`. The same numbers are computed,
            up to the order of float sums.
        compile: run the model through ``torch.compile`` (``True``, or a dict of its
            keyword arguments, e.g. ``{"mode": "max-autotune"}``). The first batches are
            slow while it compiles (tens of seconds to minutes), so it pays off only over
            long fits; ``benchmarks/finetune_throughput.py --compile`` measures both sides.
            ``trainer.model`` stays the plain module: checkpoints and ``state_dict`` are unchanged.

    Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) each process joins the run's
    process group (gloo on the CPU, NCCL on GPUs; ``device="auto"`` takes GPU ``LOCAL_RANK``),
    trains through ``DistributedDataParallel``, reads its share of every loader, and logs
    the metrics of all processes together; only rank 0 prints and shows progress bars, and
    the course's callbacks write files on rank 0 only. ``trainer.distributed`` says who this
    process is.

    Attributes: ``model, optimizer, scheduler, loss_fn, device, scaler, callbacks, epoch``
    (1-based), ``epochs``, ``history``, ``batch_loss`` (the last batch's loss tensor),
    ``logs`` (the current epoch's numbers), ``stop_reason`` (why the last fit ended: finished,
    a ``CancelFit``, or interrupted with the history kept),
    ``grad_norm`` (the last step's total gradient norm before clipping, a 0-d tensor; with
    clipping only).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        optimizer: torch.optim.Optimizer | None = None,
        loss_fn: nn.Module | None = None,
        scheduler: Any | None = None,
        scheduler_step: str = "epoch",
        device: str | torch.device = "auto",
        mixed_precision: bool | str = "auto",
        callbacks: Sequence[Callback] = (),
        progress: bool = True,
        verbose: bool = True,
        clip_grad_norm: float | None = None,
        clip_grad_value: float | None = None,
        channels_last: bool | str = "auto",
        compile: bool | dict[str, Any] = False,
    ) -> None:
        for name, limit in (("clip_grad_norm", clip_grad_norm), ("clip_grad_value", clip_grad_value)):
            if limit is not None and not limit > 0:
                raise ValueError(f"{name} must be a positive number (or None for no clipping); got {limit!r}.")
        if clip_grad_norm is not None and clip_grad_value is not None:
            raise ValueError("Give clip_grad_norm or clip_grad_value, not both: they are two ways of doing the same job.")
        if scheduler_step not in ("epoch", "batch"):
            raise ValueError(f"scheduler_step must be 'epoch' or 'batch'; got {scheduler_step!r}.")
        self.distributed = detect()  # rank 0 of 1 without torchrun
        if self.distributed.is_distributed and str(device) == "auto":
            device = process_device(self.distributed)
        self.device = resolve_device(device)
        join_process_group(self.distributed, self.device)
        self.model = model.to(self.device)
        self.amp_dtype = resolve_amp_dtype(mixed_precision, self.device)
        self.channels_last = resolve_channels_last(channels_last, self.model, self.device, self.amp_dtype)
        if self.channels_last:
            # In place, parameter by parameter: an optimizer built on them keeps working.
            self.model.to(memory_format=torch.channels_last)
        # What each batch goes through: the model itself, or its compiled version. The
        # compiled wrapper shares the model's parameters, so training one trains the other.
        self.forward_model: nn.Module = self.model
        if compile:
            options = compile if isinstance(compile, dict) else {}
            self.forward_model = torch.compile(self.model, **options)
        # What a training batch goes through. Under torchrun, DistributedDataParallel: it
        # starts every process from rank 0's weights and averages the gradients of all of
        # them inside backward(), so that every process takes the same step. Measuring needs
        # no averaging (each process measures its own photos), so it keeps forward_model.
        self.train_model: nn.Module = self.forward_model
        if self.distributed.is_distributed:
            on_gpu = self.device.type == "cuda"
            self.train_model = nn.parallel.DistributedDataParallel(self.model, device_ids=[self.device] if on_gpu else None)
            if compile:
                self.train_model = torch.compile(self.train_model, **options)
        self.optimizer = optimizer if optimizer is not None else torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.loss_fn = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()
        self.scheduler, self.scheduler_step = scheduler, scheduler_step
        # float16 has so few exponent bits that small gradients round to zero: the scaler
        # multiplies the loss before backward() and divides the gradients before step().
        # Disabled (bfloat16, float32), its methods pass everything through unchanged.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.callbacks = list(callbacks)
        # Under torchrun N processes would print N copies of everything: rank 0 speaks for all.
        self.progress, self.verbose = progress and self.is_main_process, verbose and self.is_main_process
        self.clip_grad_norm, self.clip_grad_value = clip_grad_norm, clip_grad_value
        self.grad_norm: Tensor | None = None
        self.history = History()
        self.epoch, self.epochs = 0, 0
        self.batch_loss: Tensor | None = None
        self.logs: dict[str, float] = {}
        self.stop_reason: str | None = None
        self._last_postfix_time = 0.0
        self._warned_non_finite = False

    # ------------------------------------------------------------------ the loop

    def fit(
        self,
        train_loader: Iterable,
        val_loader: Iterable | None = None,
        epochs: int = 1,
        resume_from: str | Path | None = None,
        *,
        train_eval_loader: Iterable | None = None,
    ) -> History:
        """Train for ``epochs`` epochs in total; return the History (one dict per epoch).

        ``train_eval_loader``: a fixed, unaugmented (and unshuffled) subset of the training
        photos, e.g. ``loaders.train_eval``. After each epoch's training the model is measured
        on it exactly as on ``val_loader`` (eval mode, no gradients), logged as
        ``clean_train_loss`` and ``clean_train_accuracy``. The running ``train_loss`` and
        ``train_accuracy`` are averaged over the epoch's batches as trained (augmented, mixed,
        dropout on) while the weights change: not comparable with ``top1_acc``.

        ``resume_from``: a checkpoint written by ``ModelCheckpoint``; the fit goes on from
        the epoch after it, with the model, optimizer, scheduler, random generators and
        history as they were, up to ``epochs`` in total. A checkpoint that does not fit
        this Trainer is refused before anything changes. Otherwise each call starts a new
        History at epoch 1, and goes on training the model as it is.

        Interrupted (Jupyter's stop button, Ctrl-C): ``on_fit_end`` still runs, so
        EarlyStopping restores the best weights, and the finished epochs stay in
        ``trainer.history``; then the KeyboardInterrupt goes on, so that a "Run all" stops.
        """
        if epochs < 1:
            raise ValueError(f"epochs must be at least 1; got {epochs}.")
        if hasattr(train_loader, "__len__") and len(train_loader) == 0:
            raise ValueError("train_loader yields no batches: is the dataset empty, or is drop_last=True "
                             "with fewer samples than batch_size?")
        # Under torchrun: this process's share of each loader (one process: the loaders as given),
        # shuffled from a seed drawn before a resume restores the random generators.
        seed = shared_seed(self.distributed)
        done = self._start(epochs, resume_from)  # the epochs already finished: 0, or the checkpoint's
        train_loader = shard_loader(train_loader, self.distributed, training=True, seed=seed)
        if val_loader is not None:
            val_loader = shard_loader(val_loader, self.distributed, training=False, seed=seed)
        if train_eval_loader is not None:
            train_eval_loader = shard_loader(train_eval_loader, self.distributed, training=False, seed=seed)
        self._call("on_fit_start")
        try:
            for self.epoch in range(done + 1, epochs + 1):
                set_epoch(train_loader, self.epoch)  # a distributed sampler's new order for this epoch
                self._call("on_epoch_start")
                start = time.perf_counter()
                lr = self.optimizer.param_groups[0]["lr"]  # the rate this epoch starts with
                self.logs = {"epoch": self.epoch, **self.train_one_epoch(train_loader)}
                if train_eval_loader is not None:  # the epoch's final weights, as validation sees them
                    self.logs.update(self._measure_clean_train(train_eval_loader))
                if val_loader is not None:
                    self.logs.update(self.evaluate(val_loader))
                self.logs["lr"] = lr
                if self.scheduler is not None and self.scheduler_step == "epoch":
                    self._step_scheduler_per_epoch()
                self.logs["seconds"] = time.perf_counter() - start
                self.history.append(self.logs)
                if self.verbose:
                    print(self.epoch_line(), flush=True)
                self._call("on_epoch_end")
            self.stop_reason = self._finished_reason(done, resume_from)
        except CancelFit as stop:
            self.stop_reason = str(stop) or "a callback raised CancelFit"
        except KeyboardInterrupt:  # the stop button: clean up below, then let it stop the notebook
            self.stop_reason = (f"interrupted (KeyboardInterrupt) in epoch {self.epoch}/{epochs}; "
                                f"the {len(self.history)} finished epochs are in trainer.history")
            if self.verbose:
                print(f"{self.stop_reason}. The callbacks' on_fit_end runs now "
                      "(EarlyStopping restores its best weights).", flush=True)
            raise
        finally:
            # Always, also after a CancelFit, an error or the stop button: EarlyStopping
            # restores the best weights here, BatchNormStats takes its hook off the model.
            self._call("on_fit_end")
        return self.history

    def train_one_epoch(self, loader: Iterable) -> dict[str, float]:
        """One pass over ``loader``, updating the weights after every batch.

        Returns the *running* ``train_loss`` and ``train_accuracy``: averaged over the epoch's
        training batches, as trained (augmented, mixed, dropout on), while the weights change.
        """
        # train(): dropout drops, and batch norm normalises with the batch's own statistics
        # while updating its running averages. evaluate() switches both back with eval().
        self.model.train()
        self._call("on_train_epoch_start")
        loss_meter, accuracy_meter, grad_norm_meter = MeanMeter(), MeanMeter(), MeanMeter()
        batch_losses: list[Tensor] = []  # 0-d tensors on the device, read only if the epoch's loss is not finite
        bar = self._progress_bar(loader, f"Epoch {self.epoch}/{self.epochs}")
        for x, y in bar:
            x, y = self._to_device(x), y.to(self.device, non_blocking=True)
            # backward() *adds* to .grad, so old gradients must go. set_to_none frees them
            # instead of writing zeros: less memory traffic, and the next backward writes fresh.
            self.optimizer.zero_grad(set_to_none=True)
            with self._autocast():
                logits = self.train_model(x)  # (B, C)
                self.batch_loss = self.loss_fn(logits, y)
            self.scaler.scale(self.batch_loss).backward()  # gradients of the loss w.r.t. each weight
            self._call("after_backward")
            if self.clipping:
                self.grad_norm = self._clip_gradients()  # the norm before clipping, a 0-d tensor
                grad_norm_meter.update(self.grad_norm)
            self.scaler.step(self.optimizer)  # the update: w -= lr * (a function of the gradients)
            self.scaler.update()
            if self.scheduler is not None and self.scheduler_step == "batch":
                self.scheduler.step()
            # The metrics stay tensors on the device: no .item() here, so the CPU never
            # waits for the GPU inside the loop (see ldl.train.metrics).
            batch_size = y.shape[0]
            loss_meter.update(self.batch_loss.detach(), batch_size)
            batch_losses.append(self.batch_loss.detach())
            accuracy_meter.update(topk_accuracy(logits.detach(), y, ks=(1,))[1], batch_size)
            self._call("on_batch_end")
            self._show_running_loss(bar, loss_meter)
        if self.distributed.is_distributed:  # the means over every process's photos
            all_reduce_meters([loss_meter, accuracy_meter] + ([grad_norm_meter] if self.clipping else []), self.device)
        logs = {"train_loss": loss_meter.compute(), "train_accuracy": accuracy_meter.compute()}
        self._warn_if_not_finite(logs["train_loss"], batch_losses)
        if self.clipping:
            logs["grad_norm"] = grad_norm_meter.compute()
        return logs

    def evaluate(self, loader: Iterable) -> dict[str, float]:
        """``val_loss``, ``top1_acc`` and ``top5_acc`` on ``loader``, without changing the model."""
        measured = self._measure(loader, "validating")
        return {"val_loss": measured["loss"], "top1_acc": measured["top1"], "top5_acc": measured["top5"]}

    def _measure_clean_train(self, loader: Iterable) -> dict[str, float]:
        """``clean_train_loss`` and ``clean_train_accuracy``: training photos measured as validation is."""
        was_training = self.model.training
        measured = self._measure(loader, "measuring training photos")
        # Put the mode back: without a val_loader the model ends a fit in train mode, as it
        # always did. (The next epoch's train_one_epoch calls train() in any case.)
        self.model.train(was_training)
        return {"clean_train_loss": measured["loss"], "clean_train_accuracy": measured["top1"]}

    # torch.no_grad: no graph is recorded for backward, which saves the memory of every
    # intermediate activation and the time to store them. Nothing is learnt here.
    @torch.no_grad()
    def _measure(self, loader: Iterable, description: str) -> dict[str, float]:
        """``{"loss", "top1", "top5"}`` on ``loader`` in eval mode: the one path of every measurement."""
        self.model.eval()  # dropout off, batch norm uses its running averages: a deterministic model
        loss_meter, top1_meter, top5_meter = MeanMeter(), MeanMeter(), MeanMeter()
        for x, y in self._progress_bar(loader, description):
            x, y = self._to_device(x), y.to(self.device, non_blocking=True)
            with self._autocast():
                logits = self.forward_model(x)  # (B, C)
                loss = self.loss_fn(logits, y)
            accuracy = topk_accuracy(logits, y, ks=(1, 5))
            loss_meter.update(loss, y.shape[0])
            top1_meter.update(accuracy[1], y.shape[0])
            top5_meter.update(accuracy[5], y.shape[0])
        if self.distributed.is_distributed:  # each process measured its own photos: add them up
            all_reduce_meters([loss_meter, top1_meter, top5_meter], self.device)
        return {"loss": loss_meter.compute(), "top1": top1_meter.compute(), "top5": top5_meter.compute()}

    @torch.no_grad()
    def predict(self, loader: Iterable) -> Tensor:
        """Logits ``(N, C)`` float32 on the CPU for every sample of ``loader`` (batches ``x`` or ``(x, y)``)."""
        self.model.eval()
        outputs = []
        for batch in self._progress_bar(loader, "predicting"):
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            with self._autocast():
                outputs.append(self.forward_model(self._to_device(x)).float())
        if not outputs:
            raise ValueError("predict() got an empty loader: there is nothing to predict.")
        return torch.cat(outputs).cpu()

    # ------------------------------------------------------------------ helpers

    @property
    def is_main_process(self) -> bool:
        """True in a single process, and in rank 0 under torchrun: the process that writes files."""
        return self.distributed.is_main

    def wait_for_all(self) -> None:
        """Under torchrun, wait until every process has arrived here; in a single process, nothing."""
        wait_for_all(self.distributed)

    def rank0_decides(self, decision: bool) -> bool:
        """Under torchrun, rank 0's ``decision`` in every process; in a single process, ``decision``."""
        return rank0_decides(self.distributed, decision)

    @property
    def clipping(self) -> bool:
        """Whether gradients are clipped (``clip_grad_norm`` or ``clip_grad_value`` was given)."""
        return self.clip_grad_norm is not None or self.clip_grad_value is not None

    def _clip_gradients(self) -> Tensor:
        """Clip the gradients in place; return their total L2 norm from *before* clipping (0-d tensor).

        One exploding batch can make a step so large that it throws the weights far from
        anything learnt so far; clipping bounds the step. The norm before clipping is what
        tells whether (and how much) clipping is at work.
        """
        # Under float16 the gradients are still multiplied by the scaler's factor: clipping
        # must see their true size. unscale_ may run once per step, and an after_backward
        # callback may already have called it. Without a float16 scaler it does nothing.
        try:
            self.scaler.unscale_(self.optimizer)
        except RuntimeError as error:
            if "already been called" not in str(error):
                raise
        parameters = [p for p in self.model.parameters() if p.grad is not None]
        if self.clip_grad_norm is not None:
            # clip_grad_norm_ returns the total norm it measured before rescaling.
            return torch.nn.utils.clip_grad_norm_(parameters, self.clip_grad_norm)
        total_norm = torch.nn.utils.get_total_norm([p.grad for p in parameters])
        torch.nn.utils.clip_grad_value_(parameters, self.clip_grad_value)
        return total_norm

    def epoch_line(self) -> str:
        """``Epoch 3/12 - 4.1s - train_loss: 0.98 - ... - top5_acc: 1.00`` for the current logs."""
        parts = [f"Epoch {self.epoch}/{self.epochs}", f"{self.logs['seconds']:.1f}s"]
        shown = [key for key in EPOCH_LINE_KEYS if key in self.logs]
        parts += [f"{EPOCH_LINE_NAMES.get(key, key)}: {self.logs[key]:.2f}" for key in shown]
        return " - ".join(parts)

    def _start(self, epochs: int, resume_from: str | Path | None) -> int:
        """Set up a new fit, or resume one; return how many of its epochs are already finished."""
        done = 0 if resume_from is None else self._resume(resume_from)
        if resume_from is None:
            self.history = History()
        self.epoch, self.epochs, self.stop_reason, self._warned_non_finite = done, epochs, None, False
        if done >= epochs:
            warnings.warn(f"Nothing to train: {resume_from} already holds {done} finished epochs and "
                          f"fit(epochs={epochs}) asks for {epochs} in total. epochs counts from the start of the "
                          f"first fit: pass epochs={done + epochs} to train {epochs} more.", stacklevel=3)
        return done

    def _finished_reason(self, done: int, resume_from: str | Path | None) -> str:
        """``stop_reason`` for a fit that ran to its end, saying what was trained in it."""
        if done >= self.epochs:
            return f"nothing trained: {resume_from} already holds {done} epochs, fit asked for {self.epochs} in total"
        if resume_from is None:
            return f"finished {self.epochs} epochs"
        return (f"finished {self.epochs} epochs (epochs {done + 1}-{self.epochs} here, "
                f"resumed from {resume_from} after epoch {done})")

    def _warn_if_not_finite(self, epoch_loss: float, batch_losses: list[Tensor]) -> None:
        """Warn, once per fit, when the epoch's loss is NaN or Inf, naming the first such batch.

        The per-batch check costs no wait for the GPU: the epoch's mean (already read for the
        History) is NaN or Inf as soon as one batch's loss is, and only then are the kept
        batch losses read, in one copy, to find the first.
        """
        if math.isfinite(epoch_loss) or self._warned_non_finite:
            return
        self._warned_non_finite = True
        bad = torch.nonzero(~torch.isfinite(torch.stack(batch_losses))).flatten().tolist()
        where = f"batch {bad[0] + 1} of {len(batch_losses)}" if bad else "no single batch, but in their sum"
        warnings.warn(
            f"The training loss turned non-finite ({epoch_loss}) in epoch {self.epoch}, at {where}: from there on "
            "the weights are likely NaN and nothing more is learnt. Lower the learning rate, clip the gradients "
            "(Trainer(clip_grad_norm=1.0)), or add NonFiniteGuard() to stop at the first bad step. "
            "(Said once per fit.)",
            RuntimeWarning, stacklevel=3,
        )

    def _resume(self, path: str | Path) -> int:
        """Load a checkpoint into this Trainer; return the last finished epoch it holds."""
        checkpoint = load_checkpoint(path, map_location=self.device)
        # Every check comes before the first change: a refused checkpoint leaves the Trainer as it was.
        check_resumable(checkpoint, path, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler)
        history = History.from_dict(checkpoint["history"])
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(checkpoint["scheduler"])
        if checkpoint.get("scaler") is not None and self.scaler.is_enabled():
            self.scaler.load_state_dict(checkpoint["scaler"])
        self.history = history
        restore_rng_states(checkpoint)  # same shuffling and dropout masks as an uninterrupted fit
        return checkpoint["epoch"]

    def _call(self, event: str) -> None:
        """Call method ``event`` (e.g. ``"on_epoch_end"``) of every callback, in order."""
        for callback in self.callbacks:
            getattr(callback, event)(self)

    def _step_scheduler_per_epoch(self) -> None:
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(self.logs.get("val_loss", self.logs["train_loss"]))
        else:
            self.scheduler.step()

    def _to_device(self, x: Tensor) -> Tensor:
        """The input batch on the training device (channels-last for images when asked)."""
        # non_blocking: the copy to the GPU overlaps with compute (from pinned memory).
        if self.channels_last and x.dim() == 4:
            return x.to(self.device, non_blocking=True, memory_format=torch.channels_last)
        return x.to(self.device, non_blocking=True)

    def _autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision where enabled: matrix products in 16 bits, sums kept in float32."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def _progress_bar(self, loader: Iterable, description: str) -> tqdm:
        if not self.progress:
            return tqdm(loader, disable=True)  # a plain pass-through
        # leave=False: the bar disappears when done, leaving only the one line per epoch.
        # tqdm redraws at most every 0.1 s (mininterval), so drawing costs next to nothing.
        # Nothing else is set here, so TQDM_DISABLE=1 or TQDM_MININTERVAL=5 in the
        # environment still apply (quiet CI logs).
        return tqdm(loader, desc=description, leave=False)

    def _show_running_loss(self, bar: tqdm, loss_meter: MeanMeter) -> None:
        """Show the running loss on the bar, at most once a second (reading it waits for the GPU)."""
        now = time.perf_counter()
        if bar.disable or now - self._last_postfix_time < POSTFIX_EVERY_S:
            return
        self._last_postfix_time = now
        bar.set_postfix(loss=f"{loss_meter.compute():.4f}", refresh=False)
