"""Many fine-tuned garments on one base model: LoRA adapters switched at inference.

The paper trains one model per garment; here each garment is a small LoRA adapter folder
(``tryon-lab dreambooth --lora-rank N``) plus its identifier's embedding. ``GarmentAdapters``
loads any number of them into the base pipeline's U-Net through peft (diffusers'
``load_lora_adapter``) and switches between them without reloading anything: ``activate(name)``
selects the adapter and writes its identifier's embedding row; ``deactivate()`` gives back
the base model's behaviour exactly. ``finetuned_catalog`` lists saved garments as catalog
entries for the app without loading any weights.
"""

from __future__ import annotations

import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from tryon_lab.errors import ConfigError
from tryon_lab.training.dreambooth.token import ensure_token
from tryon_lab.training.dreambooth.train import LORA_FILE, REFERENCE, TOKEN_FILE, read_record


@dataclass(frozen=True)
class FineTunedGarment:
    """A fine-tuned garment as a catalog entry (the fields of ``data.catalog.CatalogEntry``, plus
    how to call it up). ``colour``/``pattern`` are None for a user's own garment."""

    id: str
    kind: str
    category: str
    colour: str | None
    pattern: str | None
    caption_phrase: str
    file: Path | None
    prompt: str
    token: str
    adapter: Path
    mode: str

    @classmethod
    def from_folder(cls, folder: str | Path) -> "FineTunedGarment":
        """Read a saved garment's ``dreambooth.json`` (``ConfigError`` if it is not one)."""
        folder = Path(folder).resolve()
        record = read_record(folder)
        reference = folder / REFERENCE
        return cls(id=record["adapter_name"], kind=record["kind"], category=record["category"],
                   colour=record.get("colour"), pattern=record.get("pattern"),
                   caption_phrase=f"{record['token']} {record['class_word']}",
                   file=reference if reference.is_file() else None, prompt=record["instance_prompt"],
                   token=record["token"], adapter=folder, mode=record["mode"])


def finetuned_catalog(root: str | Path) -> list[FineTunedGarment]:
    """Every saved garment in ``root`` (itself one, or its sub-folders), sorted by id."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder of fine-tuned garments")
    folders = [root] if (root / "dreambooth.json").is_file() else sorted(p for p in root.iterdir() if (p / "dreambooth.json").is_file())
    return sorted((FineTunedGarment.from_folder(f) for f in folders), key=lambda g: g.id)


class GarmentAdapters:
    """LoRA garments loaded side by side into one pipeline; one (or none) active at a time."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.garments: dict[str, FineTunedGarment] = {}
        self._vectors: dict[str, torch.Tensor] = {}
        self.active: str | None = None

    @property
    def names(self) -> list[str]:
        """Loaded adapter names, in load order."""
        return list(self.garments)

    def load(self, folder: str | Path, name: str | None = None) -> FineTunedGarment:
        """Load the LoRA garment saved in ``folder`` as ``name`` (default: its id); it stays inactive.
        Returns its catalog entry (``id`` = the name to ``activate``).

        Raises ``ConfigError`` for a full fine-tune folder, a name already loaded, or an adapter
        made for a base model of other sizes.
        """
        from safetensors.torch import load_file

        garment = FineTunedGarment.from_folder(folder)
        if garment.mode != "lora":
            raise ConfigError(f"{folder} is a full fine-tune (a whole pipeline); load it with load_dreambooth instead")
        name = name or garment.id
        garment = replace(garment, id=name)
        if name in self.garments:
            raise ConfigError(f"an adapter named {name!r} is already loaded")
        vector = load_file(Path(folder) / TOKEN_FILE)[garment.token]
        width = self.pipe.text_encoder.get_input_embeddings().embedding_dim
        if vector.shape != (width,):
            raise ConfigError(f"{folder}: its identifier embedding has {tuple(vector.shape)} values but this base "
                              f"model's text encoder uses {width}; it was trained on another base model")
        unet = self.pipe.unet
        try:
            with warnings.catch_warnings():  # several adapters on one U-Net is the point here
                warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
                unet.load_lora_adapter(str(folder), adapter_name=name, prefix=None, weight_name=LORA_FILE,
                                       local_files_only=True, use_safetensors=True)
        except (RuntimeError, ValueError) as err:
            raise ConfigError(f"{folder}: the LoRA weights do not fit this base model's U-Net ({err})") from None
        ensure_token(self.pipe.tokenizer, self.pipe.text_encoder, garment.token)
        self._vectors[name] = vector.to(self.pipe.text_encoder.dtype)
        self.garments[name] = garment
        self._restore_active()
        return garment

    def load_all(self, root: str | Path) -> list[FineTunedGarment]:
        """Load every LoRA garment under ``root``; returns them."""
        return [self.load(g.adapter) for g in finetuned_catalog(root) if g.mode == "lora"]

    def _restore_active(self) -> None:
        # diffusers activates an adapter as it loads it; keep the caller's choice instead.
        if self.active is None:
            self.pipe.unet.disable_adapters()
        else:
            self.pipe.unet.set_adapter(self.active)

    def activate(self, name: str) -> float:
        """Make garment ``name`` the active one; returns the seconds the switch took."""
        if name not in self.garments:
            raise ConfigError(f"no adapter named {name!r}; loaded: {', '.join(self.names) or 'none'}")
        began = time.perf_counter()
        unet = self.pipe.unet
        if self.active is None:  # adapters are off (deactivate or fresh load); with one active they are on
            unet.enable_adapters()
        unet.set_adapter(name)
        embeddings = self.pipe.text_encoder.get_input_embeddings().weight
        token_id = self.pipe.tokenizer.convert_tokens_to_ids(self.garments[name].token)
        with torch.no_grad():
            embeddings[token_id] = self._vectors[name].to(embeddings.device)
        self.active = name
        return time.perf_counter() - began

    def deactivate(self) -> float:
        """Back to the base model (every adapter off); returns the seconds it took."""
        began = time.perf_counter()
        if self.garments:
            self.pipe.unet.disable_adapters()
        self.active = None
        return time.perf_counter() - began

    @contextmanager
    def use(self, name: str | None):
        """``with adapters.use("garment-..."):`` (None: the base model); restores the previous state."""
        previous = self.active
        self.activate(name) if name is not None else self.deactivate()
        try:
            yield self.pipe
        finally:
            self.activate(previous) if previous is not None else self.deactivate()

    def prompt(self, name: str | None = None) -> str:
        """The identifier prompt of garment ``name`` (default: the active one)."""
        name = name or self.active
        if name is None:
            raise ConfigError("no garment is active; pass a name")
        return self.garments[name].prompt

    def entries(self) -> list[FineTunedGarment]:
        """The loaded garments as catalog entries."""
        return list(self.garments.values())

    def switch_times(self, repeats: int = 5) -> dict[str, float]:
        """Time switching through every loaded garment ``repeats`` times (and back to the base):
        mean and max seconds per switch."""
        times = []
        for _ in range(repeats):
            for name in self.names:
                times.append(self.activate(name))
            times.append(self.deactivate())
        return {"switches": float(len(times)), "mean_s": float(sum(times) / len(times)), "max_s": float(max(times))}
