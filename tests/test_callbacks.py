"""Callback events, CancelFit, EarlyStopping and ModelCheckpoint."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ldl.train.callbacks import Callback, CancelFit, EarlyStopping, ModelCheckpoint
from ldl.train.checkpoint import load_checkpoint
from ldl.train.trainer import Trainer

EVENTS = ("on_fit_start", "on_epoch_start", "on_train_epoch_start", "after_backward", "on_batch_end", "on_epoch_end", "on_fit_end")


def batches(num_batches: int = 3, batch_size: int = 8, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A list of (x (B, 8) float32, y (B,) int64) batches: two separable classes."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(num_batches):
        y = torch.randint(0, 2, (batch_size,), generator=g)
        x = torch.randn(batch_size, 8, generator=g) + (2.0 * y - 1.0).unsqueeze(1)
        out.append((x, y))
    return out


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))


def quiet_trainer(callbacks, **kwargs) -> Trainer:
    return Trainer(mlp(), device="cpu", progress=False, verbose=False, callbacks=callbacks, **kwargs)


class Recorder(Callback):
    """Writes down every event with the epoch it happened in."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    def on_fit_start(self, trainer: Trainer) -> None:
        self.events.append(("on_fit_start", trainer.epoch))

    def on_epoch_start(self, trainer: Trainer) -> None:
        self.events.append(("on_epoch_start", trainer.epoch))

    def on_train_epoch_start(self, trainer: Trainer) -> None:
        assert trainer.model.training  # called after model.train()
        self.events.append(("on_train_epoch_start", trainer.epoch))

    def after_backward(self, trainer: Trainer) -> None:
        # Gradients exist here, and the loss of this batch is available as a tensor.
        assert all(p.grad is not None for p in trainer.model.parameters())
        assert isinstance(trainer.batch_loss, torch.Tensor)
        self.events.append(("after_backward", trainer.epoch))

    def on_batch_end(self, trainer: Trainer) -> None:
        self.events.append(("on_batch_end", trainer.epoch))

    def on_epoch_end(self, trainer: Trainer) -> None:
        assert trainer.logs["epoch"] == trainer.epoch and len(trainer.history) == trainer.epoch
        self.events.append(("on_epoch_end", trainer.epoch))

    def on_fit_end(self, trainer: Trainer) -> None:
        self.events.append(("on_fit_end", trainer.epoch))


class StopAt(Callback):
    """Raises CancelFit at the end of one epoch."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, trainer: Trainer) -> None:
        if trainer.epoch == self.epoch:
            raise CancelFit(f"stopped at epoch {self.epoch} on purpose")


class ScriptedMetric(Callback):
    """Puts a chosen value per epoch into trainer.logs, so EarlyStopping's decisions are known."""

    def __init__(self, values: list[float]) -> None:
        self.values = values

    def on_epoch_end(self, trainer: Trainer) -> None:
        trainer.logs["scripted"] = self.values[trainer.epoch - 1]


class Snapshots(Callback):
    """A CPU copy of the weights at the end of every epoch."""

    def __init__(self) -> None:
        self.states: dict[int, dict[str, torch.Tensor]] = {}

    def on_epoch_end(self, trainer: Trainer) -> None:
        self.states[trainer.epoch] = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def test_events_come_in_the_documented_order() -> None:
    recorder, second = Recorder(), Recorder()
    quiet_trainer([recorder, second]).fit(batches(num_batches=3), epochs=2)
    per_epoch = lambda e: [("on_epoch_start", e), ("on_train_epoch_start", e)] + [("after_backward", e), ("on_batch_end", e)] * 3 + [("on_epoch_end", e)]
    expected = [("on_fit_start", 0)] + per_epoch(1) + per_epoch(2) + [("on_fit_end", 2)]
    assert recorder.events == expected
    assert second.events == expected


def test_base_callback_has_every_event_as_a_no_op() -> None:
    trainer = quiet_trainer([Callback()])
    for event in EVENTS:
        assert getattr(Callback(), event)(trainer) is None
    assert len(trainer.fit(batches(), epochs=1)) == 1


