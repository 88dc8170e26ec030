"""The LR range test: an exponential sweep, early stop on divergence, a sensible suggestion,
and a model, optimizer and random state left exactly as they were."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ldl.train import lr_find
from ldl.train.lr_finder import steepest_descent_lr


def blobs(n: int = 256, features: int = 10, classes: int = 3, seed: int = 0) -> TensorDataset:
    """Gaussian blobs: an easy problem whose loss falls as soon as the rate is large enough."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, features, generator=g) * 2
    y = torch.randint(0, classes, (n,), generator=g)
    x = centres[y] + torch.randn(n, features, generator=g)  # (n, features) float32
    return TensorDataset(x, y)


def loader(n: int = 256, batch_size: int = 32, shuffle: bool = True) -> DataLoader:
    return DataLoader(blobs(n), batch_size=batch_size, shuffle=shuffle)


def bn_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))


class RecordingSGD(torch.optim.SGD):
    """SGD that remembers every group's rate at every step: what the sweep really used."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[list[float]] = []

    def step(self, closure=None):
        self.seen.append([group["lr"] for group in self.param_groups])
        return super().step(closure)


def snapshot(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Copies of everything lr_find must restore."""
    state = optimizer.state_dict()
    return {
        "model": {k: v.clone() for k, v in model.state_dict().items()},
        "modes": [m.training for m in model.modules()],
        "groups": [{k: v for k, v in g.items() if k != "params"} for g in state["param_groups"]],
        "moments": {i: {k: v.clone() for k, v in s.items()} for i, s in state["state"].items()},
        "rng": torch.get_rng_state(),
    }


def test_model_optimizer_and_rng_are_restored_bit_for_bit() -> None:
    model = bn_model()
    optimizer = torch.optim.Adam([
        {"params": model[0].parameters(), "lr": 1e-4},
        {"params": list(model[1].parameters()) + list(model[4].parameters()), "lr": 1e-3},
    ])
    data = loader()
    # A few real steps first, so that Adam has moments and BatchNorm running statistics moved.
    for x, y in list(data)[:3]:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    model.eval()
    model[3].train()  # a mixed mode, to check each module's flag is put back, not just the top one
    torch.manual_seed(123)
    before = snapshot(model, optimizer)

    result = lr_find(model, data, optimizer=optimizer, num_iter=30, device="cpu", progress=False)

    assert len(result.lrs) > 1  # the sweep really trained
    after = snapshot(model, optimizer)
    assert before["model"].keys() == after["model"].keys()
    for key, tensor in before["model"].items():  # weights and BN running_mean/var/num_batches_tracked
        assert torch.equal(tensor, after["model"][key]), key
    assert after["modes"] == before["modes"]
    assert after["groups"] == before["groups"]  # lrs, betas, ...
    assert before["moments"].keys() == after["moments"].keys() and before["moments"]
    for index, state in before["moments"].items():  # step, exp_avg, exp_avg_sq
        for key, tensor in state.items():
            assert torch.equal(tensor, after["moments"][index][key]), (index, key)
    assert torch.equal(before["rng"], after["rng"])
    assert all(p.grad is None for p in model.parameters())
    assert all(p.device.type == "cpu" for p in model.parameters())


