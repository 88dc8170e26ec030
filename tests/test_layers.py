"""The from-scratch layers of lesson 2 match PyTorch's, number for number."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ldl.nn.layers import InvertedDropout, InvertedDropout2d, ScratchBatchNorm2d


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_inverted_dropout_draws_the_same_mask_as_nn_dropout(p: float) -> None:
    x = torch.randn(8, 3, 5, 5, requires_grad=True)
    torch.manual_seed(123)
    expected = nn.Dropout(p).train()(x)
    torch.manual_seed(123)
    ours = InvertedDropout(p).train()(x)
    assert torch.allclose(ours, expected, atol=1e-5)
    # Dropped exactly where PyTorch drops, and survivors scaled by 1 / (1 - p).
    assert torch.equal(ours == 0, expected == 0)
    kept = ours != 0
    assert torch.allclose(ours[kept], x[kept] / (1 - p), atol=1e-5)
    # The gradient flows through the kept elements only, with the same scale.
    ours.sum().backward()
    assert torch.allclose(x.grad, kept.float() / (1 - p), atol=1e-5)


def test_inverted_dropout_keeps_the_mean_and_is_the_identity_in_eval() -> None:
    x = torch.ones(200_000)
    layer = InvertedDropout(0.3).train()
    out = layer(x)
    assert out.mean().item() == pytest.approx(1.0, abs=0.01)  # E[out] = x: that is why survivors are scaled
    assert (out == 0).float().mean().item() == pytest.approx(0.3, abs=0.01)
    layer.eval()
    y = torch.randn(4, 7)
    assert torch.equal(layer(y), y)
    assert torch.equal(layer(y), nn.Dropout(0.3).eval()(y))


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_inverted_dropout2d_drops_whole_channels_like_nn_dropout2d(p: float) -> None:
    x = torch.randn(16, 6, 4, 4)
    torch.manual_seed(7)
    expected = nn.Dropout2d(p).train()(x)
    torch.manual_seed(7)
    ours = InvertedDropout2d(p).train()(x)
    assert torch.allclose(ours, expected, atol=1e-5)
    dropped = (ours == 0).flatten(2)  # (B, C, H*W)
    assert torch.equal(dropped.all(dim=2), dropped.any(dim=2))  # a channel is all dropped or all kept
    assert 0 < dropped.all(dim=2).sum() < 16 * 6
    assert torch.equal(InvertedDropout2d(p).eval()(x), x)


def test_dropout_rejects_bad_probabilities_and_shapes() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        InvertedDropout(1.0)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        InvertedDropout2d(-0.1)
    with pytest.raises(ValueError, match="B, C, H, W"):
        InvertedDropout2d(0.5)(torch.randn(3, 4))


def twin_batch_norms(channels: int = 5, momentum: float = 0.1) -> tuple[ScratchBatchNorm2d, nn.BatchNorm2d]:
    """Ours and PyTorch's, with the same (non-trivial) gamma and beta."""
    ours, theirs = ScratchBatchNorm2d(channels, momentum=momentum), nn.BatchNorm2d(channels, momentum=momentum)
    with torch.no_grad():
        gamma, beta = torch.rand(channels) + 0.5, torch.randn(channels)
        for layer in (ours, theirs):
            layer.weight.copy_(gamma)
            layer.bias.copy_(beta)
    return ours, theirs


def test_scratch_batch_norm_matches_nn_batch_norm_over_several_batches() -> None:
    ours, theirs = twin_batch_norms(momentum=0.2)
    g = torch.Generator().manual_seed(0)
    for step in range(4):
        # Batches with a shifted, scaled distribution, so the running stats have somewhere to go.
        x = torch.randn(6, 5, 7, 9, generator=g) * 3 + 2
        upstream = torch.randn(6, 5, 7, 9, generator=g)  # a gradient from "later layers"
        outputs, grads = [], []
        for layer in (ours, theirs):
            layer.train()
            x_in = x.clone().requires_grad_(True)
            y = layer(x_in)
            (y * upstream).sum().backward()
            outputs.append(y.detach())
            grads.append((x_in.grad, layer.weight.grad.clone(), layer.bias.grad.clone()))
            layer.zero_grad()
        assert torch.allclose(outputs[0], outputs[1], atol=1e-5), f"outputs differ at step {step}"
        for a, b, what in zip(grads[0], grads[1], ("input", "gamma", "beta")):
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-5), f"gradient of {what} differs at step {step}"
        assert torch.allclose(ours.running_mean, theirs.running_mean, atol=1e-5)
        assert torch.allclose(ours.running_var, theirs.running_var, atol=1e-5)
    assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked) == 4
    # The running averages moved from their start (0 and 1) towards the data's (2 and 9).
    assert (ours.running_mean > 0.5).all() and (ours.running_var > 3).all()


def test_scratch_batch_norm_eval_uses_the_running_statistics() -> None:
    ours, theirs = twin_batch_norms()
    for _ in range(3):
        x = torch.randn(4, 5, 6, 6) * 2 - 1
        ours.train()(x)
        theirs.train()(x)
    ours.eval()
    theirs.eval()
    single = torch.randn(1, 5, 6, 6)
    assert torch.allclose(ours(single), theirs(single), atol=1e-5)
    # In eval mode a photo's output does not depend on its batch mates.
    batch = torch.cat([single, torch.randn(3, 5, 6, 6) * 10])
    assert torch.allclose(ours(batch)[:1], ours(single), atol=1e-6)
    # In train mode it does: the batch statistics change with the other photos.
    ours.train()
    other_batch = torch.cat([single, torch.randn(3, 5, 6, 6)])
    assert not torch.allclose(ours(batch)[:1], ours(other_batch)[:1], atol=1e-3)


def test_scratch_batch_norm_state_dict_loads_into_nn_batch_norm() -> None:
    ours, _ = twin_batch_norms()
    ours.train()(torch.randn(4, 5, 3, 3))
    theirs = nn.BatchNorm2d(5)
    theirs.load_state_dict(ours.state_dict())  # same names: strict loading succeeds
    x = torch.randn(2, 5, 3, 3)
    assert torch.allclose(ours.eval()(x), theirs.eval()(x), atol=1e-5)


def test_scratch_batch_norm_rejects_wrong_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(B, 5, H, W\)"):
        ScratchBatchNorm2d(5)(torch.randn(2, 4, 3, 3))
    with pytest.raises(ValueError, match="more than one value"):
        ScratchBatchNorm2d(5).train()(torch.randn(1, 5, 1, 1))
