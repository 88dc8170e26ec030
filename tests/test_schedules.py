"""Per-batch schedules: one-cycle and SGDR in a real Trainer fit, previewed without a model."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ldl.train import LRRecorder, Trainer, one_cycle, preview_schedule, warm_restarts, warmup_cosine

BODY_LR, HEAD_LR = 1e-3, 1e-2


def tiny_loader(n: int = 40, batch_size: int = 8) -> DataLoader:
    """``n`` random samples ``(n, 6)`` float32 in 3 classes; 5 batches of 8 by default."""
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)),
                      batch_size=batch_size, shuffle=True)


def model_and_optimizer(optimizer_class: type = torch.optim.Adam) -> tuple[nn.Module, torch.optim.Optimizer]:
    """A two-layer net with differential rates: the body 10x slower than the head."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    optimizer = optimizer_class([
        {"params": model[0].parameters(), "lr": BODY_LR},
        {"params": model[2].parameters(), "lr": HEAD_LR},
    ])
    return model, optimizer


def fit(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler, loader: DataLoader, epochs: int) -> LRRecorder:
    recorder = LRRecorder()
    trainer = Trainer(model, optimizer=optimizer, scheduler=scheduler, scheduler_step="batch", device="cpu",
                      callbacks=[recorder], progress=False, verbose=False)
    trainer.fit(loader, epochs=epochs)
    return recorder


def test_one_cycle_in_a_trainer_fit_rises_to_max_lr_and_ends_tiny_with_ratios_kept() -> None:
    model, optimizer = model_and_optimizer()
    loader = tiny_loader()
    epochs, steps = 4, len(loader)
    scheduler = one_cycle(optimizer, epochs=epochs, steps_per_epoch=steps)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a scheduler stepped too often would warn or raise here
        recorder = fit(model, optimizer, scheduler, loader, epochs)

    lrs = recorder.lrs  # (steps, groups)
    assert lrs.shape == (epochs * steps, 2)
    head = lrs[:, 1]
    assert head[0].item() == pytest.approx(HEAD_LR / 25, rel=1e-9)
    assert head.max().item() == pytest.approx(HEAD_LR, rel=1e-6)
    peak = int(head.argmax())
    assert 0.2 * len(head) <= peak <= 0.4 * len(head)  # pct_start = 0.3
    assert torch.all(head[1 : peak + 1] >= head[:peak])  # warm-up: never falls
    assert torch.all(head[peak + 1 :] <= head[peak:-1])  # annealing: never rises
    assert head[-1].item() == pytest.approx(HEAD_LR / (25 * 1e4), rel=1e-6)
    assert torch.allclose(lrs[:, 0] / lrs[:, 1], torch.full_like(head, BODY_LR / HEAD_LR), rtol=1e-9)
    assert recorder.epochs == [e for e in range(1, epochs + 1) for _ in range(steps)]
    assert recorder.steps_per_epoch == steps


def test_one_epoch_more_than_planned_steps_past_the_end() -> None:
    """The other side of the test above: the step count must be exact."""
    model, optimizer = model_and_optimizer()
    loader = tiny_loader()
    scheduler = one_cycle(optimizer, epochs=2, steps_per_epoch=len(loader))
    with pytest.raises(ValueError, match="total steps"):
        fit(model, optimizer, scheduler, loader, epochs=3)


def test_one_cycle_max_lr_float_list_and_bad_inputs() -> None:
    _, optimizer = model_and_optimizer()
    lrs = preview_schedule(lambda opt: one_cycle(opt, max_lr=[0.2, 0.4], epochs=1, steps_per_epoch=10),
                           steps=10, base_lrs=(1.0, 1.0))
    assert lrs.max(dim=0).values.tolist() == pytest.approx([0.2, 0.4], rel=1e-9)
    lrs = preview_schedule(lambda opt: one_cycle(opt, max_lr=0.3, epochs=1, steps_per_epoch=10),
                           steps=10, base_lrs=(1.0, 2.0))
    assert lrs.max(dim=0).values.tolist() == pytest.approx([0.3, 0.3], rel=1e-9)

    with pytest.raises(ValueError, match="one per group"):
        one_cycle(optimizer, max_lr=[0.1, 0.2, 0.3], epochs=1, steps_per_epoch=10)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        one_cycle(optimizer, epochs=1, steps_per_epoch=0)
    with pytest.raises(ValueError, match="epochs"):
        one_cycle(optimizer, epochs=2.5, steps_per_epoch=10)


def test_a_second_one_cycle_on_a_scheduled_optimizer_asks_for_max_lr() -> None:
    """Running the cell twice must not silently start from the first schedule's tiny rate."""
    _, optimizer = model_and_optimizer()
    one_cycle(optimizer, epochs=1, steps_per_epoch=10)
    with pytest.raises(ValueError, match="max_lr"):
        one_cycle(optimizer, epochs=1, steps_per_epoch=10)
    scheduler = one_cycle(optimizer, max_lr=[BODY_LR, HEAD_LR], epochs=1, steps_per_epoch=10)
    assert scheduler.get_last_lr() == pytest.approx([BODY_LR / 25, HEAD_LR / 25], rel=1e-9)


