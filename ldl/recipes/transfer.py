"""Lesson 4's transfer-learning recipe as one function: saved features, a head, then fine-tuning.

    result = transfer_recipe("efficientnet_lite0", get_profile("smoke"), augment=default_augment(), seeds=[0, 1, 2])
    print(result)
    # efficientnet_lite0 on cats_and_dogs_sample (2 classes, 3 seeds): validation: head on saved
    # features <mean> ± <sd>, fine-tuned <mean> ± <sd>; test: head on saved features ..., fine-tuned ...
    # (head lr ..., ... s)

The steps, in their cheapest order (each one is a section of lesson 4):

1. Build the pretrained network and cut off its ImageNet classifier: it now maps
   ``(B, 3, S, S)`` photos to ``(B, D)`` pooled features.
2. Run it **once** over the unaugmented photos: ``(N, D)`` features for training,
   validation and test (:func:`ldl.measure.features.extract_features`). Every seed reuses them.
3. Choose the head's learning rate with the LR range test on those features
   (:func:`ldl.train.lr_find`), unless a rate is given.
4. Train a linear head ``(B, D) -> (B, C)`` on the saved features with one-cycle: seconds,
   since the network does not run again.
5. Put the trained head back on a fresh copy of the network, unfreeze the last three layer
   groups before it, and fine-tune on augmented photos with differential learning rates
   (each earlier chunk ``factor`` times lower) and one-cycle; batch norm keeps ImageNet's
   statistics.

Steps 4 and 5 run once per seed (``seeds=[0, 1, 2]``): the seed changes the head's initial
weights, the order of the batches and the augmentation, nothing else, and seed k's
fine-tuning starts from seed k's head, so that ``fine-tuned - head`` is a paired difference.
Nothing is chosen on the test photos: each run is measured on them once, at the end.

Training the head first and fine-tuning second keeps more of the pretrained features than
fine-tuning under a random head (Kumar et al., 2022, "Fine-Tuning can Distort Pretrained
Features").
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ldl.data import make_loaders
from ldl.data.batch_augment import BatchAugment
from ldl.measure.features import FeatureSet, extract_features
from ldl.models import backbone_spec, create_backbone, head_path, layer_groups, param_groups, remove_head, unfreeze
from ldl.profiles import Profile
from ldl.train import FreezeBatchNorm, Trainer, lr_find, one_cycle
from ldl.train.seed_stats import format_mean_sd, mean_sd

__all__ = ["TransferResult", "default_augment", "find_head_lr", "transfer_recipe"]

# The LR range test sweeps the head's rate over this range (lesson 4's values).
LR_FIND_START, LR_FIND_END = 1e-6, 10.0
# A "steepest" rate more than this many times below a tenth of the lowest-loss rate lies on
# the flat start of the curve: noise, not learning (see find_head_lr).
FLAT_START = 10.0


@dataclass
class TransferResult:
    """What :func:`transfer_recipe` measured, over one seed or several.

    Attributes:
        backbone: registry name of the pretrained network, e.g. ``"efficientnet_lite0"``.
        dataset: registry name of the photos, e.g. ``"cats_and_dogs_sample"``.
        classes: the class names, in label order.
        head_acc: validation top-1 accuracy of the linear head trained on saved features
            (the mean over the seeds).
        finetuned_acc: validation top-1 accuracy after fine-tuning the later layer groups
            (the mean over the seeds).
        head_lr: the head's peak learning rate (found by the LR range test, or given);
            fine-tuning peaks at a tenth of it.
        seconds: wall time of the whole recipe, data preparation included.
        seeds: the seeds the head and the fine-tuning ran with, in order.
        per_seed: one value per seed for each of ``"head_acc"``, ``"finetuned_acc"``
            (validation) and, when the photos have a test part, ``"head_test_acc"`` and
            ``"finetuned_test_acc"``: each run measured once on the test photos.
    """

    backbone: str
    dataset: str
    classes: list[str]
    head_acc: float
    finetuned_acc: float
    head_lr: float
    seconds: float
    seeds: list[int] = field(default_factory=lambda: [0])
    per_seed: dict[str, list[float]] = field(default_factory=dict)

    @property
    def head_test_acc(self) -> float | None:
        """Test accuracy of the head on saved features, the mean over the seeds; None without a test part."""
        return self.mean_sd("head_test_acc")[0] if "head_test_acc" in self.per_seed else None

    @property
    def finetuned_test_acc(self) -> float | None:
        """Test accuracy after fine-tuning, the mean over the seeds; None without a test part."""
        return self.mean_sd("finetuned_test_acc")[0] if "finetuned_test_acc" in self.per_seed else None

    def mean_sd(self, key: str) -> tuple[float, float]:
        """Mean and sample sd over the seeds of ``per_seed[key]`` (the sd is nan with one seed)."""
        if key not in self.per_seed:
            raise KeyError(f"No per-seed {key!r}; there are {sorted(self.per_seed)}.")
        return mean_sd(self.per_seed[key])

    def __str__(self) -> str:
        def both(split: str, head: str, tuned: str) -> str:
            return (f"{split}: head on saved features {format_mean_sd(*self.mean_sd(head), '.3f')}, "
                    f"fine-tuned {format_mean_sd(*self.mean_sd(tuned), '.3f')}")

        seeds = f", {len(self.seeds)} seeds" if len(self.seeds) > 1 else ""
        parts = [both("validation", "head_acc", "finetuned_acc")] if self.per_seed else [
            f"head on saved features {self.head_acc:.3f}, fine-tuned {self.finetuned_acc:.3f}"]
        if "head_test_acc" in self.per_seed:
            parts.append(both("test", "head_test_acc", "finetuned_test_acc"))
        return (f"{self.backbone} on {self.dataset} ({len(self.classes)} classes{seeds}): {'; '.join(parts)} "
                f"(head lr {self.head_lr:.1e}, {self.seconds:.0f} s)")


def default_augment() -> BatchAugment:
    """Lesson 4's augmentation for fine-tuning: flips, crops, a small rotation, light colour changes."""
    return BatchAugment(flip_p=0.5, scale=(0.6, 1.0), translate=(0.1, 0.1), degrees=10.0, brightness=0.2, contrast=0.2)


