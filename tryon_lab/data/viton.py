"""Read VITON-HD / DressCode-style try-on folders that practitioners already have.

Assumed layout (``<base>`` is ``<root>/<split>`` when ``split`` is given, else ``<root>``)::

    <base>/image/<person>.jpg          person photos
    <base>/cloth/<cloth>.jpg           flat catalog garments
    <base>/agnostic-mask/<person>_mask.png   white = region to inpaint, or, if absent,
    <base>/image-parse-v3/<person>.png       a label map (palette or grey PNG whose pixel
    <base>/image-parse/<person>.png          values are label ids), see UPPER_CLOTH_LABELS
    <root or base>/<split>_pairs.txt   optional, "person.jpg cloth.jpg" per line

Without a pairs file each person is paired with the cloth of the same file name (as in
VITON-HD). Every referenced file is checked when the folder is opened.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tryon_lab.data.io import fit_image, fit_mask, load_image, load_mask, open_image
from tryon_lab.errors import ConfigError, MaskError

UPPER_CLOTH_LABELS = (5, 6, 7)
"""Label ids of upper clothes, dress and coat in VITON-HD's 'image-parse-v3' maps (the LIP /
CIHP human-parsing label set); their union is the garment region to inpaint."""

_PARSE_DIRS = ("image-parse-v3", "image-parse")


class VitonFolder:
    """A VITON-HD / DressCode-style folder as a sequence of try-on samples.

    ``VitonFolder(root, split=None, size=128)``: ``split`` is e.g. "train" or "test" (a
    sub-folder of ``root``); ``size`` is the square side every sample is fitted to (padded
    on white, aspect kept). Raises ``ConfigError`` naming the folder or file when the layout
    is wrong or a referenced file is missing.
    """

    def __init__(self, root: str | Path, split: str | None = None, size: int = 128) -> None:
        self.root = Path(root)
        self.base = self.root / split if split else self.root
        self.size = size
        self.split = split
        for folder in ("image", "cloth"):
            if not (self.base / folder).is_dir():
                raise ConfigError(self._missing_folder_message(folder))
        self._mask_dir, self._parse_dir = self._find_mask_source()
        self.pairs = self._read_pairs()
        for person, cloth in self.pairs:
            self._require(self.base / "image" / person)
            self._require(self.base / "cloth" / cloth)
            self._require(self._mask_path(person))

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        """Return dict(person=PIL RGB, cloth=PIL RGB, mask=bool HxW, name=str), fitted to size."""
        person_name, cloth_name = self.pairs[index]
        person = load_image(self.base / "image" / person_name)
        cloth = load_image(self.base / "cloth" / cloth_name)
        mask_path = self._mask_path(person_name)
        if self._mask_dir:
            mask = load_mask(mask_path, image=person)
        else:
            mask = self._parse_mask(mask_path, person)
        return {
            "person": fit_image(person, self.size),
            "cloth": fit_image(cloth, self.size),
            "mask": fit_mask(mask, self.size),
            "name": Path(person_name).stem,
        }

    def _missing_folder_message(self, folder: str) -> str:
        message = f"{self.base}: no '{folder}/' folder; expected a VITON-HD / DressCode layout"
        if not self.base.is_dir():
            return f"{self.base}: no such folder"
        splits = sorted(p.name for p in self.base.iterdir() if (p / "image").is_dir())
        if splits:
            message += f" (found splits {', '.join(splits)}: pass split=...)"
        return message

    def _find_mask_source(self) -> tuple[Path | None, Path | None]:
        if (self.base / "agnostic-mask").is_dir():
            return self.base / "agnostic-mask", None
        for name in _PARSE_DIRS:
            if (self.base / name).is_dir():
                return None, self.base / name
        raise ConfigError(
            f"{self.base}: no mask folder; expected 'agnostic-mask/' or one of "
            + ", ".join(f"'{name}/'" for name in _PARSE_DIRS)
        )

    def _mask_path(self, person: str) -> Path:
        stem = Path(person).stem
        if self._mask_dir:
            return self._mask_dir / f"{stem}_mask.png"
        return self._parse_dir / f"{stem}.png"

    def _read_pairs(self) -> list[tuple[str, str]]:
        if self.split:
            names = [f"{self.split}_pairs.txt"]
        else:
            names = ["pairs.txt", "test_pairs.txt", "train_pairs.txt"]
        for path in (folder / name for name in names for folder in (self.base, self.root)):
            if path.is_file():
                return self._parse_pairs(path)
        people = sorted(p.name for p in (self.base / "image").iterdir() if p.is_file())
        if not people:
            raise ConfigError(f"{self.base / 'image'}: no person images")
        return [(name, name) for name in people]

    @staticmethod
    def _parse_pairs(path: Path) -> list[tuple[str, str]]:
        pairs = []
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2:
                raise ConfigError(
                    f"{path}, line {number}: expected 'person.jpg cloth.jpg', got {line!r}"
                )
            pairs.append((fields[0], fields[1]))
        if not pairs:
            raise ConfigError(f"{path}: no pairs listed")
        return pairs

    @staticmethod
    def _require(path: Path) -> None:
        if not path.is_file():
            raise ConfigError(f"{path}: referenced file is missing")

    @staticmethod
    def _parse_mask(path: Path, person: Image.Image) -> np.ndarray:
        labels = open_image(path)
        if labels.mode not in ("P", "L", "I", "I;16"):
            raise ConfigError(
                f"{path}: expected a label map (palette or grey PNG), got mode {labels.mode}"
            )
        if labels.size != person.size:
            raise MaskError(
                f"parse map {path} is {labels.width}x{labels.height} but the person image is "
                f"{person.width}x{person.height}"
            )
        mask = np.isin(np.asarray(labels), UPPER_CLOTH_LABELS)
        if not mask.any():
            raise MaskError(
                f"parse map {path} has no upper-clothes pixels (labels {UPPER_CLOTH_LABELS})"
            )
        return mask
