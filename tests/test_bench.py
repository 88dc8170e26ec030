"""The throughput measurer: warm-up, synchronisation on CUDA, medians; parameter and MAC counts."""

from __future__ import annotations

import statistics

import pytest
import torch
import torchvision
from torch import nn

from ldl.measure import bench


def test_time_repeats_warms_up_then_synchronises_around_every_timed_step(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: events.append("sync"))
    ticks = iter(range(100))
    seconds = bench.time_repeats(
        lambda: events.append("step"), torch.device("cuda"), warmup=2, repeats=3, clock=lambda: float(next(ticks))
    )
    # Two untimed warm-up steps, then each timed step between two synchronisations.
    assert events == ["step", "step"] + ["sync", "step", "sync"] * 3
    assert seconds == [1.0, 1.0, 1.0]


def test_no_synchronisation_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    bench.time_repeats(lambda: None, torch.device("cpu"), warmup=0, repeats=2)
    assert calls == []


def test_time_interleaved_runs_rounds_with_a_rotating_order(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: events.append("sync"))
    ticks = iter(range(100))
    steps = {name: (lambda name=name: events.append(name)) for name in "abc"}
    seconds = bench.time_interleaved(steps, torch.device("cuda"), warmup=1, repeats=3, clock=lambda: float(next(ticks)))
    # One untimed round, then three timed ones, each starting one step further along,
    # every timed step between two synchronisations.
    timed = [event for event in events[3:] if event != "sync"]
    assert events[:3] == ["a", "b", "c"] and timed == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert events[3:6] == ["sync", "a", "sync"]
    assert seconds == {"a": [1.0, 1.0, 1.0], "b": [1.0, 1.0, 1.0], "c": [1.0, 1.0, 1.0]}
    with pytest.raises(ValueError, match="repeats"):
        bench.time_interleaved(steps, torch.device("cpu"), repeats=0)


class SpellClock:
    """A fake machine: step ``a`` costs 1 s and ``b`` 2 s, five times as much from t=6 s to t=40 s."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def step(self, cost: float) -> None:
        self.now += cost * (5.0 if 6.0 <= self.now < 40.0 else 1.0)


def test_a_slow_spell_skews_one_after_the_other_but_not_interleaved_rounds() -> None:
    cpu = torch.device("cpu")
    clock = SpellClock()
    steps = {"a": lambda: clock.step(1.0), "b": lambda: clock.step(2.0)}
    # One after the other, b is timed during the spell: it looks 10x slower than a, not 2x.
    a_alone = bench.time_repeats(steps["a"], cpu, warmup=0, repeats=5, clock=clock)
    b_alone = bench.time_repeats(steps["b"], cpu, warmup=0, repeats=5, clock=clock)
    assert statistics.median(b_alone) / statistics.median(a_alone) == pytest.approx(10.0)
    # In rounds, each round's ratio compares a and b in the same conditions: the median is the truth.
    clock.now = 0.0
    seconds = bench.time_interleaved(steps, cpu, warmup=0, repeats=9, clock=clock)
    ratios = [b / a for a, b in zip(seconds["a"], seconds["b"])]
    assert statistics.median(ratios) == pytest.approx(2.0)


def test_interleaved_throughput_measures_each_network_and_frees_gradients_between_steps() -> None:
    models = {
        "small": nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)),
        "large": nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 3)),
    }
    before = {name: [p.detach().clone() for p in model.parameters()] for name, model in models.items()}
    inference = bench.interleaved_throughput(models, image_size=16, batch_size=4, warmup=1, repeats=3)
    assert list(inference) == ["small", "large"]
    for name, result in inference.items():
        assert len(result.seconds_per_batch) == 3 and result.mode == "inference" and result.peak_memory_mb is None
        assert result.images_per_s == pytest.approx(4 / statistics.median(result.seconds_per_batch))
        assert all(torch.equal(a, b) for a, b in zip(before[name], models[name].parameters()))
        assert not models[name].training
    training = bench.interleaved_throughput(models, image_size=16, batch_size=4, train=True, warmup=1, repeats=2)
    for name, model in models.items():
        assert training[name].mode == "training" and len(training[name].seconds_per_batch) == 2
        assert not all(torch.equal(a, b) for a, b in zip(before[name], model.parameters()))
        # Between steps a network holds no gradients, so several can wait their turn in memory.
        assert all(p.grad is None for p in model.parameters())


def test_intra_op_threads_sets_then_restores_the_thread_count() -> None:
    before = torch.get_num_threads()
    with bench.intra_op_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="inside"), bench.intra_op_threads(1):
        raise RuntimeError("inside")  # restored on the way out of an error too
    assert torch.get_num_threads() == before
    with bench.intra_op_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="at least 1"), bench.intra_op_threads(0):
        pass


def test_throughput_is_batch_size_over_the_median(monkeypatch: pytest.MonkeyPatch) -> None:
    durations = [0.5, 0.1, 0.2, 0.9, 0.2]  # one slow outlier must not move the result
    monkeypatch.setattr(bench, "time_repeats", lambda step, device, warmup, repeats: list(durations))
    result = bench.measure_throughput(nn.Conv2d(3, 4, 3), image_size=8, batch_size=4)
    assert result.images_per_s == pytest.approx(4 / statistics.median(durations))
    assert result.seconds_per_batch == durations and result.mode == "inference"


def test_training_mode_updates_the_weights_and_inference_does_not() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    before = [p.detach().clone() for p in model.parameters()]
    inference = bench.measure_throughput(model, image_size=16, batch_size=4, warmup=1, repeats=2)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    training = bench.measure_throughput(model, image_size=16, batch_size=4, train=True, warmup=1, repeats=2)
    assert not all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert inference.images_per_s > 0 and training.images_per_s > 0 and training.mode == "training"
    assert inference.peak_memory_mb is None  # not tracked on the CPU


def test_channels_last_and_mixed_precision_run_on_the_cpu() -> None:
    # mixed_precision=True follows the Trainer's rule (ldl.core.device.resolve_amp_dtype):
    # no autocast on the CPU, where the Trainer trains in float32 because bfloat16 autocast
    # ran at 0.7x its speed (benchmarks/RESULTS.md). Until the rule was shared, the
    # benchmark autocast to bfloat16 here and so timed something no fit ever ran.
    model = torchvision.models.mobilenet_v3_small(num_classes=2)
    autocast_seen: list[bool] = []
    model.register_forward_pre_hook(lambda module, args: autocast_seen.append(torch.is_autocast_enabled("cpu")))
    result = bench.measure_throughput(model, image_size=32, batch_size=2, channels_last=True, train=True,
                                      mixed_precision=True, warmup=1, repeats=1)
    assert result.settings == {"mixed_precision": "off", "channels_last": True}
    assert autocast_seen and not any(autocast_seen)
    with pytest.raises(ValueError, match="CUDA"):  # forcing a dtype on the CPU is refused, as by the Trainer
        bench.measure_throughput(model, image_size=32, batch_size=2, mixed_precision="bf16", warmup=0, repeats=1)


def test_mixed_precision_asks_the_trainers_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, torch.device]] = []

    def spy(mixed_precision: object, device: torch.device) -> None:
        calls.append((mixed_precision, device))
        return None

    monkeypatch.setattr(bench, "resolve_amp_dtype", spy)
    bench.measure_throughput(nn.Conv2d(3, 4, 3), image_size=8, batch_size=2, mixed_precision=True, warmup=0, repeats=1)
    assert calls == [("auto", torch.device("cpu"))]  # True: wherever training would autocast


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_large", "vit_b_16"])
def test_counts_agree_with_torchvision_published_figures(name: str) -> None:
    weights = torchvision.models.get_model_weights(name).DEFAULT
    model = torchvision.models.get_model(name, weights=None)
    assert bench.count_parameters(model) == weights.meta["num_params"] == sum(p.numel() for p in model.parameters())
    macs = bench.count_macs(model, image_size=224)
    # torchvision publishes "GFLOPS" that are in fact multiply-accumulates (ResNet-18: 1.81).
    assert macs / 1e9 == pytest.approx(weights.meta["_ops"], rel=0.02)
    assert model.training  # restored


class AttentionOnly(torch.nn.Module):
    """Self-attention on the image's pixels as tokens: no weights, only the two products."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))  # count_macs reads the device from a parameter

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (1, C, S, S)
        tokens = x.flatten(2).transpose(1, 2).unsqueeze(1)  # (1, heads=1, N=S*S, d=C)
        return torch.nn.functional.scaled_dot_product_attention(tokens, tokens, tokens)


