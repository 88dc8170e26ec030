"""Checkpoints: one dict enough to resume a fit, written so a crash never corrupts it.

Two kinds of file:

- a **checkpoint** (:func:`save_checkpoint`): model, optimizer, scheduler and scaler
  states, the epoch, the History and every random generator's state. Resuming from it
  gives the very same weights as a fit that was never interrupted.
- **weights** (:func:`save_weights`): the model's ``state_dict`` alone. The way to share
  a trained model: small, and it needs only the model's class to load.

Everything saved is plain data (tensors, numbers, strings, lists, tuples, dicts), so both
load with ``torch.load(..., weights_only=True)``, which refuses to run code hidden in a
file: never unpickle arbitrary objects from a file you downloaded.

A file that cannot be read, or that does not fit the Trainer resuming from it, raises a
:class:`CheckpointError` naming the file and what is wrong, before anything is changed.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ldl.core.files import atomic_torch_save
from ldl.train.history import History

CHECKPOINT_FORMAT = "ldl-checkpoint-1"
CHECKPOINT_KEYS = ("epoch", "model", "optimizer", "scheduler", "history", "rng")
# Settings every optimizer of a torch version may have, added or dropped between versions:
# they tell how a step is computed, not which optimizer it is, so they are not compared.
IMPLEMENTATION_SETTINGS = frozenset({"foreach", "fused", "capturable", "differentiable", "maximize",
                                     "decoupled_weight_decay"})


class CheckpointError(ValueError):
    """A checkpoint or weights file that cannot be read, or does not fit the model or optimizer."""


def rng_states() -> dict[str, Any]:
    """Every random generator a fit draws from: shuffling, dropout, augmentation."""
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        # numpy's state holds an array and numpy scalars: store a tensor and plain numbers.
        "numpy": (str(np_name), torch.from_numpy(np_keys.astype(np.int64)), int(np_pos),
                  int(np_has_gauss), float(np_gauss)),
    }


def restore_rng_states(checkpoint: dict[str, Any]) -> None:
    """Put every random generator back in the state saved by :func:`save_checkpoint`."""
    states = checkpoint["rng"]
    torch.set_rng_state(states["torch"].cpu())  # must be a CPU tensor, whatever map_location was
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([state.cpu() for state in states["cuda"]])
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = states["numpy"]
    np.random.set_state((np_name, np_keys.cpu().numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss))


def save_checkpoint(
    path: str | Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    scheduler: Any | None,
    epoch: int,
    history: History | None,
    scaler: torch.amp.GradScaler | None = None,
) -> Path:
    """Write everything needed to resume after ``epoch`` (1-based, finished) to ``path``, atomically."""
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "epoch": int(epoch),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "history": history.to_dict() if history is not None else {},
        "rng": rng_states(),
    }
    return atomic_torch_save(checkpoint, path)


# What to do about a file that cannot be read, said after every such error.
_USE_ANOTHER = "Use another copy or checkpoint, or start the fit again without resume_from."


def read_torch_file(path: str | Path, map_location: str | torch.device | None = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``, with an error that names the file when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No file at {path}. Check the path (ModelCheckpoint and save_weights write one).")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): nothing was written to it. {_USE_ANOTHER}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    # A damaged file fails in many ways (EOFError, OSError, RuntimeError from the zip reader,
    # UnpicklingError, UnicodeDecodeError, KeyError), none naming the file: one error here does.
    except Exception as error:  # noqa: BLE001 - re-raised with the file's name
        raise CheckpointError(
            f"{path} cannot be read as a torch file ({type(error).__name__}): it is not one, or it was cut short "
            "or changed after it was written (ldl writes its files atomically, so not by ldl), or it holds objects "
            f"other than tensors and plain data. {_USE_ANOTHER}"
        ) from error


def load_checkpoint(path: str | Path, map_location: str | torch.device | None = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (safely: ``weights_only=True``)."""
    checkpoint = read_torch_file(path, map_location)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a training checkpoint (no 'format': {CHECKPOINT_FORMAT!r}). "
            "If it holds only model weights, load it with load_weights(model, path)."
        )
    missing = [key for key in CHECKPOINT_KEYS if key not in checkpoint]
    if missing:
        raise CheckpointError(f"{path} is a checkpoint without {missing}: it was not written by save_checkpoint, "
                              "or was edited since. Resume from another checkpoint.")
    return checkpoint


