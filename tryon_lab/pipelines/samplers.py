"""Samplers of a try-on pipeline: the scheduler that walks the noise to an image, and its defaults.

Every sampler is a diffusers scheduler made ``from_config`` of the model's own noise schedule, so
any of them runs any trained pipeline. ``lcm`` needs the model's LCM LoRA (``tryon-lab distill``):
``load_lcm`` attaches it from the pipeline folder's ``lcm/``; ``use_sampler(pipe, "lcm")`` merges it
into the weights it adapts (a step then costs a base step), and 4 steps without classifier-free
guidance (the guidance is distilled into the adapter) replace the 25 guided DDIM steps; any other
sampler restores the kept base weights and switches the adapter off, so the pipeline is exactly the
base model again. A pipeline folder may also hold a fast VAE (``fast_vae/``, ``tryon-lab distill-vae``):
a narrower autoencoder in the base VAE's latent space, which ``load_lcm`` attaches beside the LoRA and
the lcm sampler encodes and decodes with, since at 4 steps the VAE is most of a try-on's time.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tryon_lab.errors import ConfigError, TryOnInputError

LCM_ADAPTER = "lcm"
LCM_FOLDER = "lcm"  # a pipeline folder's LCM LoRA: <pipeline>/lcm/pytorch_lora_weights.safetensors
LCM_FILE = "pytorch_lora_weights.safetensors"
FAST_VAE_FOLDER = "fast_vae"  # a pipeline folder's fast VAE for the lcm sampler (models.FastAutoencoderKL)
# default classifier-free guidance scales: a text try-on, a reference (Diffuse to Choose) try-on, and an
# LCM-LoRA try-on, which runs unguided (1.0: the guidance is distilled into the adapter)
TEXT_GUIDANCE = 4.0
DTC_GUIDANCE = 5.0
LCM_GUIDANCE = 1.0


@dataclass(frozen=True)
class Sampler:
    """A sampler's ``name``, its default ``steps`` and ``guidance_scale``, what it is, and its
    ``label`` in tables and figures."""

    name: str
    steps: int
    guidance_scale: float
    description: str
    label: str


SAMPLERS = {
    "ddim": Sampler("ddim", 25, TEXT_GUIDANCE, "DDIM, deterministic (the models' reference sampler)", "DDIM"),
    "dpm": Sampler("dpm", 20, TEXT_GUIDANCE, "DPM-Solver++ (2nd order multistep)", "DPM-Solver++"),
    "euler": Sampler("euler", 25, TEXT_GUIDANCE, "Euler (discrete)", "Euler"),
    "lcm": Sampler("lcm", 4, LCM_GUIDANCE, "latent consistency (needs the model's LCM LoRA; guidance distilled in)",
                   "LCM"),
}


def check_sampler(name: str) -> Sampler:
    """The ``Sampler`` called ``name``; ``TryOnInputError`` naming the choices otherwise."""
    if name not in SAMPLERS:
        raise TryOnInputError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    return SAMPLERS[name]


def make_scheduler(name: str, config: Any):
    """The diffusers scheduler of sampler ``name`` built from a scheduler ``config``."""
    from diffusers import (
        DDIMScheduler,
        DPMSolverMultistepScheduler,
        EulerDiscreteScheduler,
        LCMScheduler,
    )

    check_sampler(name)
    cls = {"ddim": DDIMScheduler, "dpm": DPMSolverMultistepScheduler, "euler": EulerDiscreteScheduler,
           "lcm": LCMScheduler}[name]
    # The config may be another sampler's (switching from dpm keeps its solver keys): diffusers would
    # warn on every switch about the keys this one does not take, so they are left out of the build
    # and registered afterwards, as diffusers itself keeps them. They must travel on: DDIM's
    # clip_sample=False, which DPM-Solver does not take, would otherwise come back as DDIM's default
    # (True) after a dpm try-on, and clipping latents to [-1, 1] ruins every DDIM try-on after it.
    accepted = inspect.signature(cls.__init__).parameters
    taken = {key: value for key, value in config.items() if key in accepted or key.startswith("_")}
    if name == "dpm":
        taken.update(algorithm_type="dpmsolver++", solver_order=2)
    scheduler = cls.from_config(taken)
    scheduler.register_to_config(**{key: value for key, value in config.items() if key not in taken})
    return scheduler


def has_lcm(pipe) -> bool:
    """Whether ``pipe``'s U-Net holds the LCM adapter."""
    return LCM_ADAPTER in (getattr(pipe.unet, "peft_config", None) or {})


