"""Weight-decay parameter groups, L1/L2 penalties in the loss, label smoothing."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from ldl.nn.layers import ScratchBatchNorm2d
from ldl.train.regularizers import PenalizedLoss, decay_param_groups, penalized_parameters, smooth_labels

NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm, ScratchBatchNorm2d)


class Zoo(nn.Module):
    """Every kind of parameter: conv/linear weights and biases, norm layers, a free parameter, a frozen layer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)  # weight + bias
        # A norm layer whose *name* looks like a weight layer: selection must go by type.
        self.weight_layer = nn.BatchNorm2d(4)
        self.conv_no_bias = nn.Conv2d(4, 4, 3, bias=False)
        self.group_norm = nn.GroupNorm(2, 4)
        self.scratch_bn = ScratchBatchNorm2d(4)
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(4, 6)
        self.layer_norm = nn.LayerNorm(6)
        self.bn1d = nn.BatchNorm1d(6)
        self.frozen = nn.Linear(6, 6)
        self.frozen.requires_grad_(False)
        self.head = nn.Linear(6, 2)
        self.temperature = nn.Parameter(torch.ones(1))  # a free parameter: not decayed

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, 5, 5) -> (B, 2)
        x = self.scratch_bn(self.group_norm(self.conv_no_bias(self.weight_layer(self.conv(x)))))
        x = self.bn1d(self.layer_norm(self.linear(self.flatten(x))))
        return self.head(self.frozen(x)) * self.temperature


def ids(params) -> set[int]:
    return {id(p) for p in params}


def test_decay_groups_hold_exactly_the_weights_and_everything_else_once() -> None:
    model = Zoo()
    groups = decay_param_groups(model, weight_decay=0.05)
    assert [g["name"] for g in groups] == ["decay", "no_decay"]
    assert [g["weight_decay"] for g in groups] == [0.05, 0.0]
    decay, no_decay = groups[0]["params"], groups[1]["params"]

    expected_decay = [model.conv.weight, model.conv_no_bias.weight, model.linear.weight, model.head.weight]
    norm_params = [p for m in model.modules() if isinstance(m, NORM_TYPES) for p in m.parameters()]
    biases = [model.conv.bias, model.linear.bias, model.head.bias]
    assert ids(decay) == ids(expected_decay) and len(decay) == 4
    assert ids(no_decay) == ids(norm_params + biases + [model.temperature])
    assert len(no_decay) == len(norm_params) + len(biases) + 1  # each once
    # Every trainable parameter in exactly one group; the frozen layer in none.
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert sorted(ids(decay) | ids(no_decay)) == sorted(ids(trainable))
    assert not ids(decay) & ids(no_decay)
    assert not ids(model.frozen.parameters()) & (ids(decay) | ids(no_decay))
    assert ids(penalized_parameters(model)) == ids(expected_decay)


def test_decay_groups_drive_an_optimizer_decaying_weights_only() -> None:
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    optimizer = torch.optim.AdamW(decay_param_groups(model, weight_decay=0.5), lr=0.1)
    before = copy.deepcopy(model.state_dict())
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # no gradient: only the decay can move a parameter
    optimizer.step()
    after = model.state_dict()
    assert torch.allclose(after["0.weight"], before["0.weight"] * (1 - 0.1 * 0.5))  # AdamW: w -= lr * wd * w
    for name in ("0.bias", "1.weight", "1.bias"):
        assert torch.equal(after[name], before[name]), f"{name} should not decay"


def test_tied_weights_are_counted_once_and_errors_say_what_to_do() -> None:
    tied = nn.Sequential(nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False))
    tied[1].weight = tied[0].weight
    assert len(penalized_parameters(tied)) == 1
    assert len(decay_param_groups(tied, 0.1)) == 1  # the empty no-decay group is left out
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        decay_param_groups(frozen, 0.1)
    with pytest.raises(ValueError, match=">= 0"):
        decay_param_groups(tied, -1.0)


