"""What the hint encoder's timestep costs per sampling step (the ``+t`` ablation's price).

Without the timestep the hint modulation is computed once per image and reused at every step;
with it (``hint_timestep = true``) the secondary encoder runs again at every step.
"""

from __future__ import annotations

import time

from tryon_lab.data.world import World
from tryon_lab.metrics.timing import measure_step_times, single_thread
from tryon_lab.pipelines.samplers import DTC_GUIDANCE


def hint_step_seconds(base, *, fusion: str = "film", steps: int = 4, repeats: int = 2,
                      guidance_scale: float = DTC_GUIDANCE) -> dict[str, float]:
    """Median CPU seconds per sampling step (one torch thread, so other load on the machine does not
    count) of a fresh DTC on the text inpainting pipeline ``base``, without and with the hint
    timestep: ``{"<fusion>": s, "<fusion>+t": s}``."""
    from tryon_lab.pipelines.dtc import DTCPipeline

    sample = World(seed=0, resolution=base.resolution).sample(0, split="test")
    pipes = {fusion: DTCPipeline.from_base(base, fusion),
             f"{fusion}+t": DTCPipeline.from_base(base, fusion, timestep_conditioning=True)}
    with single_thread():
        times = measure_step_times(pipes, sample.scene, sample.shape_mask, sample.reference, steps=steps,
                                   repeats=repeats, guidance_scale=guidance_scale, clock=time.process_time)
    return {name: t["step_s"] for name, t in times.items()}
