"""run_grid: every run starts from the same seed; Comparison summarises and plots them."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from ldl import plots  # noqa: E402
from ldl.augment import MixingLoader, MixUp  # noqa: E402
from ldl.train import Callback, Comparison, History, RunConfig, run_grid  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    """The plots draw with pyplot: close them so figures do not pile up across tests."""
    yield
    plt.close("all")


def loaders() -> tuple[DataLoader, DataLoader]:
    """Two noisy, overlapping classes of tiny (2, 2, 2) "images": 64 training and 32 validation samples."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (96,), generator=g)
    x = torch.randn(96, 8, generator=g) + 0.8 * (2.0 * y - 1.0).unsqueeze(1)
    x = x.view(96, 2, 2, 2)  # image-shaped, as MixUp expects (B, C, H, W)
    # shuffle=True draws its order from torch's global generator: run_grid must seed it.
    train = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=16, shuffle=True)
    val = DataLoader(TensorDataset(x[64:], y[64:]), batch_size=32)
    return train, val


def mlp(hidden: int = 16, dropout: float = 0.3):
    """A build function: a fresh MLP (with dropout, so the random stream matters), SGD, default loss."""

    def build():
        model = nn.Sequential(nn.Flatten(), nn.Linear(8, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 2))
        return model, torch.optim.SGD(model.parameters(), lr=0.1), None

    return build


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_runs_with_the_same_build_are_identical_whatever_ran_before(capsys) -> None:
    train, val = loaders()
    first = run_grid([RunConfig("a", mlp()), RunConfig("a again", mlp())], train, val,
                     epochs=3, seed=0, device="cpu", progress=False)
    assert first.histories["a"]["train_loss"] == first.histories["a again"]["train_loss"]
    assert same_weights(first.models["a"], first.models["a again"])
    # A wider network trained first takes other draws from the generator: it must not matter.
    second = run_grid([RunConfig("wide", mlp(hidden=64)), RunConfig("a", mlp())], train, val,
                      epochs=3, seed=0, device="cpu", progress=False)
    assert second.histories["a"]["val_loss"] == first.histories["a"]["val_loss"]
    assert same_weights(second.models["a"], first.models["a"])
    # Another seed: another start.
    other = run_grid([RunConfig("a", mlp())], train, val, epochs=3, seed=1, device="cpu", progress=False)
    assert other.histories["a"]["train_loss"] != first.histories["a"]["train_loss"]
    printed = capsys.readouterr().out
    assert printed.count("a: train_accuracy") == 3 and "wide: " in printed and "gap" in printed


def test_comparison_table_follows_the_histories() -> None:
    train, val = loaders()
    comparison = run_grid([RunConfig("plain", mlp(dropout=0.0)), RunConfig("dropout", mlp(dropout=0.5))],
                          train, val, epochs=4, seed=0, device="cpu", progress=True)
    rows = comparison.table()
    assert [row["name"] for row in rows] == ["plain", "dropout"]
    for row in rows:
        history = comparison.histories[row["name"]]
        assert len(history) == 4
        assert row["train_accuracy"] == history["train_accuracy"][-1]
        assert row["top1_acc"] == history["top1_acc"][-1]
        assert row["gap"] == pytest.approx(row["train_accuracy"] - row["top1_acc"])
        assert row["best_top1_acc"] == max(history["top1_acc"])
        assert history["top1_acc"][row["best_epoch"] - 1] == row["best_top1_acc"]
        assert row["seconds"] > 0
    assert all(next(model.parameters()).device.type == "cpu" for model in comparison.models.values())
    markdown = comparison.to_markdown().splitlines()
    assert len(markdown) == 2 + 2 and markdown[2].startswith("| plain |")
    assert "<td>dropout</td>" in comparison._repr_html_()
    fig = plots.plot_comparison(comparison)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert [line.get_label() for line in fig.axes[0].lines] == ["plain", "dropout"]  # a val curve per run
    assert len(fig.axes[1].patches) == 4  # a train and a validation bar per run