def find_head_lr(head: nn.Module, features: FeatureSet, *, batch_size: int, device: str | torch.device = "cpu",
                 progress: bool = False) -> float:
    """The head's learning rate by the LR range test on saved features: ``min(steepest, lowest-loss lr / 10)``.

    The steepest descent is where the loss falls fastest; a tenth of the rate at the lowest
    loss (fastai's rule of thumb) caps it below where training starts to diverge. A steepest
    point more than ``FLAT_START`` (10) times below that cap is a wiggle on the flat start of
    the curve, where rates are too small to change anything, and the cap is used instead.
    So the rate lies between a hundredth and a tenth of the lowest-loss rate. The head is
    left as it was (``lr_find`` restores it).

    Args:
        head: e.g. ``nn.Linear(D, C)``.
        features: saved features ``(N, D)`` with their labels ``(N,)``.
        batch_size: features per step of the sweep (100 steps, cycling over the features).
        device, progress: where to run it; whether to show a progress bar.

    Raises:
        RuntimeError: the loss was never finite during the sweep (check the features and labels).
    """
    finder = lr_find(head, features.loader(batch_size=batch_size, shuffle=True),
                     optimizer=torch.optim.AdamW(head.parameters()), start_lr=LR_FIND_START, end_lr=LR_FIND_END,
                     device=device, progress=progress)
    capped = finder.min_loss_lr / 10
    if not math.isfinite(capped):
        raise RuntimeError(f"The LR range test found no usable rate:\n{finder.summary()}\n"
                           "Pass head_lr=... (e.g. 1e-3) to skip it.")
    steepest = finder.suggestion
    # Far below the minimum the loss is flat (such rates change nothing), but the smoothed
    # loss still wiggles there, and a wiggle can look steepest: on 800 photos at 64 px the
    # steepest point was 8e-6, where the head learnt nothing in 30 epochs.
    # A sweep cut short has no steepest point at all (nan). Either way the capped rate is used.
    if not math.isfinite(steepest) or steepest < capped / FLAT_START:
        return capped
    return min(steepest, capped)


