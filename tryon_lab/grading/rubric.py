"""The rubric: points per named check, the bars each check applies, and the limits of a submission.

The default lives in ``tryon_lab/configs/rubric.toml`` and is also the schema: a rubric file is
laid over it key by key, and a key the default does not have, or a value of another type, is a
``RubricError`` naming it (so a typo never silently leaves a default in force).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from tryon_lab.grading.errors import RubricError

CHECK_NAMES = ("unpack", "file_types", "structure", "manifest", "programs", "contract", "bits", "chunks",
               "numerics", "tryon")
DEFAULT_SOURCE = "tryon_lab/configs/rubric.toml"


@dataclass(frozen=True)
class Limits:
    """What a submission may be: total and per-file unpacked bytes, file count, zip compression
    ratio, and the wall-clock ``timeout_seconds`` and ``memory_bytes`` of its grading process."""

    max_total_bytes: int
    max_file_bytes: int
    max_files: int
    max_compression_ratio: float
    timeout_seconds: float
    memory_bytes: int


@dataclass(frozen=True)
class Rubric:
    """A loaded rubric: its ``name``, ``limits``, the ``settings`` of every check (each has
    ``points``) and where it came from (``source``)."""

    name: str
    limits: Limits
    settings: dict[str, dict[str, Any]]
    source: str = DEFAULT_SOURCE

    def points(self, check: str) -> float:
        """The points check ``check`` is worth."""
        return float(self.settings[check]["points"])

    def get(self, check: str, key: str) -> Any:
        """Setting ``key`` of check ``check`` (e.g. ``get("bits", "allowed_bits")``)."""
        return self.settings[check][key]

    @property
    def total_points(self) -> float:
        """The points of every check together."""
        return sum(self.points(name) for name in CHECK_NAMES)

    def to_json(self) -> dict[str, Any]:
        """The rubric as plain JSON: name, source, limits and settings."""
        return {"name": self.name, "source": self.source, "limits": vars(self.limits), "settings": self.settings}


def default_table() -> dict[str, Any]:
    """The default rubric as a TOML table."""
    return tomllib.loads(resources.files("tryon_lab.configs").joinpath("rubric.toml").read_text())


def load_rubric(path: str | Path | None = None) -> Rubric:
    """The default rubric, or the file at ``path`` laid over it; ``RubricError`` if it is unusable."""
    table = default_table()
    source = DEFAULT_SOURCE
    if path is not None:
        path = Path(path)
        try:
            override = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RubricError(f"rubric {path} does not exist") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            raise RubricError(f"rubric {path} is not a readable TOML file: {err}") from None
        table = _overlay(table, override, "")
        source = str(path)
    return rubric_from_table(table, source)


def rubric_from_table(table: dict[str, Any], source: str = DEFAULT_SOURCE) -> Rubric:
    """A ``Rubric`` from a complete table (the default's keys); ``RubricError`` for impossible values."""
    limits = Limits(**{key: table["limits"][key] for key in Limits.__dataclass_fields__})
    for key, value in vars(limits).items():
        if value < 0 or (value == 0 and key not in ("memory_bytes",)):
            raise RubricError(f"limits.{key} must be positive, got {value}")
    settings = {name: dict(table[name]) for name in CHECK_NAMES}
    for name, values in settings.items():
        if values["points"] < 0:
            raise RubricError(f"{name}.points must be >= 0, got {values['points']}")
    chunks = settings["chunks"]
    if not 1 <= chunks["min_chunks"] <= chunks["max_chunks"]:
        raise RubricError(f"chunks: need 1 <= min_chunks <= max_chunks, got {chunks['min_chunks']} and "
                          f"{chunks['max_chunks']}")
    return Rubric(str(table["name"]), limits, settings, source)


def _overlay(base: dict[str, Any], override: dict[str, Any], where: str) -> dict[str, Any]:
    """``base`` with ``override``'s values, refusing keys and types that ``base`` does not have."""
    merged = dict(base)
    for key, value in override.items():
        name = f"{where}{key}"
        if key not in base:
            known = ", ".join(sorted(base))
            raise RubricError(f"rubric: unknown {'setting' if where else 'section or key'} {name!r} (known: {known})")
        default = base[key]
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise RubricError(f"rubric: {name} must be a table")
            merged[key] = _overlay(default, value, f"{name}.")
        else:
            merged[key] = _checked(name, value, default)
    return merged


def _checked(name: str, value: Any, default: Any) -> Any:
    """``value`` if it has ``default``'s type (ints stand for floats), else ``RubricError``."""
    if isinstance(default, bool) or isinstance(value, bool):
        ok = isinstance(value, bool) and isinstance(default, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float))
        value = float(value) if ok else value
    elif isinstance(default, list):
        ok = isinstance(value, list) and all(type(v) is type(default[0]) for v in value) if default else \
            isinstance(value, list)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise RubricError(f"rubric: {name} must be {type(default).__name__} like {default!r}, got {value!r}")
    return value