def test_restored_even_when_the_sweep_fails() -> None:
    model = bn_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    calls = []

    def loss_that_breaks(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("a bad batch")
        return nn.functional.cross_entropy(logits, y)

    with pytest.raises(RuntimeError, match="a bad batch"):
        lr_find(model, loader(), loss_fn=loss_that_breaks, device="cpu", progress=False)
    assert len(calls) == 5
    for key, tensor in before.items():
        assert torch.equal(tensor, model.state_dict()[key]), key


def test_sweep_is_exponential_between_the_endpoints_and_cycles_the_loader() -> None:
    model = bn_model()
    optimizer = RecordingSGD(model.parameters(), lr=0.1)
    short = loader(n=64, batch_size=32)  # 2 batches: the sweep must go round 10 times
    result = lr_find(model, short, optimizer=optimizer, start_lr=1e-6, end_lr=1e-2, num_iter=20,
                     device="cpu", progress=False)

    assert len(result.lrs) == len(result.losses) == len(result.smoothed) == 20
    assert not result.stopped_early
    assert result.lrs[0] == pytest.approx(1e-6, rel=1e-9)
    assert result.lrs[-1] == pytest.approx(1e-2, rel=1e-9)
    ratios = [b / a for a, b in zip(result.lrs, result.lrs[1:])]
    assert ratios == pytest.approx([(1e-2 / 1e-6) ** (1 / 19)] * 19, rel=1e-9)  # one factor: exponential
    assert [seen[0] for seen in optimizer.seen] == pytest.approx(result.lrs, rel=1e-12)
    assert optimizer.param_groups[0]["lr"] == 0.1  # put back


def test_smoothed_loss_is_the_bias_corrected_moving_average() -> None:
    result = lr_find(bn_model(), loader(), start_lr=1e-6, end_lr=1e-3, num_iter=15, smooth=0.9,
                     device="cpu", progress=False)
    average = 0.0
    for i, (raw, smoothed) in enumerate(zip(result.losses, result.smoothed)):
        average = 0.9 * average + 0.1 * raw
        assert smoothed == pytest.approx(average / (1 - 0.9 ** (i + 1)), rel=1e-9)
    assert result.smoothed[0] == pytest.approx(result.losses[0], rel=1e-9)


def test_a_huge_end_lr_stops_early_when_the_loss_diverges() -> None:
    torch.manual_seed(0)
    model = nn.Linear(10, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    result = lr_find(model, loader(), optimizer=optimizer, start_lr=1e-4, end_lr=1e8, num_iter=100,
                     device="cpu", progress=False)

    assert result.stopped_early
    assert len(result.lrs) < 100
    *kept, last = result.smoothed
    assert not math.isfinite(last) or last > 4.0 * min(kept)  # the point that stopped it
    for i in range(1, len(kept)):  # and no earlier point would have
        assert math.isfinite(kept[i]) and kept[i] <= 4.0 * min(kept[:i])


def test_suggestion_lies_where_the_loss_falls() -> None:
    torch.manual_seed(0)
    model = nn.Linear(10, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    result = lr_find(model, loader(), optimizer=optimizer, start_lr=1e-5, end_lr=1e4, num_iter=100,
                     device="cpu", progress=False)

    assert result.lrs[0] < result.suggestion < result.min_loss_lr
    i = result.lrs.index(result.suggestion)
    assert result.smoothed[i + 1] < result.smoothed[i]  # falling there...
    assert result.smoothed[i] < result.smoothed[0]  # ...and already below where it started
    lowest = min(range(len(result.smoothed)), key=lambda k: result.smoothed[k])
    assert result.min_loss_lr == result.lrs[lowest]


def test_group_ratios_are_kept_and_the_last_group_is_reported() -> None:
    model = bn_model()
    optimizer = RecordingSGD([
        {"params": model[0].parameters(), "lr": 1e-4},
        {"params": model[1].parameters(), "lr": 5e-4},
        {"params": model[4].parameters(), "lr": 1e-3},
    ])
    result = lr_find(model, loader(), optimizer=optimizer, start_lr=1e-6, end_lr=1e-1, num_iter=12,
                     device="cpu", progress=False)

    assert len(optimizer.seen) == 12
    for reported, (body, middle, head) in zip(result.lrs, optimizer.seen):
        assert head == pytest.approx(reported, rel=1e-12)
        assert body / head == pytest.approx(0.1, rel=1e-9)
        assert middle / head == pytest.approx(0.5, rel=1e-9)
    assert [g["lr"] for g in optimizer.param_groups] == [1e-4, 5e-4, 1e-3]


def test_steepest_descent_of_a_known_curve_ignores_the_divergence_tail() -> None:
    log_lrs = torch.linspace(-6, 1, 71)
    lrs = (10**log_lrs).tolist()
    # A fall whose slope against log10(lr) is steepest at log10(lr) = -2 ...
    curve = (2 - torch.tanh(log_lrs + 2)).tolist()
    # ... then a minimum at 1e-1, and a noisy tail with a steep drop that is not learning.
    lowest = lrs.index(min(lrs, key=lambda lr: abs(math.log10(lr) + 1)))
    for k in range(lowest + 1, len(curve)):
        curve[k] = curve[lowest] + 0.5 * (k - lowest)
    curve[lowest + 6] = curve[lowest + 5] - 1.0  # still above the minimum

    suggestion = steepest_descent_lr(lrs, curve)
    assert 10**-2.15 <= suggestion <= 10**-1.85


def test_bad_arguments_say_what_to_do() -> None:
    model = bn_model()
    with pytest.raises(ValueError, match="start_lr < end_lr"):
        lr_find(model, loader(), start_lr=1.0, end_lr=1e-3, progress=False)
    with pytest.raises(ValueError, match="num_iter"):
        lr_find(model, loader(), num_iter=3, progress=False)
    with pytest.raises(ValueError, match="no batches"):
        lr_find(model, [], device="cpu", progress=False)
    zero_head = torch.optim.SGD([{"params": model[0].parameters(), "lr": 1e-3},
                                 {"params": model[4].parameters(), "lr": 0.0}])
    with pytest.raises(ValueError, match="last parameter group"):
        lr_find(model, loader(), optimizer=zero_head, device="cpu", progress=False)


def test_summary_names_the_rates() -> None:
    result = lr_find(bn_model(), loader(), start_lr=1e-5, end_lr=1.0, num_iter=20, device="cpu", progress=False)
    text = result.summary()
    assert f"{result.suggestion:.1e}" in text
    assert f"{result.min_loss_lr:.1e}" in text
    assert "20 batches" in text


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_model_and_optimizer_come_back_from_the_gpu() -> None:
    model = bn_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for x, y in list(loader())[:2]:  # moments on the CPU
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    before = {k: v.clone() for k, v in optimizer.state_dict()["state"][0].items()}
    result = lr_find(model, loader(), optimizer=optimizer, num_iter=20, device="cuda", progress=False)
    assert len(result.lrs) > 1
    assert all(p.device.type == "cpu" for p in model.parameters())
    after = optimizer.state_dict()["state"][0]
    for key, tensor in before.items():
        assert after[key].device.type == "cpu" and torch.equal(tensor, after[key]), key


@pytest.mark.parametrize("frozen_bn_eval", [True, False])
def test_frozen_batchnorm_stays_in_eval_mode_during_the_sweep(frozen_bn_eval: bool) -> None:
    model = bn_model()
    for p in list(model[0].parameters()) + list(model[1].parameters()):  # a frozen "base"
        p.requires_grad_(False)
    modes: list[bool] = []
    model[1].register_forward_pre_hook(lambda module, inputs: modes.append(module.training))
    optimizer = torch.optim.Adam(model[4].parameters())
    lr_find(model, loader(), optimizer=optimizer, num_iter=10, device="cpu", progress=False,
            frozen_bn_eval=frozen_bn_eval)
    assert len(modes) == 10
    assert modes == [not frozen_bn_eval] * 10
    assert model[1].training  # and back to train mode afterwards, as it was


def small_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))


def image_loader(n: int = 32, batch_size: int = 8) -> DataLoader:
    """(B, 3, 8, 8) float32 NCHW images, brighter for class 1; labels (B,) int64."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.rand(n, 3, 8, 8, generator=g) + y.view(-1, 1, 1, 1).float()
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


@pytest.mark.parametrize("channels_last", ["auto", False])
def test_the_sweep_runs_through_the_trainer_in_its_memory_order(channels_last: bool | str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    # The Trainer's rule puts a conv net on the CPU in channels-last order ("auto"): the
    # sweep must train as the fit will. The old hand-written loop fed NCHW batches.
    model = small_cnn()
    seen: list[bool] = []
    model[0].register_forward_pre_hook(lambda _, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    options = {} if channels_last == "auto" else {"channels_last": channels_last}  # "auto": the default
    result = lr_find(model, image_loader(), start_lr=1e-5, end_lr=1e-1, num_iter=10, device="cpu",
                     progress=False, **options)
    assert len(seen) == len(result.lrs) == 10
    assert all(seen) if channels_last == "auto" else not any(seen)
    # ... and the weights go back to the order they had (NCHW), as well as to their values.
    assert model[0].weight.is_contiguous()
    assert capsys.readouterr().out == ""  # no "Epoch 1/1 ..." line: a sweep is not an epoch


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_sweep_runs_under_the_trainers_autocast_on_a_gpu() -> None:
    model = small_cnn()
    autocast: list[bool] = []
    model[0].register_forward_pre_hook(lambda *_: autocast.append(torch.is_autocast_enabled("cuda")))
    lr_find(model, image_loader(), num_iter=10, device="cuda", progress=False)
    assert autocast and all(autocast)  # mixed_precision="auto" on CUDA, as in Trainer
    lr_find(model, image_loader(), num_iter=10, device="cuda", progress=False, mixed_precision=False)
    assert not any(autocast[10:])
    assert all(p.device.type == "cpu" for p in model.parameters())
