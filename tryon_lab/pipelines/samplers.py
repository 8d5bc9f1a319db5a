"""Samplers of a try-on pipeline: the scheduler that walks the noise to an image, and its defaults.

Every sampler is a diffusers scheduler made ``from_config`` of the model's own noise schedule, so
any of them runs any trained pipeline. ``lcm`` needs the model's LCM LoRA (``tryon-lab distill``):
``training.distill.load_lcm`` attaches it; with the adapter active, 4 steps without classifier-free guidance (the guidance is distilled into
the adapter) replace the 25 guided DDIM steps; without it, the adapter is switched off and the
pipeline is exactly the base model again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tryon_lab.errors import TryOnInputError

LCM_ADAPTER = "lcm"


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
    "ddim": Sampler("ddim", 25, 4.0, "DDIM, deterministic (the models' reference sampler)", "DDIM"),
    "dpm": Sampler("dpm", 20, 4.0, "DPM-Solver++ (2nd order multistep)", "DPM-Solver++"),
    "euler": Sampler("euler", 25, 4.0, "Euler (discrete)", "Euler"),
    "lcm": Sampler("lcm", 4, 1.0, "latent consistency (needs the model's LCM LoRA; guidance distilled in)",
                   "LCM"),
}


def check_sampler(name: str) -> Sampler:
    """The ``Sampler`` called ``name``; ``TryOnInputError`` naming the choices otherwise."""
    if name not in SAMPLERS:
        raise TryOnInputError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    return SAMPLERS[name]


def make_scheduler(name: str, config: Any):
    """The diffusers scheduler of sampler ``name`` built from a scheduler ``config``."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler, LCMScheduler

    check_sampler(name)
    if name == "dpm":
        return DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++", solver_order=2)
    return {"ddim": DDIMScheduler, "euler": EulerDiscreteScheduler, "lcm": LCMScheduler}[name].from_config(config)


def has_lcm(pipe) -> bool:
    """Whether ``pipe``'s U-Net holds the LCM adapter."""
    return LCM_ADAPTER in (getattr(pipe.unet, "peft_config", None) or {})


def use_sampler(pipe, name: str) -> Sampler:
    """Set ``pipe``'s scheduler to sampler ``name`` (from the pipeline's noise schedule) and switch
    the LCM adapter on for ``lcm``, off otherwise. Returns the ``Sampler`` (its default steps and
    guidance). ``TryOnInputError`` for an unknown name, or ``lcm`` on a pipeline without the adapter."""
    sampler = check_sampler(name)
    if name == "lcm" and not has_lcm(pipe):
        raise TryOnInputError("the lcm sampler needs this model's LCM LoRA; distil one with `tryon-lab distill`")
    pipe.scheduler = make_scheduler(name, pipe.scheduler.config)
    if has_lcm(pipe):
        if name == "lcm":
            pipe.unet.enable_adapters()
            pipe.unet.set_adapter(LCM_ADAPTER)
        else:
            pipe.unet.disable_adapters()
    return sampler
