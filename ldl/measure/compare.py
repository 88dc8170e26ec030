"""Networks side by side, measured on this machine: size, compute, speed, memory, accuracy.

    rows = compare_models(["resnet50", "convnext_tiny", "vit_b_16", "swin_t"], image_size=224,
                          device="cuda", batch_size=64, train_batch_size=32, mixed_precision=True)
    comparison_table(rows)                               # one row per network
    plots.plot_accuracy_vs_speed(rows_for_plot(rows))    # published accuracy vs measured speed
    for check in check_against_published(rows).values():
        print(check)                                     # our counts vs torchvision's

Parameters and multiply-accumulates (MACs) are counted, not copied: the counts are then
checked against the figures torchvision publishes with its weights. ImageNet top-1 is
the published figure (measuring it needs ImageNet). Speeds and memory come from
:func:`ldl.measure.bench.measure_throughput`, so they are this device's, at these settings.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ldl.measure import bench
from ldl.core.memory import release_freed_memory
from ldl.models import backbone_spec, create_backbone
from ldl.core.tables import ResultsTable

__all__ = [
    "TABLE_COLUMNS",
    "ModelRow",
    "PublishedCheck",
    "check_against_published",
    "compare_models",
    "comparison_table",
    "published_figures",
    "rows_for_plot",
]

TABLE_COLUMNS = [
    "params (M)",
    "GMACs",
    "ImageNet top-1 %",
    "images/s (inference)",
    "images/s (training)",
    "peak MB",
    "fine-tuned acc",
]

# torchvision publishes its compute figures for this input side only.
PUBLISHED_IMAGE_SIZE = 224


@dataclass
class ModelRow:
    """One network's line in the comparison.

    Attributes:
        name: registry name, e.g. ``"vit_b_16"``.
        params: parameters, counted (with the 1000-class ImageNet head).
        macs: multiply-accumulates of one ``(1, 3, S, S)`` image at ``image_size``, counted.
        imagenet_top1: published ImageNet-1k top-1 accuracy in % (from the weights' metadata).
        inference_images_per_s: measured forward passes per second, in images.
        training_images_per_s: measured training steps (forward, backward, update) per
            second, in images; None when not measured.
        peak_memory_mb: the most GPU memory allocated while measuring (training included
            when measured); None on the CPU, where PyTorch does not track it.
        finetuned_acc: validation accuracy after fine-tuning on the lesson's data; None
            unless given.
        image_size: the side S that ``macs`` and the speeds were measured at; None if unknown.
    """

    name: str
    params: int
    macs: int
    imagenet_top1: float | None
    inference_images_per_s: float
    training_images_per_s: float | None = None
    peak_memory_mb: float | None = None
    finetuned_acc: float | None = None
    image_size: int | None = None


def _check_image_size(names: Sequence[str], image_size: int) -> None:
    """Refuse sizes a network cannot take, before anything is built or measured."""
    if image_size < 32:
        raise ValueError(f"image_size must be at least 32 (the networks downsample by 32); got {image_size}.")
    for name in names:
        spec = backbone_spec(name)  # an unknown name raises ValueError listing the known ones
        # A ViT learns one position embedding per patch of a fixed grid (14 x 14 patches
        # of 16 px at 224): torchvision's VisionTransformer refuses any other input size.
        if spec.family == "vit" and image_size != spec.input_size:
            raise ValueError(
                f"{name} only takes {spec.input_size} px images (its position embeddings are for a fixed patch "
                f"grid); got image_size={image_size}. Use image_size={spec.input_size}, or leave {name} out."
            )


def _free(device: torch.device) -> None:
    """Give the memory of the network just measured back before building the next one."""
    release_freed_memory()  # on a CPU, glibc would otherwise keep every network's memory
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _measure_one(
    name: str,
    *,
    image_size: int,
    device: torch.device,
    batch_size: int,
    train_batch_size: int | None,
    mixed_precision: bool,
    channels_last: bool,
    repeats: int,
    warmup: int,
    pretrained: bool,
) -> ModelRow:
    """Build ``name``, count it, time it: one row."""
    spec = backbone_spec(name)
    model = create_backbone(name, pretrained=pretrained).to(device)
    params = bench.count_parameters(model)
    macs = bench.count_macs(model, image_size)
    settings = dict(image_size=image_size, device=device, mixed_precision=mixed_precision,
                    channels_last=channels_last, repeats=repeats, warmup=warmup)
    inference = bench.measure_throughput(model, batch_size=batch_size, **settings)
    peaks = [inference.peak_memory_mb]
    training_speed = None
    if train_batch_size is not None:
        try:
            # Training changes the weights; this model is thrown away afterwards, so that is fine.
            training = bench.measure_throughput(model, batch_size=train_batch_size, train=True, **settings)
        except torch.cuda.OutOfMemoryError:
            # One network too big for the GPU should not lose the others' measurements.
            _free(device)
            warnings.warn(
                f"{name}: out of GPU memory training with batch {train_batch_size} at {image_size} px; "
                "its training speed is left empty. Pass a smaller train_batch_size to measure it.",
                stacklevel=3,
            )
        else:
            training_speed = training.images_per_s
            peaks.append(training.peak_memory_mb)
    measured_peaks = [peak for peak in peaks if peak is not None]
    return ModelRow(
        name=name,
        params=params,
        macs=macs,
        imagenet_top1=spec.imagenet_top1,
        inference_images_per_s=inference.images_per_s,
        training_images_per_s=training_speed,
        peak_memory_mb=max(measured_peaks) if measured_peaks else None,
        image_size=image_size,
    )


def compare_models(
    names: Sequence[str],
    *,
    image_size: int,
    device: str | torch.device = "cpu",
    batch_size: int = 8,
    train_batch_size: int | None = None,
    mixed_precision: bool = False,
    channels_last: bool = False,
    repeats: int = 3,
    warmup: int = 2,
    pretrained: bool = False,
    progress: bool = True,
    finetuned_acc: Mapping[str, float] | None = None,
) -> list[ModelRow]:
    """Build each network in turn, count it and measure its speed; one :class:`ModelRow` each.

    Networks are built one at a time and freed before the next, so the GPU only ever
    holds one. Speeds use random ``(batch_size, 3, S, S)`` inputs already on the device
    (see :func:`ldl.measure.bench.measure_throughput`): the ceiling a data pipeline can reach.

    Args:
        names: registry names (see ``ldl.models.BACKBONES``).
        image_size: side S of the square inputs; ViT-B/16 only takes its own 224.
        device: where to measure.
        batch_size: images per forward pass for the inference speed.
        train_batch_size: images per training step; None skips the training speed.
        mixed_precision, channels_last: passed to :func:`ldl.measure.bench.measure_throughput`.
        repeats: timed repeats per measurement (the median counts).
        warmup: untimed batches before them (memory allocation, kernel selection); on a
            CPU, where a ViT-B/16 batch takes seconds, 1 is enough.
        pretrained: load ImageNet weights. Speed and counts do not depend on the weights,
            so the default builds random ones and downloads nothing.
        progress: show a progress bar over the networks.
        finetuned_acc: optional ``{name: validation accuracy}`` to fill that column.

    Raises:
        ValueError: an unknown name, or an image size a network cannot take (checked
            before anything is built).
    """
    names = list(names)
    if not names:
        raise ValueError("names is empty: give at least one backbone name, e.g. ['resnet50', 'vit_b_16'].")
    _check_image_size(names, image_size)
    unknown = set(finetuned_acc or {}) - set(names)
    if unknown:
        raise ValueError(f"finetuned_acc names {sorted(unknown)} that are not compared; compared: {names}.")
    device = torch.device(device)
    rows = []
    bar = tqdm(names, desc="measuring", unit="network", disable=not progress)
    for name in bar:
        bar.set_postfix_str(name)
        row = _measure_one(
            name, image_size=image_size, device=device, batch_size=batch_size, train_batch_size=train_batch_size,
            mixed_precision=mixed_precision, channels_last=channels_last, repeats=repeats, warmup=warmup,
            pretrained=pretrained,
        )
        row.finetuned_acc = (finetuned_acc or {}).get(name)
        rows.append(row)
        _free(device)
    return rows


def comparison_table(rows: Sequence[ModelRow]) -> ResultsTable:
    """The rows as a :class:`ldl.core.tables.ResultsTable` (HTML in a notebook, ``.markdown()`` for text)."""
    table = ResultsTable(TABLE_COLUMNS, name_header="model")
    for row in rows:
        table.add(
            row.name,
            **{
                "params (M)": row.params / 1e6,
                "GMACs": row.macs / 1e9,
                "ImageNet top-1 %": row.imagenet_top1,
                "images/s (inference)": row.inference_images_per_s,
                "images/s (training)": row.training_images_per_s,
                "peak MB": row.peak_memory_mb,
                "fine-tuned acc": row.finetuned_acc,
            },
        )
    return table


def rows_for_plot(rows: Sequence[ModelRow], speed: str = "inference") -> list[dict[str, object]]:
    """What :func:`ldl.plots.plot_accuracy_vs_speed` takes: ``name``, ``top1``, ``images_per_s``, ``params``.

    Args:
        speed: ``"inference"`` or ``"training"`` images per second on the x axis.
            Rows without that speed or without a published top-1 are left out.
    """
    if speed not in ("inference", "training"):
        raise ValueError(f'speed must be "inference" or "training"; got {speed!r}.')
    plotted = []
    for row in rows:
        images_per_s = row.inference_images_per_s if speed == "inference" else row.training_images_per_s
        if images_per_s is None or row.imagenet_top1 is None:
            continue
        plotted.append({"name": row.name, "top1": row.imagenet_top1, "images_per_s": images_per_s,
                        "params": row.params})
    return plotted


def published_figures(name: str) -> tuple[int, float | None]:
    """torchvision's published ``(parameters, GMACs at 224 px)`` for ``name``.

    torchvision calls its compute figure "GFLOPS", but the numbers are multiply-accumulates
    (ResNet-50: 4.09), which is what :func:`ldl.measure.bench.count_macs` counts. None where
    nothing is published.
    """
    spec = backbone_spec(name)
    return spec.num_params, spec.gflops


@dataclass(frozen=True)
class PublishedCheck:
    """How far our counts are from the published figures, as signed fractions of them.

    Attributes:
        params_rel_diff: (counted - published) / published parameters.
        macs_rel_diff: the same for MACs; None when the row was not measured at 224 px
            (the only size published) or nothing is published.
        tolerance: the largest absolute difference that still agrees.
    """

    name: str
    params_rel_diff: float
    macs_rel_diff: float | None
    tolerance: float

    @property
    def agrees(self) -> bool:
        """Every difference that could be checked is within the tolerance."""
        diffs = [self.params_rel_diff] + ([self.macs_rel_diff] if self.macs_rel_diff is not None else [])
        return all(abs(diff) <= self.tolerance for diff in diffs)

    def __str__(self) -> str:
        checked = f"params {100 * self.params_rel_diff:+.2f} %"
        if self.macs_rel_diff is not None:
            checked += f", MACs {100 * self.macs_rel_diff:+.2f} %"
        verdict = "agrees with" if self.agrees else "DISAGREES with"
        return (f"{self.name}: {verdict} torchvision's published figures within {100 * self.tolerance:g} % "
                f"({checked})")


def check_against_published(rows: Sequence[ModelRow], tolerance: float = 0.02) -> dict[str, PublishedCheck]:
    """Compare each row's counted parameters (and MACs, for rows measured at 224 px) with torchvision's.

    Returns:
        ``{name: PublishedCheck}``; print one to read the verdict, or test ``.agrees``.
    """
    checks = {}
    for row in rows:
        published_params, published_gmacs = published_figures(row.name)
        macs_diff = None
        if row.image_size == PUBLISHED_IMAGE_SIZE and published_gmacs:
            macs_diff = (row.macs / 1e9 - published_gmacs) / published_gmacs
        checks[row.name] = PublishedCheck(
            name=row.name,
            params_rel_diff=(row.params - published_params) / published_params,
            macs_rel_diff=macs_diff,
            tolerance=tolerance,
        )
    return checks
