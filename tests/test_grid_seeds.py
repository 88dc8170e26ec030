"""run_grid over several seeds: paired runs, mean ± sd tables, paired differences, the clean gap, ensembles."""

from __future__ import annotations

import math
import statistics

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ldl.train import RunConfig, run_grid
from ldl.train.seed_stats import ensemble_accuracy, format_mean_sd

SEEDS = [0, 1, 2]


def data() -> tuple[DataLoader, DataLoader, DataLoader]:
    """Two noisy classes of 8 features: 64 training samples (shuffled, and fixed for clean accuracy), 32 validation."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (96,), generator=g)
    x = torch.randn(96, 8, generator=g) + 0.6 * (2.0 * y - 1.0).unsqueeze(1)
    train = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=16, shuffle=True)
    train_eval = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=64)
    val = DataLoader(TensorDataset(x[64:], y[64:]), batch_size=32)
    return train, train_eval, val


def mlp(hidden: int = 16, dropout: float = 0.3, lr: float = 0.1):
    def build():
        model = nn.Sequential(nn.Linear(8, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 2))
        return model, torch.optim.SGD(model.parameters(), lr=lr), None

    return build


def grid(configs, **options):
    train, _, val = data()
    return run_grid(configs, train, val, epochs=options.pop("epochs", 3), device="cpu", progress=False, **options)


def numbers(history) -> list[dict]:
    """A history's epochs without their wall times, which differ from run to run."""
    return [{k: v for k, v in logs.items() if k != "seconds"} for logs in history.epochs]


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_configs_are_paired_on_the_same_seeds() -> None:
    comparison = grid([RunConfig("a", mlp()), RunConfig("twin", mlp())], seeds=SEEDS)
    assert comparison.seeds == SEEDS
    for a, twin in zip(comparison.seed_histories["a"], comparison.seed_histories["twin"]):
        assert numbers(a) == numbers(twin)
    assert comparison.difference("a", "twin") == (0.0, 0.0)
    assert not comparison.is_clear("a", "twin")
    assert len(comparison.seed_models["a"]) == 3
    assert all(next(m.parameters()).device.type == "cpu" for m in comparison.seed_models["a"])


def test_different_seeds_give_different_runs_and_the_first_is_the_back_compatible_one() -> None:
    comparison = grid([RunConfig("a", mlp())], seeds=SEEDS)
    losses = [tuple(h["train_loss"]) for h in comparison.seed_histories["a"]]
    assert len(set(losses)) == 3
    assert comparison.histories["a"] is comparison.seed_histories["a"][0]
    assert comparison.models["a"] is comparison.seed_models["a"][0]
    # Run k starts from seed k: the same as a single-seed grid with seed=k.
    single = grid([RunConfig("a", mlp())], seed=1)
    assert numbers(single.histories["a"]) == numbers(comparison.seed_histories["a"][1])
    assert same_weights(single.models["a"], comparison.seed_models["a"][1])


def test_the_single_seed_path_is_unchanged() -> None:
    configs = [RunConfig("plain", mlp(dropout=0.0)), RunConfig("dropout", mlp(dropout=0.5))]
    one, listed = grid(configs, seed=0), grid(configs, seeds=[0])
    for name in ("plain", "dropout"):
        assert numbers(one.histories[name]) == numbers(listed.histories[name])
        row = one.row(name)
        assert "seeds" not in row and not any(key.endswith("_sd") for key in row)
        assert row["gap_kind"] == "running"
        assert row["gap"] == pytest.approx(row["train_accuracy"] - row["top1_acc"])
    header = one.to_markdown().splitlines()[0]
    assert header == "| run | train acc | val acc | gap | best val acc | best epoch | seconds |"
    assert "±" not in one.to_markdown() and "±" not in one._repr_html_()
    assert one.seeds == [0] and len(one.seed_histories["plain"]) == 1
    assert not one.is_clear("plain", "dropout")  # one seed: cannot tell
    assert math.isnan(one.difference("plain", "dropout")[1])


