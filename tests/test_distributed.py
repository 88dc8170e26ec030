"""The Trainer on several processes: torchrun, gloo on the CPU, two processes.

The runs go through ``ldl.course.torchrun_example``, the script lesson 7 launches: two
processes at batch 16 must end with the weights of one process at batch 32, rank 0 alone
writes the checkpoint, and a run killed after an epoch resumes to the weights of an
uninterrupted one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from ldl.data.loader import DeviceLoader
from ldl.train import ModelCheckpoint, Trainer
from ldl.train.distributed import DistributedContext, EvenShardSampler, detect
from ldl.train.tensorboard import TensorBoardLogger

EPOCHS = 2


def run_example(out: Path, *arguments: str, processes: int = 1) -> subprocess.CompletedProcess:
    """Run the lesson's script, under torchrun when ``processes`` > 1, with one thread per process."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    command = (launcher if processes > 1 else [sys.executable]) + ["-m", "ldl.course.torchrun_example", "--out", str(out), *arguments]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def largest_difference(first: Path, second: Path) -> float:
    a, b = torch.load(first, weights_only=True), torch.load(second, weights_only=True)
    assert a.keys() == b.keys()
    return max((a[key] - b[key]).abs().max().item() for key in a)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("torchrun")
    jobs = {
        "two": (["--batch-size", "16", "--epochs", str(EPOCHS)], 2),
        "one": (["--batch-size", "32", "--epochs", str(EPOCHS)], 1),
        "two_device": (["--batch-size", "16", "--epochs", str(EPOCHS), "--loader", "device"], 2),
        "one_device": (["--batch-size", "32", "--epochs", str(EPOCHS), "--loader", "device"], 1),
    }
    for name, (arguments, processes) in jobs.items():
        done = run_example(root / name, *arguments, processes=processes)
        assert done.returncode == 0, f"{name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        (root / f"{name}.stdout").write_text(done.stdout)
    return root


def test_two_processes_at_batch_16_end_with_the_weights_of_one_at_batch_32(runs: Path) -> None:
    difference = largest_difference(runs / "two" / "weights.pt", runs / "one" / "weights.pt")
    assert difference < 1e-5, f"largest weight difference {difference:.2e}"
    # and the network did learn: the comparison is not between two untrained models
    history = json.loads((runs / "two" / "rank0.json").read_text())["history"]
    assert history["train_loss"][-1] < history["train_loss"][0]


def test_the_device_loader_is_sharded_the_same_way(runs: Path) -> None:
    difference = largest_difference(runs / "two_device" / "weights.pt", runs / "one_device" / "weights.pt")
    assert difference < 1e-5, f"largest weight difference {difference:.2e}"


def test_both_processes_log_the_same_metrics_of_all_photos(runs: Path) -> None:
    ranks = [json.loads((runs / "two" / f"rank{r}.json").read_text()) for r in (0, 1)]
    single = json.loads((runs / "one" / "rank0.json").read_text())
    assert [note["world_size"] for note in ranks] == [2, 2]
    assert ranks[0]["history"]["train_loss"] == ranks[1]["history"]["train_loss"]
    # all-reduced: the mean over all 256 photos, as one process measures it
    for key in ("train_loss", "train_accuracy"):
        assert ranks[0]["history"][key] == pytest.approx(single["history"][key], abs=1e-5)


def test_rank_0_alone_writes_the_checkpoint(runs: Path) -> None:
    ranks = [json.loads((runs / "two" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["saved_epoch"] == EPOCHS
    assert ranks[1]["saved_epoch"] is None
    assert sorted(path.name for path in (runs / "two").iterdir()) == ["checkpoint.pt", "rank0.json", "rank1.json",
                                                                       "weights.pt"]


def test_a_killed_distributed_run_resumes_to_the_uninterrupted_weights(runs: Path, tmp_path: Path) -> None:
    crashed = run_example(tmp_path / "run", "--batch-size", "16", "--epochs", str(EPOCHS), "--crash-after-epoch", "1",
                          processes=2)
    assert crashed.returncode != 0
    assert (tmp_path / "run" / "checkpoint.pt").exists() and not (tmp_path / "run" / "weights.pt").exists()
    resumed = run_example(tmp_path / "run", "--batch-size", "16", "--epochs", str(EPOCHS), "--resume", processes=2)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert "Epoch 1/" not in resumed.stdout and f"Epoch {EPOCHS}/{EPOCHS}" in resumed.stdout
    assert largest_difference(tmp_path / "run" / "weights.pt", runs / "two" / "weights.pt") < 1e-6


def test_only_rank_0_prints(runs: Path) -> None:
    assert (runs / "two.stdout").read_text().count(f"Epoch 1/{EPOCHS}") == 1


# ---------------------------------------------------------------- in one process


def test_detect_reads_torchrun_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert detect() == DistributedContext(0, 1, 0) and not detect().is_distributed
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    context = detect()
    assert (context.rank, context.world_size, context.local_rank, context.is_main) == (3, 4, 1, False)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ValueError, match="RANK=4"):
        detect()


def test_measuring_shards_hold_every_photo_exactly_once() -> None:
    shares = [list(EvenShardSampler(11, DistributedContext(rank, 3))) for rank in range(3)]
    assert sorted(sum(shares, [])) == list(range(11))


def test_sharded_device_loader_splits_each_epoch_and_reshuffles() -> None:
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 3, 2, 2).contiguous()
    loader = DeviceLoader(images, torch.zeros(10, dtype=torch.int64), batch_size=4, shuffle=True, mean=None, std=None)

    def seen(epoch: int) -> list[list[int]]:
        shares = []
        for rank in range(3):
            share = loader.shard(rank, 3, seed=5)
            share.set_epoch(epoch)
            shares.append([round(x[i, 0, 0, 0].item() * 255) for x, _ in share for i in range(len(x))])
        return shares

    first, second = seen(1), seen(2)
    assert [len(share) for share in first] == [4, 4, 4]  # padded to equal shares: 12 = 10 + 2 repeated
    assert set(sum(first, [])) == set(range(10))
    assert first != second  # a new order every epoch
    measuring = [loader.shard(rank, 3, pad=False) for rank in range(3)]
    assert sum(share._sample_count() for share in measuring) == 10


def test_callbacks_write_nothing_outside_rank_0(tmp_path: Path) -> None:
    torch.manual_seed(0)
    checkpoint = ModelCheckpoint(tmp_path / "checkpoint.pt")
    logger = TensorBoardLogger(tmp_path / "logs", histograms=False)
    trainer = Trainer(nn.Linear(4, 2), device="cpu", progress=False, verbose=False)
    trainer.epoch = trainer.epochs = 1
    trainer.logs = {"epoch": 1, "train_loss": 0.5}
    for rank, writes in ((1, False), (0, True)):
        # as each process sees itself (no process group joined here: waiting for the others is a no-op)
        trainer.distributed = DistributedContext(rank=rank, world_size=2)
        checkpoint.on_fit_start(trainer)
        logger.on_fit_start(trainer)
        checkpoint.on_epoch_end(trainer)
        logger.on_epoch_end(trainer)
        logger.on_fit_end(trainer)
        assert (checkpoint.saved_epoch == 1) is writes
        assert (tmp_path / "checkpoint.pt").exists() is writes
        assert (tmp_path / "logs").exists() is writes
