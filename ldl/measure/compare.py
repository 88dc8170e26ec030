"""Networks side by side, measured on this machine: size, compute, speed, memory, accuracy.

::

    rows = compare_models(["resnet50", "convnext_tiny", "vit_b_16", "swin_t"], image_size=224,
                          device="cuda", batch_size=64, train_batch_size=32, mixed_precision=True)
    comparison_table(rows)                               # one row per network
    plots.plot_accuracy_vs_speed(rows_for_plot(rows))    # published accuracy vs measured speed
    for check in check_against_published(rows).values():
        print(check)                                     # our counts vs torchvision's
    relative_speeds(rows, reference="resnet50")          # speed as a multiple of resnet50's, with its spread

Parameters and multiply-accumulates (MACs) are counted, not copied: the counts are then
checked against the figures torchvision publishes with its weights. ImageNet top-1 is
the published figure (measuring it needs ImageNet). Speeds and memory come from
:mod:`ldl.measure.bench`, so they are this device's, at these settings.

Speeds are timed in rounds, one batch of every network per round, so that a busy spell of
the machine slows them all alike. A speed is best read as a ratio to a reference network
measured in the same rounds (:func:`relative_speeds`): the median of the per-round ratios,
with their interquartile range. A ratio whose middle half includes 1 does not rank the two networks.

Why one module: the rows are measured once and then read in four ways (the table, the
ratios, the chart's points, the check against published figures), each a few dozen lines
that share :class:`ModelRow`; apart, every reader would import the others' row anyway.
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import nn

import torch
from tqdm.auto import tqdm

from ldl.measure import bench
from ldl.core.memory import release_freed_memory
from ldl.models import backbone_spec, create_backbone
from ldl.core.tables import ResultsTable
from ldl.train.seed_stats import format_mean_sd, mean_sd

__all__ = [
    "TABLE_COLUMNS",
    "ModelRow",
    "PublishedCheck",
    "RelativeSpeed",
    "check_against_published",
    "compare_models",
    "comparison_table",
    "published_figures",
    "relative_speeds",
    "rows_for_plot",
    "set_finetuned",
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
        inference_images_per_s: measured forward passes per second, in images (batch size
            over the median seconds per batch).
        training_images_per_s: measured training steps (forward, backward, update) per
            second, in images; None when not measured.
        peak_memory_mb: the most GPU memory allocated while measuring (training included
            when measured); None on the CPU, where PyTorch does not track it.
        finetuned_acc: held-out accuracy after fine-tuning on the lesson's data, the mean
            over ``finetuned_seeds`` runs; None unless given.
        image_size: the side S that ``macs`` and the speeds were measured at; None if unknown.
        inference_seconds, training_seconds: seconds per batch of every timed repeat, in order.
            Rows measured by one :func:`compare_models` call timed their inference in the same
            rounds, so entry ``r`` of two rows is a paired comparison; their training too when
            ``training_interleaved``.
        finetuned_acc_sd: the sample standard deviation over the seeds (None with one seed).
        finetuned_seeds: how many fine-tuning runs ``finetuned_acc`` averages.
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
    inference_seconds: list[float] | None = None
    training_seconds: list[float] | None = None
    finetuned_acc_sd: float | None = None
    finetuned_seeds: int = 0
    training_interleaved: bool = False


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


def _train_alone(name: str, model: nn.Module, train_batch_size: int, settings: dict,
                 device: torch.device) -> bench.Throughput | None:
    """One network's training speed, timed on its own; None (and a warning) when it does not fit the GPU."""
    try:
        # Training changes the weights; these models are thrown away afterwards, so that is fine.
        return bench.measure_throughput(model, batch_size=train_batch_size, train=True, **settings)
    except torch.cuda.OutOfMemoryError:
        # One network too big for the GPU should not lose the others' measurements.
        warnings.warn(
            f"{name}: out of GPU memory training with batch {train_batch_size} at {settings['image_size']} px; "
            "its training speed is left empty. Pass a smaller train_batch_size to measure it.",
            stacklevel=4,
        )
        return None
    finally:
        model.zero_grad(set_to_none=True)
        _free(device)


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
    train_repeats: int | None = None,
    warmup: int = 2,
    interleave_training: bool | None = None,
    threads: int | None = None,
    pretrained: bool = False,
    progress: bool = True,
    finetuned_acc: Mapping[str, float] | None = None,
) -> list[ModelRow]:
    """Build every network, count it, and time them side by side; one :class:`ModelRow` each, in ``names`` order.

    Inference speeds come from :func:`ldl.measure.bench.interleaved_throughput` on random
    ``(batch_size, 3, S, S)`` inputs already on the device (the ceiling a data pipeline can
    reach): one batch of every network per round, so a busy spell of the machine slows every
    network alike, and :func:`relative_speeds` pairs them round by round. So all the networks
    are held in memory together (the lesson's five: 0.7 GB of float32 weights).

    Training speeds are interleaved too where the networks sit in GPU memory. On a CPU they
    share the host's memory with everything else, and interleaving would hold every network's
    weights *and* one network's gradients at once (ViT-B/16's: 0.35 GB more). There each
    network's training speed is timed on its own as it is built, the largest first, while
    only the larger ones are held: read a training ratio close to 1 as no ranking.

    Args:
        names: registry names (see ``ldl.models.BACKBONES``).
        image_size: side S of the square inputs; ViT-B/16 only takes its own 224.
        device: where to measure.
        batch_size: images per forward pass for the inference speed.
        train_batch_size: images per training step; None skips the training speed.
        mixed_precision, channels_last: passed to :func:`ldl.measure.bench.measure_throughput`.
        repeats: timed rounds of the inference speed (the median counts; five or more give
            its interquartile range a meaning).
        train_repeats: timed repeats of the training speed; None: ``repeats``. A training
            step costs about three forward passes, so fewer keep it affordable.
        warmup: untimed rounds before them (memory allocation, kernel selection); on a
            CPU, where a ViT-B/16 batch takes seconds, 1 is enough.
        interleave_training: time the training steps in interleaved rounds; None: on CUDA only.
        threads: intra-op CPU threads while timing (:func:`ldl.measure.bench.intra_op_threads`);
            1 gives one core's speed, which a busy machine does not distort. None: PyTorch's setting.
        pretrained: load ImageNet weights. Speed and counts do not depend on the weights,
            so the default builds random ones and downloads nothing.
        progress: show a progress bar over the networks as they are built and counted.
        finetuned_acc: optional ``{name: held-out accuracy}`` to fill that column.

    Raises:
        ValueError: an unknown name, or an image size a network cannot take (checked
            before anything is built).
    """
    names = list(names)
    if not names:
        raise ValueError("names is empty: give at least one backbone name, e.g. ['resnet50', 'vit_b_16'].")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"names lists {repeated} more than once: each network is one row.")
    _check_image_size(names, image_size)
    unknown = set(finetuned_acc or {}) - set(names)
    if unknown:
        raise ValueError(f"finetuned_acc names {sorted(unknown)} that are not compared; compared: {names}.")
    device = torch.device(device)
    interleave_training = device.type == "cuda" if interleave_training is None else interleave_training
    settings = dict(image_size=image_size, device=device, mixed_precision=mixed_precision,
                    channels_last=channels_last, warmup=warmup)
    train_settings = {**settings, "repeats": train_repeats or repeats}
    models: dict[str, nn.Module] = {}
    counts: dict[str, tuple[int, int]] = {}
    training: dict[str, bench.Throughput | None] = {}
    # The largest first: its counting and (on a CPU) its training run while little else is held.
    largest_first = sorted(names, key=lambda name: backbone_spec(name).num_params, reverse=True)
    bar = tqdm(largest_first, desc="building and counting", unit="network", disable=not progress)
    for name in bar:
        bar.set_postfix_str(name)
        model = create_backbone(name, pretrained=pretrained).to(device)
        counts[name] = bench.count_parameters(model), bench.count_macs(model, image_size)
        if train_batch_size is not None and not interleave_training:
            with bench.intra_op_threads(threads):
                training[name] = _train_alone(name, model, train_batch_size, train_settings, device)
        models[name] = model
    models = {name: models[name] for name in names}  # rounds and rows in the order asked for
    fell_back = False
    with bench.intra_op_threads(threads):
        inference = bench.interleaved_throughput(models, batch_size=batch_size, repeats=repeats, **settings)
        if train_batch_size is not None and interleave_training:
            try:
                training = bench.interleaved_throughput(models, batch_size=train_batch_size, train=True,
                                                        **train_settings)
            except torch.cuda.OutOfMemoryError:
                # Together they do not fit: one network at a time, so that one too big loses only its own cell.
                for model in models.values():
                    model.zero_grad(set_to_none=True)
                _free(device)
                fell_back = True
                training = {name: _train_alone(name, model, train_batch_size, train_settings, device)
                            for name, model in models.items()}
    rows = []
    for name in names:
        spec, trained = backbone_spec(name), training.get(name)
        peaks = [result.peak_memory_mb for result in (inference[name], trained) if result is not None]
        measured_peaks = [peak for peak in peaks if peak is not None]
        rows.append(ModelRow(
            name=name,
            params=counts[name][0],
            macs=counts[name][1],
            imagenet_top1=spec.imagenet_top1,
            inference_images_per_s=inference[name].images_per_s,
            training_images_per_s=trained.images_per_s if trained is not None else None,
            peak_memory_mb=max(measured_peaks) if measured_peaks else None,
            finetuned_acc=(finetuned_acc or {}).get(name),
            finetuned_seeds=int(name in (finetuned_acc or {})),
            image_size=image_size,
            inference_seconds=list(inference[name].seconds_per_batch),
            training_seconds=list(trained.seconds_per_batch) if trained is not None else None,
            training_interleaved=trained is not None and interleave_training and not fell_back,
        ))
    del models, model
    _free(device)
    return rows