def enabled_adapters(unet) -> list[str]:
    """The LoRA adapters that take part in ``unet``'s forward pass now ([] with none, or all disabled)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for module in unet.modules():
        if isinstance(module, BaseTunerLayer):
            return [] if module.disable_adapters else list(module.active_adapters)
    return []


def use_sampler(pipe, name: str) -> Sampler:
    """Set ``pipe``'s scheduler to sampler ``name`` (from the pipeline's noise schedule) and switch
    the LCM adapter on for ``lcm``, off otherwise (another adapter, e.g. a fine-tuned garment's,
    is left as it is); ``lcm`` also encodes and decodes with the fast VAE ``load_lcm`` attached, if
    any. Returns the ``Sampler`` (its default steps and guidance).
    ``TryOnInputError`` for an unknown name, or ``lcm`` on a pipeline without the adapter or with
    another adapter switched on (the LCM LoRA was distilled from the base model alone)."""
    sampler = check_sampler(name)
    enabled = enabled_adapters(pipe.unet)
    if name == "lcm":
        if not has_lcm(pipe):
            raise TryOnInputError("the lcm sampler needs this model's LCM LoRA; distil one with `tryon-lab distill`")
        others = [adapter for adapter in enabled if adapter != LCM_ADAPTER]
        if others:
            raise TryOnInputError(f"the lcm sampler runs the base model's LCM LoRA; adapter {', '.join(others)} is "
                                  "switched on (a fine-tuned garment samples with ddim)")
    pipe.scheduler = make_scheduler(name, pipe.scheduler.config)
    if name == "lcm":
        pipe.unet.enable_adapters()
        pipe.unet.set_adapter(LCM_ADAPTER)
        _merge_lcm(pipe.unet)
    else:
        _unmerge_lcm(pipe.unet)
        if LCM_ADAPTER in enabled:
            pipe.unet.disable_adapters()
    return sampler


def fuse_lcm(pipe) -> None:
    """Switch ``pipe`` to the lcm sampler for good: its LCM LoRA merged into the U-Net's weights and
    the adapter layers removed, so the U-Net is a plain one, and its fast VAE (if any) made the
    pipeline's ``vae`` (what an export converts)."""
    use_sampler(pipe, "lcm")
    pipe.unet.unload_lora()  # keeps each layer's base weights, which hold the merged update
    pipe.unet._lcm_originals = pipe.unet._lcm_updates = None
    if getattr(pipe, "fast_vae", None) is not None:
        pipe.register_modules(vae=pipe.fast_vae)
        pipe.fast_vae = None


def _merge_lcm(unet) -> None:
    """Fold the LCM adapter into the weights it adapts, so a step costs what the base U-Net's costs
    (an unmerged LoRA adds its low-rank products to every adapted layer at every step). The original
    weights are kept: peft's unmerge subtracts the update again, which rounds, and the base model
    must come back bit for bit. Each layer's update (merged minus original) is kept after the first
    merge, so switching to lcm again is one addition per layer, not peft's low-rank products again
    (the app switches at every instant try-on; the update depends on the adapter alone)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    if getattr(unet, "_lcm_originals", None) is not None:
        return
    updates = getattr(unet, "_lcm_updates", None)
    originals, fresh = {}, {}
    for name, module in unet.named_modules():
        if isinstance(module, BaseTunerLayer) and LCM_ADAPTER in getattr(module, "lora_A", {}):
            weight = module.get_base_layer().weight
            originals[name] = weight.detach().clone()
            if updates is None:
                module.merge(adapter_names=[LCM_ADAPTER])
                fresh[name] = weight.detach() - originals[name]
            else:
                weight.data.add_(updates[name])
                module.merged_adapters.append(LCM_ADAPTER)  # peft's record that the layer holds the update
    unet._lcm_originals = originals
    if updates is None:
        unet._lcm_updates = fresh


def _unmerge_lcm(unet) -> None:
    """Undo ``_merge_lcm``: the kept weights restored exactly, and peft's record of the merge cleared."""
    originals = getattr(unet, "_lcm_originals", None)
    if originals is None:
        return
    for name, module in unet.named_modules():
        if name in originals:
            module.get_base_layer().weight.data.copy_(originals[name])
            if LCM_ADAPTER in module.merged_adapters:
                module.merged_adapters.remove(LCM_ADAPTER)
    unet._lcm_originals = None


def load_lcm(pipe, folder: str | Path) -> bool:
    """Attach the LCM LoRA of pipeline folder ``folder`` (``folder/lcm``) to ``pipe``'s U-Net,
    switched off (``use_sampler(pipe, "lcm")`` switches it on), and the folder's fast VAE when it has
    one; returns False when the folder has no LoRA. ``ConfigError`` when a file does not fit this model."""
    lora = Path(folder) / LCM_FOLDER
    if not (lora / LCM_FILE).is_file():
        return False
    load_fast_vae(pipe, folder)
    if not has_lcm(pipe):
        try:
            pipe.unet.load_lora_adapter(str(lora), weight_name=LCM_FILE, prefix="unet", adapter_name=LCM_ADAPTER,
                                        local_files_only=True)
            pipe.unet._lcm_updates = None  # a new adapter: its updates are computed at its first merge
        except (OSError, ValueError, RuntimeError) as err:
            raise ConfigError(f"{lora}: the LCM LoRA does not fit this model's U-Net ({err})") from None
        pipe.unet.disable_adapters()
    return True


def load_fast_vae(pipe, folder: str | Path) -> bool:
    """Attach pipeline folder ``folder``'s fast VAE (``folder/fast_vae``) to ``pipe`` as ``pipe.fast_vae``,
    in the pipeline's dtype and device; returns False when the folder has none. ``ConfigError`` when
    its latent space cannot be the base VAE's (other latent channels, scale factor or scaling)."""
    from tryon_lab.models.fast_autoencoder import FastAutoencoderKL

    path = Path(folder) / FAST_VAE_FOLDER
    if not (path / "config.json").is_file():
        return False
    if getattr(pipe, "fast_vae", None) is None:
        fast = FastAutoencoderKL.from_pretrained(path, torch_dtype=pipe.vae.dtype, local_files_only=True)
        base, own = pipe.vae.config, fast.config
        same = (own.latent_channels == base.latent_channels and own.scaling_factor == base.scaling_factor
                and len(own.block_out_channels) == len(base.block_out_channels))
        if not same:
            raise ConfigError(f"{path}: this fast VAE was not distilled from this model's VAE (its latent channels, "
                              "downsampling or scaling factor differ)")
        pipe.fast_vae = fast.to(pipe.device).eval()
    return True
