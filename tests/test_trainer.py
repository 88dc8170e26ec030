"""Trainer, metrics and History on a tiny deterministic problem (CPU, a few seconds)."""

from __future__ import annotations

import math
import re

import pytest
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ldl import plots
from ldl.train.history import History
from ldl.train.metrics import MeanMeter, topk_accuracy, topk_correct
from ldl.train.trainer import Trainer, resolve_amp_dtype

EPOCH_LINE = re.compile(
    r"^Epoch (\d+)/(\d+) - \d+\.\d+s - train_loss: \d+\.\d+ - train_accuracy: [01]\.\d+"
    r" - val_loss: \d+\.\d+ - top1_acc: [01]\.\d+ - top5_acc: [01]\.\d+$"
)


def blobs(n_per_class: int = 64, seed: int = 0) -> TensorDataset:
    """Two Gaussian blobs in 8-D: inputs (N, 8) float32, labels (N,) int64 in {0, 1}."""
    g = torch.Generator().manual_seed(seed)
    centre = torch.full((8,), 1.5)
    x = torch.cat([torch.randn(n_per_class, 8, generator=g) + centre, torch.randn(n_per_class, 8, generator=g) - centre])
    y = torch.cat([torch.zeros(n_per_class), torch.ones(n_per_class)]).long()
    return TensorDataset(x, y)


def mlp(num_classes: int = 2) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, num_classes))


def quiet_trainer(model: nn.Module, **kwargs) -> Trainer:
    return Trainer(model, device="cpu", progress=False, verbose=False, **kwargs)


@pytest.fixture
def loaders() -> tuple[DataLoader, DataLoader]:
    torch.manual_seed(0)
    return DataLoader(blobs(), batch_size=16, shuffle=True), DataLoader(blobs(seed=1), batch_size=32)


# ---------------------------------------------------------------- metrics


def test_topk_correct_counts_hand_made_logits() -> None:
    logits = torch.tensor([[0.1, 0.5, 0.2, 0.9],  # ranking: 3, 1, 2, 0
                           [2.0, 1.0, 0.0, -1.0],  # ranking: 0, 1, 2, 3
                           [0.0, 0.3, 0.2, 0.1]])  # ranking: 1, 2, 3, 0
    targets = torch.tensor([1, 0, 0])
    counts = topk_correct(logits, targets, ks=(1, 2, 3, 4))
    assert {k: int(v) for k, v in counts.items()} == {1: 1, 2: 2, 3: 2, 4: 3}
    assert counts[1].dtype == torch.float32 and counts[1].ndim == 0
    fractions = topk_accuracy(logits, targets, ks=(1, 4))
    assert fractions[1].item() == pytest.approx(1 / 3) and fractions[4].item() == pytest.approx(1.0)


def test_topk_clips_k_to_the_number_of_classes() -> None:
    logits = torch.tensor([[0.2, 0.8], [0.9, 0.1], [0.4, 0.6]])
    targets = torch.tensor([0, 0, 0])
    accuracy = topk_accuracy(logits, targets, ks=(1, 5))
    assert accuracy[1].item() == pytest.approx(1 / 3)
    assert accuracy[5].item() == 1.0  # two classes: the target is always within the "top 5"


def test_topk_accepts_soft_targets_as_their_argmax() -> None:
    logits = torch.tensor([[0.2, 0.8, 0.0], [0.9, 0.1, 0.0]])
    soft = torch.tensor([[0.1, 0.9, 0.0], [0.3, 0.6, 0.1]])  # argmax: 1, 1
    assert int(topk_correct(logits, soft, ks=(1,))[1]) == int(topk_correct(logits, torch.tensor([1, 1]), ks=(1,))[1]) == 1


