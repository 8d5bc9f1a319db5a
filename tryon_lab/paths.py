"""Where the project's files live: shipped data and models, and the build folder for artifacts."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from tryon_lab.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """The shipped ``data/`` folder (catalog, scenes, models); ``$TRYON_LAB_DATA`` overrides it."""
    return Path(os.environ.get("TRYON_LAB_DATA", REPO_ROOT / "data"))


BUILD_DIR_ENV = "TRYON_LAB_BUILD_DIR"


def build_root() -> Path:
    """Where notebooks and commands write artifacts: ``$TRYON_LAB_BUILD_DIR``, else ``build/`` here."""
    return Path(os.environ.get(BUILD_DIR_ENV) or "build")


def build_dir(*parts: str) -> Path:
    """Return (and create) ``<build root>/<parts...>``."""
    path = build_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def shipped_model(name: str) -> Path:
    """The folder of a shipped checkpoint, e.g. ``shipped_model("mini-sd-inpaint")``."""
    path = data_dir() / "models" / name
    if not path.is_dir():
        raise ConfigError(
            f"shipped model {name!r} not found at {path}; train it with `tryon-lab pretrain` "
            "or point $TRYON_LAB_DATA at a folder that has models/" + name
        )
    return path


def display_path(path: str | Path) -> str:
    """``path`` relative to the repository when it lies inside it (what records and cards print,
    so they read the same on every machine), else as given."""
    resolved = Path(path).resolve()
    return resolved.relative_to(REPO_ROOT).as_posix() if resolved.is_relative_to(REPO_ROOT) else str(path)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_folder(path: Path, skip: tuple[str, ...] = ()) -> str:
    """Hex SHA-256 over a folder's files, in sorted path order: each one's relative path and the
    SHA-256 of its contents; top-level files or sub-folders named in ``skip`` are left out."""
    digest = hashlib.sha256()
    for file in sorted(p for p in Path(path).rglob("*") if p.is_file() and p.relative_to(path).parts[0] not in skip):
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        digest.update(bytes.fromhex(sha256_file(file)))
    return digest.hexdigest()


def write_text_atomically(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file beside it, renamed into place, so an
    interrupted write never leaves a half-written file; returns the path."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
    return path
