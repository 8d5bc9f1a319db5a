"""What a sampling step costs: time a pipeline's denoising steps and whole calls.

Any pipeline whose ``__call__`` takes ``callback_on_step_end`` is timed the same way: the callback
stamps the clock between steps. On a busy laptop wall time measures the neighbours too, so the
course and the benchmarks time CPU work on one thread (``single_thread`` with
``clock=time.process_time``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch

from tryon_lab.pipelines.samplers import DTC_GUIDANCE

RECOMPUTE = ":recompute"  # a DTC pipeline named "...:recompute" is timed with cache_hint=False


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread inside the block (restoring the count after), so CPU time measures
    the work itself."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def time_calls(call: Callable[[Callable], Any], *, repeats: int = 3,
               clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Time ``call(callback)`` (which must run a pipeline with ``callback_on_step_end=callback``)
    ``repeats`` times after one warm-up. Returns {"step_s": median seconds between step callbacks,
    "call_s": median seconds per call}."""
    step_times, call_times = [], []
    for attempt in range(repeats + 1):
        stamps: list[float] = []

        def stamp(pipe, i, t, state, stamps=stamps):
            stamps.append(clock())
            return state

        began = clock()
        call(stamp)
        if attempt:  # the first call warms up
            call_times.append(clock() - began)
            step_times += [b - a for a, b in zip(stamps, stamps[1:])]
    return {"step_s": statistics.median(step_times), "call_s": statistics.median(call_times)}


def measure_step_times(pipes: Mapping[str, Any], image: Any, mask: Any, reference: Any, *, steps: int = 10,
                       repeats: int = 3, guidance_scale: float = DTC_GUIDANCE,
                       clock: Callable[[], float] = time.perf_counter) -> dict[str, dict[str, float]]:
    """Time sampling with each pipeline of ``pipes`` ({name: DTC or text inpainting pipeline}).

    A DTC pipeline (one with a ``hint_encoder``) paints ``reference``; a text one, an empty prompt.
    A name ending in ``RECOMPUTE`` runs its DTC pipeline with ``cache_hint=False``. Returns
    {name: ``time_calls``' {"step_s", "call_s"}}. ``clock``: wall time by default;
    ``time.process_time`` (with one torch thread) measures the CPU work itself.
    """
    results = {}
    for name, pipe in pipes.items():
        kwargs: dict[str, Any] = {"num_inference_steps": steps, "guidance_scale": guidance_scale, "seed": 0}
        if hasattr(pipe, "hint_encoder"):
            args = (image, mask, reference)
            kwargs["cache_hint"] = not name.endswith(RECOMPUTE)
        else:
            args = (image, mask, "")
        pipe.set_progress_bar_config(disable=True)
        results[name] = time_calls(lambda stamp: pipe(*args, callback_on_step_end=stamp, **kwargs),  # noqa: B023 - called within this iteration
                                   repeats=repeats, clock=clock)
    return results