def test_topk_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="shape"):
        topk_correct(torch.zeros(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="targets"):
        topk_correct(torch.zeros(4, 3), torch.zeros(5, dtype=torch.long))


def test_mean_meter_weights_by_batch_size() -> None:
    meter = MeanMeter()
    meter.update(torch.tensor(1.0), n=3)
    meter.update(torch.tensor(4.0), n=1)
    assert meter.compute() == pytest.approx(1.75)
    assert isinstance(meter.compute(), float)
    meter.reset()
    with pytest.raises(ValueError, match="empty"):
        meter.compute()


# ---------------------------------------------------------------- History


def test_history_columns_best_and_round_trip() -> None:
    history = History()
    history.append({"epoch": 1, "train_loss": torch.tensor(0.9), "val_loss": 0.7})
    history.append({"epoch": 2, "train_loss": 0.5, "val_loss": 0.6})
    history.append({"epoch": 3, "train_loss": 0.3})  # no validation this epoch
    assert len(history) == 3
    assert history["train_loss"] == pytest.approx([0.9, 0.5, 0.3])
    assert isinstance(history["train_loss"][0], float)  # tensors become plain floats
    assert math.isnan(history["val_loss"][2])
    assert history.best("val_loss", "min")["epoch"] == 2
    assert history.best("train_loss", "max")["epoch"] == 1
    restored = History.from_dict(history.to_dict())
    assert restored.epochs == history.epochs
    with pytest.raises(KeyError, match="top1_acc"):
        history["top1_acc"]


def test_history_plot_and_table() -> None:
    history = History([{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "train_accuracy": 0.5 + e / 10,
                        "top1_acc": 0.4 + e / 10} for e in (1, 2, 3)])
    fig = plots.plot_curves(history)
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    assert sorted(line.get_label() for line in fig.axes[0].lines) == ["train_loss", "val_loss"]
    single = plots.plot_curves(history, keys=["val_loss"])
    assert len(single.axes) == 1 and len(single.axes[0].lines) == 1
    table = history.to_table()
    assert table.splitlines()[0].split() == history.keys() and len(table.splitlines()) == 4
    assert history._repr_html_().count("<tr>") == 4


# ---------------------------------------------------------------- Trainer


def test_fit_learns_the_blobs(loaders) -> None:
    train_loader, val_loader = loaders
    history = quiet_trainer(mlp()).fit(train_loader, val_loader, epochs=5)
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_loss"][-1] < history["val_loss"][0]
    assert history["train_accuracy"][-1] > history["train_accuracy"][0]
    assert history["top1_acc"][-1] >= 0.95


def test_history_keys_and_lengths(loaders) -> None:
    trainer = quiet_trainer(mlp())
    history = trainer.fit(*loaders, epochs=3)
    assert len(history) == 3 and history is trainer.history
    assert history.keys() == ["epoch", "train_loss", "train_accuracy", "val_loss", "top1_acc", "top5_acc", "lr", "seconds"]
    assert history["epoch"] == [1, 2, 3]
    assert all(len(history[key]) == 3 for key in history.keys())
    assert trainer.stop_reason == "finished 3 epochs"


def test_prints_one_line_per_epoch_in_the_slides_format(loaders, capsys) -> None:
    Trainer(mlp(), device="cpu", progress=True).fit(*loaders, epochs=2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    matches = [EPOCH_LINE.match(line) for line in lines]
    assert all(matches), lines
    assert [m.groups() for m in matches] == [("1", "2"), ("2", "2")]


def test_without_validation_the_line_has_only_training_numbers(loaders, capsys) -> None:
    history = Trainer(mlp(), device="cpu", progress=False).fit(loaders[0], epochs=1)
    line = capsys.readouterr().out.strip()
    assert re.fullmatch(r"Epoch 1/1 - \d+\.\ds - train_loss: \d+\.\d+ - train_accuracy: [01]\.\d+", line), line
    assert "val_loss" not in history.keys()


def test_soft_targets_train_and_evaluate(loaders) -> None:
    x, y = blobs().tensors
    soft = nn.functional.one_hot(y, 2).float() * 0.9 + 0.05  # label smoothing by hand: (N, 2)
    loader = DataLoader(TensorDataset(x, soft), batch_size=16, shuffle=True)
    trainer = quiet_trainer(mlp())
    history = trainer.fit(loader, loader, epochs=3)
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert 0.0 <= history["train_accuracy"][-1] <= 1.0 and history["top1_acc"][-1] > 0.9


def test_evaluate_and_predict_do_not_change_the_model(loaders) -> None:
    trainer = quiet_trainer(mlp())
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    metrics = trainer.evaluate(loaders[1])
    assert set(metrics) == {"val_loss", "top1_acc", "top5_acc"} and metrics["top5_acc"] == 1.0
    logits = trainer.predict(loaders[1])
    assert logits.shape == (128, 2) and logits.dtype == torch.float32
    assert torch.equal(logits, trainer.predict(x for x, _ in loaders[1]))  # eval(): dropout off
    assert all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())


def test_any_list_of_batches_works_as_a_loader() -> None:
    x, y = blobs().tensors
    batches = [(x[i:i + 32], y[i:i + 32]) for i in range(0, len(y), 32)]  # like a loader already on the device
    history = quiet_trainer(mlp()).fit(batches, batches, epochs=2)
    assert len(history) == 2


def test_scheduler_steps_per_epoch_and_per_batch(loaders) -> None:
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = quiet_trainer(model, optimizer=optimizer, scheduler=scheduler).fit(loaders[0], epochs=3)
    assert history["lr"] == pytest.approx([0.1, 0.05, 0.025])  # the rate each epoch started with

    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    quiet_trainer(model, optimizer=optimizer, scheduler=scheduler, scheduler_step="batch").fit(loaders[0], epochs=1)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** len(loaders[0]))


def test_no_item_call_per_batch(loaders, monkeypatch) -> None:
    """Reading a number off the device (.item()) happens per epoch, not per batch."""
    calls = []
    real_item = torch.Tensor.item

    def counting_item(self):
        calls.append(1)
        return real_item(self)

    def count_items(batch_size: int) -> int:
        x, y = blobs().tensors  # a list of batches: DataLoader itself calls .item() when it starts
        loader = [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(y), batch_size)]
        model = mlp()
        trainer = quiet_trainer(model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
        calls.clear()
        monkeypatch.setattr(torch.Tensor, "item", counting_item)
        trainer.fit(loader, loader, epochs=2)
        monkeypatch.setattr(torch.Tensor, "item", real_item)
        return len(calls)

    many_batches, few_batches = count_items(batch_size=4), count_items(batch_size=64)
    assert many_batches == few_batches  # 32 batches per epoch or 2: the same number of syncs
    assert many_batches == 2 * 5  # two epochs, five numbers each


def test_bad_arguments_get_clear_errors(loaders) -> None:
    with pytest.raises(ValueError, match="scheduler_step"):
        Trainer(mlp(), device="cpu", scheduler_step="step")
    with pytest.raises(ValueError, match="CUDA"):
        resolve_amp_dtype(True, torch.device("cpu"))
    assert resolve_amp_dtype("auto", torch.device("cpu")) is None
    trainer = quiet_trainer(mlp())
    assert trainer.amp_dtype is None and not trainer.scaler.is_enabled()
    with pytest.raises(ValueError, match="epochs"):
        trainer.fit(loaders[0], epochs=0)
    with pytest.raises(ValueError, match="no batches"):
        trainer.fit([], epochs=1)
