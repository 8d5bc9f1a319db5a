"""The shipped models after `tryon-lab upgrade` (diffusers' U-Net channel order) against their own
try-ons before it.

``tests/data/shipped_tryons_before_channel_order.npz`` holds 4 text try-ons (mini-sd-inpaint) and
4 DTC try-ons, made at commit efb9b52 (the last with the old order) by its code and weights, with
their inputs (held-out samples of the world as it was then: scene, mask, caption or reference):
seed i for case i, 25 DDIM steps, default guidance, the model's raw square.
The same try-ons by today's code and upgraded weights must agree: the permutation is exact, and only
the summation order inside conv_in changes (fp32 rounding). The section is also written into both
model cards.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from tryon_lab.paths import REPO_ROOT, sha256_file, shipped_model
from tryon_lab.pipelines.loading import SHIPPED_DTC, SHIPPED_INPAINT, load_dtc_pipeline, load_inpaint_pipeline

MODELS = (SHIPPED_INPAINT, SHIPPED_DTC)

BEFORE = REPO_ROOT / "tests" / "data" / "shipped_tryons_before_channel_order.npz"
BEFORE_COMMIT = "efb9b52"
UPGRADED_WEIGHTS = {SHIPPED_INPAINT: "unet/diffusion_pytorch_model.safetensors",
                    SHIPPED_DTC: "hint_encoder/diffusion_pytorch_model.safetensors"}
# sha256 (first 16 hex digits) of the upgraded files; a model retrained since then paints something
# else by design, and the comparison no longer applies to it.
UPGRADED_SHA = {SHIPPED_INPAINT: "ef2cfd1f522fa3a4", SHIPPED_DTC: "8da2a237efb7751b"}
KEYS = {SHIPPED_INPAINT: "inpaint", SHIPPED_DTC: "dtc"}


def still_upgraded() -> list[str]:
    """The shipped models whose upgraded weights are still the shipped ones (not retrained since)."""
    return [model for model in MODELS
            if sha256_file(shipped_model(model) / UPGRADED_WEIGHTS[model]).startswith(UPGRADED_SHA[model])]


def tryons_now(count: int | None = None, models: tuple[str, ...] = MODELS) -> dict[str, np.ndarray]:
    """Today's raw try-ons (uint8 HxWx3) of the recorded cases by ``models``, keyed as in ``BEFORE``
    (the first ``count`` per model, or all)."""
    recorded = np.load(BEFORE)
    cases = sorted(int(key.split("_")[1]) for key in recorded.files if re.fullmatch(r"inpaint_\d+", key))[:count]
    pipes = {SHIPPED_INPAINT: load_inpaint_pipeline, SHIPPED_DTC: load_dtc_pipeline}
    now = {}
    for model in models:
        pipe, key = pipes[model](device="cpu"), KEYS[model]
        pipe.set_progress_bar_config(disable=True)
        for i in cases:
            scene, mask = recorded[f"{key}_{i}_scene"], recorded[f"{key}_{i}_mask"]
            condition = str(recorded[f"{key}_{i}_caption"]) if key == "inpaint" else recorded[f"{key}_{i}_reference"]
            now[f"{key}_{i}"] = np.asarray(pipe(scene, mask, condition, seed=i).raw[0])
    return now


def differences(now: dict[str, np.ndarray]) -> dict[str, dict[str, int]]:
    """Per model ("inpaint", "dtc"): the largest difference in 8-bit levels from the recorded try-ons,
    how many values differ, and how many were compared."""
    recorded = np.load(BEFORE)
    out: dict[str, dict[str, int]] = {}
    for key, image in now.items():
        diff = np.abs(image.astype(np.int16) - recorded[key].astype(np.int16))
        row = out.setdefault(key.split("_")[0], {"max_levels": 0, "values_differing": 0, "values": 0, "images": 0})
        row["max_levels"] = max(row["max_levels"], int(diff.max()))
        row["values_differing"] += int((diff > 0).sum())
        row["values"] += diff.size
        row["images"] += 1
    return out


def run() -> list[tuple]:
    """Rows for RESULTS.md, for the models not retrained since the upgrade; also writes the "Channel
    order" section of their model cards."""
    from benchmarks.__main__ import update_results

    models = tuple(still_upgraded())
    found = differences(tryons_now(models=models))
    rows = []
    for model in models:
        row = found[KEYS[model]]
        weights = shipped_model(model) / UPGRADED_WEIGHTS[model]
        note = (f"{row['images']} try-ons, 25 DDIM steps, vs commit {BEFORE_COMMIT}; "
                f"{UPGRADED_WEIGHTS[model].split('/')[0]} sha256 {sha256_file(weights)[:16]}")
        rows += [(f"{model}: largest difference (8-bit levels)", row["max_levels"], note),
                 (f"{model}: values that differ", f"{row['values_differing']} of {row['values']}",
                  "fp32 summation order inside conv_in; the permutation itself is exact")]
    for model in models:
        card = Path(shipped_model(model)) / "MODEL_CARD.md"
        section = ("## Channel order\n\nUpgraded to diffusers' U-Net channel order [noisy latent, mask, masked-image "
                   "latent] by `tryon-lab upgrade data/models/" + model + "` (an exact permutation of conv_in's "
                   "input channels, no retraining). Try-ons against the same try-ons before the upgrade "
                   "(`python -m benchmarks channel-order`):\n\n| metric | value | note |\n|---|---|---|\n"
                   + "\n".join(f"| {m} | {v} | {n} |" for m, v, n in rows) + "\n")
        update_results("Channel order", section, card)
    return rows
