"""Layer groups: the units a network is frozen, unfrozen and given learning rates by.

    freeze(model)                           # feature extraction: only the head trains
    unfreeze(model, "features.12")          # fine-tuning: the last groups train too
    optimizer = torch.optim.AdamW(param_groups(model, base_lr=1e-3))   # deeper = larger lr

A *layer group* is a run of layers a student would name ("block3", "layer4",
"classifier"), ordered from input to output.
"""

from __future__ import annotations

from torch import nn

from ldl.models.heads import head_path, model_family

LayerGroups = list[tuple[str, list[nn.Module]]]


def layer_groups(model: nn.Module) -> LayerGroups:
    """The model's layers in named groups, ordered from input to output.

    Every parameter belongs to exactly one group; the last group holds the head. Names:
    MobileNet/ConvNeXt ``"features.0"`` ... then ``"classifier"``; VGG ``"block1"`` ...
    ``"block5"`` (split at the max-pools), ``"classifier"``; ResNet ``"stem"``,
    ``"layer1"`` ... ``"layer4"``, ``"fc"``; EfficientNet-Lite ``"stem"``, ``"stage1"`` ...
    ``"stage7"``, ``"head"``, ``"classifier"``; ViT ``"patch_embed"``,
    ``"encoder.layers.0"`` ... ``"encoder.layers.11"``, ``"encoder.ln"``, ``"heads"``;
    Swin ``"features.0"`` ... ``"features.7"``, ``"norm"``, ``"head"``.

    Raises:
        TypeError: unsupported model.
        RuntimeError: a parameter is in no group (a changed architecture).
    """
    family = model_family(model)
    groups = _GROUPERS[family](model)
    _check_every_parameter_grouped(model, groups)
    return groups


def _indexed(prefix: str, sequence: nn.Sequential) -> LayerGroups:
    """One group per child: ``"<prefix>.0"``, ``"<prefix>.1"``, ..."""
    return [(f"{prefix}.{i}", [child]) for i, child in enumerate(sequence)]


def _features_classifier_groups(model: nn.Module) -> LayerGroups:
    """MobileNets and ConvNeXt: one group per ``features`` stage, then the classifier."""
    return _indexed("features", model.features) + [("classifier", [model.classifier])]


def _vgg_groups(model: nn.Module) -> LayerGroups:
    """Convolution blocks end at each max-pool: VGG19 has five, block1 ... block5."""
    groups: LayerGroups = []
    block: list[nn.Module] = []
    for layer in model.features:
        block.append(layer)
        if isinstance(layer, nn.MaxPool2d):
            groups.append((f"block{len(groups) + 1}", block))
            block = []
    if block:  # layers after the last pool (none in torchvision's VGGs)
        groups.append((f"block{len(groups) + 1}", block))
    return groups + [("classifier", [model.classifier])]


def _resnet_groups(model: nn.Module) -> LayerGroups:
    return [
        ("stem", [model.conv1, model.bn1]),
        *[(name, [getattr(model, name)]) for name in ("layer1", "layer2", "layer3", "layer4")],
        ("fc", [model.fc]),
    ]


def _vit_groups(model: nn.Module) -> LayerGroups:
    """The class token and position embedding are bare nn.Parameters, outside any submodule:
    a ParameterList holding the *same* Parameter objects puts them in the first group."""
    embedding = nn.ParameterList([model.class_token, model.encoder.pos_embedding])
    return [
        ("patch_embed", [model.conv_proj, embedding]),
        *[(f"encoder.layers.{i}", [layer]) for i, layer in enumerate(model.encoder.layers)],
        ("encoder.ln", [model.encoder.ln]),
        ("heads", [model.heads]),
    ]


def _swin_groups(model: nn.Module) -> LayerGroups:
    return _indexed("features", model.features) + [("norm", [model.norm]), ("head", [model.head])]


def _lite_groups(model: nn.Module) -> LayerGroups:
    """MBConv blocks grouped by stage: a stage starts where the number of output channels changes."""
    stages: list[list[nn.Module]] = []
    previous_channels = None
    for block in model._blocks:
        channels = block._block_args.output_filters
        if channels != previous_channels:
            stages.append([])
            previous_channels = channels
        stages[-1].append(block)
    return [
        ("stem", [model._conv_stem, model._bn0]),
        *[(f"stage{i + 1}", blocks) for i, blocks in enumerate(stages)],
        ("head", [model._conv_head, model._bn1]),
        ("classifier", [model._fc]),
    ]


