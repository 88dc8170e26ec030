"""Profiles: the one place that decides how big a lesson runs.

A notebook never hard-codes an image size or an epoch count. It asks for a profile:

>>> from ldl.profiles import get_profile
>>> p = get_profile("smoke")
>>> p.data.image_size, p.train.epochs
(64, 12)

- ``smoke``: CI and ``make test``. Real sample photos (``cats_and_dogs_sample``), tiny
  images, about a minute per notebook on 2 CPU cores, fully offline.
- ``cpu``: a student without a GPU, on a laptop or Binder. Part of the real downloaded
  dataset, small images: each notebook within 15 minutes on 2 cores and 1.5 GiB of memory.
- ``gpu``: Colab T4 or better. Full datasets, 224 px, every model of the lesson.
- ``auto``: ``gpu`` when CUDA is available, else ``cpu``.

A profile's settings come in sections (:mod:`ldl.profiles.sections`): ``data``, ``train``,
``grid``, ``augment``, ``transfer`` and ``compare``, beside ``name``, ``device`` and
``memory_gib``. ``get_profile(name, **overrides)`` and :func:`override` change some of them
(flat names for the data and training settings, a dict for a section).

The environment variable ``LDL_PROFILE`` overrides the name a notebook asks for, so the
same notebook can be switched from the command line (papermill, nbval, plain Jupyter).
``LDL_DATASET=/path/to/photos`` runs a profile's sizes on one's own folder of photos laid out
as ``train/<class>/`` and ``validation/<class>/`` (an instructor's photos, or the sample photos
in the cpu profile).

This package imports no other part of ``ldl``: every wing reads it.
"""

from ldl.profiles.choose import (
    DATASET_ENV,
    PROFILE_ENV,
    auto_name,
    concrete_name,
    get_profile,
    missing_cuda_warning,
    profile_choices,
    profile_dataset,
    resolve_name,
)
from ldl.profiles.overrides import override
from ldl.profiles.presets import PROFILES
from ldl.profiles.sections import (
    AugmentSettings,
    CompareSettings,
    DataSettings,
    GridSettings,
    Profile,
    TrainSettings,
    TransferSettings,
)

__all__ = [
    "DATASET_ENV",
    "PROFILES",
    "PROFILE_ENV",
    "AugmentSettings",
    "CompareSettings",
    "DataSettings",
    "GridSettings",
    "Profile",
    "TrainSettings",
    "TransferSettings",
    "auto_name",
    "concrete_name",
    "get_profile",
    "missing_cuda_warning",
    "override",
    "profile_choices",
    "profile_dataset",
    "resolve_name",
]