@dataclass(frozen=True)
class RelativeSpeed:
    """A network's speed as a multiple of a reference network's, measured in the same rounds.

    Each round gives one ratio ``reference seconds / name seconds`` per batch: the images per
    second of ``name`` over the reference's (0.1: ten times slower). On a busy machine one
    round can be hit by a stall of one network alone, so the spread is read on the middle
    half of the rounds (the interquartile range), which one bad round on either side does
    not move; the extremes are kept to show how far a single round can stray.

    Attributes:
        name, reference: the two networks' registry names.
        median: the median of the per-round ratios.
        q1, q3: their first and third quartiles (inclusive method; with 5 rounds, the 2nd
            and 4th smallest ratios).
        low, high: the smallest and the largest ratio.
        rounds: how many rounds were paired.
    """

    name: str
    reference: str
    median: float
    q1: float
    q3: float
    low: float
    high: float
    rounds: int

    @property
    def faster(self) -> bool | None:
        """True (False) when the middle half of the rounds has ``name`` faster (slower); None: not ranked."""
        if self.q1 > 1:
            return True
        if self.q3 < 1:
            return False
        return None

    def cell(self) -> str:
        """``0.081 (0.074–0.090)``: the median and the interquartile range, for a table cell."""
        return f"{self.median:.3g} ({self.q1:.3g}–{self.q3:.3g})"

    def __str__(self) -> str:
        verdict = {True: "faster", False: "slower", None: "not ranked: its middle half includes 1"}[self.faster]
        return (f"{self.name}: {self.median:.3g}x the images/s of {self.reference} (middle half of {self.rounds} "
                f"rounds {self.q1:.3g}–{self.q3:.3g}, all {self.low:.3g}–{self.high:.3g}; {verdict})")


