"""Clean training metrics: the train/validation gap measured like with like (CPU, a few seconds).

The running ``train_accuracy`` is averaged over augmented batches with dropout on, so
augmentation and dropout lower it by construction. ``fit(..., train_eval_loader=...)`` also
measures the unaugmented training photos in eval mode: ``clean_train_accuracy``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from ldl import plots  # noqa: E402
from ldl.train.callbacks import Callback, ModelCheckpoint  # noqa: E402
from ldl.train.checkpoint import load_checkpoint  # noqa: E402
from ldl.train.history import History  # noqa: E402
from ldl.train.trainer import Trainer  # noqa: E402
from tests.test_trainer import blobs  # noqa: E402 - the same two Gaussian blobs

CLEAN_LINE = re.compile(
    r"^Epoch (\d+)/(\d+) - \d+\.\d+s - train_loss: \d+\.\d+ - train_accuracy: [01]\.\d+"
    r" - clean_train_acc: [01]\.\d+ - val_loss: \d+\.\d+ - top1_acc: [01]\.\d+ - top5_acc: [01]\.\d+$"
)


class NoisyLoader:
    """The training loader, "augmented": each batch ``x`` (B, 8) gets Gaussian noise of std ``noise``.

    The noise is drawn from torch's global generator, as the device augmentation draws its own,
    so a resumed fit (which restores that generator) sees the same noise.
    """

    def __init__(self, dataset: TensorDataset, noise: float, batch_size: int = 16) -> None:
        self.loader = DataLoader(dataset, batch_size=batch_size, shuffle=True)
        self.noise = noise

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for x, y in self.loader:
            yield x + self.noise * torch.randn_like(x), y


def dropout_mlp(p: float = 0.9) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Dropout(p), nn.Linear(64, 2))


def loaders(noise: float = 4.0) -> tuple[NoisyLoader, DataLoader, DataLoader]:
    """(augmented train, clean train_eval over the same photos, validation)."""
    train = blobs()
    return NoisyLoader(train, noise), DataLoader(train, batch_size=32), DataLoader(blobs(seed=1), batch_size=32)


def quiet_trainer(model: nn.Module, **kwargs) -> Trainer:
    return Trainer(model, device="cpu", progress=False, verbose=False, **kwargs)


# ---------------------------------------------------------------- the numbers


def test_running_accuracy_is_lowered_by_augmentation_and_dropout_the_clean_one_is_not() -> None:
    train, train_eval, val = loaders()
    model = dropout_mlp(p=0.9)
    trainer = quiet_trainer(model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-2))
    history = trainer.fit(train, val, epochs=4, train_eval_loader=train_eval)
    last = history[-1]
    # Noise of std 4 on blobs 1.5 from the origin, and 90% of the hidden units dropped: the
    # running number is far below what the same weights score on the clean photos.
    assert last["clean_train_accuracy"] > 0.9
    assert last["train_accuracy"] < last["clean_train_accuracy"] - 0.15, last
    # The clean number is evaluate() on train_eval, with the epoch's final weights, in eval mode.
    independent = trainer.evaluate(train_eval)
    assert last["clean_train_accuracy"] == pytest.approx(independent["top1_acc"], abs=1e-6)
    assert last["clean_train_loss"] == pytest.approx(independent["val_loss"], rel=1e-5)


def test_without_train_eval_loader_nothing_changes() -> None:
    train, _, val = loaders()
    history = quiet_trainer(dropout_mlp()).fit(train, val, epochs=1)
    assert not any(key.startswith("clean_") for key in history.keys())
    assert history.clean_gap() is None


class ModeRecorder(Callback):
    """Records, for every forward through ``module``: (epoch, gradients on?, module.training)."""

    def __init__(self, module: nn.Module) -> None:
        self.calls: list[tuple[int, bool, bool]] = []
        self.trainer: Trainer | None = None
        module.register_forward_hook(self._record)

    def on_fit_start(self, trainer: Trainer) -> None:
        self.trainer = trainer

    def _record(self, module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        self.calls.append((self.trainer.epoch, torch.is_grad_enabled(), module.training))


@pytest.mark.parametrize("with_validation", [False, True])
def test_measuring_the_training_photos_leaves_dropout_on_for_the_next_epoch(with_validation: bool) -> None:
    train, train_eval, val = loaders()
    model = dropout_mlp()
    recorder = ModeRecorder(model[2])  # the Dropout
    trainer = quiet_trainer(model, callbacks=[recorder])
    trainer.fit(train, val if with_validation else None, epochs=2, train_eval_loader=train_eval)

    training = [active for epoch, grad, active in recorder.calls if epoch == 2 and grad]
    measuring = [active for epoch, grad, active in recorder.calls if not grad]
    assert len(training) == len(train) and all(training), "dropout must drop in epoch 2's training"
    assert measuring and not any(measuring), "the clean measurement must run in eval mode"
    # The mode after fit is what it was before train_eval_loader existed.
    reference = quiet_trainer(dropout_mlp())
    reference.fit(train, val if with_validation else None, epochs=1)
    assert model.training == reference.model.training == (not with_validation)


# ---------------------------------------------------------------- History, line, checkpoint


def test_history_keys_and_the_epoch_line(capsys) -> None:
    train, train_eval, val = loaders()
    history = Trainer(dropout_mlp(), device="cpu", progress=False).fit(train, val, epochs=2,
                                                                       train_eval_loader=train_eval)
    assert history.keys() == ["epoch", "train_loss", "train_accuracy", "clean_train_loss", "clean_train_accuracy",
                              "val_loss", "top1_acc", "top5_acc", "lr", "seconds"]
    lines = capsys.readouterr().out.strip().splitlines()
    assert [CLEAN_LINE.match(line).groups() for line in lines] == [("1", "2"), ("2", "2")], lines
    assert f"clean_train_acc: {history['clean_train_accuracy'][-1]:.2f}" in lines[-1]


def test_the_line_without_validation_shows_the_clean_accuracy(capsys) -> None:
    train, train_eval, _ = loaders()
    Trainer(dropout_mlp(), device="cpu", progress=False).fit(train, epochs=1, train_eval_loader=train_eval)
    line = capsys.readouterr().out.strip()
    assert re.fullmatch(r"Epoch 1/1 - \d+\.\ds - train_loss: \d+\.\d+ - train_accuracy: [01]\.\d+"
                        r" - clean_train_acc: [01]\.\d+", line), line


def run_fit(epochs: int, *, resume_from=None, callbacks=()) -> Trainer:
    """A fresh model, optimizer and loaders, as a new notebook session would build them."""
    torch.manual_seed(0)
    model = dropout_mlp(p=0.5)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    train, train_eval, val = loaders(noise=1.0)
    trainer = quiet_trainer(model, optimizer=optimizer, callbacks=callbacks)
    trainer.fit(train, val, epochs=epochs, resume_from=resume_from, train_eval_loader=train_eval)
    return trainer


def test_resume_keeps_the_clean_numbers_and_matches_an_uninterrupted_fit(tmp_path) -> None:
    straight = run_fit(epochs=4)
    run_fit(epochs=2, callbacks=[ModelCheckpoint(tmp_path / "ckpt.pt")])
    saved = History.from_dict(load_checkpoint(tmp_path / "ckpt.pt")["history"])
    assert saved["clean_train_accuracy"] == straight.history["clean_train_accuracy"][:2]
    assert saved["clean_train_loss"] == straight.history["clean_train_loss"][:2]

    torch.manual_seed(123)  # a later session: the global RNG is somewhere else entirely
    resumed = run_fit(epochs=4, resume_from=tmp_path / "ckpt.pt")
    assert resumed.history["epoch"] == [1, 2, 3, 4]
    for key in ("train_accuracy", "clean_train_loss", "clean_train_accuracy", "top1_acc"):
        assert resumed.history[key] == straight.history[key], key
    assert resumed.history.clean_gap() == straight.history.clean_gap()


# ---------------------------------------------------------------- History.clean_gap


def test_clean_gap_is_the_last_epochs_clean_minus_held_out_accuracy() -> None:
    history = History([{"epoch": 1, "train_accuracy": 0.5, "clean_train_accuracy": 0.7, "top1_acc": 0.6},
                       {"epoch": 2, "train_accuracy": 0.6, "clean_train_accuracy": 0.95, "top1_acc": 0.75}])
    assert history.clean_gap() == pytest.approx(0.20)
    assert History.from_dict(history.to_dict()).clean_gap() == pytest.approx(0.20)


def test_clean_gap_is_none_without_clean_numbers() -> None:
    assert History().clean_gap() is None
    assert History([{"epoch": 1, "train_accuracy": 0.9, "top1_acc": 0.6}]).clean_gap() is None
    assert History([{"epoch": 1, "clean_train_accuracy": 0.9}]).clean_gap() is None
    # Clean numbers in an earlier epoch only (e.g. a resumed fit without the loader): not the last epoch's gap.
    assert History([{"clean_train_accuracy": 0.9, "top1_acc": 0.6}, {"top1_acc": 0.7}]).clean_gap() is None


# ---------------------------------------------------------------- the gap in the figures


def clean_history() -> History:
    """Running train accuracy *below* validation (heavy augmentation), clean train above it."""
    return History(
        {"epoch": e, "train_loss": 1.0, "clean_train_loss": 0.2, "val_loss": 0.5,
         "train_accuracy": 0.5, "clean_train_accuracy": 0.8 + e / 40, "top1_acc": 0.7}
        for e in range(1, 5)
    )


def running_history() -> History:
    return History({"epoch": e, "train_accuracy": 0.5 + e / 10, "top1_acc": 0.6} for e in range(1, 5))


def accuracy_panel(fig: plt.Figure) -> plt.Axes:
    return next(ax for ax in fig.axes if ax.get_title().lower().endswith("accuracy"))


def test_plot_curves_gap_is_the_clean_gap_when_the_history_has_it() -> None:
    history = clean_history()
    fig = plots.plot_curves(history, gap=True)
    ax = accuracy_panel(fig)
    texts = [text.get_text() for text in ax.texts]
    assert texts == [f"gap {history.clean_gap():.2f} (clean)"] == ["gap 0.20 (clean)"]
    (shade,) = ax.collections
    assert shade.get_label() == "gap: clean train - validation"
    top = shade.get_paths()[0].vertices[:, 1].max()
    assert top == pytest.approx(max(history["clean_train_accuracy"]))  # not the running 0.5
    plt.close(fig)


def test_plot_curves_gap_says_running_without_clean_numbers() -> None:
    fig = plots.plot_curves(running_history(), gap=True)
    (ax,) = fig.axes
    (shade,) = ax.collections
    assert "running train (augmented)" in shade.get_label()
    assert any("running train (augmented)" in label for label in ax.get_legend_handles_labels()[1])
    assert [text.get_text() for text in ax.texts] == ["gap 0.30 (running)"]
    plt.close(fig)


def test_default_panels_draw_the_clean_curves_dotted() -> None:
    fig = plots.plot_curves(clean_history())
    loss, accuracy = fig.axes
    assert [(line.get_label(), line.get_linestyle()) for line in loss.lines] == [
        ("train_loss", "--"), ("clean_train_loss", ":"), ("val_loss", "-")]
    assert [(line.get_label(), line.get_linestyle()) for line in accuracy.lines] == [
        ("train_accuracy", "--"), ("clean_train_accuracy", ":"), ("top1_acc", "-")]
    plt.close(fig)


def test_plot_overfitting_and_compare_gaps_use_the_clean_gap() -> None:
    fig = plots.plot_overfitting(clean_history())
    ax = accuracy_panel(fig)
    assert [line.get_label() for line in ax.lines] == ["train", "clean train", "validation"]
    assert [text.get_text() for text in ax.texts] == ["gap 0.20 (clean)"]
    plt.close(fig)
    fig = plots.compare_gaps({"clean": clean_history(), "old": running_history()})
    assert [[text.get_text() for text in ax.texts] for ax in fig.axes] == [["gap 0.20 (clean)"], ["gap 0.30 (running)"]]
    plt.close(fig)


def test_a_nan_free_gap_from_the_trainer_matches_the_figure() -> None:
    train, train_eval, val = loaders()
    history = quiet_trainer(dropout_mlp()).fit(train, val, epochs=2, train_eval_loader=train_eval)
    gap = history.clean_gap()
    assert gap is not None and not math.isnan(gap)
    assert gap == pytest.approx(history["clean_train_accuracy"][-1] - history["top1_acc"][-1])
    fig = plots.plot_curves(history, gap=True)
    assert [text.get_text() for text in accuracy_panel(fig).texts] == [f"gap {gap:.2f} (clean)"]
    plt.close(fig)