def test_epochs_to_reach() -> None:
    accuracies = [0.5, 0.7, 0.65, 0.9]
    history = History({"epoch": e, "train_accuracy": 1.0, "top1_acc": acc} for e, acc in enumerate(accuracies, 1))
    comparison = Comparison(histories={"run": history}, seconds={"run": 1.0})
    assert comparison.epochs_to_reach("run", 0.7) == 2
    assert comparison.epochs_to_reach("run", 0.8) == 4
    assert comparison.epochs_to_reach("run", 0.95) is None
    assert comparison.epochs_to_reach("run", 1.0, key="train_accuracy") == 1
    with pytest.raises(KeyError, match="run"):
        comparison.epochs_to_reach("other", 0.5)


class CountingLoader:
    """Wraps a loader; counts the batches drawn from it and keeps their images."""

    def __init__(self, loader) -> None:
        self.loader, self.batches, self.images = loader, 0, []

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for x, y in self.loader:
            self.batches += 1
            self.images.append(x)
            yield x, y


def test_every_run_sees_the_training_batches_in_the_same_order() -> None:
    train, val = loaders()
    recorder = CountingLoader(train)
    # The wide model draws 16 times more initial weights from the generator than the narrow
    # one; without dropout, nothing else draws during the fit, so every epoch's order matches.
    run_grid([RunConfig("narrow", mlp(hidden=4, dropout=0.0)), RunConfig("wide", mlp(hidden=64, dropout=0.0))],
             recorder, val, epochs=2, seed=0, device="cpu", progress=False)
    per_run = len(recorder.images) // 2
    narrow, wide = recorder.images[:per_run], recorder.images[per_run:]
    assert all(torch.equal(a, b) for a, b in zip(narrow, wide))
    assert not torch.equal(narrow[0], narrow[len(train)])  # yet a new order every epoch
    # With dropout of different sizes, the first epoch's order still matches.
    recorder.images.clear()
    run_grid([RunConfig("narrow", mlp(hidden=4)), RunConfig("wide", mlp(hidden=64))],
             recorder, val, epochs=1, seed=0, device="cpu", progress=False)
    narrow, wide = recorder.images[: len(train)], recorder.images[len(train):]
    assert all(torch.equal(a, b) for a, b in zip(narrow, wide))


class EpochCounter(Callback):
    def __init__(self) -> None:
        self.epochs = 0

    def on_epoch_end(self, trainer) -> None:
        self.epochs += 1


def test_a_config_can_bring_its_own_train_loader_and_fresh_callbacks() -> None:
    train, val = loaders()
    shared, own = CountingLoader(train), CountingLoader(train)
    made: list[EpochCounter] = []

    def callbacks() -> list[Callback]:
        made.append(EpochCounter())
        return [made[-1]]

    mixup = MixingLoader(own, MixUp(alpha=0.4, num_classes=2))  # soft labels (B, 2)
    configs = [RunConfig("plain", mlp(), callbacks=callbacks),
               RunConfig("mixup", mlp(), train_loader=mixup, callbacks=callbacks)]
    comparison = run_grid(configs, shared, val, epochs=2, seed=0, device="cpu", progress=False)
    assert shared.batches == own.batches == 2 * len(train)
    assert [counter.epochs for counter in made] == [2, 2]  # a fresh callback per run
    assert [comparison.callbacks[name] for name in ("plain", "mixup")] == [[made[0]], [made[1]]]
    assert comparison.histories["plain"]["train_loss"] != comparison.histories["mixup"]["train_loss"]


def test_run_grid_explains_bad_configs() -> None:
    train, val = loaders()
    with pytest.raises(ValueError, match="unique"):
        run_grid([RunConfig("a", mlp()), RunConfig("a", mlp())], train, val, epochs=1, seed=0, device="cpu")
    with pytest.raises(TypeError, match="must return"):
        run_grid([RunConfig("model only", lambda: nn.Linear(8, 2))], train, val, epochs=1, seed=0, device="cpu",
                 progress=False)
    with pytest.raises(ValueError, match="at least one"):
        run_grid([], train, val, epochs=1, seed=0)


def test_trainer_options_reach_every_run() -> None:
    train, val = loaders()

    def conv_build():
        model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Flatten(), nn.Linear(16, 2))
        return model, torch.optim.SGD(model.parameters(), lr=0.1), None

    for channels_last in (True, False):
        comparison = run_grid([RunConfig("conv", conv_build)], train, val, epochs=1, seed=0, device="cpu",
                              progress=False, channels_last=channels_last)
        weight = comparison.models["conv"][0].weight
        assert weight.is_contiguous(memory_format=torch.channels_last) is channels_last
