"""The Trainer's speed options: channels-last memory order and torch.compile (CPU, seconds)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ldl.train.trainer import Trainer, resolve_channels_last


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2),
    )


def image_batches(n_batches: int = 4, batch_size: int = 8, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Class 1 images are brighter: (B, 3, 16, 16) float32 NCHW, labels (B,) int64."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n_batches):
        y = torch.randint(0, 2, (batch_size,), generator=g)
        x = torch.rand(batch_size, 3, 16, 16, generator=g) + y.view(-1, 1, 1, 1).float()
        batches.append((x, y))
    return batches


def quiet(model: nn.Module, **kwargs) -> Trainer:
    return Trainer(model, device="cpu", progress=False, verbose=False, **kwargs)


def test_auto_turns_channels_last_on_for_conv_nets_on_the_cpu_only() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    conv, linear = small_cnn(), nn.Linear(4, 2)
    assert resolve_channels_last("auto", conv, cpu, None)
    assert not resolve_channels_last("auto", linear, cpu, None)  # nothing to gain without convolutions
    # On a GPU only with mixed precision (tensor cores); in float32 it can be slower there.
    assert not resolve_channels_last("auto", conv, cuda, None)
    assert resolve_channels_last("auto", conv, cuda, torch.bfloat16)
    assert resolve_channels_last(True, linear, cpu, None) and not resolve_channels_last(False, conv, cpu, None)
    with pytest.raises(ValueError, match="channels_last must be"):
        resolve_channels_last("yes", conv, cpu, None)


def test_channels_last_converts_weights_and_every_batch() -> None:
    model = small_cnn()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    seen: list[bool] = []
    model[0].register_forward_pre_hook(lambda _, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    trainer = quiet(model, optimizer=optimizer, channels_last=True)
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    # The optimizer built before the conversion still holds the very same parameters.
    assert model[0].weight is optimizer.param_groups[0]["params"][0]
    before = model[0].weight.detach().clone()
    trainer.fit(image_batches(), image_batches(seed=1), epochs=1)
    assert seen and all(seen), "every batch should reach the first convolution in channels-last order"
    assert not torch.equal(before, model[0].weight), "the optimizer should have updated the converted weights"


def test_channels_last_computes_the_same_fit_as_nchw() -> None:
    trained = {}
    for channels_last in (False, True):
        model = small_cnn()
        trainer = quiet(model, optimizer=torch.optim.SGD(model.parameters(), lr=0.05), channels_last=channels_last)
        torch.manual_seed(0)
        trainer.fit(image_batches(), image_batches(seed=1), epochs=2)
        assert trainer.channels_last is channels_last
        trained[channels_last] = {k: v.contiguous() for k, v in model.state_dict().items()}
    for name, value in trained[False].items():
        # Only the order of float sums differs.
        assert torch.allclose(value.float(), trained[True][name].float(), atol=1e-4), name


def test_compile_runs_batches_through_the_compiled_model_and_keeps_plain_state_dict() -> None:
    graphs: list[torch.fx.GraphModule] = []

    def recording_backend(graph_module: torch.fx.GraphModule, example_inputs: list[torch.Tensor]):
        graphs.append(graph_module)
        return graph_module.forward  # run the captured graph as it is: no compiler needed

    model = small_cnn()
    trainer = quiet(model, optimizer=torch.optim.SGD(model.parameters(), lr=0.05),
                    compile={"backend": recording_backend}, channels_last=False)
    assert trainer.model is model and trainer.forward_model is not model
    before = model[0].weight.detach().clone()
    history = trainer.fit(image_batches(), image_batches(seed=1), epochs=2)
    assert graphs, "torch.compile's backend was never asked to compile: batches bypassed the compiled model"
    assert not torch.equal(before, model[0].weight), "training the compiled model trains the model itself"
    assert not any(key.startswith("_orig_mod") for key in trainer.model.state_dict())
    assert len(history) == 2 and 0.0 <= history["top1_acc"][-1] <= 1.0
    # The compiled model predicts what the plain one does.
    x = image_batches(1, seed=2)[0][0]
    model.eval()
    with torch.no_grad():
        expected = model(x)
    assert torch.allclose(trainer.predict([x]), expected, atol=1e-5)
