"""Checkpoints: safe loading, atomic writes, RNG states, and resume == uninterrupted fit."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ldl.train.callbacks import ModelCheckpoint
from ldl.train.checkpoint import (
    load_checkpoint,
    load_weights,
    restore_rng_states,
    save_checkpoint,
    save_weights,
)
from ldl.train.history import History
from ldl.train.trainer import Trainer


def dataset(n: int = 96, seed: int = 0) -> TensorDataset:
    """x (N, 8) float32, y (N,) int64 in {0, 1, 2}: three noisy clusters."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.randn(n, 8, generator=g) + nn.functional.one_hot(y, 8).float() * 2
    return TensorDataset(x, y)


def model_with_dropout() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 3))


def trained_parts(epochs: int = 1):
    """A model, Adam optimizer and StepLR scheduler after a short fit, and its History."""
    torch.manual_seed(0)
    model = model_with_dropout()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    trainer = Trainer(model, optimizer=optimizer, scheduler=scheduler, device="cpu", progress=False, verbose=False)
    history = trainer.fit(DataLoader(dataset(), batch_size=16), epochs=epochs)
    return model, optimizer, scheduler, history


def test_checkpoint_round_trip_loads_with_weights_only(tmp_path) -> None:
    model, optimizer, scheduler, history = trained_parts()
    path = save_checkpoint(tmp_path / "ckpt.pt", model=model, optimizer=optimizer, scheduler=scheduler,
                           epoch=1, history=history)
    raw = torch.load(path, weights_only=True)  # raises if anything is not plain data
    assert set(raw) >= {"epoch", "model", "optimizer", "scheduler", "history", "rng"}
    checkpoint = load_checkpoint(path)
    assert checkpoint["epoch"] == 1
    assert History.from_dict(checkpoint["history"]).epochs == history.epochs
    assert all(torch.equal(checkpoint["model"][k], v) for k, v in model.state_dict().items())
    assert checkpoint["optimizer"]["state"][0]["exp_avg"].shape == model[0].weight.shape
    assert checkpoint["scheduler"]["last_epoch"] == scheduler.last_epoch


def test_crash_while_writing_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch) -> None:
    model, optimizer, scheduler, history = trained_parts()
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, model=model, optimizer=optimizer, scheduler=scheduler, epoch=1, history=history)
    saved_weight = model[0].weight.detach().clone()

    def crashing_save(obj, file, *args, **kwargs):
        file.write(b"half a checkpoint")  # some bytes reach the disk, then the process "dies"
        raise OSError("disk full")

    with torch.no_grad():
        model[0].weight.add_(1.0)
    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model=model, optimizer=optimizer, scheduler=scheduler, epoch=2, history=history)
    monkeypatch.undo()

    checkpoint = load_checkpoint(path)
    assert checkpoint["epoch"] == 1
    assert torch.equal(checkpoint["model"]["0.weight"], saved_weight)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temporary file left behind


def test_restore_rng_states_replays_every_generator(tmp_path) -> None:
    model, optimizer, scheduler, history = trained_parts()
    path = save_checkpoint(tmp_path / "ckpt.pt", model=model, optimizer=None, scheduler=None, epoch=1, history=None)

    def draws():
        return torch.rand(3).tolist(), random.random(), np.random.rand(2).tolist(), np.random.randn()

    first = draws()
    restore_rng_states(load_checkpoint(path))
    assert draws() == first


def test_weights_round_trip_and_clear_errors(tmp_path) -> None:
    model, optimizer, scheduler, history = trained_parts()
    weights = save_weights(model, tmp_path / "model.pt")
    assert set(torch.load(weights, weights_only=True)) == set(model.state_dict())
    fresh = load_weights(model_with_dropout(), weights)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))

    checkpoint = save_checkpoint(tmp_path / "ckpt.pt", model=model, optimizer=optimizer, scheduler=scheduler,
                                 epoch=1, history=history)
    from_checkpoint = load_weights(model_with_dropout(), checkpoint)  # the model part of a checkpoint
    assert torch.equal(from_checkpoint[0].weight, model[0].weight)

    with pytest.raises(ValueError, match="load_weights"):
        load_checkpoint(weights)  # weights alone cannot resume a fit
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


def run_fit(epochs: int, *, resume_from=None, callbacks=()) -> Trainer:
    """A fresh model, optimizer, scheduler and shuffling loader, as a new notebook session would build them."""
    torch.manual_seed(0)
    model = model_with_dropout()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    train_loader = DataLoader(dataset(), batch_size=16, shuffle=True)  # shuffling draws from torch's RNG
    val_loader = DataLoader(dataset(n=48, seed=1), batch_size=16)
    trainer = Trainer(model, optimizer=optimizer, scheduler=scheduler, device="cpu", progress=False,
                      verbose=False, callbacks=callbacks)
    trainer.fit(train_loader, val_loader, epochs=epochs, resume_from=resume_from)
    return trainer


def test_resume_gives_the_same_weights_as_an_uninterrupted_fit(tmp_path) -> None:
    straight = run_fit(epochs=4)
    run_fit(epochs=2, callbacks=[ModelCheckpoint(tmp_path / "ckpt.pt")])
    torch.manual_seed(123)  # a later session: the global RNG is somewhere else entirely
    resumed = run_fit(epochs=4, resume_from=tmp_path / "ckpt.pt")

    assert resumed.history["epoch"] == [1, 2, 3, 4]
    assert resumed.history["train_loss"] == straight.history["train_loss"]
    assert resumed.history["lr"] == straight.history["lr"]
    for (name, a), (_, b) in zip(straight.model.named_parameters(), resumed.model.named_parameters()):
        assert torch.equal(a, b), name
    # The control: with another torch RNG state in the checkpoint, shuffling and dropout
    # masks differ after the resume, and so do the weights. So the restore is what matters.
    checkpoint = load_checkpoint(tmp_path / "ckpt.pt")
    checkpoint["rng"]["torch"] = torch.manual_seed(123).get_state()
    torch.save(checkpoint, tmp_path / "other_rng.pt")
    other = run_fit(epochs=4, resume_from=tmp_path / "other_rng.pt")
    assert not torch.equal(other.model[0].weight, straight.model[0].weight)


def test_resume_with_a_different_setup_is_refused(tmp_path) -> None:
    run_fit(epochs=1, callbacks=[ModelCheckpoint(tmp_path / "ckpt.pt")])
    model = model_with_dropout()
    trainer = Trainer(model, device="cpu", progress=False, verbose=False)  # no scheduler this time
    with pytest.raises(ValueError, match="scheduler"):
        trainer.fit(DataLoader(dataset(), batch_size=16), epochs=2, resume_from=tmp_path / "ckpt.pt")
