"""Heads, layer groups, freezing and learning rates on every registry backbone: heads, layer groups, freezing, learning rates."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import torch
from torch import nn

from ldl.models import (
    BACKBONES,
    RecapCNN,
    count_parameters,
    create_backbone,
    freeze,
    head_path,
    layer_groups,
    param_groups,
    remove_head,
    replace_head,
    summary,
    trainable_summary,
    trainable_table,
    unfreeze,
)

# Smallest input each family accepts, to keep the forward passes cheap; ViT needs its 224
# (and is then the slowest by far, so it gets a batch of one).
INPUT_SIZE = {name: 224 if name == "vit_b_16" else 32 for name in BACKBONES}
BATCH = {name: 1 if name == "vit_b_16" else 2 for name in BACKBONES}

HEAD_PATH = {
    "mobilenet_v2": "classifier.1",
    "mobilenet_v3_small": "classifier.3",
    "mobilenet_v3_large": "classifier.3",
    "vgg19": "classifier.6",
    "vgg19_bn": "classifier.6",
    "resnet18": "fc",
    "resnet50": "fc",
    "efficientnet_lite0": "_fc",
    "convnext_tiny": "classifier.2",
    "vit_b_16": "heads.head",
    "swin_t": "head",
}

# For some backbones, the parameters `unfreeze(model, group)` makes trainable, by name prefix.
UNFREEZE_EXPECTED = {
    "resnet18": ("layer4", ("layer4.", "fc.")),
    # VGG19's fifth block: convolutions 28, 30, 32, 34 of `features`
    "vgg19": ("block5", ("features.28.", "features.30.", "features.32.", "features.34.", "classifier.")),
    # the class token and position embedding belong to the first group, not the last
    "vit_b_16": ("encoder.layers.11", ("encoder.layers.encoder_layer_11.", "encoder.ln.", "heads.")),
    "swin_t": ("features.7", ("features.7.", "norm.", "head.")),
    "efficientnet_lite0": ("head", ("_conv_head.", "_bn1.", "_fc.")),
}


@pytest.fixture(scope="module", params=list(BACKBONES))
def built(request: pytest.FixtureRequest) -> tuple[str, nn.Module]:
    """Each registry backbone, randomly initialised, built once per module (VGG19 takes seconds)."""
    name = request.param
    return name, create_backbone(name, pretrained=False)


@pytest.fixture
def backbone(built: tuple[str, nn.Module]) -> Iterator[tuple[str, nn.Module]]:
    """A built backbone for one test that may freeze parts of it: all trainable again afterwards."""
    yield built
    for p in built[1].parameters():
        p.requires_grad_(True)


def trainable_names(model: nn.Module) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def forward(model: nn.Module, name: str) -> torch.Tensor:
    """The model's output for a batch of zero images: (BATCH, 3, INPUT_SIZE, INPUT_SIZE) -> (BATCH, ...)."""
    with torch.no_grad():
        return model.eval()(torch.zeros(BATCH[name], 3, INPUT_SIZE[name], INPUT_SIZE[name]))


def test_replace_and_remove_head(built: tuple[str, nn.Module]) -> None:
    name, original = built
    model = copy.deepcopy(original)  # surgery changes the model in place
    assert head_path(model) == HEAD_PATH[name]
    old = model.get_submodule(HEAD_PATH[name])
    old.weight.requires_grad_(False)
    assert replace_head(model, 3) is model
    new = model.get_submodule(HEAD_PATH[name])
    assert isinstance(new, nn.Linear) and new is not old
    assert (new.in_features, new.out_features) == (old.in_features, 3)
    assert new.weight.requires_grad
    assert forward(model, name).shape == (BATCH[name], 3)

    assert remove_head(model) == old.in_features
    assert forward(model, name).shape == (BATCH[name], old.in_features)  # pooled features (B, D)
    with pytest.raises(TypeError, match="removed with remove_head"):
        replace_head(model, 2)


def test_every_parameter_is_in_exactly_one_group(backbone: tuple[str, nn.Module]) -> None:
    name, model = backbone
    groups = layer_groups(model)
    names = [group for group, _ in groups]
    assert len(set(names)) == len(names)
    times_grouped = {id(p): 0 for p in model.parameters()}
    for _, modules in groups:
        seen_in_group = {id(p) for module in modules for p in module.parameters()}
        for key in seen_in_group:
            times_grouped[key] += 1
    assert set(times_grouped.values()) == {1}
    head = model.get_submodule(HEAD_PATH[name])
    assert any(head is sub for m in groups[-1][1] for sub in m.modules()), "the head is in the last group"


def test_group_names_students_would_use() -> None:
    """A few families' names, checked against the architectures as papers describe them."""
    resnet = create_backbone("resnet18", pretrained=False)
    assert [name for name, _ in layer_groups(resnet)] == ["stem", "layer1", "layer2", "layer3", "layer4", "fc"]
    lite = create_backbone("efficientnet_lite0", pretrained=False)
    lite_names = [name for name, _ in layer_groups(lite)]
    assert lite_names == ["stem", *(f"stage{i}" for i in range(1, 8)), "head", "classifier"]
    assert [len(blocks) for _, blocks in layer_groups(lite)[1:8]] == [1, 2, 2, 3, 3, 4, 1]  # the paper's repeats
    small = create_backbone("mobilenet_v3_small", pretrained=False)
    assert [name for name, _ in layer_groups(small)][-2:] == ["features.12", "classifier"]


