"""What the hint costs per sampling step (notebook 03): ``metrics.timing.measure_step_times`` on one
sample in CPU seconds on one thread, as table rows, against the course's bar."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from tryon_lab.data.world import WorldSample
from tryon_lab.metrics.timing import RECOMPUTE, measure_step_times, single_thread

TRYON_BAR = 1.2  # a DTC try-on may cost at most this many plain inpainting try-ons


def step_times(pipes: Mapping[str, Any], sample: WorldSample, *, steps: int, repeats: int,
               guidance_scale: float) -> dict[str, dict[str, float]]:
    """``measure_step_times`` of ``pipes`` on one sample, in CPU seconds on one thread."""
    with single_thread():
        return measure_step_times(dict(pipes), sample.scene, sample.shape_mask, sample.reference, steps=steps,
                                  repeats=repeats, guidance_scale=guidance_scale, clock=time.process_time)


def timing_rows(results: Mapping[str, Mapping[str, float]], reference: str) -> list[list]:
    """Rows (pipeline, ms per step, s per call, call / ``reference``'s call) of ``step_times``
    (names without ``measure_step_times``' ":recompute" marker)."""
    base = results[reference]["call_s"]
    return [[name.removesuffix(RECOMPUTE), round(1000 * r["step_s"], 1), round(r["call_s"], 3),
             round(r["call_s"] / base, 2)] for name, r in results.items()]


def meets_bar(results: Mapping[str, Mapping[str, float]], name: str, reference: str, bar: float = TRYON_BAR) -> bool:
    """Whether ``name``'s try-on costs at most ``bar`` times ``reference``'s."""
    return results[name]["call_s"] <= bar * results[reference]["call_s"]
