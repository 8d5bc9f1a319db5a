"""A LoRA garment's files, in diffusers' own layouts, so that plain diffusers loads a garment:

    pipe = StableDiffusionInpaintPipeline.from_pretrained(base)
    pipe.load_lora_weights(folder)          # pytorch_lora_weights.safetensors
    pipe.load_textual_inversion(folder)     # learned_embeds.safetensors: the identifier token

- ``pytorch_lora_weights.safetensors``: the U-Net adapter as ``save_lora_weights`` writes it
  (``unet.``-prefixed keys; rank and alpha in the file's metadata).
- ``learned_embeds.safetensors``: the identifier's embedding as one key (the token), the layout of
  diffusers' textual-inversion files. The identifier is a word the tokenizer did not have
  (``token.py``), so ``load_textual_inversion`` adds it just as training did.

``attach_lora`` reads these, the folders of diffusers' DreamBooth-LoRA script (``unet.``- and
``text_encoder.``-prefixed keys), and format 1 garments (tryon-lab's first layout: U-Net keys
without a prefix, ``token_embedding.safetensors``; plain diffusers cannot load those).
"""

from __future__ import annotations

from pathlib import Path

import torch

from tryon_lab.errors import ConfigError

LORA_FILE = "pytorch_lora_weights.safetensors"
TOKEN_FILE = "learned_embeds.safetensors"
FORMAT1_TOKEN_FILE = "token_embedding.safetensors"
_COMPONENTS = ("unet", "text_encoder")


def save_unet_lora(unet, adapter_name: str, folder: str | Path, dtype=None) -> Path:
    """Write ``unet``'s adapter ``adapter_name`` as ``folder/LORA_FILE`` in diffusers' layout (what
    ``pipe.load_lora_weights(folder)`` reads), its tensors cast to ``dtype`` if given; returns the file's path."""
    from diffusers import StableDiffusionInpaintPipeline
    from peft.utils import get_peft_model_state_dict

    # peft's key names, not convert_state_dict_to_diffusers': that renames only the attention
    # projections, and diffusers' loader reads a file mixing both namings in part, silently.
    layers = get_peft_model_state_dict(unet, adapter_name=adapter_name)
    if dtype is not None:
        layers = {name: value.to(dtype) for name, value in layers.items()}
    StableDiffusionInpaintPipeline.save_lora_weights(
        folder, unet_lora_layers=layers, weight_name=LORA_FILE,
        unet_lora_adapter_metadata=unet.peft_config[adapter_name].to_dict())
    return Path(folder) / LORA_FILE


def save_lora_garment(pipe, adapter_name: str, token: str, folder: str | Path) -> None:
    """Write ``pipe.unet``'s adapter ``adapter_name`` (``LORA_FILE``) and ``token``'s embedding row
    (``TOKEN_FILE``) into ``folder``."""
    from safetensors.torch import save_file

    save_unet_lora(pipe.unet, adapter_name, folder)
    token_id = pipe.tokenizer.convert_tokens_to_ids(token)
    vector = pipe.text_encoder.get_input_embeddings().weight[token_id].detach().float().cpu().contiguous()
    save_file({token: vector}, Path(folder) / TOKEN_FILE)


def identifier_embedding(folder: str | Path) -> tuple[str, torch.Tensor] | None:
    """The (token, embedding (D,)) saved in ``folder`` (``TOKEN_FILE``, or format 1's file), or None
    when there is neither. ``ConfigError`` unless the file holds one vector for one token."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = next((p for p in (Path(folder) / TOKEN_FILE, Path(folder) / FORMAT1_TOKEN_FILE) if p.is_file()), None)
    if path is None:
        return None
    try:
        vectors = load_file(path)
    except (OSError, SafetensorError) as err:
        raise ConfigError(f"{path} is not a readable safetensors file: {err}") from None
    if len(vectors) == 1:
        ((token, vector),) = vectors.items()
        if vector.ndim == 2 and vector.shape[0] == 1:  # diffusers' textual-inversion script saves (1, D)
            vector = vector[0]
        if vector.ndim == 1:
            return token, vector
    raise ConfigError(f"{path} must hold one embedding vector for one token (diffusers' textual-inversion "
                      f"layout); it holds {({t: tuple(v.shape) for t, v in vectors.items()})}")


def attach_lora(unet, text_encoder, folder: str | Path, adapter_name: str) -> bool:
    """Load ``folder``'s ``LORA_FILE`` into ``unet`` (and into ``text_encoder`` when it holds layers
    for it) as adapter ``adapter_name``; returns whether the text encoder got one.

    Raises ``ConfigError`` for a missing or unreadable file, one without U-Net layers or with
    layers for other models, and layers that do not fit these models.
    """
    from diffusers import StableDiffusionInpaintPipeline
    from safetensors import SafetensorError

    path = Path(folder) / LORA_FILE
    if not path.is_file():
        raise ConfigError(f"{folder} holds no LoRA weights ({LORA_FILE})")
    try:
        state, alphas, metadata = StableDiffusionInpaintPipeline.lora_state_dict(
            str(folder), weight_name=LORA_FILE, use_safetensors=True, local_files_only=True, return_lora_metadata=True)
    except (OSError, ValueError, SafetensorError) as err:
        raise ConfigError(f"{path} is not a readable LoRA file: {err}") from None
    if not state:
        raise ConfigError(f"{path} holds no LoRA layers")
    prefixes = {key.split(".", 1)[0] for key in state}
    layout_1 = not prefixes & set(_COMPONENTS)  # format 1: the keys unet.save_lora_adapter wrote
    if not layout_1 and ("unet" not in prefixes or not prefixes <= set(_COMPONENTS)):
        raise ConfigError(f"{path} has LoRA layers for {', '.join(sorted(prefixes))}; a garment needs U-Net "
                          f"layers and may have text-encoder ones ({', '.join(_COMPONENTS)})")
    try:
        if layout_1:
            unet.load_lora_adapter(state, prefix=None, adapter_name=adapter_name, metadata=metadata)
            return False
        StableDiffusionInpaintPipeline.load_lora_into_unet(state, alphas, unet, adapter_name=adapter_name,
                                                           metadata=metadata)
        if "text_encoder" in prefixes:
            try:
                StableDiffusionInpaintPipeline.load_lora_into_text_encoder(
                    state, alphas, text_encoder, adapter_name=adapter_name, metadata=metadata)
            except (RuntimeError, ValueError):
                unet.delete_adapters(adapter_name)  # all or nothing: the name stays free for another try
                raise
    except (RuntimeError, ValueError) as err:
        raise ConfigError(f"{folder}: the LoRA weights do not fit this base model ({err})") from None
    return "text_encoder" in prefixes