def test_rows_and_tables_show_mean_and_sd_over_seeds() -> None:
    comparison = grid([RunConfig("a", mlp()), RunConfig("b", mlp(hidden=4))], seeds=SEEDS)
    row = comparison.row("a")
    finals = [h["top1_acc"][-1] for h in comparison.seed_histories["a"]]
    assert row["seeds"] == 3
    assert row["top1_acc"] == pytest.approx(statistics.fmean(finals))
    assert row["top1_acc_sd"] == pytest.approx(statistics.stdev(finals))
    for key in ("train_accuracy", "gap", "best_top1_acc", "best_epoch", "seconds"):
        assert f"{key}_sd" in row
    markdown = comparison.to_markdown().splitlines()
    assert markdown[0].startswith("| run | seeds | train acc | val acc | gap |")
    cells = [cell.strip() for cell in markdown[2].strip("|").split("|")]
    assert cells[:2] == ["a", "3"]
    assert cells[3] == f"{row['top1_acc']:.3f} ± {row['top1_acc_sd']:.3f}"
    assert cells[4] == f"{row['gap']:+.3f} ± {row['gap_sd']:.3f}"
    assert f"<td>{cells[3]}</td>" in comparison._repr_html_()
    assert "(3 seeds)" in comparison.summary_line("a") and "±" in comparison.summary_line("a")
    assert format_mean_sd(0.5, 0.25, "+.2f") == "+0.50 ± 0.25" and format_mean_sd(0.5, math.nan, ".1f") == "0.5"


def test_seed_and_seeds_are_exclusive() -> None:
    with pytest.raises(ValueError, match="exactly one of seed"):
        grid([RunConfig("a", mlp())], seed=0, seeds=[0, 1])
    with pytest.raises(ValueError, match="exactly one of seed"):
        grid([RunConfig("a", mlp())])
    with pytest.raises(ValueError, match="distinct"):
        grid([RunConfig("a", mlp())], seeds=[])


def test_a_train_eval_loader_gives_the_clean_gap() -> None:
    train, train_eval, val = data()
    for seeds in ([0], SEEDS):
        comparison = run_grid([RunConfig("a", mlp(dropout=0.5))], train, val, epochs=2, seeds=seeds,
                              train_eval_loader=train_eval, device="cpu", progress=False)
        assert comparison.gap_kind == "clean"
        histories = comparison.seed_histories["a"]
        clean_gaps = [h.clean_gap() for h in histories]
        assert all(gap is not None for gap in clean_gaps)
        row = comparison.row("a")
        assert row["gap_kind"] == "clean" and row["gap"] == pytest.approx(statistics.fmean(clean_gaps))
        assert row["gap"] != pytest.approx(row["train_accuracy"] - row["top1_acc"])  # dropout lowers the running one
        assert "| clean gap |" in comparison.to_markdown().splitlines()[0]
        assert "clean gap" in comparison.summary_line("a")


def test_difference_is_the_paired_mean_and_sd() -> None:
    comparison = grid([RunConfig("fast", mlp(lr=0.3)), RunConfig("slow", mlp(lr=0.01))], seeds=SEEDS)
    fast = [h["top1_acc"][-1] for h in comparison.seed_histories["fast"]]
    slow = [h["top1_acc"][-1] for h in comparison.seed_histories["slow"]]
    diffs = [f - s for f, s in zip(fast, slow)]
    mean = sum(diffs) / 3
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 2)
    got_mean, got_sd = comparison.difference("fast", "slow")
    assert got_mean == pytest.approx(mean) and got_sd == pytest.approx(sd)
    assert comparison.is_clear("fast", "slow") == (abs(mean) > sd)
    loss_mean, _ = comparison.difference("fast", "slow", key="val_loss")
    assert loss_mean == pytest.approx(statistics.fmean(
        [a["val_loss"][-1] - b["val_loss"][-1]
         for a, b in zip(comparison.seed_histories["fast"], comparison.seed_histories["slow"])]))
    with pytest.raises(KeyError, match="no final"):
        comparison.difference("fast", "slow", key="nothing")


def test_the_ensemble_is_at_least_as_good_as_its_worst_member() -> None:
    _, _, val = data()
    comparison = grid([RunConfig("a", mlp(dropout=0.0))], seeds=SEEDS, epochs=2)
    members = [ensemble_accuracy([model], val, "cpu") for model in comparison.seed_models["a"]]
    for model, history in zip(comparison.seed_models["a"], comparison.seed_histories["a"]):
        assert ensemble_accuracy([model], val, "cpu") == pytest.approx(history["top1_acc"][-1])
    together = comparison.ensemble_accuracy("a", val, device="cpu")
    assert together >= min(members)
    assert all(next(m.parameters()).device.type == "cpu" for m in comparison.seed_models["a"])
    # By hand: the averaged softmax of the three models, then the argmax.
    x, y = next(iter(val))
    with torch.no_grad():
        probabilities = torch.stack([m.eval()(x).softmax(1) for m in comparison.seed_models["a"]]).mean(0)
    assert together == pytest.approx((probabilities.argmax(1) == y).float().mean().item())
    with pytest.raises(KeyError, match="No run"):
        comparison.ensemble_accuracy("missing", val)
