"""The three profiles: smoke (CI), cpu (a laptop or Binder) and gpu (Colab or better)."""

from __future__ import annotations

from ldl.profiles.sections import (
    AugmentSettings,
    CompareSettings,
    DataSettings,
    GridSettings,
    Profile,
    TrainSettings,
    TransferSettings,
)

SMOKE = Profile(
    name="smoke",
    device="cpu",
    data=DataSettings(
        dataset="cats_and_dogs_sample",
        # 48 px, the smallest the recap CNN takes: every compared recipe runs three seeds,
        # and each run costs about half of what it would at 64 px.
        image_size=48,
        batch_size=32,
        num_workers=0,
        # The sample folders are never downloaded: without them CI still runs, on shapes.
        falls_back_to_synthetic=True,
        # Half of the held-out photos are a test part, reported once at the end of a lesson;
        # every choice (an epoch, a learning rate, a recipe) is made on the other half.
        test_fraction=0.5,
    ),
    train=TrainSettings(epochs=12, learning_rate=1e-3),
    grid=GridSettings(widths=(16, 32, 64, 64), hidden=256),
    # ZCA's covariance at 32 px is 3072² entries: too slow for a one-minute notebook.
    augment=AugmentSettings(zca_size=24),
    transfer=TransferSettings(
        # Offline and small: EfficientNet-Lite0's weights ship with a pip package, and at
        # 96 px its frozen features already separate the sample's cats from its dogs (about
        # 0.94 on the test photos), small enough for every step to run from three seeds.
        backbone="efficientnet_lite0",
        image_size=96,
        epochs=1,
        also=(("efficientnet_lite0", "flowers_sample"),),
        # VGG19 would take longer than the rest of the lesson on 2 cores.
        speed_models=("mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_lite0", "resnet18"),
    ),
    compare=CompareSettings(
        # The five real networks at their published 224 px, but tiny batches: on 2 cores a
        # ViT-B/16 image costs about a second.
        batch_size=2,
        train_batch_size=2,
        repeats=2,
        # No torchvision weights offline: EfficientNet-Lite0 stands in, small and for one
        # epoch, so that the fine-tuned column holds a real accuracy in about 20 s.
        finetune_extra=("efficientnet_lite0",),
        finetune_image_size=96,
        finetune_epochs=1,
        fetch_weights=False,  # CI is offline, and the budget is a minute and a half
        finetune_all=False,
    ),
    # Measured: lesson 5 peaks at 1.42 GiB of anonymous memory on the sample photos.
    memory_gib=1.5,
)

# A laptop or Binder: each notebook within 15 minutes on 2 cores and 1.5 GiB of memory.
# 400 + 150 photos per class of the downloaded 1,000 + 500: the same work as the sample
# folders, so `LDL_DATASET=<data>/cats_and_dogs_sample make execute-all PROFILE=cpu`
# measures exactly what a student waits for (lesson 2, the longest, trains 26 runs).
CPU = Profile(
    name="cpu",
    device="cpu",
    data=DataSettings(dataset="cats_and_dogs", image_size=96, train_per_class=400, val_per_class=150,
                      batch_size=32, num_workers=2, test_fraction=0.5),
    train=TrainSettings(epochs=12, learning_rate=1e-3),
    # The slimmer recap CNN for the lessons that train many runs (three seeds per recipe).
    grid=GridSettings(widths=(16, 32, 64, 64), hidden=256),
    transfer=TransferSettings(
        backbone="mobilenet_v3_large",
        # 128, not 160 px: a MobileNetV3-Large training step at 160 px and batch 32 alone holds 1.6 GiB.
        image_size=128,
        epochs=3,
        # Offline too: the same recipe on the flowers sample, when LDL_DATA holds it.
        also=(("efficientnet_lite0", "flowers_sample"),),
        # VGG19 and ResNet-50 at batch 32 would need more memory than the rest of the lesson.
        speed_models=("mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_lite0", "resnet18"),
    ),
    compare=CompareSettings(
        # ViT-B/16's weights and gradients alone are 0.7 GB: the smallest batches that measure it.
        batch_size=4,
        train_batch_size=2,
        # Fine-tuning five networks at 224 px on a CPU: a few hundred photos, one epoch each.
        finetune_extra=("efficientnet_lite0",),
        # Only the stand-in is fine-tuned here (see finetune_all): at 224 px its
        # training batches alone would take the lesson past 1.5 GiB.
        finetune_image_size=128,
        finetune_epochs=1,
        finetune_per_class=100,
        # ViT-B/16 trains at about an image a second on a CPU: only the stand-in is fine-tuned.
        finetune_all=False,
    ),
    # Measured: lesson 5 peaks at 1.45 GiB of anonymous memory (README, "Profiles").
    memory_gib=1.5,
)

GPU = Profile(
    name="gpu",
    device="cuda",
    data=DataSettings(dataset="cats_and_dogs", image_size=150, batch_size=64, num_workers=2, test_fraction=0.5),
    # Five seeds per compared recipe: on a GPU each run of the lessons' small networks takes seconds.
    train=TrainSettings(epochs=30, learning_rate=1e-3, seeds=5),
    transfer=TransferSettings(
        backbone="mobilenet_v3_large",
        image_size=224,
        epochs=5,
        also=(("vgg19", "flowers102"),),
    ),
    compare=CompareSettings(
        batch_size=64,
        train_batch_size=32,
        repeats=5,
        finetune_extra=("efficientnet_lite0",),
        finetune_epochs=3,
    ),
    # Host memory, not GPU memory; not measured yet (no GPU run): a Colab runtime has 12 GB.
    memory_gib=4.0,
)

PROFILES: dict[str, Profile] = {profile.name: profile for profile in (SMOKE, CPU, GPU)}
