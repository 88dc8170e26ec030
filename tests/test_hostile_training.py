"""What a hostile test found in ldl.train: non-finite state, bad checkpoints, the stop button, resume past the end.

Tiny models on lists of batches, temporary folders, CPU only: a few seconds in all.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from ldl.train.callbacks import BatchNormStats, Callback, EarlyStopping, ModelCheckpoint, NonFiniteGuard
from ldl.train.checkpoint import load_checkpoint
from ldl.train.trainer import Trainer

BATCHES_PER_EPOCH = 4


def batches(num_batches: int = BATCHES_PER_EPOCH, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A list of (x (8, 8) float32, y (8,) int64) batches: two separable classes."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(num_batches):
        y = torch.randint(0, 2, (8,), generator=g)
        out.append((torch.randn(8, 8, generator=g) + (2.0 * y - 1.0).unsqueeze(1), y))
    return out


def bn_mlp(hidden: int = 16, classes: int = 2) -> nn.Module:
    """Linear -> BatchNorm1d -> ReLU -> Linear: ``(B, 8)`` to ``(B, classes)``; its buffers are ``1.running_*``."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, classes))


def quiet(model: nn.Module, callbacks=(), **kwargs) -> Trainer:
    return Trainer(model, device="cpu", progress=False, verbose=False, callbacks=list(callbacks), **kwargs)


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    for name, value in model.state_dict().items():
        assert torch.equal(value, state[name]), name


class Poison(Callback):
    """After the optimizer step of one chosen batch, writes ``value`` into a tensor of the model."""

    def __init__(self, epoch: int, batch: int, tensor: str, value: float = math.inf) -> None:
        self.epoch, self.batch, self.tensor, self.value = epoch, batch, tensor, value
        self.seen = 0

    def on_epoch_start(self, trainer: Trainer) -> None:
        self.seen = 0

    def on_batch_end(self, trainer: Trainer) -> None:
        self.seen += 1
        if (trainer.epoch, self.seen) == (self.epoch, self.batch):
            with torch.no_grad():
                trainer.model.state_dict()[self.tensor].view(-1)[0] = self.value


# ------------------------------------------------------------ 1. NonFiniteGuard and buffers


def test_guard_stops_when_batch_norm_running_var_overflows_although_gradients_stay_finite(tmp_path: Path) -> None:
    """A batch of huge inputs makes ``running_var`` inf; loss and every gradient stay finite."""
    loader = batches()
    huge = [(x * 1e30, y) if i == 1 else (x, y) for i, (x, y) in enumerate(batches())]
    path = tmp_path / "good.pt"
    guard = NonFiniteGuard(checkpoint_path=path)

    class SwitchData(Callback):  # epoch 1 on ordinary batches, epoch 2 meets the huge one
        def on_epoch_start(self, trainer: Trainer) -> None:
            loader[:] = huge if trainer.epoch == 2 else batches()

    trainer = quiet(bn_mlp(), callbacks=[SwitchData(), guard])
    trainer.fit(loader, epochs=3)
    assert "'1.running_var'" in trainer.stop_reason and "buffer" in trainer.stop_reason
    assert "epoch 2" in trainer.stop_reason and str(path) in trainer.stop_reason
    checkpoint = load_checkpoint(path)
    assert checkpoint["epoch"] == 1  # the good epoch, not overwritten by the broken state
    assert all(torch.isfinite(value).all() for value in checkpoint["model"].values())


@pytest.mark.parametrize("batch", [2, BATCHES_PER_EPOCH])  # mid-epoch, and after the epoch's last check
def test_guard_never_saves_an_inf_buffer_over_the_last_good_checkpoint(tmp_path: Path, batch: int) -> None:
    path = tmp_path / "good.pt"
    guard = NonFiniteGuard(checkpoint_path=path)
    trainer = quiet(bn_mlp(), callbacks=[Poison(epoch=2, batch=batch, tensor="1.running_var"), guard])
    history = trainer.fit(batches(), epochs=3)
    assert guard.message is not None and "'1.running_var'" in guard.message
    assert len(history) <= 2
    checkpoint = load_checkpoint(path)
    assert checkpoint["epoch"] == 1
    assert torch.isfinite(checkpoint["model"]["1.running_var"]).all()


# ------------------------------------------------------------ 2. NaN weights: ModelCheckpoint and the Trainer


