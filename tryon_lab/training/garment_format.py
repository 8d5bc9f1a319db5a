"""The saved-garment format: what ``tryon-lab dreambooth`` writes beside a garment's weights.

A saved garment is a folder holding the weights (a diffusers pipeline for full fine-tuning, or a
LoRA adapter in diffusers' layout), ``dreambooth.json`` (``RECORD``: the format, mode, token,
prompts, item, cost and metrics) and ``reference.png`` (``REFERENCE``: the item's catalog image).
The trainer (``dreambooth.train``) writes it and the adapter switcher (``adapters``) reads it;
both depend on this module and not on each other.
"""

from __future__ import annotations

import json
from pathlib import Path

from tryon_lab.errors import ConfigError

RECORD = "dreambooth.json"
REFERENCE = "reference.png"
FORMAT = "tryon-lab-dreambooth/2"
FORMATS = (FORMAT, "tryon-lab-dreambooth/1")  # readable; 1: the LoRA layout plain diffusers cannot load


def read_record(folder: str | Path) -> dict:
    """The ``dreambooth.json`` of the saved garment in ``folder``; ``ConfigError`` if there is none,
    it is not JSON, or it is of an unknown format."""
    path = Path(folder) / RECORD
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{folder} is not a DreamBooth output (no {RECORD})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path} is not readable JSON: {err}") from None
    if not isinstance(record, dict) or record.get("format") not in FORMATS:
        found = record.get("format") if isinstance(record, dict) else record
        raise ConfigError(f"{path}: format {found!r:.60} is not one of {', '.join(map(repr, FORMATS))}")
    return record
