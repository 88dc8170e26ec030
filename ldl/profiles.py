"""Profiles: the one place that decides how big a lesson runs.

A notebook never hard-codes an image size or an epoch count. It asks for a profile:

>>> from ldl.profiles import get_profile
>>> p = get_profile("smoke")
>>> p.image_size, p.epochs
(64, 12)

- ``smoke``: CI and ``make test``. Real sample photos (``cats_and_dogs_sample``), tiny
  images, about a minute per notebook on 2 CPU cores, fully offline.
- ``cpu``: a student without a GPU, on a laptop or Binder. Part of the real downloaded
  dataset, small images: each notebook within 15 minutes on 2 cores and 1.5 GiB of memory.
- ``gpu``: Colab T4 or better. Full datasets, 224 px, every model of the lesson.
- ``auto``: ``gpu`` when CUDA is available, else ``cpu``.

The environment variable ``LDL_PROFILE`` overrides the name a notebook asks for, so the
same notebook can be switched from the command line (papermill, nbval, plain Jupyter).
``LDL_DATASET=/path/to/photos`` runs a profile's sizes on one's own folder of photos laid out
as ``train/<class>/`` and ``validation/<class>/`` (an instructor's photos, or the sample photos
in the cpu profile).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch

PROFILE_ENV = "LDL_PROFILE"
DATASET_ENV = "LDL_DATASET"


@dataclass(frozen=True)
class Profile:
    """Sizes and budgets for one way of running the course.

    Attributes:
        name: ``smoke``, ``cpu`` or ``gpu`` (``auto`` resolves to one of the last two).
        dataset: registry name of the lesson's default dataset (see ``ldl.data``).
        image_size: side of the square images fed to the network, in pixels.
        train_per_class: at most this many training images per class (None: all).
        val_per_class: at most this many validation images per class (None: all).
        epochs: training epochs for a lesson's main experiment.
        batch_size: images per batch.
        learning_rate: default learning rate for Adam in the lessons.
        num_workers: DataLoader worker processes for the per-sample pipeline.
        device: ``"cuda"`` or ``"cpu"``.
        models: backbones a lesson may use in this profile, smallest first.
        grid_widths: conv widths of the recap CNN when a lesson trains a grid of
            configurations (lesson 2 trains nine), so the whole grid fits the budget.
        grid_hidden: units of its dense layer in that case.
        transfer_backbone: the pretrained network of lesson 4 (a name in ``ldl.models.BACKBONES``).
        transfer_image_size: the side of its input images; pretrained networks see more in a
            bigger picture than the scratch CNN needs.
        transfer_epochs: epochs of each transfer-learning step (head, fine-tuning).
        transfer_also: further (backbone, dataset) pairs lesson 4 runs after the main one,
            e.g. VGG19 on Flowers-102 where a GPU makes it affordable.
        scratch_budget_s: wall time given to lesson 4's scratch CNN, the baseline that the
            pretrained network must beat in no more time.
        speed_models: networks whose speed lesson 4 measures on the student's device.
        compare_models: the networks lesson 5 measures side by side.
        compare_image_size: the side of their input images (224: the size their figures are published for).
        compare_batch_size: images per batch when measuring inference throughput.
        compare_train_batch_size: images per batch when measuring training throughput.
        compare_repeats: timed repeats per measurement (the median is reported).
        compare_finetune_extra: networks lesson 5 also fine-tunes (and adds to its table) because
            their weights need no download, so the "fine-tuned acc" column has a real entry offline.
        compare_finetune_image_size: the side of the photos when lesson 5 fine-tunes (ViT-B/16
            only takes 224; networks at other sizes are skipped with a message then).
        compare_finetune_epochs: fine-tuning epochs per network in lesson 5 (after its head).
        compare_finetune_per_class: at most this many training and validation photos per class
            when lesson 5 fine-tunes (None: the profile's own subset sizes).
        compare_fetch_weights: lesson 5 downloads the ImageNet weights of ``compare_models``
            that are not cached yet (about 0.7 GB once, into the torch hub cache); False: it
            uses what is cached and random weights for the rest.
        compare_finetune_all: lesson 5 fine-tunes every network of its table that has weights
            (False: only ``compare_finetune_extra``, where five fine-tunings would not fit the budget).
        memory_gib: the most memory (peak anonymous memory of the notebook's kernel, GiB) one
            lesson needs in this profile, as measured by ``make execute-all``; the readiness
            report warns on a machine with less.
    """

    name: str
    dataset: str
    image_size: int
    train_per_class: int | None
    val_per_class: int | None
    epochs: int
    batch_size: int
    learning_rate: float
    num_workers: int
    device: str
    models: tuple[str, ...]
    grid_widths: tuple[int, int, int, int] = (32, 64, 128, 128)
    grid_hidden: int = 512
    transfer_backbone: str = "efficientnet_lite0"
    transfer_image_size: int = 128
    transfer_epochs: int = 2
    transfer_also: tuple[tuple[str, str], ...] = ()
    scratch_budget_s: float = 60.0
    speed_models: tuple[str, ...] = ("mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_lite0", "resnet50", "vgg19")
    compare_models: tuple[str, ...] = ("mobilenet_v3_large", "resnet50", "convnext_tiny", "swin_t", "vit_b_16")
    compare_image_size: int = 224
    compare_batch_size: int = 8
    compare_train_batch_size: int = 4
    compare_repeats: int = 3
    compare_finetune_extra: tuple[str, ...] = ()
    compare_finetune_image_size: int = 224
    compare_finetune_epochs: int = 2
    compare_finetune_per_class: int | None = None
    compare_fetch_weights: bool = True
    compare_finetune_all: bool = True
    memory_gib: float = 1.5


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        dataset="cats_and_dogs_sample",
        image_size=64,
        train_per_class=None,
        val_per_class=None,
        epochs=12,
        batch_size=32,
        learning_rate=1e-3,
        num_workers=0,
        device="cpu",
        models=("efficientnet_lite0",),
        grid_widths=(16, 32, 64, 64),
        grid_hidden=256,
        # Offline and small: EfficientNet-Lite0's weights ship with a pip package, and at
        # 128 px its frozen features already separate the sample's cats from its dogs.
        transfer_backbone="efficientnet_lite0",
        transfer_image_size=128,
        transfer_epochs=1,
        transfer_also=(("efficientnet_lite0", "flowers_sample"),),
        # Twice what the saved-features step takes on 2 cores, so a slower machine still
        # gives the scratch CNN at least as much time as the pretrained features.
        scratch_budget_s=30.0,
        # VGG19 would take longer than the rest of the lesson on 2 cores.
        speed_models=("mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_lite0", "resnet18"),
        # The five real networks at their published 224 px, but tiny batches: on 2 cores a
        # ViT-B/16 image costs about a second.
        compare_batch_size=2,
        compare_train_batch_size=2,
        compare_repeats=2,
        # No torchvision weights offline: EfficientNet-Lite0 stands in, small and for one
        # epoch, so that the fine-tuned column holds a real accuracy in about 20 s.
        compare_finetune_extra=("efficientnet_lite0",),
        compare_finetune_image_size=96,
        compare_finetune_epochs=1,
        compare_fetch_weights=False,  # CI is offline, and the budget is a minute and a half
        compare_finetune_all=False,
        # Measured: lesson 5 peaks at 1.42 GiB of anonymous memory on the sample photos.
        memory_gib=1.5,
    ),
    # A laptop or Binder: each notebook within 15 minutes on 2 cores and 1.5 GiB of memory.
    # 400 + 150 photos per class of the downloaded 1,000 + 500: the same work as the sample
    # folders, so `LDL_DATASET=<data>/cats_and_dogs_sample make execute-all PROFILE=cpu`
    # measures exactly what a student waits for (lesson 2, the longest, trains 10 runs).
    "cpu": Profile(
        name="cpu",
        dataset="cats_and_dogs",
        image_size=96,
        train_per_class=400,
        val_per_class=150,
        epochs=12,
        batch_size=32,
        learning_rate=1e-3,
        num_workers=2,
        device="cpu",
        models=("efficientnet_lite0", "mobilenet_v3_small"),
        transfer_backbone="mobilenet_v3_large",
        # 128, not 160 px: a MobileNetV3-Large training step at 160 px and batch 32 alone holds 1.6 GiB.
        transfer_image_size=128,
        transfer_epochs=3,
        scratch_budget_s=120.0,
        # VGG19 and ResNet-50 at batch 32 would need more memory than the rest of the lesson.
        speed_models=("mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_lite0", "resnet18"),
        # ViT-B/16's weights and gradients alone are 0.7 GB: the smallest batches that measure it.
        compare_batch_size=4,
        compare_train_batch_size=2,
        # Fine-tuning five networks at 224 px on a CPU: a few hundred photos, one epoch each.
        compare_finetune_extra=("efficientnet_lite0",),
        # Only the stand-in is fine-tuned here (see compare_finetune_all): at 224 px its
        # training batches alone would take the lesson past 1.5 GiB.
        compare_finetune_image_size=128,
        compare_finetune_epochs=1,
        compare_finetune_per_class=100,
        # ViT-B/16 trains at about an image a second on a CPU: only the stand-in is fine-tuned.
        compare_finetune_all=False,
        # Measured: lesson 5 peaks at 1.45 GiB of anonymous memory (README, "Profiles").
        memory_gib=1.5,
    ),
    "gpu": Profile(
        name="gpu",
        dataset="cats_and_dogs",
        image_size=150,
        train_per_class=None,
        val_per_class=None,
        epochs=30,
        batch_size=64,
        learning_rate=1e-3,
        num_workers=2,
        device="cuda",
        models=(
            "mobilenet_v3_large",
            "efficientnet_lite0",
            "vgg19",
            "resnet50",
            "convnext_tiny",
            "vit_b_16",
            "swin_t",
        ),
        transfer_backbone="mobilenet_v3_large",
        transfer_image_size=224,
        transfer_epochs=5,
        transfer_also=(("vgg19", "flowers102"),),
        compare_batch_size=64,
        compare_train_batch_size=32,
        compare_repeats=5,
        compare_finetune_extra=("efficientnet_lite0",),
        compare_finetune_epochs=3,
        # Host memory, not GPU memory; not measured yet (no GPU run): a Colab runtime has 12 GB.
        memory_gib=4.0,
    ),
}


def resolve_name(name: str = "auto") -> str:
    """Return the concrete profile name to use.

    ``LDL_PROFILE`` (if set and not empty) wins over ``name``; ``auto`` becomes ``gpu``
    when CUDA is available and ``cpu`` otherwise.
    """
    chosen = os.environ.get(PROFILE_ENV, "").strip() or name
    chosen = chosen.lower()
    if chosen == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    if chosen not in PROFILES:
        known = ", ".join([*PROFILES, "auto"])
        raise ValueError(f"Unknown profile {chosen!r}. Choose one of: {known}.")
    return chosen


def profile_dataset(name: str) -> str:
    """The photos profile ``name`` trains on: ``LDL_DATASET``'s folder (absolute) if set, else its own dataset."""
    own_photos = os.environ.get(DATASET_ENV, "").strip()
    if own_photos:
        # Any folder laid out as train|validation/<class>/ replaces the profile's photos.
        return str(Path(own_photos).expanduser().resolve())
    return PROFILES[name].dataset


def get_profile(name: str = "auto", **overrides: object) -> Profile:
    """Return the profile called ``name`` (after ``LDL_PROFILE`` and ``auto`` are applied).

    Keyword arguments replace single fields, e.g. ``get_profile("smoke", epochs=3)``.
    A ``gpu`` profile on a machine without CUDA falls back to the CPU device with a
    warning, so the notebook still runs (slowly) instead of crashing.
    """
    profile = PROFILES[resolve_name(name)]
    profile = replace(profile, dataset=profile_dataset(profile.name))
    if profile.device == "cuda" and not torch.cuda.is_available():
        import warnings

        warnings.warn(
            "The gpu profile was asked for but no CUDA device is available; "
            "running on the CPU. Use PROFILE='cpu' for sizes that fit a CPU.",
            stacklevel=2,
        )
        profile = replace(profile, device="cpu")
    return replace(profile, **overrides) if overrides else profile