_GROUPERS = {
    "mobilenet_v2": _features_classifier_groups,
    "mobilenet_v3": _features_classifier_groups,
    "vgg": _vgg_groups,
    "resnet": _resnet_groups,
    "convnext": _features_classifier_groups,
    "vit": _vit_groups,
    "swin": _swin_groups,
    "efficientnet_lite": _lite_groups,
}


def group_parameters(modules: list[nn.Module]) -> list[nn.Parameter]:
    """The parameters of a group's modules, each once, in module order."""
    seen: set[int] = set()
    params: list[nn.Parameter] = []
    for module in modules:
        for p in module.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                params.append(p)
    return params


def _check_every_parameter_grouped(model: nn.Module, groups: LayerGroups) -> None:
    grouped = {id(p) for _, modules in groups for p in group_parameters(modules)}
    missing = [name for name, p in model.named_parameters() if id(p) not in grouped]
    if missing:
        raise RuntimeError(
            f"layer_groups() left parameters of this {type(model).__name__} ungrouped: {missing[:5]}. "
            "Its architecture differs from the one ldl.models.groups knows."
        )


def freeze(model: nn.Module) -> nn.Module:
    """Freeze every parameter except the head's (the final layer, see ``head_path``).

    Only the layer that ``replace_head`` put in learns: the rest of the classifier stays
    as pretrained too (VGG's two 4096-wide layers hold 119 M parameters, which a few
    hundred photos could not train without overfitting). ``unfreeze`` trains more.

    Freezing stops gradient updates only: in ``model.train()`` mode batch-norm layers
    still update their running statistics, unless ``ldl.train.FreezeBatchNorm`` keeps them
    in eval mode. Returns the model.
    """
    for p in model.parameters():
        p.requires_grad_(False)
    for p in model.get_submodule(head_path(model)).parameters():
        p.requires_grad_(True)
    return model


def unfreeze(model: nn.Module, from_: str | None = None) -> nn.Module:
    """Make group ``from_`` and every later group trainable; freeze the earlier groups.

    ``from_=None`` makes every parameter trainable. Returns the model.

    Raises:
        ValueError: ``from_`` is not a group name (the message lists them).
    """
    groups = layer_groups(model)
    names = [name for name, _ in groups]
    if from_ is None:
        start = 0
    elif from_ in names:
        start = names.index(from_)
    else:
        raise ValueError(f"No layer group {from_!r} in this {type(model).__name__}. Groups: {', '.join(names)}.")
    for index, (_, modules) in enumerate(groups):
        for p in group_parameters(modules):
            p.requires_grad_(index >= start)
    return model


def param_groups(model: nn.Module, base_lr: float, factor: float = 10.0, n_groups: int = 3) -> list[dict]:
    """Optimizer parameter groups with differential learning rates: smaller near the input.

    The layer groups holding trainable parameters are split, in order, into ``n_groups``
    contiguous chunks of (nearly) equal *numbers of layer groups*, extra groups going to the
    chunks near the input. Equal parameter counts would not follow depth: a few layers hold
    most of the weights (VGG's classifier has 86 % of them), so one chunk would be a single
    layer and another almost the whole network. The chunk nearest the output gets
    ``base_lr``, the one before ``base_lr / factor``, then ``base_lr / factor**2``, ...
    Frozen parameters are left out; with fewer trainable layer groups than ``n_groups``
    there are fewer chunks.

    Returns:
        ``[{"params": [...], "lr": float, "name": "features.10..classifier"}, ...]``, input
        side first: pass it straight to ``torch.optim.AdamW``.

    Raises:
        ValueError: ``n_groups < 1``, ``factor <= 0``, or nothing is trainable.
    """
    if n_groups < 1:
        raise ValueError(f"n_groups must be at least 1, got {n_groups}.")
    if factor <= 0:
        raise ValueError(f"factor must be positive, got {factor}.")
    trainable = [
        (name, [p for p in group_parameters(modules) if p.requires_grad]) for name, modules in layer_groups(model)
    ]
    trainable = [(name, params) for name, params in trainable if params]
    if not trainable:
        raise ValueError("No parameter is trainable: call unfreeze(model, ...) or freeze(model) first.")
    chunks = _split_evenly(trainable, min(n_groups, len(trainable)))
    result = []
    for depth, chunk in enumerate(chunks):
        first, last = chunk[0][0], chunk[-1][0]
        result.append({
            "params": [p for _, params in chunk for p in params],
            "lr": base_lr / factor ** (len(chunks) - 1 - depth),
            "name": first if first == last else f"{first}..{last}",
        })
    return result


def _split_evenly(items: list, n: int) -> list[list]:
    """``n`` contiguous chunks whose lengths differ by at most one, longer ones first."""
    size, extra = divmod(len(items), n)
    chunks, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        chunks.append(items[start:end])
        start = end
    return chunks
