"""Run profiles: ``smoke`` (CI), ``quick`` (2-core laptop, default) and ``full`` (GPU).

A profile changes sizes and step counts, never code. The numbers live in
``tryon_lab/configs/profiles.toml``; each chapter reads its own section.
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


def _load_table() -> dict[str, Any]:
    text = resources.files("tryon_lab.configs").joinpath("profiles.toml").read_text()
    return tomllib.loads(text)


@dataclass(frozen=True)
class Profile:
    """A named set of sizes and step counts, one section per chapter."""

    name: str
    description: str
    sections: dict[str, dict[str, Any]]

    def __getitem__(self, section: str) -> dict[str, Any]:
        """Return one chapter's settings, e.g. ``profile["world"]["grid_samples"]``."""
        try:
            return self.sections[section]
        except KeyError:
            raise ConfigError(
                f"profile {self.name!r} has no section {section!r}; "
                f"known sections: {sorted(self.sections)}"
            ) from None


def load_profile(name: str) -> Profile:
    """Return the profile called ``name`` (one of smoke, quick, full)."""
    table = _load_table()
    if name not in table:
        raise ConfigError(f"unknown profile {name!r}; choose one of {', '.join(PROFILE_NAMES)}")
    entry = dict(table[name])
    description = entry.pop("description", "")
    return Profile(name=name, description=description, sections=entry)


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
