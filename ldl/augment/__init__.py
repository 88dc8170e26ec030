"""Data augmentation for lesson 1: more data with no more data.

torchvision ``transforms.v2`` provides the per-image transforms (flips, rotation, crops,
affine, perspective, colour, noise, equalize, erasing). This package adds what it lacks or
what the lesson takes apart, each drawing its random parameters separately from applying
them, from a ``torch.Generator``:

- reproducibility: :func:`seeded`, :func:`apply_seeded`;
- statistics fitted on the training set: :class:`FeatureStandardize`, :class:`ZCAWhitening`;
- occlusion: :class:`GridMask`, :func:`cutout` (and torchvision's ``RandomErasing``);
- batch mixing with soft labels: :class:`MixUp`, :class:`CutMix`, :class:`Mosaic`,
  :class:`MixingLoader`;
- offline versus on-the-fly: :func:`materialise`, :class:`EachImage`;
- the gallery of the lesson: :func:`gallery_transforms`, :func:`show_gallery`.
"""

from ldl.augment.gallery import gallery_images, gallery_transforms, show_gallery
from ldl.augment.mixing import CutMix, CutMixParams, MixUp, MixUpParams, cutmix_box, soft_labels
from ldl.augment.mixing_loader import BatchMixer, MixingLoader
from ldl.augment.mosaic import Mosaic, MosaicParams
from ldl.augment.occlusion import GridMask, GridMaskParams, RandomErasing, cutout
from ldl.augment.offline import EachImage, folder_bytes, materialise
from ldl.augment.recipe import AugmentSettings
from ldl.augment.sampling import sample_beta
from ldl.augment.seeding import apply_seeded, seeded, spawn_seeds
from ldl.augment.statistics import FeatureStandardize, ZCAWhitening

__all__ = [
    "AugmentSettings",
    "BatchMixer",
    "CutMix",
    "CutMixParams",
    "EachImage",
    "FeatureStandardize",
    "GridMask",
    "GridMaskParams",
    "MixUp",
    "MixUpParams",
    "MixingLoader",
    "Mosaic",
    "MosaicParams",
    "RandomErasing",
    "ZCAWhitening",
    "apply_seeded",
    "cutmix_box",
    "cutout",
    "folder_bytes",
    "gallery_images",
    "gallery_transforms",
    "materialise",
    "sample_beta",
    "seeded",
    "show_gallery",
    "soft_labels",
    "spawn_seeds",
]