def test_momentum_is_cycled_only_where_the_optimizer_has_it() -> None:
    _, plain_sgd = model_and_optimizer(torch.optim.SGD)
    one_cycle(plain_sgd, epochs=1, steps_per_epoch=10)
    assert [g["momentum"] for g in plain_sgd.param_groups] == [0, 0]

    _, adam = model_and_optimizer(torch.optim.Adam)
    one_cycle(adam, epochs=1, steps_per_epoch=10)
    assert [g["betas"][0] for g in adam.param_groups] == pytest.approx([0.95, 0.95])


def test_warm_restarts_restart_at_the_right_steps() -> None:
    steps_per_epoch, peak, floor = 4, 0.1, 1e-3
    lrs = preview_schedule(
        lambda opt: warm_restarts(opt, first_cycle_epochs=1, steps_per_epoch=steps_per_epoch, cycle_mult=2,
                                  min_lr=floor),
        steps=7 * steps_per_epoch + 2, base_lrs=(peak,))[:, 0]
    # Cycles of 1, 2 and 4 epochs: restarts after epochs 1 and 3, and 7.
    jumps = [i for i in range(1, len(lrs)) if lrs[i] > lrs[i - 1]]
    assert jumps == [4, 12, 28]
    for start, length in ((0, 4), (4, 8), (12, 16)):
        assert lrs[start].item() == pytest.approx(peak, rel=1e-9)
        for t in range(length):  # the cosine within the cycle
            expected = floor + (peak - floor) * (1 + math.cos(math.pi * t / length)) / 2
            assert lrs[start + t].item() == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("schedule", ["one_cycle", "warm_restarts"])
def test_preview_equals_what_a_real_fit_records(schedule: str) -> None:
    loader = tiny_loader()
    epochs, steps = 3, len(loader)

    def make(optimizer: torch.optim.Optimizer):
        if schedule == "one_cycle":
            return one_cycle(optimizer, epochs=epochs, steps_per_epoch=steps)
        return warm_restarts(optimizer, first_cycle_epochs=1, steps_per_epoch=steps, min_lr=1e-5)

    preview = preview_schedule(make, steps=epochs * steps, base_lrs=(BODY_LR, HEAD_LR))
    model, optimizer = model_and_optimizer()
    recorder = fit(model, optimizer, make(optimizer), loader, epochs)

    assert preview.shape == recorder.lrs.shape == (epochs * steps, 2)
    assert torch.equal(preview, recorder.lrs)


def test_recorder_starts_afresh_for_each_fit() -> None:
    model, optimizer = model_and_optimizer()
    loader = tiny_loader()
    recorder = LRRecorder()
    trainer = Trainer(model, optimizer=optimizer, device="cpu", callbacks=[recorder], progress=False, verbose=False)
    trainer.fit(loader, epochs=2)
    trainer.fit(loader, epochs=1)
    assert recorder.lrs.shape == (len(loader), 2)
    assert torch.equal(recorder.lrs, torch.tensor([[BODY_LR, HEAD_LR]] * len(loader), dtype=torch.float64))


def test_preview_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="steps"):
        preview_schedule(lambda opt: one_cycle(opt, epochs=1, steps_per_epoch=5), steps=0)
    with pytest.raises(ValueError, match="base_lrs"):
        preview_schedule(lambda opt: one_cycle(opt, epochs=1, steps_per_epoch=5), steps=5, base_lrs=())
    with pytest.raises(ValueError, match="cycle_mult"):
        preview_schedule(lambda opt: warm_restarts(opt, first_cycle_epochs=1, steps_per_epoch=5, cycle_mult=1.5),
                         steps=5)


def test_warmup_cosine_rises_linearly_then_falls_along_one_cosine() -> None:
    peak, floor, warmup, total = 0.4, 1e-3, 5, 25
    lrs = preview_schedule(lambda opt: warmup_cosine(opt, warmup_steps=warmup, total_steps=total, min_lr=floor),
                           steps=total + 1, base_lrs=(peak,))[:, 0]
    for t in range(warmup):  # 0.01 x peak at step 0, rising in equal steps
        assert lrs[t].item() == pytest.approx(peak * (0.01 + 0.99 * t / warmup), rel=1e-6)
    for t in range(total - warmup + 1):  # the cosine from the peak down to the floor
        expected = floor + (peak - floor) * (1 + math.cos(math.pi * t / (total - warmup))) / 2
        assert lrs[warmup + t].item() == pytest.approx(expected, rel=1e-6, abs=1e-12)
    assert lrs[total].item() == pytest.approx(floor)
    with pytest.raises(ValueError, match="warmup_steps must be between 1 and total_steps - 1"):
        warmup_cosine(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1), warmup_steps=10, total_steps=10)
