"""Lesson 4's transfer-learning recipe as one function: saved features, a head, then fine-tuning.

    result = transfer_recipe("efficientnet_lite0", get_profile("smoke"), augment=default_augment())
    print(result)
    # efficientnet_lite0 on cats_and_dogs_sample (2 classes): head on saved features 0.977,
    # fine-tuned 0.970 (head lr 3.4e-03, 30 s)

The steps, in their cheapest order (each one is a section of lesson 4):

1. Build the pretrained network and cut off its ImageNet classifier: it now maps
   ``(B, 3, S, S)`` photos to ``(B, D)`` pooled features.
2. Run it **once** over the unaugmented photos: ``(N, D)`` features for training and
   validation (:func:`ldl.measure.features.extract_features`).
3. Choose the head's learning rate with the LR range test on those features
   (:func:`ldl.train.lr_find`), unless a rate is given.
4. Train a linear head ``(B, D) -> (B, C)`` on the saved features with one-cycle: seconds,
   since the network does not run again.
5. Put the trained head back on the network, unfreeze the last three layer groups before
   it, and fine-tune on augmented photos with differential learning rates (each earlier
   chunk ``factor`` times lower) and one-cycle; batch norm keeps ImageNet's statistics.

Training the head first and fine-tuning second keeps more of the pretrained features than
fine-tuning under a random head (Kumar et al., 2022, "Fine-Tuning can Distort Pretrained
Features").
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ldl.data import make_loaders
from ldl.data.batch_augment import BatchAugment
from ldl.measure.features import FeatureSet, extract_features
from ldl.models import backbone_spec, create_backbone, head_path, layer_groups, param_groups, remove_head, unfreeze
from ldl.profiles import Profile
from ldl.train import FreezeBatchNorm, Trainer, lr_find, one_cycle

__all__ = ["TransferResult", "default_augment", "find_head_lr", "transfer_recipe"]

# The LR range test sweeps the head's rate over this range (lesson 4's values).
LR_FIND_START, LR_FIND_END = 1e-6, 10.0
# A "steepest" rate more than this many times below a tenth of the lowest-loss rate lies on
# the flat start of the curve: noise, not learning (see find_head_lr).
FLAT_START = 10.0


@dataclass
class TransferResult:
    """What one run of :func:`transfer_recipe` measured.

    Attributes:
        backbone: registry name of the pretrained network, e.g. ``"efficientnet_lite0"``.
        dataset: registry name of the photos, e.g. ``"cats_and_dogs_sample"``.
        classes: the class names, in label order.
        head_acc: validation top-1 accuracy of the linear head trained on saved features.
        finetuned_acc: validation top-1 accuracy after fine-tuning the later layer groups.
        head_lr: the head's peak learning rate (found by the LR range test, or given);
            fine-tuning peaks at a tenth of it.
        seconds: wall time of the whole recipe, data preparation included.
    """

    backbone: str
    dataset: str
    classes: list[str]
    head_acc: float
    finetuned_acc: float
    head_lr: float
    seconds: float

    def __str__(self) -> str:
        return (f"{self.backbone} on {self.dataset} ({len(self.classes)} classes): head on saved features "
                f"{self.head_acc:.3f}, fine-tuned {self.finetuned_acc:.3f} (head lr {self.head_lr:.1e}, "
                f"{self.seconds:.0f} s)")


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
    progress: bool = False,
) -> TransferResult:
    """Saved features + a linear head, then fine-tuning with differential learning rates.

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
        progress: show progress bars and one line per fine-tuning epoch.

    Returns:
        A :class:`TransferResult` (the accuracies, the head's rate, the time taken).

    Raises:
        ValueError: an unknown backbone name, or an image size the network cannot take.
        WeightsUnavailable: the network's pretrained weights are neither cached nor
            downloadable (the message says how to get them); EfficientNet-Lite0's ship with pip.
    """
    start = time.perf_counter()
    if head_lr is not None and not head_lr > 0:
        raise ValueError(f"head_lr must be a positive learning rate, e.g. 1e-3, or None for the LR range test; "
                         f"got {head_lr!r}.")
    spec = backbone_spec(backbone)  # an unknown name raises ValueError listing the known ones
    image_size = image_size or profile.transfer.image_size
    epochs = epochs or profile.transfer.epochs
    if spec.family == "vit" and image_size != spec.input_size:
        # Its position embeddings are learnt for one grid of patches: no other size fits.
        raise ValueError(f"{backbone} only takes {spec.input_size} px images; got image_size={image_size}.")
    torch.manual_seed(seed)
    # Weights first: a missing file should fail in a second, not after decoding every photo.
    network = create_backbone(backbone, progress=progress)

    # The network must see photos normalised exactly as in its ImageNet training.
    size = dict(image_size=image_size, mean=spec.mean, std=spec.std, progress=progress)
    photos = make_loaders(profile, dataset=dataset, augment=augment, **size)
    plain = make_loaders(profile, dataset=dataset, **size)  # unaugmented: what the saved features are made of

    # Steps 1-2: the network without its classifier, run once: (N, 3, S, S) -> (N, D).
    dim = remove_head(network)
    train_features = extract_features(network, plain.train, device=profile.device, progress=progress)
    val_features = extract_features(network, plain.val, device=profile.device, progress=progress)

    # Steps 3-4: a linear head (B, D) -> (B, C) on the saved features.
    head = nn.Linear(dim, len(photos.classes))
    if head_lr is None:
        head_lr = find_head_lr(head, train_features, batch_size=profile.data.batch_size, device=profile.device,
                               progress=progress)
    batches = train_features.loader(batch_size=profile.data.batch_size, shuffle=True)
    optimizer = torch.optim.AdamW(head.parameters(), lr=head_lr, weight_decay=0.01)
    on_features = Trainer(head, optimizer=optimizer, device=profile.device, progress=False, verbose=False,
                          scheduler=one_cycle(optimizer, epochs=head_epochs, steps_per_epoch=len(batches)),
                          scheduler_step="batch").fit(batches, val_features.loader(batch_size=256), epochs=head_epochs)

    # Step 5: the trained head back in place of the identity, so that fine-tuning starts from
    # sensible outputs and its first gradients do not wreck the pretrained layers.
    network.set_submodule(head_path(network), head)
    group_names = [name for name, _ in layer_groups(network)]
    unfreeze(network, from_=group_names[-4])  # the last three groups before the head, and the head
    # A tenth of the head's rate at the top, lower still for earlier groups: pretrained weights move gently.
    optimizer = torch.optim.AdamW(param_groups(network, base_lr=head_lr / 10, factor=factor), weight_decay=0.01)
    # Batch norm everywhere keeps ImageNet's statistics: a few dozen augmented photos give noisy ones.
    tuned = Trainer(network, optimizer=optimizer, device=profile.device, callbacks=[FreezeBatchNorm(only_frozen=False)],
                    scheduler=one_cycle(optimizer, epochs=epochs, steps_per_epoch=len(photos.train)),
                    scheduler_step="batch", progress=progress, verbose=progress,
                    ).fit(photos.train, photos.val, epochs=epochs)

    return TransferResult(
        backbone=backbone,
        dataset=photos.dataset,
        classes=list(photos.classes),
        head_acc=float(on_features.epochs[-1]["top1_acc"]),
        finetuned_acc=float(tuned.epochs[-1]["top1_acc"]),
        head_lr=float(head_lr),
        seconds=time.perf_counter() - start,
    )