def test_freeze_leaves_only_the_head_layer_trainable(backbone: tuple[str, nn.Module]) -> None:
    name, model = backbone
    assert freeze(model) is model
    # Only the final Linear (weight and bias): VGG's and MobileNetV3's earlier classifier layers stay frozen.
    assert trainable_names(model) == {f"{HEAD_PATH[name]}.weight", f"{HEAD_PATH[name]}.bias"}
    unfreeze(model)
    assert trainable_names(model) == {n for n, _ in model.named_parameters()}


def test_unfreeze_from_a_group_trains_it_and_everything_after(backbone: tuple[str, nn.Module]) -> None:
    name, model = backbone
    groups = layer_groups(model)
    middle = len(groups) // 2
    freeze(model)
    unfreeze(model, groups[middle][0])
    later = {id(p) for _, modules in groups[middle:] for m in modules for p in m.parameters()}
    expected = {n for n, p in model.named_parameters() if id(p) in later}
    assert trainable_names(model) == expected
    assert 0 < len(expected) < len(list(model.parameters()))
    with pytest.raises(ValueError, match=groups[0][0]):
        unfreeze(model, "no_such_group")
    assert trainable_names(model) == expected, "a bad name changes nothing"
    if name in UNFREEZE_EXPECTED:  # the same, written from the architecture rather than from layer_groups
        from_, prefixes = UNFREEZE_EXPECTED[name]
        unfreeze(model, from_)
        assert trainable_names(model) == {n for n, _ in model.named_parameters() if n.startswith(prefixes)}


def test_param_groups_give_deeper_layers_larger_learning_rates(backbone: tuple[str, nn.Module]) -> None:
    name, model = backbone
    groups = layer_groups(model)
    freeze(model)
    unfreeze(model, groups[len(groups) // 3][0])
    chunks = param_groups(model, base_lr=1e-3, factor=10.0, n_groups=3)
    assert [c["lr"] for c in chunks] == pytest.approx([1e-5, 1e-4, 1e-3])
    in_chunks = [id(p) for c in chunks for p in c["params"]]
    assert len(in_chunks) == len(set(in_chunks)), "no parameter twice"
    assert set(in_chunks) == {id(p) for p in model.parameters() if p.requires_grad}
    assert chunks[-1]["name"].endswith(groups[-1][0]) and chunks[0]["name"].startswith(groups[len(groups) // 3][0])
    optimizer = torch.optim.AdamW(chunks)
    assert [g["lr"] for g in optimizer.param_groups] == [c["lr"] for c in chunks]


def test_param_groups_split_by_layer_group_count() -> None:
    model = create_backbone("resnet18", pretrained=False)
    chunks = param_groups(model, base_lr=0.01, factor=2.0, n_groups=4)  # 6 groups: 2, 2, 1, 1
    assert [c["name"] for c in chunks] == ["stem..layer1", "layer2..layer3", "layer4", "fc"]
    assert [c["lr"] for c in chunks] == pytest.approx([0.01 / 8, 0.01 / 4, 0.01 / 2, 0.01])
    freeze(model)
    only_head = param_groups(model, base_lr=0.01)
    assert len(only_head) == 1 and only_head[0]["lr"] == 0.01 and only_head[0]["name"] == "fc"
    for p in model.fc.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="unfreeze"):
        param_groups(model, base_lr=0.01)
    with pytest.raises(ValueError, match="n_groups"):
        param_groups(model, base_lr=0.01, n_groups=0)


def test_trainable_summary_and_table_count_every_parameter() -> None:
    model = freeze(create_backbone("mobilenet_v3_small", pretrained=False, num_classes=2))
    rows = trainable_summary(model)
    # The new Linear(1024, 2) trains; the classifier's pretrained Linear(576, 1024) stays frozen.
    assert rows[-1] == ("classifier", 1024 * 2 + 2, 576 * 1024 + 1024)
    assert sum(r.trainable for r in rows) == count_parameters(model, trainable_only=True)
    assert sum(r.trainable + r.frozen for r in rows) == count_parameters(model)
    assert all(r.trainable == 0 for r in rows[:-1])
    table = trainable_table(model)
    text = str(table)
    assert text.startswith("| group | trainable | frozen |")
    assert f"| total | {count_parameters(model, trainable_only=True):,} |" in text
    assert table._repr_html_().count("<tr>") == len(rows) + 2  # header, groups, total


def test_torchinfo_summary_on_the_given_device() -> None:
    model = freeze(create_backbone("mobilenet_v3_small", pretrained=False, num_classes=2))
    stats = summary(model, image_size=64, device="cpu", depth=1)
    assert stats.total_params == count_parameters(model)
    assert stats.trainable_params == count_parameters(model, trainable_only=True)
    assert "Trainable" in str(stats)
    assert next(model.parameters()).device.type == "cpu"


def test_unsupported_models_get_a_clear_error() -> None:
    with pytest.raises(TypeError, match="Supported: torchvision's MobileNetV2"):
        layer_groups(RecapCNN(image_size=64))
    with pytest.raises(TypeError, match="RecapCNN"):
        freeze(RecapCNN(image_size=64))
