"""Many fine-tuned garments on one base model: LoRA adapters switched at inference.

The paper trains one model per garment; here each garment is a small LoRA adapter folder
(``tryon-lab dreambooth --lora-rank N``) plus its identifier's embedding, in diffusers' own
layout (``dreambooth.lora_files``), or a folder that diffusers' DreamBooth-LoRA script wrote.
``GarmentAdapters`` loads any number of them into the base pipeline's U-Net (and text encoder,
for a script LoRA that trained it) through peft and switches between them without reloading
anything: ``activate(name)`` selects the adapter and writes its identifier's embedding row;
``deactivate()`` gives back the base model's behaviour exactly. ``finetuned_catalog`` lists saved
garments as catalog entries for the app without loading any weights.
"""

from __future__ import annotations

import re
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from tryon_lab.data.attributes import CATEGORIES, GARMENT_CATEGORIES
from tryon_lab.data.world import caption_for
from tryon_lab.errors import ConfigError
from tryon_lab.training.dreambooth.lora_files import LORA_FILE, TOKEN_FILE, attach_lora, identifier_embedding
from tryon_lab.training.dreambooth.token import check_token, ensure_token
from tryon_lab.training.garment_format import RECORD, REFERENCE, read_record

MODEL_CARD = "README.md"  # diffusers' training scripts put the instance prompt in its metadata


@dataclass(frozen=True)
class FineTunedGarment:
    """A fine-tuned garment as a catalog entry (the fields of ``data.catalog.CatalogEntry``, plus
    how to call it up). ``colour``/``pattern`` are None for a user's own garment; ``token`` is None
    for a LoRA that came without an identifier embedding (diffusers' DreamBooth-LoRA script)."""

    id: str
    kind: str
    category: str
    colour: str | None
    pattern: str | None
    caption_phrase: str
    file: Path | None
    prompt: str
    token: str | None
    adapter: Path
    mode: str

    @classmethod
    def from_folder(cls, folder: str | Path, prompt: str | None = None) -> "FineTunedGarment":
        """Read a saved garment: a tryon-lab one (``dreambooth.json``) or a diffusers LoRA folder
        (``pytorch_lora_weights.safetensors`` only, as diffusers' DreamBooth-LoRA script saves it).
        ``prompt`` replaces the recorded identifier prompt. ``ConfigError`` for any other folder.

        A diffusers folder is named by its folder: id = the folder's name, phrase = its words
        ("red-tee": "red tee"); its prompt is ``prompt``, else the ``instance_prompt`` of its
        ``README.md`` model card, else a caption of the phrase; its category is the first catalog
        category named in the prompt or the folder's name.
        """
        folder = Path(folder).resolve()
        if (folder / RECORD).is_file():
            return cls._from_record(folder, prompt)
        if (folder / LORA_FILE).is_file():
            return cls._from_lora_folder(folder, prompt)
        raise ConfigError(f"{folder} is not a fine-tuned garment: neither a tryon-lab DreamBooth output ({RECORD}) "
                          f"nor a diffusers LoRA folder ({LORA_FILE})")

    @classmethod
    def _from_record(cls, folder: Path, prompt: str | None) -> "FineTunedGarment":
        record = read_record(folder)
        return cls(id=record["adapter_name"], kind=record["kind"], category=record["category"],
                   colour=record.get("colour"), pattern=record.get("pattern"),
                   caption_phrase=f"{record['token']} {record['class_word']}", file=_reference(folder),
                   prompt=prompt or record["instance_prompt"], token=record["token"], adapter=folder,
                   mode=record["mode"])

    @classmethod
    def _from_lora_folder(cls, folder: Path, prompt: str | None) -> "FineTunedGarment":
        words = re.findall(r"[a-z0-9]+", folder.name.lower())
        prompt = prompt or _card_prompt(folder)
        named = re.findall(r"[a-z0-9]+", (prompt or "").lower()) + words
        category = next((word for word in named if word in CATEGORIES), None)
        if category is None:
            raise ConfigError(f"{folder}: cannot tell which category this LoRA is for; name the folder after it "
                              f"(e.g. red-tee) or give a prompt that names one of {', '.join(CATEGORIES)}")
        kind = "garment" if category in GARMENT_CATEGORIES else "product"
        phrase = " ".join(words)
        embedding = identifier_embedding(folder)
        return cls(id=re.sub(r"[^A-Za-z0-9_-]+", "_", folder.name), kind=kind, category=category, colour=None,
                   pattern=None, caption_phrase=phrase, file=_reference(folder),
                   prompt=prompt or caption_for(phrase, kind, "room"), token=embedding[0] if embedding else None,
                   adapter=folder, mode="lora")


def _reference(folder: Path) -> Path | None:
    path = folder / REFERENCE
    return path if path.is_file() else None