def test_penalized_loss_adds_l1_and_l2_of_the_weights_only() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 3))
    x, y = torch.randn(8, 5), torch.randint(0, 3, (8,))
    loss_fn = PenalizedLoss(nn.CrossEntropyLoss(), model, l1=0.01, l2=0.1)
    weights = [model[0].weight, model[3].weight]
    logits = model(x)
    base = nn.CrossEntropyLoss()(logits, y)
    expected = base + 0.01 * sum(w.abs().sum() for w in weights) + 0.1 * sum((w**2).sum() for w in weights)
    assert loss_fn(logits, y).item() == pytest.approx(expected.item(), rel=1e-6)
    assert list(loss_fn.parameters()) == []  # the loss does not own the model

    # The penalty's gradient: l1 * sign(w) + 2 * l2 * w on weights, zero on biases and BN.
    model.zero_grad()
    loss_fn.penalty().backward()
    for w in weights:
        assert torch.allclose(w.grad, 0.01 * w.sign() + 0.2 * w, atol=1e-6)
    for p in (model[0].bias, model[3].bias, model[1].weight, model[1].bias):
        assert p.grad is None or torch.count_nonzero(p.grad) == 0


def short_run(use_penalty: bool, optimizer_name: str, steps: int = 5) -> nn.Module:
    """A few steps on fixed data: L2 in the loss (l2=0.05), or the optimizer's weight decay (0.1)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    if use_penalty:
        loss_fn: nn.Module = PenalizedLoss(nn.CrossEntropyLoss(), model, l2=0.05)
        groups = decay_param_groups(model, weight_decay=0.0)
    else:
        loss_fn = nn.CrossEntropyLoss()
        groups = decay_param_groups(model, weight_decay=0.1)  # = 2 * l2
    optimizer = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[optimizer_name](
        groups, lr=0.05
    )
    for _ in range(steps):
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
    return model


def max_difference(a: nn.Module, b: nn.Module) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


def test_l2_in_the_loss_is_weight_decay_for_sgd_and_coupled_adam_but_not_adamw() -> None:
    with_penalty_sgd = short_run(True, "sgd")
    assert max_difference(with_penalty_sgd, short_run(False, "sgd")) < 1e-6
    # torch.optim.Adam(weight_decay=...) is L2 added to the gradient: the same as the penalty.
    with_penalty_adam = short_run(True, "adam")
    assert max_difference(with_penalty_adam, short_run(False, "adam")) < 1e-6
    # AdamW decays the weights outside the adaptive step: a different update.
    assert max_difference(with_penalty_adam, short_run(False, "adamw")) > 1e-3


def test_penalized_loss_rejects_negative_strengths() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        PenalizedLoss(nn.CrossEntropyLoss(), nn.Linear(2, 2), l1=-1.0)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_smooth_labels_match_cross_entropy_label_smoothing(smoothing: float) -> None:
    torch.manual_seed(0)
    logits, y = torch.randn(10, 4) * 3, torch.randint(0, 4, (10,))
    soft = smooth_labels(y, num_classes=4, smoothing=smoothing)
    assert soft.shape == (10, 4) and soft.dtype == torch.float32
    assert torch.allclose(soft.sum(dim=1), torch.ones(10))
    assert torch.allclose(soft[torch.arange(10), y], torch.full((10,), 1 - smoothing + smoothing / 4))
    ours = nn.CrossEntropyLoss()(logits, soft)
    theirs = nn.CrossEntropyLoss(label_smoothing=smoothing)(logits, y)
    assert ours.item() == pytest.approx(theirs.item(), abs=1e-6)


def test_smooth_labels_explain_bad_input() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        smooth_labels(torch.tensor([0, 5]), num_classes=3, smoothing=0.1)
    with pytest.raises(ValueError, match="integer class indices"):
        smooth_labels(torch.rand(2, 3), num_classes=3, smoothing=0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        smooth_labels(torch.tensor([0]), num_classes=3, smoothing=1.5)
