"""Changing a few settings of a profile: ``override(profile, epochs=3, compare=dict(repeats=1))``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace

from ldl.profiles.sections import SECTIONS, Profile, SettingsError

# The settings lessons change most, written flat (``epochs=3``, ``image_size=32``): every
# field of these sections has a name no other flat setting has.
FLAT_SECTIONS = ("data", "train")
TOP_LEVEL = ("device", "memory_gib")


def _field_names(section: str) -> list[str]:
    return [item.name for item in fields(SECTIONS[section])]


def _flat_names() -> dict[str, str]:
    """Flat setting name -> the section that holds it."""
    return {name: section for section in FLAT_SECTIONS for name in _field_names(section)}


def valid_settings() -> str:
    """What ``override`` accepts, in words, for error messages and docstrings."""
    sections = "; ".join(f"{section}=dict({', '.join(_field_names(section))})" for section in SECTIONS)
    return f"flat: {', '.join([*_flat_names(), *TOP_LEVEL])}. Sections, as a dict: {sections}"


def override(profile: Profile, **settings: object) -> Profile:
    """A copy of ``profile`` with ``settings`` changed; every new value is checked.

    Flat names change the data and training settings and the device
    (``override(p, epochs=3, image_size=32, device="cpu")``); a section's name with a dict
    changes fields of that section (``override(p, compare=dict(repeats=1, batch_size=2))``).

    Raises:
        ValueError: a setting that does not exist (the message lists the valid ones), or a
            bad value (the message names each bad setting).
    """
    flat = _flat_names()
    top: dict[str, object] = {}
    changes: dict[str, dict[str, object]] = {}
    unknown: list[str] = []
    for key, value in settings.items():
        if key in TOP_LEVEL:
            top[key] = value
        elif key in flat:
            changes.setdefault(flat[key], {})[key] = value
        elif key in SECTIONS:
            if not isinstance(value, Mapping):
                raise ValueError(f"{key}= takes a dict of its settings, e.g. {key}=dict(...); got {value!r}.")
            known = _field_names(key)
            unknown += [f"{key}=dict({name}=...)" for name in value if name not in known]
            changes.setdefault(key, {}).update(value)
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f"Unknown profile setting(s): {', '.join(unknown)}. Valid settings: {valid_settings()}.")

    problems: list[str] = []
    sections: dict[str, object] = {}
    for section, values in changes.items():
        try:
            sections[section] = replace(getattr(profile, section), **values)
        except SettingsError as error:
            # Flat names are named as the caller wrote them; others with their section.
            prefix = "" if section in FLAT_SECTIONS else f"{section}."
            problems += [prefix + problem for problem in error.problems]
    try:
        changed = replace(profile, **top, **sections) if not problems else profile
    except SettingsError as error:
        problems += error.problems
    if problems:
        raise SettingsError(problems)
    return changed