def _quartiles(values: Sequence[float]) -> tuple[float, float]:
    """First and third quartiles (inclusive: they lie between the smallest and largest value)."""
    if len(values) == 1:
        return values[0], values[0]
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q3


def relative_speeds(rows: Sequence[ModelRow], reference: str, mode: str = "inference") -> dict[str, RelativeSpeed]:
    """Each row's images/s as a multiple of ``reference``'s, paired round by round.

    Rows must come from one :func:`compare_models` call (the same rounds, the same batch
    size). Rows without that speed are left out.

    Raises:
        ValueError: ``reference`` is not a measured row, or the rows' rounds do not pair.
    """
    if mode not in ("inference", "training"):
        raise ValueError(f'mode must be "inference" or "training"; got {mode!r}.')
    if mode == "training" and not all(row.training_interleaved for row in rows if row.training_seconds):
        raise ValueError("These training speeds were timed one network at a time (compare_models on a CPU), "
                         "not in the same rounds: they do not pair. Pass interleave_training=True to pair them.")
    timed = {row.name: row.inference_seconds if mode == "inference" else row.training_seconds for row in rows}
    timed = {name: seconds for name, seconds in timed.items() if seconds}
    if reference not in timed:
        raise ValueError(f"No {mode} rounds for the reference {reference!r}; measured: {sorted(timed)}.")
    base = timed[reference]
    speeds = {}
    for name, seconds in timed.items():
        if len(seconds) != len(base):
            raise ValueError(f"{name} has {len(seconds)} rounds and {reference} {len(base)}: measure them in one "
                             "compare_models call, so that their rounds pair.")
        ratios = [b / s for b, s in zip(base, seconds)]  # same batch size: images/s ratio = time ratio inverted
        q1, q3 = _quartiles(ratios)
        speeds[name] = RelativeSpeed(name=name, reference=reference, median=statistics.median(ratios), q1=q1, q3=q3,
                                     low=min(ratios), high=max(ratios), rounds=len(ratios))
    return speeds