def test_cancel_fit_stops_early_and_on_fit_end_still_runs() -> None:
    recorder = Recorder()
    trainer = quiet_trainer([StopAt(epoch=2), recorder])
    history = trainer.fit(batches(), epochs=5)
    assert len(history) == 2
    assert trainer.stop_reason == "stopped at epoch 2 on purpose"
    assert recorder.events[-1] == ("on_fit_end", 2)
    assert ("on_epoch_end", 2) not in recorder.events  # callbacks after the raising one are skipped


def test_cancel_fit_mid_epoch() -> None:
    class StopAfterTwoBatches(Callback):
        def __init__(self) -> None:
            self.batches = 0

        def on_batch_end(self, trainer: Trainer) -> None:
            self.batches += 1
            if self.batches == 2:
                raise CancelFit()

    recorder = Recorder()
    trainer = quiet_trainer([StopAfterTwoBatches(), recorder])
    history = trainer.fit(batches(num_batches=4), epochs=3)
    assert len(history) == 0  # the epoch never finished, so it is not in the history
    assert trainer.stop_reason == "a callback raised CancelFit"
    assert recorder.events[-1] == ("on_fit_end", 1)


def test_early_stopping_stops_after_patience_and_restores_the_best_weights() -> None:
    #        epoch:  1    2    3    4    5    6    7
    values = [1.0, 0.5, 0.7, 0.6, 0.8, 0.1, 0.1]  # best at epoch 2, then 3 bad epochs
    snapshots = Snapshots()
    stopper = EarlyStopping(monitor="scripted", mode="min", patience=3)
    trainer = quiet_trainer([ScriptedMetric(values), snapshots, stopper])
    history = trainer.fit(batches(), epochs=7)
    assert len(history) == 5
    assert stopper.best_epoch == 2 and stopper.best_value == 0.5
    assert "early stopping" in trainer.stop_reason and "scripted" in trainer.stop_reason
    final = trainer.model.state_dict()
    assert all(torch.equal(final[k], snapshots.states[2][k]) for k in final)
    assert not torch.equal(snapshots.states[5]["0.weight"], snapshots.states[2]["0.weight"])  # training moved them


def test_early_stopping_max_mode_min_delta_and_no_restore() -> None:
    values = [0.50, 0.60, 0.605, 0.609, 0.70]  # +0.005 and +0.009 are below min_delta=0.01
    snapshots = Snapshots()
    stopper = EarlyStopping(monitor="scripted", mode="max", patience=2, min_delta=0.01, restore_best=False)
    trainer = quiet_trainer([ScriptedMetric(values), snapshots, stopper])
    history = trainer.fit(batches(), epochs=5)
    assert len(history) == 4 and stopper.best_epoch == 2
    final = trainer.model.state_dict()
    assert all(torch.equal(final[k], snapshots.states[4][k]) for k in final)  # last weights kept


def test_early_stopping_watches_real_validation_loss() -> None:
    stopper = EarlyStopping(patience=2)
    trainer = quiet_trainer([stopper])
    history = trainer.fit(batches(), batches(seed=1), epochs=3)
    assert stopper.best_value == min(history["val_loss"])
    assert stopper.best_epoch == history.best("val_loss", "min")["epoch"]


def test_early_stopping_without_the_monitored_key_says_what_to_do() -> None:
    trainer = quiet_trainer([EarlyStopping(monitor="val_loss")])
    with pytest.raises(KeyError, match="val_loader"):
        trainer.fit(batches(), epochs=2)  # no validation loader: no val_loss
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="lowest")


def test_model_checkpoint_saves_every_n_epochs_and_the_last(tmp_path) -> None:
    class SavedEpochs(Callback):
        def __init__(self) -> None:
            self.seen: list[int] = []

        def on_epoch_end(self, trainer: Trainer) -> None:
            path = tmp_path / "last.pt"
            if path.exists():
                self.seen.append(load_checkpoint(path)["epoch"])

    saved = SavedEpochs()
    quiet_trainer([ModelCheckpoint(tmp_path / "last.pt", save_every=2), saved]).fit(batches(), epochs=5)
    assert saved.seen == [2, 2, 4, 5]  # saved at epochs 2 and 4, and at the last epoch
    with pytest.raises(ValueError, match="save_every"):
        ModelCheckpoint(tmp_path / "x.pt", save_every=0)


