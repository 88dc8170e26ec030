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
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ldl.core.files import atomic_torch_save
from ldl.train.history import History

CHECKPOINT_FORMAT = "ldl-checkpoint-1"


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


def load_checkpoint(path: str | Path, map_location: str | torch.device | None = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (safely: ``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}. Check the path (a ModelCheckpoint writes it).")
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} is not a training checkpoint (no 'format': {CHECKPOINT_FORMAT!r}). "
            "If it holds only model weights, load it with load_weights(model, path)."
        )
    return checkpoint


def save_weights(model: nn.Module, path: str | Path) -> Path:
    """Save the model's ``state_dict`` alone (atomically): the recommended way to share a model."""
    return atomic_torch_save(model.state_dict(), path)


def load_weights(
    model: nn.Module, path: str | Path, map_location: str | torch.device | None = "cpu", strict: bool = True
) -> nn.Module:
    """Load weights saved by :func:`save_weights` (or the model part of a checkpoint) into ``model``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No weights file at {path}.")
    state = torch.load(path, map_location=map_location, weights_only=True)
    if isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT:
        state = state["model"]  # a full checkpoint: take its model weights
    model.load_state_dict(state, strict=strict)
    return model