def test_model_checkpoint_keeps_the_last_good_file_and_the_trainer_warns_once(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    poison = Poison(epoch=2, batch=1, tensor="0.weight", value=math.nan)  # batch 2 of epoch 2 is the first NaN loss
    trainer = quiet(bn_mlp(), callbacks=[poison, ModelCheckpoint(path)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = trainer.fit(batches(), epochs=3)
    messages = [str(w.message) for w in caught]
    assert math.isnan(history["train_loss"][1]) and math.isnan(history["train_loss"][2])

    loss_warnings = [m for m in messages if "loss" in m and "non-finite" in m]
    assert len(loss_warnings) == 1, messages  # once, not every epoch
    assert "epoch 2" in loss_warnings[0] and "batch 2" in loss_warnings[0]

    refusals = [m for m in messages if "ModelCheckpoint" in m]
    assert len(refusals) == 2 and all(str(path) in m for m in refusals), messages
    assert "'0.weight'" in refusals[0] and "epoch 1" in refusals[0]
    checkpoint = load_checkpoint(path)
    assert checkpoint["epoch"] == 1
    assert all(torch.isfinite(value).all() for value in checkpoint["model"].values())


def test_a_finite_fit_gives_no_warning() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = quiet(bn_mlp()).fit(batches(), epochs=2)
    assert len(history) == 2
    assert [str(w.message) for w in caught] == []


# ------------------------------------------------------------ 3. resuming from a bad checkpoint


def write_bad_file(path: Path, kind: str) -> None:
    """An empty file, half of a real checkpoint, or random bytes."""
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        quiet(bn_mlp(), callbacks=[ModelCheckpoint(path)]).fit(batches(), epochs=1)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        g = torch.Generator().manual_seed(1)
        path.write_bytes(bytes(torch.randint(0, 256, (2000,), generator=g).tolist()))


def refuses_without_changing(trainer: Trainer, path: Path) -> str:
    """Resume from ``path``, expect a ValueError naming it, check nothing changed; return the message."""
    before, history_before = snapshot(trainer.model), trainer.history
    with pytest.raises(ValueError, match=re.escape(str(path))) as error:
        trainer.fit(batches(), epochs=3, resume_from=path)
    assert_same_state(trainer.model, before)
    assert trainer.history is history_before
    return str(error.value)


@pytest.mark.parametrize("kind", ["empty", "truncated", "random bytes"])
def test_an_unreadable_checkpoint_is_named_and_nothing_changes(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind.replace(' ', '_')}.pt"
    write_bad_file(path, kind)
    message = refuses_without_changing(quiet(bn_mlp()), path)
    assert "weights_only=False" not in message
    if kind == "empty":
        assert "empty" in message


def test_a_checkpoint_of_another_model_is_refused_before_any_weight_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "three_classes.pt"
    quiet(bn_mlp(classes=3), callbacks=[ModelCheckpoint(path)]).fit(batches(), epochs=1)
    trainer = quiet(bn_mlp(classes=2))
    with torch.no_grad():
        trainer.model[0].weight.add_(1.0)  # the first layer's shape matches the file: it must not be loaded
    message = refuses_without_changing(trainer, path)
    assert "'3.weight'" in message and "(3, 16)" in message and "(2, 16)" in message


def test_a_checkpoint_of_another_optimizer_is_refused_before_any_weight_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "sgd.pt"
    model = bn_mlp()
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    quiet(model, callbacks=[ModelCheckpoint(path)], optimizer=sgd).fit(batches(), epochs=1)
    trainer = quiet(bn_mlp())  # Adam by default
    message = refuses_without_changing(trainer, path)
    assert "Adam" in message and "optimizer" in message


def test_a_checkpoint_with_fewer_parameter_groups_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "one_group.pt"
    quiet(bn_mlp(), callbacks=[ModelCheckpoint(path)]).fit(batches(), epochs=1)
    model = bn_mlp()
    groups = [{"params": model[0].parameters()}, {"params": [p for m in list(model)[1:] for p in m.parameters()]}]
    message = refuses_without_changing(quiet(model, optimizer=torch.optim.Adam(groups, lr=1e-3)), path)
    assert "parameter groups" in message


# ------------------------------------------------------------ 4. the stop button (KeyboardInterrupt)


class PressStop(Callback):
    """Raises KeyboardInterrupt, as Jupyter's stop button does, in one chosen epoch."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_batch_end(self, trainer: Trainer) -> None:
        if trainer.epoch == self.epoch:
            raise KeyboardInterrupt


class Scripted(Callback):
    """Puts a chosen value per epoch into ``trainer.logs["scripted"]``."""

    def __init__(self, values: list[float]) -> None:
        self.values = values
        self.states: dict[int, dict[str, torch.Tensor]] = {}

    def on_epoch_end(self, trainer: Trainer) -> None:
        trainer.logs["scripted"] = self.values[trainer.epoch - 1]
        self.states[trainer.epoch] = snapshot(trainer.model)


def test_keyboard_interrupt_cleans_up_and_keeps_the_history(capsys) -> None:
    scripted = Scripted([2.0, 1.0, 3.0, 4.0])
    stats = BatchNormStats("1", channels=(0,))
    model = bn_mlp()
    trainer = Trainer(model, device="cpu", progress=False, verbose=True,
                      callbacks=[scripted, EarlyStopping(monitor="scripted", patience=5), stats, PressStop(epoch=3)])
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(batches(), epochs=4)
    assert trainer.history["epoch"] == [1, 2]
    assert_same_state(model, scripted.states[2])  # EarlyStopping restored the best epoch's weights
    assert not model[1]._forward_pre_hooks  # BatchNormStats removed its hook
    assert "interrupted" in trainer.stop_reason and "epoch 3" in trainer.stop_reason
    assert "trainer.history" in capsys.readouterr().out


# ------------------------------------------------------------ 5. resuming a checkpoint already past `epochs`


def test_resume_past_the_requested_epochs_says_nothing_was_trained(tmp_path: Path) -> None:
    path = tmp_path / "five.pt"
    quiet(bn_mlp(), callbacks=[ModelCheckpoint(path)]).fit(batches(), epochs=5)
    trainer = quiet(bn_mlp())
    with pytest.warns(UserWarning, match=r"5 .*epochs=3|epochs=3.* 5 ") as caught:
        history = trainer.fit(batches(), epochs=3, resume_from=path)
    assert "nothing to train" in str(caught[0].message).lower() and "epochs=8" in str(caught[0].message)
    assert len(history) == 5
    assert "finished" not in trainer.stop_reason and "nothing" in trainer.stop_reason


def test_a_real_resume_says_which_epochs_it_trained(tmp_path: Path) -> None:
    path = tmp_path / "two.pt"
    quiet(bn_mlp(), callbacks=[ModelCheckpoint(path)]).fit(batches(), epochs=2)
    trainer = quiet(bn_mlp())
    trainer.fit(batches(), epochs=4, resume_from=path)
    assert trainer.stop_reason.startswith("finished 4 epochs") and "after epoch 2" in trainer.stop_reason