def transfer_recipe(
    backbone: str,
    profile: Profile,
    *,
    dataset: str | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    image_size: int | None = None,
    epochs: int | None = None,
    head_epochs: int = 30,
    head_lr: float | None = None,
    factor: float = 10.0,
    seed: int = 0,
    seeds: Sequence[int] | None = None,
    progress: bool = False,
) -> TransferResult:
    """Saved features + a linear head, then fine-tuning with differential learning rates.

    The features are computed once; with several ``seeds`` the head and the fine-tuning run
    once per seed on them, and the accuracies are means (``TransferResult.per_seed`` holds
    each run's).

    Args:
        backbone: a pretrained network of ``ldl.models.BACKBONES``, e.g. ``"efficientnet_lite0"``.
        profile: gives the device, the batch size and the defaults below.
        dataset: registry name of the photos; default ``profile.data.dataset``.
        augment: batch augmentation for the fine-tuning step, on ``(B, 3, S, S)`` floats in
            [0, 1] (e.g. :func:`default_augment`); None: none. The saved features never
            see it: each photo becomes one vector, once.
        image_size: side S of the photos; default ``profile.transfer.image_size``. ViT-B/16
            only takes 224.
        epochs: fine-tuning epochs; default ``profile.transfer.epochs``.
        head_epochs: epochs of the head on saved features (cheap: a few matrix products each).
        head_lr: the head's peak learning rate; None runs the LR range test (:func:`find_head_lr`).
        factor: each earlier chunk of layer groups gets a ``factor`` times lower rate.
        seed: seeds the head's initialisation, the shuffling and the augmentation.
        seeds: several seeds instead of ``seed``, e.g. ``[0, 1, 2]``: one head and one
            fine-tuning per seed, seed k's fine-tuning starting from seed k's head.
        progress: show progress bars and one line per fine-tuning epoch.

    Returns:
        A :class:`TransferResult` (the accuracies per seed and their means, the head's rate,
        the time taken).

    Raises:
        ValueError: an unknown backbone name, an image size the network cannot take, or an
            empty or repeated list of seeds.
        WeightsUnavailable: the network's pretrained weights are neither cached nor
            downloadable (the message says how to get them); EfficientNet-Lite0's ship with pip.
    """
    start = time.perf_counter()
    if head_lr is not None and not head_lr > 0:
        raise ValueError(f"head_lr must be a positive learning rate, e.g. 1e-3, or None for the LR range test; "
                         f"got {head_lr!r}.")
    seed_list = [int(s) for s in seeds] if seeds is not None else [seed]
    if not seed_list or len(set(seed_list)) != len(seed_list):
        raise ValueError(f"seeds must be distinct seeds, e.g. [0, 1, 2]; got {seeds!r}.")
    spec = backbone_spec(backbone)  # an unknown name raises ValueError listing the known ones
    image_size = image_size or profile.transfer.image_size
    epochs = epochs or profile.transfer.epochs
    if spec.family == "vit" and image_size != spec.input_size:
        # Its position embeddings are learnt for one grid of patches: no other size fits.
        raise ValueError(f"{backbone} only takes {spec.input_size} px images; got image_size={image_size}.")
    torch.manual_seed(seed_list[0])
    # Weights first: a missing file should fail in a second, not after decoding every photo.
    network = create_backbone(backbone, progress=progress)

    # The network must see photos normalised exactly as in its ImageNet training.
    size = dict(image_size=image_size, mean=spec.mean, std=spec.std, progress=progress)
    photos = make_loaders(profile, dataset=dataset, augment=augment, **size)
    plain = make_loaders(profile, dataset=dataset, **size)  # unaugmented: what the saved features are made of

    # Steps 1-2: the network without its classifier, run once: (N, 3, S, S) -> (N, D).
    dim = remove_head(network)
    parts = {"train": plain.train, "val": plain.val, "test": plain.test}
    features = {part: extract_features(network, loader, device=profile.device, progress=progress)
                for part, loader in parts.items() if loader is not None}

    # Step 3: the head's rate, once for every seed (lr_find puts the probe back as it was).
    if head_lr is None:
        head_lr = find_head_lr(nn.Linear(dim, len(photos.classes)), features["train"],
                               batch_size=profile.data.batch_size, device=profile.device, progress=progress)

    per_seed: dict[str, list[float]] = {}
    for k, run_seed in enumerate(seed_list):
        torch.manual_seed(run_seed)  # the head's initial weights, then the batches' order and the augmentation
        head = nn.Linear(dim, len(photos.classes))
        on_features = _train_head(head, features, head_lr=head_lr, epochs=head_epochs, profile=profile)
        # The last seed may change the network itself; the others fine-tune a copy of it.
        fresh = network if k == len(seed_list) - 1 else copy.deepcopy(network)
        tuned = _fine_tune(fresh, head, photos.train, photos.val, head_lr=head_lr, factor=factor, epochs=epochs,
                           profile=profile, progress=progress)
        scores = {"head_acc": on_features.history[-1]["top1_acc"], "finetuned_acc": tuned.history[-1]["top1_acc"]}
        if "test" in features:  # each run measured once on the test part: no choice looks at it
            scores["head_test_acc"] = on_features.evaluate(features["test"].loader(batch_size=256))["top1_acc"]
            scores["finetuned_test_acc"] = tuned.evaluate(photos.test)["top1_acc"]
        for key, value in scores.items():
            per_seed.setdefault(key, []).append(float(value))
        del tuned, fresh  # the next seed's copy replaces it

    return TransferResult(
        backbone=backbone,
        dataset=photos.dataset,
        classes=list(photos.classes),
        head_acc=mean_sd(per_seed["head_acc"])[0],
        finetuned_acc=mean_sd(per_seed["finetuned_acc"])[0],
        head_lr=float(head_lr),
        seconds=time.perf_counter() - start,
        seeds=seed_list,
        per_seed=per_seed,
    )


