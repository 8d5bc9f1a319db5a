"""Run profiles: ``smoke`` (CI), ``quick`` (2-core laptop, default) and ``full`` (GPU).

A profile changes sizes and step counts, never code. ``tryon_lab/configs/profiles.toml`` holds every
setting once in ``[base]``, which is also the schema (a setting's type is its base value's), and per
profile only what it overrides; a profile is ``[base]`` deep-merged with its overrides. Each chapter
reads its own section.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from importlib import resources
from typing import Any

from tryon_lab.errors import ConfigError

PROFILE_ENV = "TRYON_LAB_PROFILE"
PROFILE_NAMES = ("smoke", "quick", "full")
DEFAULT_PROFILE = "quick"
BASE = "base"


class Section(dict):
    """One resolved table of a profile: a plain dict, except that reading a missing key raises
    ``ConfigError`` naming the profile and the dotted key instead of ``KeyError``."""

    def __init__(self, values: Mapping[str, Any], profile: str, path: str) -> None:
        super().__init__(values)
        self.profile, self.path = profile, path

    def __missing__(self, key: str):
        raise ConfigError(f"profile {self.profile!r} has no setting {f'{self.path}.{key}'!r}; "
                          f"known in [{self.path}]: {', '.join(sorted(self))}")


@dataclass(frozen=True)
class Profile:
    """A named set of sizes and step counts: ``sections`` maps each chapter to its settings."""

    name: str
    description: str
    sections: dict[str, dict[str, Any]]

    def __getitem__(self, section: str) -> dict[str, Any]:
        """Return one chapter's resolved settings (a ``Section`` when loaded), e.g.
        ``profile["world"]["grid_samples"]``; ``ConfigError`` naming a missing section."""
        try:
            return self.sections[section]
        except KeyError:
            raise ConfigError(
                f"profile {self.name!r} has no section {section!r}; "
                f"known sections: {sorted(self.sections)}"
            ) from None


def _fits(base: Any, value: Any) -> bool:
    """Whether ``value`` has the type of the base value ``base`` (an int fits a float; a list's items
    must fit the base list's first item)."""
    if isinstance(base, list):
        return isinstance(value, list) and (not base or all(_fits(base[0], item) for item in value))
    if type(base) is float:
        return type(value) in (int, float)
    return type(value) is type(base)


def _merge(base: Mapping[str, Any], overrides: Mapping[str, Any], profile: str, path: str = "") -> Section:
    """``base`` deep-merged with ``overrides`` as a ``Section`` (nested tables too); ``ConfigError``
    naming ``profile`` and the dotted key of an override that ``base`` lacks or that has another type."""
    unknown = sorted(overrides.keys() - base.keys())
    if unknown:
        raise ConfigError(f"profile {profile!r}: unknown setting {path + unknown[0]!r}")
    values = {}
    for key, default in base.items():
        value = overrides.get(key, default)
        if isinstance(default, dict) and isinstance(value, dict):
            values[key] = _merge(default, value, profile, f"{path}{key}.")
        elif isinstance(default, dict) or not _fits(default, value):
            raise ConfigError(f"profile {profile!r}: setting {path + key!r} must be "
                              f"{'a table' if isinstance(default, dict) else type(default).__name__} as in [{BASE}], "
                              f"got {value!r}")
        else:
            values[key] = float(value) if type(default) is float else value
    return Section(values, profile, path.rstrip("."))


def profiles_from_table(table: Mapping[str, Any]) -> dict[str, Profile]:
    """Every profile of a parsed profiles file ``table`` (``[base]`` plus one table of overrides and a
    ``description`` per profile), resolved and checked against ``[base]``: name -> ``Profile``."""
    if BASE not in table:
        raise ConfigError(f"the profiles file has no [{BASE}] table")
    profiles = {}
    for name, entry in table.items():
        if name == BASE:
            continue
        overrides = dict(entry)
        description = overrides.pop("description", "")
        resolved = _merge(table[BASE], overrides, name)
        profiles[name] = Profile(name=name, description=description, sections=dict(resolved))
    return profiles


def with_settings(profile: Profile, section: str, overrides: Mapping[str, Any]) -> Profile:
    """``profile`` with ``overrides`` deep-merged into one ``section`` (a command line's own sizes), checked
    as a profile's overrides are: ``ConfigError`` naming an unknown key or a value of the wrong type."""
    merged = _merge(profile[section], overrides, profile.name, f"{section}.")
    return Profile(name=profile.name, description=profile.description,
                   sections={**profile.sections, section: merged})


def read_profiles_table() -> dict[str, Any]:
    """The parsed ``tryon_lab/configs/profiles.toml``: ``[base]`` and each profile's overrides, unresolved."""
    return tomllib.loads(resources.files("tryon_lab.configs").joinpath("profiles.toml").read_text())


def load_profile(name: str) -> Profile:
    """Return the profile called ``name`` (one of smoke, quick, full), resolved from
    ``tryon_lab/configs/profiles.toml``; ``ConfigError`` for an unknown name or a bad override."""
    profiles = profiles_from_table(read_profiles_table())
    if name not in profiles:
        raise ConfigError(f"unknown profile {name!r}; choose one of {', '.join(PROFILE_NAMES)}")
    return profiles[name]


def current_profile() -> Profile:
    """Return the profile named by ``$TRYON_LAB_PROFILE`` (default ``quick``)."""
    return load_profile(os.environ.get(PROFILE_ENV, DEFAULT_PROFILE).strip() or DEFAULT_PROFILE)


def settings_from_mapping(cls, values: Mapping[str, Any], section: str):
    """``cls(**values)`` for a frozen settings dataclass, with ``ConfigError`` naming an unknown or
    missing key of the profile's ``[section]`` instead of a TypeError."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"[{section}] has unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(known))}")
    try:
        return cls(**values)
    except TypeError as error:
        raise ConfigError(f"[{section}]: {error}") from None