def _card_prompt(folder: Path) -> str | None:
    """The ``instance_prompt`` of ``folder``'s model card, if it has one."""
    import yaml
    from huggingface_hub import ModelCard

    if not (folder / MODEL_CARD).is_file():
        return None
    try:
        value = ModelCard.load(folder / MODEL_CARD).data.to_dict().get("instance_prompt")
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as err:
        raise ConfigError(f"{folder / MODEL_CARD} is not a readable model card: {err}") from None
    return value.strip() if isinstance(value, str) and value.strip() else None


def _is_garment(folder: Path) -> bool:
    return (folder / RECORD).is_file() or (folder / LORA_FILE).is_file()


def finetuned_catalog(root: str | Path) -> list[FineTunedGarment]:
    """Every saved garment in ``root`` (itself one, or its sub-folders), sorted by id."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder of fine-tuned garments")
    folders = [root] if _is_garment(root) else sorted(p for p in root.iterdir() if _is_garment(p))
    return sorted((FineTunedGarment.from_folder(f) for f in folders), key=lambda g: g.id)


class GarmentAdapters:
    """LoRA garments loaded side by side into one pipeline; one (or none) active at a time."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.garments: dict[str, FineTunedGarment] = {}
        self._vectors: dict[str, torch.Tensor] = {}
        self._text_adapters: set[str] = set()  # garments whose LoRA also adapts the text encoder
        self.active: str | None = None

    @property
    def names(self) -> list[str]:
        """Loaded adapter names, in load order."""
        return list(self.garments)

    def load(self, folder: str | Path, name: str | None = None, prompt: str | None = None) -> FineTunedGarment:
        """Load the LoRA garment saved in ``folder`` (see ``FineTunedGarment.from_folder``, which
        ``prompt`` is passed to) as ``name`` (default: its id); it stays inactive. Returns its
        catalog entry (``id`` = the name to ``activate``).

        Raises ``ConfigError`` for a folder that is no garment, a full fine-tune folder, a name
        already loaded, or an adapter made for a base model of other sizes.
        """
        garment = FineTunedGarment.from_folder(folder, prompt)
        if garment.mode != "lora":
            raise ConfigError(f"{folder} is a full fine-tune (a whole pipeline); load it with load_dreambooth instead")
        name = name or garment.id
        garment = replace(garment, id=name)
        if name in self.garments:
            raise ConfigError(f"an adapter named {name!r} is already loaded")
        vector = self._identifier_vector(garment)
        with warnings.catch_warnings():  # several adapters on one U-Net is the point here
            warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
            if attach_lora(self.pipe.unet, self.pipe.text_encoder, garment.adapter, name):
                self._text_adapters.add(name)
        if vector is not None:
            ensure_token(self.pipe.tokenizer, self.pipe.text_encoder, garment.token)
            self._vectors[name] = vector
        self.garments[name] = garment
        self._restore_active()
        return garment

    def _identifier_vector(self, garment: FineTunedGarment) -> torch.Tensor | None:
        """The garment's identifier embedding, checked against this base model (None: it has none)."""
        if garment.token is None:
            return None
        check_token(self.pipe.tokenizer, garment.token)
        embedding = identifier_embedding(garment.adapter)
        if embedding is None or embedding[0] != garment.token:
            raise ConfigError(f"{garment.adapter}: no embedding for its identifier {garment.token!r} ({TOKEN_FILE})")
        vector = embedding[1]
        width = self.pipe.text_encoder.get_input_embeddings().embedding_dim
        if vector.shape != (width,):
            raise ConfigError(f"{garment.adapter}: its identifier embedding has {tuple(vector.shape)} values but "
                              f"this base model's text encoder uses {width}; it was trained on another base model")
        return vector.to(self.pipe.text_encoder.dtype)

    def load_all(self, root: str | Path) -> list[FineTunedGarment]:
        """Load every LoRA garment under ``root``; returns them."""
        return [self.load(g.adapter) for g in finetuned_catalog(root) if g.mode == "lora"]

    def _restore_active(self) -> None:
        # diffusers activates an adapter as it loads it; keep the caller's choice instead.
        if self.active is None:
            self.pipe.unet.disable_adapters()
        else:
            self.pipe.unet.set_adapter(self.active)
        self._select_text_adapter(self.active)

    def _select_text_adapter(self, name: str | None) -> None:
        if not self._text_adapters:
            return
        encoder = self.pipe.text_encoder
        if name in self._text_adapters:
            encoder.enable_adapters()
            encoder.set_adapter(name)
        else:
            encoder.disable_adapters()

    def activate(self, name: str) -> float:
        """Make garment ``name`` the active one; returns the seconds the switch took."""
        if name not in self.garments:
            raise ConfigError(f"no adapter named {name!r}; loaded: {', '.join(self.names) or 'none'}")
        began = time.perf_counter()
        unet = self.pipe.unet
        if self.active is None:  # adapters are off (deactivate or fresh load); with one active they are on
            unet.enable_adapters()
        unet.set_adapter(name)
        self._select_text_adapter(name)
        if name in self._vectors:
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
        self._select_text_adapter(None)
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