def _train_head(head: nn.Linear, features: dict[str, FeatureSet], *, head_lr: float, epochs: int,
                profile: Profile) -> Trainer:
    """Step 4: the linear head ``(B, D) -> (B, C)`` trained on the saved training features, one-cycle."""
    batches = features["train"].loader(batch_size=profile.data.batch_size, shuffle=True)
    optimizer = torch.optim.AdamW(head.parameters(), lr=head_lr, weight_decay=0.01)
    trainer = Trainer(head, optimizer=optimizer, device=profile.device, progress=False, verbose=False,
                      scheduler=one_cycle(optimizer, epochs=epochs, steps_per_epoch=len(batches)),
                      scheduler_step="batch")
    trainer.fit(batches, features["val"].loader(batch_size=256), epochs=epochs)
    return trainer


def _fine_tune(network: nn.Module, head: nn.Linear, train: Iterable, val: Iterable, *, head_lr: float,
               factor: float, epochs: int, profile: Profile, progress: bool) -> Trainer:
    """Step 5: the later layer groups of ``network`` (its classifier removed) fine-tuned under ``head``."""
    # The trained head back in place of the identity, so that fine-tuning starts from
    # sensible outputs and its first gradients do not wreck the pretrained layers.
    network.set_submodule(head_path(network), head)
    group_names = [name for name, _ in layer_groups(network)]
    unfreeze(network, from_=group_names[-4])  # the last three groups before the head, and the head
    # A tenth of the head's rate at the top, lower still for earlier groups: pretrained weights move gently.
    optimizer = torch.optim.AdamW(param_groups(network, base_lr=head_lr / 10, factor=factor), weight_decay=0.01)
    # Batch norm everywhere keeps ImageNet's statistics: a few dozen augmented photos give noisy ones.
    trainer = Trainer(network, optimizer=optimizer, device=profile.device, callbacks=[FreezeBatchNorm(only_frozen=False)],
                      scheduler=one_cycle(optimizer, epochs=epochs, steps_per_epoch=len(train)),
                      scheduler_step="batch", progress=progress, verbose=progress)
    trainer.fit(train, val, epochs=epochs)
    return trainer
