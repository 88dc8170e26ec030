"""FreezeBatchNorm keeps frozen norms fixed; TimeBudget stops a fit in time."""

from __future__ import annotations

import torch
from torch import nn

from ldl.train import Trainer
from ldl.train.callbacks import Callback, FreezeBatchNorm, TimeBudget


def batches(num_batches: int = 4, batch_size: int = 8) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    return [
        (torch.randn(batch_size, 3, 8, 8, generator=generator) * 3 + 2, torch.randint(0, 2, (batch_size,), generator=generator))
        for _ in range(num_batches)
    ]


def small_cnn() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),  # the "base"
        nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2),  # the "head"
    )


def fit(model: nn.Module, callbacks: list[Callback], epochs: int = 1) -> Trainer:
    trainer = Trainer(model, device="cpu", progress=False, verbose=False, callbacks=callbacks)
    trainer.fit(batches(), epochs=epochs)
    return trainer


def test_frozen_batchnorm_keeps_its_running_statistics() -> None:
    model = small_cnn()
    for p in model[:3].parameters():  # freeze the first conv + BN
        p.requires_grad_(False)
    frozen_bn, trained_bn = model[1], model[4]
    before_frozen = frozen_bn.running_mean.clone()
    before_trained = trained_bn.running_mean.clone()
    fit(model, [FreezeBatchNorm()])
    assert torch.equal(frozen_bn.running_mean, before_frozen)
    assert frozen_bn.num_batches_tracked.item() == 0
    assert not torch.equal(trained_bn.running_mean, before_trained)  # the unfrozen one still learns


def test_without_the_callback_frozen_batchnorm_drifts() -> None:
    model = small_cnn()
    for p in model[:3].parameters():
        p.requires_grad_(False)
    before = model[1].running_mean.clone()
    fit(model, [])
    assert not torch.equal(model[1].running_mean, before)


class FakeClock:
    """A clock that advances one second per epoch, whatever the machine's load."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class OneSecondPerEpoch(Callback):
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def on_train_epoch_start(self, trainer: Trainer) -> None:
        self.clock.now += 1.0


def test_time_budget_stops_before_the_epoch_that_would_overrun() -> None:
    clock = FakeClock()
    trainer = fit(small_cnn(), [OneSecondPerEpoch(clock), TimeBudget(3.5, clock=clock)], epochs=20)
    # After 3 epochs 3 s are gone and a 4th would end at 4 s > 3.5 s: stop there.
    assert len(trainer.history) == 3
    assert "time budget" in trainer.stop_reason


def test_time_budget_lets_a_short_fit_finish() -> None:
    trainer = fit(small_cnn(), [TimeBudget(60)], epochs=2)
    assert len(trainer.history) == 2 and trainer.stop_reason == "finished 2 epochs"


def test_all_batchnorm_can_stay_in_eval_while_their_scale_and_shift_learn() -> None:
    model = small_cnn()
    for p in model[:3].parameters():
        p.requires_grad_(False)
    trained_bn = model[4]
    before_mean, before_weight = trained_bn.running_mean.clone(), trained_bn.weight.detach().clone()
    fit(model, [FreezeBatchNorm(only_frozen=False)])
    assert torch.equal(trained_bn.running_mean, before_mean)  # statistics kept
    assert not torch.equal(trained_bn.weight, before_weight)  # gamma still trained