def test_attention_products_are_counted_on_every_torch_version() -> None:
    # Q @ K^T is N x d x N multiply-accumulates, softmax(...) @ V another N x N x d: whichever
    # fused kernel this torch would pick, the count must be the formula's.
    side, channels = 8, 16
    tokens = side * side
    assert bench.count_macs(AttentionOnly(), image_size=side, channels=channels) == 2 * tokens * tokens * channels


def test_macs_of_a_convolutional_network_grow_with_the_image_area() -> None:
    # Lesson 5 compares networks at smaller sizes than 224: a convolution's work is per pixel.
    model = torchvision.models.resnet18(num_classes=10)
    small, large = bench.count_macs(model, image_size=64), bench.count_macs(model, image_size=128)
    assert large / small == pytest.approx(4, rel=0.05)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_data_wait_timer_bills_only_the_wait_for_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    clock, events = FakeClock(), []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: events.append("sync"))

    def slow_loader():
        for i in range(3):
            clock.now += 2.0  # each batch takes 2 s to arrive
            events.append("batch")
            yield torch.full((2, 1), float(i)), torch.zeros(2, dtype=torch.long)

    timer = bench.DataWaitTimer(GeneratorLoader(slow_loader), device="cuda", clock=clock)
    seen = []
    for x, _ in timer:
        clock.now += 5.0  # the training step: not waiting for data
        seen.append(int(x[0, 0]))
    assert seen == [0, 1, 2] and timer.batches == 3
    assert timer.data_seconds == pytest.approx(6.0)  # 3 x 2 s, none of the 15 s of steps
    # Each batch is fetched between two synchronisations (and one more before the loader runs dry).
    assert events[:4] == ["sync", "batch", "sync", "sync"]
    timer.reset()
    assert timer.data_seconds == 0.0 and timer.batches == 0


def test_data_wait_timer_wraps_a_real_loader_for_the_trainer() -> None:
    from ldl.train.trainer import Trainer

    batches = [(torch.randn(4, 3), torch.randint(0, 2, (4,))) for _ in range(5)]
    timer = bench.DataWaitTimer(batches)
    assert len(timer) == 5
    trainer = Trainer(nn.Linear(3, 2), device="cpu", progress=False, verbose=False)
    trainer.fit(timer, epochs=2)
    assert timer.batches == 10 and timer.data_seconds >= 0.0


class GeneratorLoader:
    """An iterable that runs ``make()`` afresh at every ``iter()``, as a DataLoader does."""

    def __init__(self, make) -> None:
        self.make = make

    def __iter__(self):
        return self.make()
