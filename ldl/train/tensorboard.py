"""TensorBoardLogger: a callback that writes a fit's curves, weights and gradients for TensorBoard.

>>> from ldl.train.tensorboard import TensorBoardLogger
>>> logger = TensorBoardLogger("runs/baseline", images=first_batch_images)
>>> Trainer(model, callbacks=[logger]).fit(train_loader, val_loader, epochs=10)

Open the dashboard:

- in a notebook (Colab, JupyterLab, Binder): ``show_tensorboard("runs/baseline")`` from
  :mod:`ldl.widgets.tensorboard` opens it the right way for where it runs, or draws the
  same histograms as a static figure where no live TensorBoard can run;
- in a terminal: ``tensorboard --logdir runs``, then browse to http://localhost:6006.

Give each run its own folder under ``runs/`` (``runs/baseline``, ``runs/dropout``...):
TensorBoard lists every folder as a run and overlays their curves.

What is written, with the epoch as the step (a second ``fit`` with the same logger goes on
counting: three ``fit(epochs=1)`` calls write steps 1, 2 and 3, not step 1 three times):

- SCALARS: every number in ``trainer.logs`` (``loss/train``, ``loss/val``,
  ``accuracy/train``, ``accuracy/val_top1``, ``accuracy/val_top5``, ``lr``, ...);
- HISTOGRAMS: each parameter (``weights/<name>``) and its gradient (``grads/<name>``);
- IMAGES: ``images``, a grid of the images given, once at the start of the first fit.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch.utils.tensorboard import SummaryWriter
from torchvision.utils import make_grid

from ldl.train.callbacks import Callback

if TYPE_CHECKING:
    from ldl.train.trainer import Trainer

# trainer.logs key -> TensorBoard tag. "group/name" tags are drawn in one section per group.
SCALAR_TAGS = {
    "train_loss": "loss/train",
    "val_loss": "loss/val",
    "train_accuracy": "accuracy/train",
    "top1_acc": "accuracy/val_top1",
    "top5_acc": "accuracy/val_top5",
    "lr": "lr",
    "grad_norm": "grad_norm",
    "seconds": "time/epoch_seconds",
}
NOT_SCALARS = ("epoch",)  # already the step of every point


class TensorBoardLogger(Callback):
    """Write scalars, histograms and an image grid of a fit into ``log_dir``.

    Args:
        log_dir: the run's folder, e.g. ``"runs/baseline"``; default ``runs/<date>_<host>``.
        histograms: write weight and gradient histograms (costs a little time per logged epoch).
        images: ``(N, 3, H, W)`` float or uint8 images (e.g. a first batch) shown once at
            the start of the fit; float images are rescaled to [0, 1] for display.
        histogram_every: write histograms every this many epochs (and at the last one).

    The gradients are those of the epoch's last training batch. They are read at
    ``on_epoch_end``: the Trainer clears gradients at the *start* of each batch
    (``zero_grad`` before the forward pass), and validation makes none, so they are still
    there then. This costs nothing inside the batch loop.

    Under ``torchrun`` only rank 0 writes (the scalars are already those of all processes).
    """

    def __init__(
        self,
        log_dir: str | Path | None = None,
        histograms: bool = True,
        images: torch.Tensor | None = None,
        histogram_every: int = 1,
    ) -> None:
        if histogram_every < 1:
            raise ValueError(f"histogram_every must be at least 1 epoch; got {histogram_every}.")
        is_image_batch = isinstance(images, torch.Tensor) and images.ndim == 4 and images.shape[1] in (1, 3)
        if images is not None and not is_image_batch:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"images must be a (N, 3, H, W) or (N, 1, H, W) tensor, e.g. a batch's x[:16]; "
                             f"got {shape}.")
        self.log_dir = str(log_dir) if log_dir is not None else None
        self.histograms, self.histogram_every = histograms, histogram_every
        self.images = images.detach().cpu() if images is not None else None  # no GPU memory held
        self.writer: SummaryWriter | None = None
        self.last_step = 0  # the last step written, over every fit of this logger
        self._step_offset = 0  # added to trainer.epoch: the steps of this logger's earlier fits

    def on_fit_start(self, trainer: Trainer) -> None:
        if not trainer.is_main_process:  # under torchrun rank 0 alone writes the logs (the metrics are everyone's)
            return
        first_fit = self.last_step == 0  # the images do not change between fits: written once
        self.writer = SummaryWriter(log_dir=self.log_dir)
        self.log_dir = self.writer.log_dir  # the default folder, once chosen, for later fits too
        # A new fit restarts trainer.epoch at 1; with the epoch as the step, a fit after
        # another would write over the same steps and TensorBoard would show them as one.
        # A resumed fit (its history restored from a checkpoint) already counts on.
        self._step_offset = self.last_step if len(trainer.history) == 0 else 0
        if self.images is not None and first_fit:
            self.writer.add_image("images", self._image_grid(), global_step=0)

    def on_epoch_end(self, trainer: Trainer) -> None:
        if not trainer.is_main_process:
            return
        assert self.writer is not None, "on_fit_start opens the writer"
        step = self._step_offset + trainer.epoch
        self.last_step = step
        for key, value in trainer.logs.items():
            if key in NOT_SCALARS or not isinstance(value, (int, float)):
                continue
            self.writer.add_scalar(SCALAR_TAGS.get(key, key), value, global_step=step)
        last_epoch = trainer.epoch == trainer.epochs
        if self.histograms and (step % self.histogram_every == 0 or last_epoch):
            self._write_histograms(trainer.model, step)

    def on_fit_end(self, trainer: Trainer) -> None:
        # Runs after a CancelFit too, so an early-stopped run's file is complete.
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
            self.writer = None

    def _write_histograms(self, model: torch.nn.Module, step: int) -> None:
        for name, parameter in model.named_parameters():
            # .float(): histograms of float16/bfloat16 tensors are not supported by NumPy.
            self.writer.add_histogram(f"weights/{name}", parameter.detach().float().cpu(), global_step=step)
            if parameter.grad is not None:  # None for frozen layers (requires_grad=False)
                self.writer.add_histogram(f"grads/{name}", parameter.grad.detach().float().cpu(), global_step=step)

    def _image_grid(self) -> torch.Tensor:
        """``images`` as one ``(3, H', W')`` grid, 8 per row, values in [0, 1] (uint8 stays uint8)."""
        if self.images.dtype == torch.uint8:
            return make_grid(self.images, nrow=8)
        # normalize=True maps each image's own min..max to 0..1: normalised inputs become viewable.
        return make_grid(self.images.float(), nrow=8, normalize=True, scale_each=True)
