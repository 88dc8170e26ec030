"""Gradient clipping in the Trainer, and the GradientStats / NonFiniteGuard callbacks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from ldl.train import Callback, GradientStats, NonFiniteGuard, Trainer, load_checkpoint


def _loader(batches: int = 6, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    # Large inputs give large gradients, so clipping has work to do.
    return [(10 * torch.randn(16, 12, generator=generator), torch.randint(0, 3, (16,), generator=generator))
            for _ in range(batches)]


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 3))


def _trainer(model: nn.Module, **kwargs) -> Trainer:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    return Trainer(model, optimizer=optimizer, device="cpu", progress=False, verbose=False, **kwargs)


class GradientSpy(Callback):
    """Reads the gradients the optimizer used (still there at on_batch_end)."""

    def __init__(self) -> None:
        self.total_norms: list[float] = []
        self.max_abs: list[float] = []
        self.pre_clip: list[float] = []

    def on_batch_end(self, trainer: Trainer) -> None:
        grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
        self.total_norms.append(torch.nn.utils.get_total_norm(grads).item())
        self.max_abs.append(max(g.abs().max().item() for g in grads))
        if trainer.grad_norm is not None:
            self.pre_clip.append(trainer.grad_norm.item())


def test_clip_by_norm_bounds_every_step_and_logs_the_pre_clip_norm() -> None:
    spy = GradientSpy()
    trainer = _trainer(_model(), clip_grad_norm=1.0, callbacks=[spy])
    history = trainer.fit(_loader(), epochs=2)
    assert len(spy.total_norms) == 12
    assert max(spy.total_norms) <= 1.0 + 1e-6
    assert max(spy.pre_clip) > 1.0  # there was something to clip
    assert isinstance(trainer.grad_norm, torch.Tensor)
    mean_pre_clip = sum(spy.pre_clip[6:]) / 6  # the epoch mean is of norms *before* clipping
    assert history[-1]["grad_norm"] == pytest.approx(mean_pre_clip, rel=1e-5)


def test_clip_by_value_bounds_every_element() -> None:
    spy = GradientSpy()
    trainer = _trainer(_model(), clip_grad_value=0.01, callbacks=[spy])
    history = trainer.fit(_loader(), epochs=1)
    assert max(spy.max_abs) <= 0.01 + 1e-9
    assert history[-1]["grad_norm"] > 0.01 * 20  # pre-clip norm: far above what clipping leaves
    assert history[-1]["grad_norm"] == pytest.approx(sum(spy.pre_clip) / len(spy.pre_clip), rel=1e-5)


def test_no_clipping_is_unchanged() -> None:
    plain, unclipped, clipped = _model(), _model(), _model()
    _trainer(plain).fit(_loader(), epochs=2)
    history = _trainer(unclipped, clip_grad_norm=None, clip_grad_value=None).fit(_loader(), epochs=2)
    _trainer(clipped, clip_grad_norm=1.0).fit(_loader(), epochs=2)
    for a, b in zip(plain.parameters(), unclipped.parameters()):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, c) for a, c in zip(plain.parameters(), clipped.parameters()))
    assert "grad_norm" not in history[-1]


@pytest.mark.parametrize("kwargs", [{"clip_grad_norm": 0.0}, {"clip_grad_value": -1.0},
                                    {"clip_grad_norm": 1.0, "clip_grad_value": 1.0}])
def test_bad_clipping_options_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="clip_grad"):
        _trainer(_model(), **kwargs)


def test_gradient_stats_records_weight_norms() -> None:
    stats = GradientStats(every=2)
    model = _model()
    trainer = _trainer(model, callbacks=[stats])
    trainer.fit(_loader(), epochs=2)
    assert [r["step"] for r in stats.records] == [2, 4, 6, 8, 10, 12]
    assert [r["epoch"] for r in stats.records] == [1, 1, 1, 2, 2, 2]
    assert set(stats.records[0]["norms"]) == {"0.weight", "2.weight"}  # weights only, no biases
    # The last record is the last batch's gradient, still in .grad after the fit.
    assert stats.records[-1]["norms"]["2.weight"] == pytest.approx(model[2].weight.grad.norm().item())


class BlowUp(nn.Linear):
    """A Linear layer whose output becomes infinite on one chosen batch."""

    def __init__(self, *args, blow_at_call: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls, self.blow_at_call = 0, blow_at_call

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out = super().forward(x)
        return out * math.inf if self.calls == self.blow_at_call else out


def test_non_finite_guard_names_the_first_bad_layer_and_keeps_a_good_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(0)
    frozen = nn.Linear(12, 16)
    frozen.requires_grad_(False)  # no gradient at all: the guard must skip it
    model = nn.Sequential(frozen, nn.ReLU(), BlowUp(16, 16, blow_at_call=9), nn.ReLU(), nn.Linear(16, 3))
    path = tmp_path / "good.pt"
    guard = NonFiniteGuard(checkpoint_path=path)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05)
    trainer = Trainer(model, optimizer=optimizer, device="cpu", progress=False, verbose=False, callbacks=[guard])
    history = trainer.fit(_loader(), epochs=3)  # 6 batches an epoch: call 9 is epoch 2, step 9
    assert len(history) == 1
    assert "'2.weight'" in trainer.stop_reason and "'4.weight'" not in trainer.stop_reason
    assert "step 9" in trainer.stop_reason and "epoch 2" in trainer.stop_reason
    assert str(path) in trainer.stop_reason
    checkpoint = load_checkpoint(path)
    assert checkpoint["epoch"] == 1
    assert all(torch.isfinite(value).all() for value in checkpoint["model"].values())
    # The bad step was never taken: the model's weights are still finite too.
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_non_finite_guard_stops_a_diverging_fit() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(12, 12) for _ in range(8)], nn.Linear(12, 3))
    guard = NonFiniteGuard()
    trainer = Trainer(model, optimizer=torch.optim.SGD(model.parameters(), lr=1e6), device="cpu",
                      progress=False, verbose=False, callbacks=[guard])
    trainer.fit(_loader(batches=20), epochs=5)
    assert guard.message is not None and trainer.stop_reason == guard.message
    assert "non-finite gradient" in guard.message and "no checkpoint_path" in guard.message


class Unscaler(Callback):
    """A callback that unscales the gradients itself, as Callback.after_backward tells it to."""

    def after_backward(self, trainer: Trainer) -> None:
        trainer.scaler.unscale_(trainer.optimizer)


@pytest.mark.parametrize("callbacks", [[], [Unscaler()]], ids=["trainer-unscales", "callback-unscaled-first"])
def test_clipping_sees_unscaled_gradients_with_a_loss_scaler(callbacks: list[Callback]) -> None:
    plain, scaled = _model(), _model()
    plain_history = _trainer(plain, clip_grad_norm=0.5).fit(_loader(batches=3), epochs=1)
    trainer = _trainer(scaled, clip_grad_norm=0.5, callbacks=callbacks)
    # The float16 path, on the CPU: the loss is multiplied by 1024 before backward.
    trainer.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    history = trainer.fit(_loader(batches=3), epochs=1)
    assert history[-1]["grad_norm"] == pytest.approx(plain_history[-1]["grad_norm"], rel=1e-4)
    for a, b in zip(plain.parameters(), scaled.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