# --------------------------------------------------------------------------- BatchNormStats

from ldl.train.callbacks import BatchNormStats  # noqa: E402


def bn_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6, momentum=0.3), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2),
    )


def image_batches(num_batches: int = 4, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(x (4, 3, 5, 5) float32, y (4,) int64) batches with a mean far from 0, so the running stats move."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(4, 3, 5, 5, generator=g) * 2 + 3, torch.randint(0, 2, (4,), generator=g))
            for _ in range(num_batches)]


def test_batchnorm_stats_records_running_and_batch_statistics_every_step() -> None:
    model = bn_model()
    stats = BatchNormStats("1", channels=(0, 2, 5))
    trainer = Trainer(model, device="cpu", progress=False, verbose=False, callbacks=[stats])
    trainer.fit(image_batches(), image_batches(seed=1), epochs=2)
    layer = model[1]
    assert len(stats.records) == 1 + 2 * 4  # the initial state, then one per batch
    assert [r["step"] for r in stats.records] == list(range(9))
    assert [r["epoch"] for r in stats.records] == [0, 1, 1, 1, 1, 2, 2, 2, 2]
    first = stats.records[0]
    assert torch.equal(first["running_mean"], torch.zeros(3)) and torch.equal(first["running_var"], torch.ones(3))
    assert torch.isnan(first["batch_mean"]).all()
    last = stats.records[-1]
    assert torch.equal(last["running_mean"], layer.running_mean[[0, 2, 5]])
    assert torch.equal(last["running_var"], layer.running_var[[0, 2, 5]])
    # Each step's running stats follow from the previous ones and the batch's own, as
    # PyTorch updates them (the running variance is the unbiased one): the hook saw the
    # same input the layer normalised. Validation batches (eval mode) were not recorded.
    n = 4 * 5 * 5
    for before, after in zip(stats.records, stats.records[1:]):
        expected_mean = 0.7 * before["running_mean"] + 0.3 * after["batch_mean"]
        expected_var = 0.7 * before["running_var"] + 0.3 * after["batch_var"] * n / (n - 1)
        assert torch.allclose(after["running_mean"], expected_mean, atol=1e-5)
        assert torch.allclose(after["running_var"], expected_var, atol=1e-4)
    assert not layer._forward_pre_hooks  # the hook is gone after the fit


def test_batchnorm_stats_every_n_steps_and_a_layer_object() -> None:
    model = bn_model()
    stats = BatchNormStats(model[1], channels=(1,), every=3)
    Trainer(model, device="cpu", progress=False, verbose=False, callbacks=[stats]).fit(image_batches(), epochs=2)
    assert [r["step"] for r in stats.records] == [0, 3, 6]
    assert all(r["running_mean"].shape == (1,) and not torch.isnan(r["batch_var"]).any() for r in stats.records[1:])


def test_batchnorm_stats_explains_a_wrong_layer() -> None:
    def fit_with(stats: BatchNormStats) -> None:
        Trainer(bn_model(), device="cpu", progress=False, verbose=False, callbacks=[stats]).fit(image_batches(1))

    with pytest.raises(KeyError, match=r"batch-norm layers are \['1'\]"):
        fit_with(BatchNormStats("features.0.1"))
    with pytest.raises(TypeError, match="running_mean"):
        fit_with(BatchNormStats("0"))  # the convolution
    with pytest.raises(ValueError, match="not part of the model"):
        fit_with(BatchNormStats(nn.BatchNorm2d(6)))
    with pytest.raises(ValueError, match="6 channels"):
        fit_with(BatchNormStats("1", channels=(0, 6)))
    with pytest.raises(ValueError, match="every"):
        BatchNormStats("1", every=0)