def check_resumable(
    checkpoint: dict[str, Any], path: str | Path, *, model: nn.Module, optimizer: torch.optim.Optimizer,
    scheduler: Any | None,
) -> None:
    """Raise a :class:`CheckpointError` naming ``path`` if ``checkpoint`` does not fit these objects.

    Checked before anything is loaded, so a refused checkpoint changes nothing: the model's
    keys and shapes, the optimizer's kind and parameter groups, the scheduler's kind.
    """
    problem = (_model_mismatch(checkpoint["model"], model.state_dict())
               or _optimizer_mismatch(checkpoint["optimizer"], optimizer)
               or _scheduler_mismatch(checkpoint["scheduler"], scheduler))
    if problem:
        raise CheckpointError(f"Cannot resume from {path}: {problem}. Build the Trainer as for the first run "
                              "(same model, optimizer and scheduler), or start a new fit without resume_from.")


def _model_mismatch(saved: dict[str, Tensor], own: dict[str, Tensor]) -> str | None:
    """What differs between a saved ``state_dict`` and the model's own, or None."""
    missing, unexpected = sorted(set(own) - set(saved)), sorted(set(saved) - set(own))
    if missing or unexpected:
        return (f"it holds another model (keys missing from the file: {missing[:5]}, "
                f"keys this model lacks: {unexpected[:5]})")
    for name, value in own.items():
        if tuple(saved[name].shape) != tuple(value.shape):
            return (f"it holds another model: {name!r} has shape {tuple(saved[name].shape)} in the file "
                    f"but {tuple(value.shape)} in this model")
    return None


def _optimizer_mismatch(saved: dict[str, Any] | None, optimizer: torch.optim.Optimizer) -> str | None:
    """What makes the saved optimizer state unfit for ``optimizer``, or None."""
    name = type(optimizer).__name__
    if saved is None:
        return (f"it was saved without an optimizer state, so {name} cannot go on from it "
                "(load_weights reads its weights)")
    saved_groups, own_groups = saved["param_groups"], optimizer.param_groups
    if len(saved_groups) != len(own_groups):
        return f"it has {len(saved_groups)} parameter groups but this {name} has {len(own_groups)}"
    # A group stores its optimizer's settings (SGD's momentum, Adam's betas): a setting this
    # optimizer uses that the file lacks means the file was written by another kind.
    needed = set(optimizer.defaults) - IMPLEMENTATION_SETTINGS
    for index, (saved_group, own_group) in enumerate(zip(saved_groups, own_groups)):
        if len(saved_group["params"]) != len(own_group["params"]):
            return (f"parameter group {index} has {len(saved_group['params'])} parameters in the file "
                    f"but {len(own_group['params'])} in this {name}")
        lacking = sorted(needed - set(saved_group))
        if lacking:
            return f"it was saved by another kind of optimizer: its settings lack {lacking}, which {name} uses"
    return None


def _scheduler_mismatch(saved: dict[str, Any] | None, scheduler: Any | None) -> str | None:
    """Whether the file's scheduler state fits ``scheduler`` (its presence and its kind), or None."""
    if (saved is None) != (scheduler is None):
        return (f"it was saved {'without' if saved is None else 'with'} a scheduler but this Trainer has "
                f"{'one' if scheduler is not None else 'none'}")
    if scheduler is None:
        return None
    # Like an optimizer's settings: StepLR keeps step_size, CosineAnnealingLR keeps T_max.
    lacking = sorted(key for key in scheduler.state_dict() if not key.startswith("_") and key != "verbose"
                     and key not in saved)
    if lacking:
        return (f"it was saved with another kind of scheduler: its state lacks {lacking}, "
                f"which {type(scheduler).__name__} keeps")
    return None


def first_non_finite(named: Iterable[tuple[str, Tensor | None]]) -> str | None:
    """The name of the first floating-point tensor holding a NaN or an Inf, or None if all are finite.

    ``named`` is e.g. ``model.state_dict().items()`` (weights and buffers). One flag per
    tensor is computed where the tensors live and read in a single copy to the CPU.
    """
    # Integer tensors (num_batches_tracked) cannot hold NaN or Inf.
    checked = [(name, t.detach()) for name, t in named if t is not None and t.is_floating_point()]
    if not checked:
        return None
    device = checked[0][1].device
    finite = torch.stack([torch.isfinite(t).all().to(device) for _, t in checked]).tolist()
    return None if all(finite) else checked[finite.index(False)][0]


def save_weights(model: nn.Module, path: str | Path) -> Path:
    """Save the model's ``state_dict`` alone (atomically): the recommended way to share a model."""
    return atomic_torch_save(model.state_dict(), path)


def load_weights(
    model: nn.Module, path: str | Path, map_location: str | torch.device | None = "cpu", strict: bool = True
) -> nn.Module:
    """Load weights saved by :func:`save_weights` (or the model part of a checkpoint) into ``model``."""
    state = read_torch_file(path, map_location)
    if isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT:
        state = state["model"]  # a full checkpoint: take its model weights
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as error:  # torch lists the keys and shapes, but not the file
        raise CheckpointError(f"{path} holds weights of another model: {error}") from error
    return model