def set_finetuned(rows: Sequence[ModelRow], accuracies: Mapping[str, Sequence[float]]) -> None:
    """Fill the fine-tuned column in place: mean ± sd of each network's runs (one per seed).

    Rows not named in ``accuracies`` (or with no runs) keep an empty cell.
    """
    for row in rows:
        runs = list(accuracies.get(row.name, []))
        row.finetuned_seeds = len(runs)
        if not runs:
            row.finetuned_acc = row.finetuned_acc_sd = None
            continue
        mean, sd = mean_sd(runs)
        row.finetuned_acc, row.finetuned_acc_sd = mean, (sd if len(runs) > 1 else None)


def comparison_table(rows: Sequence[ModelRow], reference: str | None = None) -> ResultsTable:
    """The rows as a :class:`ldl.core.tables.ResultsTable` (HTML in a notebook, ``.markdown()`` for text).

    Args:
        reference: a measured row's name: adds a column with each network's inference speed
            as a multiple of it, the median over the rounds and the interquartile range
            (:func:`relative_speeds`).
    """
    columns = list(TABLE_COLUMNS)
    ratios: dict[str, RelativeSpeed] = {}
    ratio_column = f"images/s vs {reference} (IQR)"
    if reference is not None:
        ratios = relative_speeds(rows, reference)
        columns.insert(columns.index("images/s (inference)") + 1, ratio_column)
    table = ResultsTable(columns, name_header="model")
    for row in rows:
        finetuned: object = row.finetuned_acc
        if row.finetuned_acc is not None and row.finetuned_acc_sd is not None:
            mean_and_sd = format_mean_sd(row.finetuned_acc, row.finetuned_acc_sd, ".3f")
            finetuned = f"{mean_and_sd} ({row.finetuned_seeds} seeds)"
        values = {
            "params (M)": row.params / 1e6,
            "GMACs": row.macs / 1e9,
            "ImageNet top-1 %": row.imagenet_top1,
            "images/s (inference)": row.inference_images_per_s,
            "images/s (training)": row.training_images_per_s,
            "peak MB": row.peak_memory_mb,
            "fine-tuned acc": finetuned,
        }
        if reference is not None:
            values[ratio_column] = ratios[row.name].cell() if row.name in ratios else None
        table.add(row.name, **values)
    return table


def rows_for_plot(rows: Sequence[ModelRow], speed: str = "inference") -> list[dict[str, object]]:
    """What :func:`ldl.plots.plot_accuracy_vs_speed` takes: ``name``, ``top1``, ``images_per_s``, ``params``,
    and ``images_per_s_iqr`` (the interquartile range over the rounds) where the rounds were kept.

    Args:
        speed: ``"inference"`` or ``"training"`` images per second on the x axis.
            Rows without that speed or without a published top-1 are left out.
    """
    if speed not in ("inference", "training"):
        raise ValueError(f'speed must be "inference" or "training"; got {speed!r}.')
    plotted = []
    for row in rows:
        images_per_s = row.inference_images_per_s if speed == "inference" else row.training_images_per_s
        seconds = row.inference_seconds if speed == "inference" else row.training_seconds
        if images_per_s is None or row.imagenet_top1 is None:
            continue
        point: dict[str, object] = {"name": row.name, "top1": row.imagenet_top1, "images_per_s": images_per_s,
                                    "params": row.params}
        if seconds:
            # The rounds' images/s (images_per_s is batch / median seconds), and their middle half.
            median = statistics.median(seconds)
            point["images_per_s_iqr"] = _quartiles(sorted(images_per_s * median / second for second in seconds))
        plotted.append(point)
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
