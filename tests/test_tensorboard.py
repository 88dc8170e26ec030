"""TensorBoardLogger: read the event files back and check what a dashboard would show."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from ldl.train.callbacks import CancelFit, Callback
from ldl.train.tensorboard import TensorBoardLogger
from ldl.train.trainer import Trainer


def batches(num_batches: int = 3, batch_size: int = 8, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(x (B, 8) float32, y (B,) int64) batches of two separable classes."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(num_batches):
        y = torch.randint(0, 2, (batch_size,), generator=g)
        out.append((torch.randn(batch_size, 8, generator=g) + (2.0 * y - 1.0).unsqueeze(1), y))
    return out


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))


def read_events(log_dir: Path) -> EventAccumulator:
    # size_guidance 0: keep every event (the default keeps a sample of each tag).
    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    accumulator.Reload()
    return accumulator


def fit(log_dir: Path, epochs: int = 2, callbacks: tuple[Callback, ...] = (), **logger_kwargs) -> Trainer:
    logger = TensorBoardLogger(log_dir, **logger_kwargs)
    trainer = Trainer(tiny_model(), device="cpu", progress=False, verbose=False, callbacks=[logger, *callbacks])
    trainer.fit(batches(), batches(seed=1), epochs=epochs)
    return trainer


def test_scalars_histograms_and_images_are_written(tmp_path: Path) -> None:
    images = torch.rand(6, 3, 16, 16)
    trainer = fit(tmp_path, images=images)
    tags = read_events(tmp_path).Tags()

    expected_scalars = {"loss/train", "loss/val", "accuracy/train", "accuracy/val_top1", "accuracy/val_top5", "lr"}
    assert expected_scalars <= set(tags["scalars"])
    accumulator = read_events(tmp_path)
    for tag in expected_scalars:
        assert [event.step for event in accumulator.Scalars(tag)] == [1, 2]
    logged = [event.value for event in accumulator.Scalars("loss/val")]
    assert logged == pytest.approx(trainer.history["val_loss"], rel=1e-6)

    names = [name for name, _ in trainer.model.named_parameters()]
    assert set(tags["histograms"]) == {f"weights/{n}" for n in names} | {f"grads/{n}" for n in names}
    for tag in tags["histograms"]:
        assert [event.step for event in accumulator.Histograms(tag)] == [1, 2]
    assert tags["images"] == ["images"]
    assert len(accumulator.Images("images")) == 1


def test_gradients_are_those_of_the_last_batch(tmp_path: Path) -> None:
    class KeepLastGradients(Callback):
        def on_batch_end(self, trainer: Trainer) -> None:
            self.grad = trainer.model[0].weight.grad.clone()

    keeper = KeepLastGradients()
    fit(tmp_path, epochs=1, callbacks=(keeper,))
    histogram = read_events(tmp_path).Histograms("grads/0.weight")[0].histogram_value
    assert histogram.num == keeper.grad.numel()
    assert histogram.sum == pytest.approx(float(keeper.grad.sum()), rel=1e-4, abs=1e-6)


def test_histogram_every_and_switching_histograms_off(tmp_path: Path) -> None:
    fit(tmp_path / "every2", epochs=3, histogram_every=2)
    steps = [event.step for event in read_events(tmp_path / "every2").Histograms("weights/0.weight")]
    assert steps == [2, 3]  # every 2nd epoch, and the last one

    fit(tmp_path / "off", histograms=False)
    assert read_events(tmp_path / "off").Tags()["histograms"] == []


def test_writer_is_closed_after_a_cancelled_fit(tmp_path: Path) -> None:
    class StopAfterFirstEpoch(Callback):
        def on_epoch_end(self, trainer: Trainer) -> None:
            raise CancelFit("enough")

    logger = TensorBoardLogger(tmp_path)
    trainer = Trainer(tiny_model(), device="cpu", progress=False, verbose=False,
                      callbacks=[logger, StopAfterFirstEpoch()])
    trainer.fit(batches(), epochs=3)
    assert logger.writer is None
    assert [event.step for event in read_events(tmp_path).Scalars("loss/train")] == [1]


@pytest.mark.parametrize("images", [torch.rand(3, 16, 16), torch.rand(4, 5, 8, 8), [1, 2, 3]])
def test_bad_images_are_refused_with_the_expected_shape(images, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        TensorBoardLogger(tmp_path, images=images)


def test_uint8_images_are_accepted(tmp_path: Path) -> None:
    fit(tmp_path, epochs=1, images=torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8))
    assert read_events(tmp_path).Tags()["images"] == ["images"]
