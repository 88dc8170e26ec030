"""Feature extraction: run a frozen network once over a dataset, then train a head on its features.

A pretrained backbone whose weights stay frozen computes the same features for the same
image every epoch. So instead of sending every image through it every epoch, we send
each one through once, keep the pooled features, ``(N, D)`` float32, and train a small
head (e.g. one ``nn.Linear(D, num_classes)``) on them. An epoch is then a few matrix
products instead of hundreds of convolutions per image: seconds on a CPU.

>>> backbone.classifier = nn.Identity()            # (B, 3, H, W) -> (B, D) pooled features
>>> train_features = extract_features(backbone, train_loader, info={"backbone": "mobilenet_v3_large"})
>>> save_features(train_features, "features/train.pt")       # reuse it in the next session
>>> head = nn.Linear(train_features.dim, len(train_features.classes))
>>> Trainer(head).fit(train_features.loader(shuffle=True), val_features.loader(), epochs=20)

What this mode costs: **no data augmentation**. Augmentation works because each epoch
shows the network a *new* random variant of each image (flipped, cropped, recoloured).
Here the features are computed once, from one version of each image; a random flip would
change the features, so it would need a new forward pass through the whole base, every
epoch: the very cost we saved. The head therefore sees the same N points every epoch, and
with a small dataset it overfits sooner than a head trained end to end on augmented
images (where the base runs every epoch, frozen or not). The usual trade: features first,
for speed; then, if the validation curve says so, the slower augmented fit.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from ldl.core.device import resolve_device
from ldl.core.files import atomic_torch_save

FEATURES_FORMAT = "ldl-features-1"
FEATURE_KEYS = ("format", "features", "labels", "classes", "info")
# What may go in ``info`` so that torch.load(..., weights_only=True) can read the file back.
PLAIN_TYPES = (str, int, float, bool, type(None), Tensor)


@dataclass
class FeatureSet:
    """Features of a whole dataset, computed once, with their labels.

    Attributes:
        features: ``(N, D)`` float32 on the CPU, one row per image.
        labels: ``(N,)`` int64 class indices.
        classes: class names, ``classes[label]`` (empty when the loader had none).
        info: plain facts about how they were made, e.g. ``{"backbone": ..., "image_size": ...,
            "seconds": ...}``.
    """

    features: Tensor
    labels: Tensor
    classes: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.features.ndim != 2:
            raise ValueError(
                f"features must be (N, D); got shape {tuple(self.features.shape)}. "
                "Flatten or pool them first, e.g. features.flatten(1)."
            )
        if self.labels.shape != (self.features.shape[0],):
            raise ValueError(
                f"labels must be (N,) = ({self.features.shape[0]},), one class index per row of "
                f"features; got shape {tuple(self.labels.shape)}."
            )
        self.classes = [str(name) for name in self.classes]

    def __len__(self) -> int:
        return self.features.shape[0]

    @property
    def dim(self) -> int:
        """D, the length of one feature vector: the input size of a head trained on them."""
        return self.features.shape[1]

    def loader(self, batch_size: int = 64, shuffle: bool = False,
               generator: torch.Generator | None = None) -> DataLoader:
        """A DataLoader of ``(x, y)`` batches: x ``(B, D)`` float32, y ``(B,)`` int64, for the Trainer.

        No worker processes: a batch is a slice of a tensor already in memory.
        """
        return DataLoader(TensorDataset(self.features, self.labels), batch_size=batch_size,
                          shuffle=shuffle, generator=generator)

    def __repr__(self) -> str:
        # The default dataclass repr would print the tensors; the shapes say more.
        return f"FeatureSet({len(self)} samples, dim={self.dim}, classes={self.classes}, info={self.info})"


def _class_names(loader: Iterable) -> list[str]:
    """``loader.classes``, else ``loader.dataset.classes``, else an empty list."""
    for owner in (loader, getattr(loader, "dataset", None)):
        classes = getattr(owner, "classes", None)
        if classes:
            return list(classes)
    return []


def extract_features(
    model: nn.Module,
    loader: Iterable,
    *,
    device: str | torch.device = "auto",
    progress: bool = True,
    info: dict[str, Any] | None = None,
) -> FeatureSet:
    """Run ``model`` once over every ``(x, y)`` batch of ``loader``; keep its outputs and the labels.

    Args:
        model: a network that outputs pooled features ``(B, D)``, e.g. a pretrained
            backbone whose classifier was replaced by ``nn.Identity()``. It is moved to
            ``device`` and run in eval mode (batch norm uses its running statistics,
            dropout is off); its train/eval mode is restored afterwards.
        loader: yields ``(x, y)``: x ``(B, 3, H, W)`` float32 images as the model expects
            them (resized, normalised, *not* randomly augmented), y ``(B,)`` int64.
        device: ``"auto"`` (CUDA if available, else CPU), or e.g. ``"cpu"``.
        progress: show a progress bar.
        info: facts to keep with the features (backbone name, image size, ...); the
            seconds taken, the model's class name and the device are added.

    Returns:
        A :class:`FeatureSet`: features ``(N, D)`` float32 and labels ``(N,)`` int64, on the CPU.
    """
    device = resolve_device(device)
    was_training = model.training
    model.to(device).eval()
    feature_batches: list[Tensor] = []
    label_batches: list[Tensor] = []
    start = time.perf_counter()
    try:
        # inference_mode: no autograd bookkeeping at all, faster and leaner than no_grad.
        with torch.inference_mode():
            for x, y in tqdm(loader, desc="Extracting features", disable=not progress, leave=False):
                features = model(x.to(device, non_blocking=True))  # (B, D)
                if features.ndim != 2:
                    raise ValueError(
                        f"The model returned shape {tuple(features.shape)}; feature extraction needs "
                        "pooled features (B, D). Replace its classifier by nn.Identity() and keep "
                        "its global pooling, or add nn.Flatten() after an nn.AdaptiveAvgPool2d(1)."
                    )
                if y.ndim != 1:
                    raise ValueError(f"Labels must be (B,) class indices; got shape {tuple(y.shape)}. "
                                     "Extract features from a loader without MixUp/CutMix or soft labels.")
                feature_batches.append(features.float().cpu())
                label_batches.append(y.long().cpu())
    finally:
        model.train(was_training)
    if not feature_batches:
        raise ValueError("The loader yielded no batches: is its dataset empty?")
    seconds = time.perf_counter() - start
    # torch.cat runs outside inference_mode, so the result is an ordinary tensor that a
    # head can be trained on (inference tensors cannot be saved for backward).
    return FeatureSet(
        features=torch.cat(feature_batches),
        labels=torch.cat(label_batches),
        classes=_class_names(loader),
        info={"model": type(model).__name__, "device": str(device), **(info or {}), "seconds": seconds},
    )


def _check_plain(value: Any, where: str) -> None:
    """Raise a TypeError naming ``where`` if ``value`` is not plain data that weights_only can read."""
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_plain(key, f"{where} key {key!r}")
            _check_plain(item, f"{where}[{key!r}]")
    elif not isinstance(value, PLAIN_TYPES):
        raise TypeError(
            f"{where} is a {type(value).__name__}; a feature file holds only plain data (str, int, "
            f"float, bool, None, tensors, lists and dicts of them). Store str(value) instead."
        )


def save_features(feature_set: FeatureSet, path: str | Path) -> Path:
    """Write ``feature_set`` to ``path`` atomically, as plain data that loads with ``weights_only=True``.

    Atomic: written to a temporary file in the same folder, then renamed over ``path``,
    so an interrupted save never leaves a half-written file under that name.
    """
    _check_plain(feature_set.info, "info")
    data = {
        "format": FEATURES_FORMAT,
        "features": feature_set.features.detach().cpu().float(),
        "labels": feature_set.labels.detach().cpu().long(),
        "classes": list(feature_set.classes),
        "info": dict(feature_set.info),
    }
    return atomic_torch_save(data, path)


def load_features(path: str | Path) -> FeatureSet:
    """Read a file written by :func:`save_features` (safely: ``torch.load(..., weights_only=True)``)."""
    path = Path(path)
    how_to_make = "Make one with save_features(extract_features(model, loader), path)."
    if not path.is_file():
        raise FileNotFoundError(f"No feature file at {path}. {how_to_make}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated file, another format, or pickled objects
        raise ValueError(f"{path} is not a readable feature file ({type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else ''}). {how_to_make}") from error
    if not isinstance(data, dict) or data.get("format") != FEATURES_FORMAT:
        if isinstance(data, dict):
            keys = sorted(map(str, data))
            found = f"keys {keys[:8]}" + (f" and {len(keys) - 8} more" if len(keys) > 8 else "")
        else:
            found = f"a {type(data).__name__}"
        raise ValueError(
            f"{path} is not a feature file: expected a dict with keys {list(FEATURE_KEYS)} and "
            f"format {FEATURES_FORMAT!r}; found {found}. {how_to_make}"
        )
    return FeatureSet(features=data["features"], labels=data["labels"],
                      classes=data["classes"], info=data["info"])
