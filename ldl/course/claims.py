"""The lessons' headline claims, each with the recorded number that shows it and its rule.

A lesson records numbers with :func:`ldl.course.report.record`; a claim is what the lesson
says those numbers show ("augmentation narrows the clean gap"). Each :class:`Claim` names
the metric shown beside it (its ``_sd`` too, when the lesson ran seeds) and says, in words
and as a check, when it holds. The claims dashboard of the course website
(:mod:`ldl.site.dashboard`) judges every claim on a run's ``build/report.json``::

    >>> claim = CLAIMS[0]
    >>> judge(claim, {"train_val_gap": 0.22, "train_val_gap_sd": 0.04})
    'holds'

The rules follow the course's measurement protocol: a difference counts only when it is
larger than its spread over seeds, and a claim about generalising is judged on held-out
(test) photos. ``tests/test_notebooks.py`` checks the same numbers in more detail.

Why one module: the claims of all the lessons are one table; split by lesson, each file
would hold two or three rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ldl.course.report import MetricValue

Metrics = Mapping[str, MetricValue]

HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
NOT_RECORDED = "not recorded"


@dataclass(frozen=True)
class Claim:
    """One sentence a lesson claims, and how its recorded numbers decide it.

    Attributes:
        notebook: the lesson's notebook stem, e.g. ``"01_data_augmentation"``.
        statement: the claim as the lesson makes it.
        metric: the recorded number shown beside the claim; ``metric + "_sd"`` is its spread
            over seeds when the lesson recorded one.
        rule: when the claim holds, in words (shown on the dashboard).
        check: the rule as code: takes the lesson's metrics, returns True when it holds. A
            missing metric raises KeyError, which :func:`judge` reports as not recorded.
        metric_from: for a metric whose name depends on the profile (the largest batch, a
            width), a function of the metrics that returns its name; see :meth:`shown_metric`.
    """

    notebook: str
    statement: str
    metric: str
    rule: str
    check: Callable[[Metrics], bool]
    metric_from: Callable[[Metrics], str] | None = None

    def shown_metric(self, metrics: Metrics) -> str:
        """The name of the metric shown beside the claim in this run."""
        if self.metric_from is None:
            return self.metric
        try:
            return self.metric_from(metrics)
        except (KeyError, ValueError, TypeError):
            return self.metric


def _sd(metrics: Metrics, name: str) -> float:
    return float(metrics.get(f"{name}_sd", 0.0))


def _clearly_below_zero(metrics: Metrics, name: str) -> bool:
    return float(metrics[name]) + _sd(metrics, name) < 0


def _not_clearly_below_zero(metrics: Metrics, name: str) -> bool:
    return float(metrics[name]) + _sd(metrics, name) >= 0


def _lesson2_narrowing_regulariser(metrics: Metrics) -> bool:
    """A regulariser narrows the clean gap beyond its spread and loses no test accuracy beyond its spread."""
    names = ("dropout", "bn", "weight_decay", "label_smoothing", "mixup")
    return any(
        _clearly_below_zero(metrics, f"{name}_gap_change") and _not_clearly_below_zero(metrics, f"{name}_test_change")
        for name in names
    )


def _lesson6_optimism(metrics: Metrics) -> bool:
    standard_error = _sd(metrics, "optimism") / math.sqrt(float(metrics["optimism_draws"]))
    return float(metrics["optimism"]) > 2 * standard_error


def _lesson6_ensembles(metrics: Metrics) -> bool:
    gains = [float(metrics[f"ensemble_gain_{width}"]) for width in str(metrics["capacity_widths"]).split(",")]
    return sum(gain > 0 for gain in gains) > len(gains) / 2 and sum(gains) > 0


def _lesson7_by_hand(metrics: Metrics) -> bool:
    return all(float(metrics[f"by_hand_gap_{name}"]) < 1e-5 for name in str(metrics["optimisers"]).split(","))


def _largest_batch(metrics: Metrics) -> int:
    return max(int(size) for size in str(metrics["batch_sizes"]).split(","))


def _lesson7_scaled_rate(metrics: Metrics) -> bool:
    name = f"batch_{_largest_batch(metrics)}_scaled_minus_fixed"
    return float(metrics[name]) > max(_sd(metrics, name), 0.01)


CLAIMS: tuple[Claim, ...] = (
    # Lesson 0
    Claim("00_recap_cnn_from_scratch", "The CNN trained from scratch overfits: its clean training accuracy ends well above validation.",
          "train_val_gap", "gap − 2 sd > 0.10",
          lambda m: float(m["train_val_gap"]) - 2 * _sd(m, "train_val_gap") > 0.10),
    Claim("00_recap_cnn_from_scratch", "It still learns: the test photos are classified above chance.",
          "test_acc", "test accuracy − sd > 0.55 (chance 0.5)",
          lambda m: float(m["test_acc"]) - _sd(m, "test_acc") > 0.55),
    # Lesson 1
    Claim("01_data_augmentation", "Augmentation narrows the gap between clean training and validation accuracy.",
          "gap_change", "change + sd < 0",
          lambda m: _clearly_below_zero(m, "gap_change")),
    Claim("01_data_augmentation", "Augmentation costs no accuracy on the test photos.",
          "test_acc_change", "change + sd ≥ 0",
          lambda m: _not_clearly_below_zero(m, "test_acc_change")),
    # Lesson 2
    Claim("02_dropout_batchnorm", "At least one regulariser clearly narrows the clean gap with no clear loss on the test photos.",
          "none_gap", "some regulariser: gap change + sd < 0 and test change + sd ≥ 0",
          _lesson2_narrowing_regulariser),
    Claim("02_dropout_batchnorm", "Batch norm lets plain SGD reach the plain network's accuracy sooner, on every seed.",
          "bn_epochs_to_plain_acc_slowest", "slowest seed within half the epochs",
          lambda m: 0 < float(m["bn_epochs_to_plain_acc_slowest"]) <= float(m["epochs"]) / 2),
    Claim("02_dropout_batchnorm", "L2 inside Adam is not weight decay: weights with large gradients hardly shrink.",
          "adam_l2_weight_large_gradients", "large-gradient weight > 0.8 and small-gradient weight < 0.05",
          lambda m: float(m["adam_l2_weight_large_gradients"]) > 0.8 and float(m["adam_l2_weight_small_gradients"]) < 0.05),
    Claim("02_dropout_batchnorm", "Early stopping gives back the model of the best validation epoch.",
          "early_stopping_restored_val_loss", "restored validation loss = best, within 1e-4",
          lambda m: abs(float(m["early_stopping_restored_val_loss"]) - float(m["early_stopping_best_val_loss"])) <= 1e-4),
    # Lesson 3
    Claim("03_initialization_and_gradients", "In a deep sigmoid network the gradient vanishes on its way to the first layer.",
          "grad_ratio_sigmoid_naive", "first/last layer gradient ≤ 1e-3",
          lambda m: float(m["grad_ratio_sigmoid_naive"]) <= 1e-3),
    Claim("03_initialization_and_gradients", "ReLU with He initialisation keeps the gradient's scale through the depth.",
          "grad_ratio_relu_he", "0.1 ≤ first/last ≤ 10",
          lambda m: 0.1 <= float(m["grad_ratio_relu_he"]) <= 10),
    Claim("03_initialization_and_gradients", "ReLU halves the second moment of a standard normal input.",
          "relu_second_moment_ratio", "|ratio − 0.5| ≤ 0.01",
          lambda m: abs(float(m["relu_second_moment_ratio"]) - 0.5) <= 0.01),
    Claim("03_initialization_and_gradients", "Skip connections carry the gradient where the plain sigmoid stack loses it.",
          "grad_ratio_sigmoid_skip", "with skips ≥ 1e6 × without",
          lambda m: float(m["grad_ratio_sigmoid_skip"]) >= 1e6 * float(m["grad_ratio_sigmoid_plain"])),
    Claim("03_initialization_and_gradients", "Clipping caps the gradient's norm.",
          "max_norm_after_clip", "norm after clipping ≤ the clip norm",
          lambda m: float(m["max_norm_after_clip"]) <= float(m["clip_norm"]) * (1 + 1e-5)),
    # Lesson 4
    Claim("04_transfer_learning", "Pretrained features beat a CNN trained from scratch in the same time, on the test photos.",
          "features_minus_scratch_test", "difference ≥ 0.15 and > its sd",
          lambda m: float(m["features_minus_scratch_test"]) >= 0.15
          and float(m["features_minus_scratch_test"]) > _sd(m, "features_minus_scratch_test")),
    Claim("04_transfer_learning", "Fine-tuning with low differential rates keeps what the frozen base gives.",
          "finetune_minus_frozen_test", "difference ≥ −sd − 0.01",
          lambda m: float(m["finetune_minus_frozen_test"]) >= -_sd(m, "finetune_minus_frozen_test") - 0.01),
    Claim("04_transfer_learning", "The exported model computes what the trained one does.",
          "export_max_diff", "largest difference ≤ 1e-5",
          lambda m: float(m["export_max_diff"]) <= 1e-5),
    # Lesson 5
    Claim("05_vit_vs_convnext", "Self-attention without positions is equivariant to shuffling the patches.",
          "attention_equivariance_error", "error ≤ 1e-5",
          lambda m: float(m["attention_equivariance_error"]) <= 1e-5),
    Claim("05_vit_vs_convnext", "ViT-B/16 runs several times slower than MobileNetV3-Large on the CPU.",
          "vit_b_16_speed_vs_mobilenet_v3_large", "speed ratio ≤ 0.25 and its upper quartile ≤ 0.5",
          lambda m: float(m["vit_b_16_speed_vs_mobilenet_v3_large"]) <= 0.25
          and float(m["vit_b_16_speed_vs_mobilenet_v3_large_q3"]) <= 0.5),
    Claim("05_vit_vs_convnext", "Fine-tuned EfficientNet-Lite0 classifies the test photos well.",
          "efficientnet_lite0_finetuned_test_acc", "test accuracy ≥ 0.85",
          lambda m: float(m["efficientnet_lite0_finetuned_test_acc"]) >= 0.85),
    # Lesson 6
    Claim("06_generalisation", "Choosing the best of many candidates on validation flatters its score.",
          "optimism", "mean optimism > 2 standard errors",
          _lesson6_optimism),
    Claim("06_generalisation", "Random labels are memorised and teach nothing.",
          "memorised_val_acc", "training accuracy ≥ 0.95 and validation within 0.1 of chance",
          lambda m: float(m["memorised_train_acc"]) >= 0.95 and abs(float(m["memorised_val_acc"]) - float(m["chance"])) <= 0.1),
    Claim("06_generalisation", "Double descent: the test error peaks where the features equal the photos.",
          "dd_clean_peak_count", "peak within 15% of the threshold",
          lambda m: abs(float(m["dd_clean_peak_count"]) - float(m["dd_threshold"])) <= 0.15 * float(m["dd_threshold"])),
    Claim("06_generalisation", "An ensemble beats its members on the test photos.",
          "ensemble_gain_16", "gain > 0 at most widths and on average",
          _lesson6_ensembles,
          metric_from=lambda m: f"ensemble_gain_{str(m['capacity_widths']).split(',')[-1]}"),
    # Lesson 7
    Claim("07_optimisation", "Each optimiser written out by hand equals its torch.optim counterpart.",
          "by_hand_gap_Adam", "every largest weight difference < 1e-5",
          _lesson7_by_hand),
    Claim("07_optimisation", "A learning rate far too large diverges, and the guard stops it in the first epoch.",
          "rate_too_large_epochs", "stopped within one epoch",
          lambda m: bool(m["rate_too_large_stopped"]) and float(m["rate_too_large_epochs"]) <= 1),
    Claim("07_optimisation", "At a large batch, scaling the rate with the batch beats keeping it fixed, on the test photos.",
          "batch_512_scaled_minus_fixed", "difference > max(sd, 0.01) at the largest batch",
          _lesson7_scaled_rate,
          metric_from=lambda m: f"batch_{_largest_batch(m)}_scaled_minus_fixed"),
    Claim("07_optimisation", "Random search tries more distinct learning rates than a grid of the same size.",
          "random_distinct_lr", "distinct rates: random > grid",
          lambda m: float(m["random_distinct_lr"]) > float(m["grid_distinct_lr"])),
)


def judge(claim: Claim, metrics: Metrics) -> str:
    """``"holds"``, ``"does not hold"``, or ``"not recorded"`` when a number it needs is missing."""
    try:
        return HOLDS if claim.check(metrics) else DOES_NOT_HOLD
    except (KeyError, ValueError, TypeError):
        return NOT_RECORDED


def claims_of(notebook: str) -> list[Claim]:
    """The claims of one lesson, in the order the lesson makes them."""
    return [claim for claim in CLAIMS if claim.notebook == notebook]
