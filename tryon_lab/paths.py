"""Where the project's files live: shipped data and models, and the build folder for artifacts."""

from __future__ import annotations

import os
from pathlib import Path

from tryon_lab.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """The shipped ``data/`` folder (catalog, scenes, models); ``$TRYON_LAB_DATA`` overrides it."""
    return Path(os.environ.get("TRYON_LAB_DATA", REPO_ROOT / "data"))


def build_dir() -> Path:
    """Where notebooks and commands write artifacts: ``$TRYON_LAB_BUILD_DIR`` or ``build/``."""
    return Path(os.environ.get("TRYON_LAB_BUILD_DIR", REPO_ROOT / "build"))


def shipped_model(name: str) -> Path:
    """The folder of a shipped checkpoint, e.g. ``shipped_model("mini-sd-inpaint")``."""
    path = data_dir() / "models" / name
    if not path.is_dir():
        raise ConfigError(
            f"shipped model {name!r} not found at {path}; train it with `tryon-lab pretrain` "
            "or point $TRYON_LAB_DATA at a folder that has models/" + name
        )
    return path
