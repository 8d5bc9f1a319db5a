"""Instant try-on in the phone loop: the ExecuTorch programs of the shipped model run the bundle's
denoising loop (``export.runner.run_tryon``) with 25 guided DDIM steps and with 4 LCM steps (the
LCM LoRA fused into the U-Net, one row per call: no guidance), side by side in one run.

Both loops run the same try-ons (test-split world samples 1..``SAMPLES`` as
``export.golden.tryon_inputs`` makes them, same noise): fp32 ``.pte`` programs of the text encoder,
VAE encoder and decoder (shared, unless the lcm bundle carries the model's fast VAE) and one U-Net
per sampler, on this CPU with the ExecuTorch runtime. Reported: wall seconds per try-on of each loop and their ratio (the
issue's bar: 4-step LCM at most 0.2x 25-step DDIM), and each loop's fidelity, the PSNR of its decoded
image against the same loop run by the PyTorch components (a mean with its 95% bootstrap
interval). Quality of LCM against DDIM is the samplers section's (PyTorch: the same numbers).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

MODELS = ("mini-sd-inpaint", "mini-sd-inpaint/lcm", "mini-sd-inpaint/fast_vae")  # the lcm loop exports the fast VAE when there is one
SAMPLES = 8
LOOPS = ("ddim", "lcm")
BAR_RATIO = 0.2


def _loop(folder: Path, sampler: str, scratch: Path, samples: int, shared: dict) -> dict:
    """Export ``folder``'s model for ``sampler`` (as ``tryon-lab export --sampler`` prepares it) to
    ExecuTorch programs in ``scratch`` (a program whose weights another loop already exported is
    taken from ``shared``, keyed by name and weights, and added to it otherwise); run the try-ons with
    them and with PyTorch. Returns {"seconds", "psnr" (arrays per try-on), "steps", "rows"}."""
    from tryon_lab.export.bundle import prepare_sampler
    from tryon_lab.export.compare import signal_psnr
    from tryon_lab.export.contract import guidance_rows, pipeline_components
    from tryon_lab.export.executorch import PteRunner, export_pte
    from tryon_lab.export.golden import make_golden, tryon_inputs
    from tryon_lab.export.runner import TorchRunner, run_tryon
    from tryon_lab.pipelines.loading import load_inpaint_pipeline
    from tryon_lab.pipelines.samplers import SAMPLERS
    from tryon_lab.training.common import module_fingerprint

    pipe = load_inpaint_pipeline(folder, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    prepare_sampler(pipe, folder, sampler)
    steps, guidance = SAMPLERS[sampler].steps, SAMPLERS[sampler].guidance_scale
    components = pipeline_components(pipe)
    golden = make_golden(pipe, components, steps=steps, guidance_scale=guidance)
    programs = {}
    for name, component in components.items():
        key = (name, module_fingerprint(component.module))
        if key not in shared:
            path = export_pte(component, golden.components[name][0], scratch / f"{sampler}-{name}.pte")
            shared[key] = PteRunner(path, component.spec)
        programs[name] = shared[key]
    torch_runners = {name: TorchRunner(component) for name, component in components.items()}
    rows = guidance_rows(pipe)

    def scheduler():
        return type(pipe.scheduler).from_config(pipe.scheduler.config)

    seconds, psnr = [], []
    for seed in range(1, samples + 1):
        inputs = tryon_inputs(pipe, steps, guidance, seed, split="test")[0]
        start = time.perf_counter()
        result = run_tryon(programs, inputs, scheduler(), rows=rows)
        seconds.append(time.perf_counter() - start)
        reference = run_tryon(torch_runners, inputs, scheduler(), rows=rows)
        psnr.append(signal_psnr(result["image"], reference["image"]))
    return {"seconds": np.array(seconds), "psnr": np.array(psnr), "steps": steps, "rows": rows}


def run(samples: int = SAMPLES) -> list[tuple[str, object, str]]:
    """Measure both loops on the shipped model; return (metric, value, note) rows."""
    from tryon_lab.metrics.stats import bootstrap
    from tryon_lab.paths import shipped_model
    from tryon_lab.pipelines.loading import SHIPPED_INPAINT
    from tryon_lab.pipelines.samplers import LCM_FILE, LCM_FOLDER

    folder = shipped_model(SHIPPED_INPAINT)
    if not (folder / LCM_FOLDER / LCM_FILE).is_file():
        return [("lcm phone loop", "not measured", "the shipped model has no LCM LoRA: run `tryon-lab distill` first")]
    with tempfile.TemporaryDirectory() as tmp:
        shared: dict = {}
        loops = {sampler: _loop(folder, sampler, Path(tmp), samples, shared) for sampler in LOOPS}
    note = f"{samples} try-ons (test-split world samples 1-{samples}), fp32 ExecuTorch programs, this CPU"
    rows: list[tuple[str, object, str]] = []
    for sampler, loop in loops.items():
        rows.append((f"{sampler}-{loop['steps']} phone loop: seconds per try-on", round(float(loop["seconds"].mean()), 4),
                     f"{note}; U-Net called {loop['steps']} times with {loop['rows']} row(s)"))
        rows.append((f"{sampler}-{loop['steps']} phone loop: PSNR against PyTorch", str(bootstrap(np.mean, loop["psnr"])),
                     "dB, the decoded image against the same loop run by the PyTorch components"))
    ratio = loops["lcm"]["seconds"].mean() / loops["ddim"]["seconds"].mean()
    paired = bootstrap(np.mean, loops["lcm"]["seconds"] / loops["ddim"]["seconds"])
    rows.append(("lcm-4 / ddim-25 phone-loop time", round(float(ratio), 3),
                 f"ratio of mean seconds; per try-on ratio {paired}; bar <= {BAR_RATIO}: "
                 f"{'met' if paired.hi <= BAR_RATIO else 'not met'}"))
    return rows
