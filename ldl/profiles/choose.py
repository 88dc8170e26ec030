"""Which profile runs: the notebook's name, ``LDL_PROFILE``, ``auto``, and ``LDL_DATASET``.

:func:`auto_name` is the one place that decides what ``auto`` means; the notebooks (through
:func:`get_profile`) and ``make execute-all``'s readiness report (through
:func:`concrete_name`) both ask it.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import replace
from pathlib import Path

from ldl.core.device import resolve_device
from ldl.profiles.overrides import override, valid_settings
from ldl.profiles.presets import PROFILES
from ldl.profiles.sections import Profile

PROFILE_ENV = "LDL_PROFILE"
DATASET_ENV = "LDL_DATASET"
AUTO = "auto"


def _cuda_available() -> bool:
    """Whether this machine trains on CUDA, by the one device rule of :mod:`ldl.core.device`."""
    return resolve_device("auto").type == "cuda"


def profile_choices() -> tuple[str, ...]:
    """Every name a notebook or ``--profile`` accepts: the profiles, then ``auto``."""
    return (*PROFILES, AUTO)


def auto_name(cuda_available: bool) -> str:
    """What ``auto`` becomes: the first profile whose device this machine has (gpu, else cpu)."""
    return "gpu" if cuda_available else "cpu"


def concrete_name(name: str, *, cuda_available: bool | None = None, source: str | None = None) -> str:
    """``name`` as one of :data:`PROFILES`' keys: ``auto`` resolved, case ignored.

    Args:
        name: a profile name or ``auto``.
        cuda_available: what ``auto`` assumes; None asks torch (only when it is needed).
        source: where ``name`` came from, named in the error message (e.g. ``LDL_PROFILE``).

    Raises:
        ValueError: ``name`` is no profile; the message names ``source`` and the choices.
    """
    chosen = name.strip().lower()
    if chosen == AUTO:
        return auto_name(_cuda_available() if cuda_available is None else cuda_available)
    if chosen not in PROFILES:
        where = f" (set in {source})" if source else ""
        raise ValueError(f"Unknown profile {name!r}{where}. Choose one of: {', '.join(profile_choices())}.")
    return chosen


def resolve_name(name: str = AUTO) -> str:
    """Return the concrete profile name to use.

    ``LDL_PROFILE`` (if set and not empty) wins over ``name``; ``auto`` becomes ``gpu``
    when CUDA is available and ``cpu`` otherwise.
    """
    from_env = os.environ.get(PROFILE_ENV, "").strip()
    if from_env:
        return concrete_name(from_env, source=PROFILE_ENV)
    return concrete_name(name)


def missing_cuda_warning(name: str, *, cuda_available: bool) -> str | None:
    """The warning for a profile that wants a CUDA device this machine lacks, else None."""
    if cuda_available or PROFILES[name].device != "cuda":
        return None
    return (
        f"The {name} profile was asked for but no CUDA device is available: its full-size models "
        "will train on the CPU, which takes hours. Choose the cpu profile (PROFILE='cpu', "
        f"{PROFILE_ENV}=cpu or --profile cpu), or run on a machine with a GPU."
    )


def profile_dataset(name: str) -> str:
    """The photos profile ``name`` trains on: ``LDL_DATASET``'s folder (absolute) if set, else its own dataset."""
    own_photos = os.environ.get(DATASET_ENV, "").strip()
    if own_photos:
        # Any folder laid out as train|validation/<class>/ replaces the profile's photos.
        return str(Path(own_photos).expanduser().resolve())
    return PROFILES[name].data.dataset


def get_profile(name: str = AUTO, **overrides: object) -> Profile:
    """Return the profile called ``name`` (after ``LDL_PROFILE`` and ``auto`` are applied).

    Keyword arguments change settings (see :func:`ldl.profiles.override`): flat names for
    the data and training settings and the device, e.g. ``get_profile("smoke", epochs=3,
    image_size=32)``; a section's name with a dict for any other, e.g.
    ``get_profile("smoke", compare=dict(repeats=1))``. An unknown name or a bad value
    (``epochs=0``) raises a ValueError that names it.

    A profile that wants CUDA on a machine without it falls back to the CPU device with a
    warning, so the notebook still runs (slowly) instead of crashing.
    """
    profile = PROFILES[resolve_name(name)]
    profile = replace(profile, data=replace(profile.data, dataset=profile_dataset(profile.name)))
    cuda_available = _cuda_available()
    message = missing_cuda_warning(profile.name, cuda_available=cuda_available)
    if message:
        warnings.warn(message, stacklevel=2)
        profile = replace(profile, device="cpu")
    return override(profile, **overrides) if overrides else profile


__all__ = [
    "AUTO",
    "DATASET_ENV",
    "PROFILE_ENV",
    "auto_name",
    "concrete_name",
    "get_profile",
    "missing_cuda_warning",
    "profile_choices",
    "profile_dataset",
    "resolve_name",
    "valid_settings",
]
