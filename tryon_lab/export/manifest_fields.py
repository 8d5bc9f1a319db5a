"""Typed readers of manifest fields: each returns the value, or raises ``Invalid`` naming the field.

A manifest arrives from students and strangers, so nothing in it is trusted: numbers are bounded,
names are plain identifiers, and paths stay inside the bundle.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any, TypeVar

from tryon_lab.export.contract import TensorSpec
from tryon_lab.export.errors import BundleError

MAX_INT = 2**53  # any count or size a real bundle holds; larger is hostile
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")  # component and package names: they become file names
SHA256 = re.compile(r"[0-9a-f]{64}")
T = TypeVar("T")


class Invalid(Exception):
    """One field is wrong (caught per section while parsing)."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(name, problem)
        self.name, self.problem = name, problem


def read_object(value: Any, name: str) -> dict[str, Any]:
    """``value`` if it is a JSON object, else ``Invalid`` naming ``name``."""
    if not isinstance(value, dict):
        raise Invalid(name, f"must be a JSON object, got {show(value)}")
    return value


def read_key(value: dict[str, Any], key: str, name: str) -> Any:
    """``value[key]``, or ``Invalid`` naming ``name.key`` if it is missing."""
    if key not in value:
        raise Invalid(f"{name}.{key}" if name else key, "is missing")
    return value[key]


def read_int(value: Any, name: str, low: int = 0, high: int = MAX_INT) -> int:
    """``value`` if it is an integer (not a bool) in [``low``, ``high``], else ``Invalid``."""
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise Invalid(name, f"must be an integer in [{low}, {high}], got {show(value)}")
    return value


def read_float(value: Any, name: str) -> float:
    """``value`` as a float if it is a finite number (not a bool), else ``Invalid``."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise Invalid(name, f"must be a finite number, got {show(value)}")
    return float(value)


def read_text(value: Any, name: str, choices: tuple[str, ...] | None = None, pattern: re.Pattern | None = None) -> str:
    """``value`` if it is a string, one of ``choices`` and matching ``pattern`` when given, else ``Invalid``."""
    if not isinstance(value, str) or (choices is not None and value not in choices) \
            or (pattern is not None and not pattern.fullmatch(value)):
        wanted = f"one of {', '.join(choices)}" if choices else "a string" + (
            f" matching {pattern.pattern}" if pattern else "")
        raise Invalid(name, f"must be {wanted}, got {show(value)}")
    return value


def optional(read: Callable[[Any, str], T]) -> Callable[[Any, str], T | None]:
    """A reader like ``read`` that also accepts null (JSON ``null`` reads as None)."""
    return lambda value, name: None if value is None else read(value, name)


def read_path(value: Any, name: str) -> str:
    """A relative POSIX path that stays inside the bundle."""
    if not isinstance(value, str) or not value:
        raise Invalid(name, f"must be a non-empty path, got {show(value)}")
    pure = PurePosixPath(value)
    if pure.is_absolute() or ".." in pure.parts or "\\" in value or "\x00" in value:
        raise Invalid(name, f"path {show(value)} leaves the bundle")
    return value


def read_list(value: Any, name: str, read: Callable[[Any, str], T], min_items: int = 0) -> tuple[T, ...]:
    """``value`` read item by item with ``read`` into a tuple, if it is a list of at least ``min_items``."""
    if not isinstance(value, list) or len(value) < min_items:
        raise Invalid(name, f"must be a list of at least {min_items} entries, got {show(value)}")
    return tuple(read(item, f"{name}[{i}]") for i, item in enumerate(value))


def read_tensor(value: Any, name: str) -> TensorSpec:
    """``value`` as a ``TensorSpec`` (``{name, shape, dtype}``), else ``Invalid``."""
    try:
        return TensorSpec.from_json(value)
    except BundleError as err:
        raise Invalid(name, str(err)) from None


def show(value: Any) -> str:
    """``value`` as shown in a message: its repr, cut at 60 characters."""
    return f"{value!r:.60}"
