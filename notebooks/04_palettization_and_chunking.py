# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Palettization and chunking: shrinking the model for a phone
#
# A phone keeps the whole try-on model in memory and runs the U-Net once per denoising step. The
# *Mobile Fitting Room* recipe makes that possible the way Apple ships Stable Diffusion: convert
# each network to a Core ML *ML Program* computing in fp16, **palettize** its weights (store a small
# table of values and, per weight, a few-bit index into it), and cut the U-Net into **chunks** the
# Neural Engine accepts. This notebook does each step on a real export and measures what it costs.
#
# **What you will learn**
# - the four phone components and the contract (names, shapes, dtypes) a phone app relies on;
# - how fp16 conversion is checked without a Mac: `tryon_lab.export.mil` runs the program's
#   operations on the CPU, and we compare with PyTorch by PSNR (Apple's bar: 35 dB);
# - the precision ladder fp16 -> fp16 with fp32 variance -> fp32, and the GroupNorm overflow that
#   puts the VAE decoder on its middle rung, with numbers;
# - what a palette is, and how size trades against quality over 8, 6 and 4 bits, per tensor and
#   per group of output channels; the text encoder palettized too, as Apple's pipeline does;
# - which layers are sensitive, and how a mixed-bit allocation over widths {2, 3, 4, 6, 8}, calibrated on
#   one try-on and reported on another, meets a quality target with fewer bits;
# - why the paper chunks the U-Net (SD-1.5's measured sizes against the Neural Engine's 1 GiB), and how a
#   palettized U-Net is cut into chunks of equal weight bytes that still compute the same thing;
# - the bundle a phone gets, and `tryon-lab verify`, which checks it on any machine.
#
# **How long it takes**
#
# | profile | model |
# |---|---|
# | `smoke` | tiny, random weights |
# | `quick` (default) | the shipped mini model (tiny if it is not trained yet) |
# | `full` | the shipped mini model, a longer golden try-on (CPU work) |
#
# The first code cell reads this notebook's measured times from the recorded course run.

# %% [markdown]
# ## 1. The model and its phone components
#
# The profile's `export` section says which model to export and how much of the lesson to run.

# %%
from IPython.display import Markdown, display

from tryon_lab import current_profile
from tryon_lab.course.inpainting.models import course_pipeline, model_note
from tryon_lab.course.runner import times_note
from tryon_lab.errors import ConfigError
from tryon_lab.paths import build_dir

display(Markdown(times_note("04")))
settings = current_profile()["export"]
try:
    model = settings["model"]
    pipe = course_pipeline(model, build_dir())
except ConfigError:  # the shipped model is not trained yet: use the fallback the profile names
    model = settings["fallback"]
    pipe = course_pipeline(model, build_dir())
display(Markdown(model_note(model, pipe)))

# %% [markdown]
# A phone app does not run the pipeline; it calls four networks by name and does the rest (the
# tokenizer, the scheduler, the mask) itself. Their inputs and outputs are fixed by a **contract**:
# a phone program has static shapes, so every shape below is part of the export.

# %%
from tryon_lab.export.contract import pipeline_components
from tryon_lab.tables import format_table

components = pipeline_components(pipe)
rows = [[name, "in" if t in c.spec.inputs else "out", t.name, "x".join(map(str, t.shape)), t.dtype]
        for name, c in components.items() for t in c.spec.inputs + c.spec.outputs]
print(format_table(rows, ["component", "", "tensor", "shape", "dtype"]))

# %% [markdown]
# ## 2. Conversion, checked without a Mac: the precision ladder
#
# First we record **golden data**: one try-on through the PyTorch components, keeping each
# component's first input and output (the U-Net's are those of the first denoising step). Then
# each component is traced and converted to an ML Program. Core ML itself only runs on Apple
# devices, so `convert_measured` runs the converted program with the MIL executor (each operation
# with a torch kernel, every fp16 result rounded to fp16) and climbs a ladder of precisions until
# the output is within 35 dB of PyTorch: **fp16**, then **fp16 with every normalisation's variance
# in fp32**, then **fp32**. The table shows each rung tried.

# %%
from tryon_lab.export.coreml import PRECISIONS, convert_measured
from tryon_lab.export.golden import make_golden
from tryon_lab.export.palettize import weight_report

golden = make_golden(pipe, components, steps=settings["golden_steps"])
conversions = {name: convert_measured(c, *golden.components[name]) for name, c in components.items()}
print(format_table(
    [[name, *(round(c.tried[p], 1) if p in c.tried else "-" for p in PRECISIONS), c.precision, round(c.seconds, 1),
      round(weight_report(c.model).bytes / 1024, 1)]
     for name, c in conversions.items()],
    ["component", *(f"{p} (dB)" for p in PRECISIONS), "kept", "convert (s)", "weights (KiB)"],
))

# %% [markdown]
# Why a middle rung? A GroupNorm is lowered to `square -> reduce_mean -> add -> sqrt`: the program
# squares each activation's distance from its group's mean. fp16 holds numbers up to 65504, so an
# activation 256 away from its mean squares to infinity, and the whole group's output with it, while
# everything else in the network is fine in fp16. Keeping just that chain in fp32 costs almost nothing.
# Here is what the VAE decoder's GroupNorms meet on the golden latent, largest first:

# %%
import torch

from tryon_lab.course.fp16 import FP16_MAX, groupnorm_peaks

decoder_input = golden.components["VAEDecoder"][0]["latent"]
peaks = groupnorm_peaks(components["VAEDecoder"].module, torch.from_numpy(decoder_input))
print(format_table([[p.name, f"{p.max_square:.4g}", f"{p.max_variance:.4g}", "inf in fp16" if p.overflows_fp16 else "fits"]
                    for p in peaks[:6]],
                   ["GroupNorm", "largest (x - mean)^2", "largest group variance", f"fp16 (max {FP16_MAX:.0f})"]))
overflowing = sum(p.overflows_fp16 for p in peaks)
display(Markdown(
    f"{overflowing} of the decoder's {len(peaks)} GroupNorms meet a squared distance above fp16's maximum "
    f"on this input; the converter kept the decoder at **{conversions['VAEDecoder'].precision}** "
    f"({conversions['VAEDecoder'].psnr:.1f} dB). With random weights (the smoke profile) nothing may overflow."))

# %% [markdown]
# ## 3. What a palette is
#
# Palettizing a layer with *n* bits runs k-means on its weights with 2ⁿ clusters: the cluster
# centres become a table (the *palette*, or lookup table) and each weight is stored as the index
# of its centre. One palette per tensor must serve every output channel; a palette per group of
# output channels (`per_grouped_channel`, iOS 18) fits each group better for a few bytes more.
# We palettize the U-Net with grouped palettes at every width of the profile and, at the fewest
# bits, also per tensor (k-means with 2ⁿ centres costs time in proportion to 2ⁿ: the 8-bit palettes
# are the slow ones, so the per-tensor comparison is made where it matters most). Then we look at
# the U-Net's largest layer at the fewest bits: a handful of values stand in for every weight.

# %%
from tryon_lab.export.figures import palette_figure
from tryon_lab.export.mil import MILExecutor
from tryon_lab.export.palettize import PaletteSettings, palettize, palettized_weights

unet = conversions["Unet"].model
unet_inputs, unet_reference = golden.components["Unet"]
palette = PaletteSettings("per_grouped_channel", settings["group_size"])
fewest = min(settings["bits"])
workers = settings["kmeans_workers"]
sweep = {(bits, palette.granularity): palettize(unet, bits, palette, workers=workers) for bits in settings["bits"]}
if "per_tensor" in settings["granularities"]:
    sweep[(fewest, "per_tensor")] = palettize(unet, fewest, PaletteSettings("per_tensor"))
shown = palettized_weights(sweep[(fewest, palette.granularity)])
largest = max(shown, key=lambda name: shown[name].numel())
palette_figure(MILExecutor(unet).weight(largest).numpy(), shown[largest].numpy(),
               f"{largest}, {fewest} bits, {palette.granularity}")

# %% [markdown]
# ## 4. Size against quality
#
# Fewer bits mean a smaller package and a larger error. We measure each palettized U-Net's output
# against PyTorch, beside its stored weight bytes.

# %%
from tryon_lab.export.coreml import program_psnr
from tryon_lab.export.figures import size_quality_figure

fp16_bytes = weight_report(unet).bytes
points = [{"label": "fp16", "size_ratio": 1.0, "psnr": round(conversions["Unet"].psnr, 1)}]
for (bits, granularity), compressed in sweep.items():
    points.append({"label": f"{bits}-bit {granularity.removeprefix('per_').removesuffix('_channel')}",
                   "size_ratio": round(weight_report(compressed).bytes / fp16_bytes, 3),
                   "psnr": round(program_psnr(compressed, unet_inputs, unet_reference), 1)})
print(format_table([[p["label"], p["size_ratio"], p["psnr"]] for p in points], ["U-Net", "size / fp16", "PSNR (dB)"]))
size_quality_figure(points)

# %% [markdown]
# Apple's pipeline palettizes the **text encoder** too: it runs once per try-on, but its weights sit
# in memory beside the U-Net's. The same 6-bit grouped palettes:

# %%
text = conversions["TextEncoder"].model
text6 = palettize(text, 6, palette, workers=workers)
print(format_table([["TextEncoder", round(weight_report(text).bytes / 1024, 1), round(weight_report(text6).bytes / 1024, 1),
                     round(weight_report(text6).bytes / weight_report(text).bytes, 3),
                     round(program_psnr(text6, *golden.components["TextEncoder"]), 1)]],
                   ["component", "fp16 KiB", "6-bit KiB", "size / fp16", "PSNR vs PyTorch (dB)"]))

# %% [markdown]
# ## 5. Sensitivity and a mixed-bit allocation
#
# Layers are not equally fragile. Widths {2, 3, 4, 6, 8} are on offer. For each layer we palettize
# *only that layer* and measure how much of its error reaches the output (its *gain*, measured once
# at 4 bits); its error at the other widths comes from its own k-means, so the predicted output PSNR
# per layer and width costs one U-Net run per layer. If the layers' errors are independent, their
# noise powers add, so a PSNR target becomes a noise budget; the allocation spends it where bits buy
# the most, lowering layers greedily (exercise 3 below), then checks the result on the real program
# (and tightens the target if the prediction was optimistic).
#
# **Calibrate on one set of inputs, report on another.** An allocation tuned on the inputs it is
# scored on flatters itself. The allocation is made on the U-Net's inputs from *another* try-on
# (another person, garment and noise: world sample `calibration_seed`), and reported on the golden
# inputs used everywhere else in this notebook.

# %%
from collections import Counter

from tryon_lab.export.mixed_bits import (
    allocation_figure,
    allocation_table,
    layer_sensitivity,
    mixed_bit_palettize,
)

calibration = make_golden(pipe, components, steps=settings["golden_steps"], seed=settings["calibration_seed"])
calibration_inputs, calibration_reference = calibration.components["Unet"]
sensitivities = layer_sensitivity(unet, calibration_inputs, settings["mixed_bits"], palette)
mixed = mixed_bit_palettize(unet, calibration_inputs, calibration_reference["noise_pred"],
                            target_psnr=settings["target_psnr"], settings=palette, bits=settings["mixed_bits"],
                            sensitivities=sensitivities)
report = weight_report(mixed.model)
reported_psnr = program_psnr(mixed.model, unet_inputs, unet_reference)
widths = Counter(mixed.allocation.values())
display(Markdown(
    f"Mixed bits: **{report.average_bits:.2f} bits per weight** on average (all weights), size "
    f"{report.bytes / fp16_bytes:.3f} x fp16; **{len(widths)} different widths** over {len(mixed.allocation)} "
    f"layers (layers per width: {dict(sorted(widths.items(), reverse=True))}; elements per width: {report.histogram}). "
    f"PSNR {mixed.psnr:.1f} dB on the calibration try-on (target {settings['target_psnr']} dB), "
    f"**{reported_psnr:.1f} dB on the golden try-on** it was not tuned on."))
allocation_figure(sensitivities, mixed.allocation)

# %% [markdown]
# The widths, layer by layer (the predicted PSNR is for that layer alone at its width):

# %%
print(format_table(allocation_table(sensitivities, mixed.allocation),
                   ["layer", "elements", "bits", "PSNR alone (dB)"]))

# %% [markdown]
# ## 6. Why chunk, and chunks
#
# The paper cuts Stable Diffusion's U-Net into chunks because of the Neural Engine's limit of about
# 1 GiB per model. Our mini U-Net is far below it; the SD-1.5-size export benchmark
# (`python -m benchmarks export-sd15`) measured the real thing. The numbers below are read from its
# recorded results, not typed:

# %%
import math

from tryon_lab.course.runner import recorded

GIB = 2**30
sd15 = "export-sd15"
fp16_package = recorded(sd15, "U-Net fp16 package (bytes)")
six_bit = recorded(sd15, "U-Net 6-bit packages, 2 chunks (bytes)")
chunk_sizes = [recorded(sd15, f"chunk {i} package (bytes)") for i in (1, 2)]
print(format_table([
    ["fp16, one package", round(fp16_package / GIB, 3), "over" if fp16_package > GIB else "under", math.ceil(fp16_package / GIB)],
    ["6-bit, one package", round(six_bit / GIB, 3), "over" if six_bit > GIB else "under", math.ceil(six_bit / GIB)],
    *[[f"6-bit, chunk {i}", round(size / GIB, 3), "over" if size > GIB else "under", "-"] for i, size in enumerate(chunk_sizes, 1)],
], ["SD-1.5 U-Net", "GiB", "vs 1 GiB", "packages needed at least"]))
display(Markdown(
    f"At fp16 the SD-1.5 U-Net is {fp16_package / GIB:.2f} GiB: it cannot load as one Neural Engine model, "
    f"and needs at least {math.ceil(fp16_package / GIB)} pieces. Palettized to 6 bits it is {six_bit / GIB:.2f} GiB, "
    f"{six_bit / fp16_package:.2f} of its fp16 size; cut in two, each chunk is {max(chunk_sizes) / GIB:.2f} GiB, "
    "well inside the limit, and a phone can load and run one chunk at a time."))

# %% [markdown]
# A program is cut between two operations. Every tensor computed before the cut and needed after
# it (skip connections, the time embedding) becomes an output of the first chunk and an input of
# the next; a tensor needed two chunks later is passed *through* the middle one, so a phone can
# feed each chunk only its predecessor's outputs plus the original inputs. Cuts are placed so the
# (palettized) weight bytes are balanced — palettize first, then chunk, or the chunks stay fp16.
# We chunk the mixed-bit U-Net.

# %%
from tryon_lab.export.chunking import check_chunks, chunk_balance, chunk_program
from tryon_lab.export.figures import chunk_figure

chunks = chunk_program(mixed.model, settings["chunks"])
for index, chunk in enumerate(chunks, start=1):
    print(f"chunk {index}: {len(chunk.inputs)} inputs, {len(chunk.outputs)} outputs, {chunk.weight_bytes} weight bytes")
print(f"largest deviation from an equal share: {chunk_balance(chunks):.1%}; "
      f"chained chunks vs the whole program, max |difference|: {check_chunks(mixed.model, chunks, unet_inputs)}")
chunk_figure([f"chunk {i}" for i in range(1, len(chunks) + 1)], [c.weight_bytes for c in chunks])

# %% [markdown]
# ## 7. The bundle, and verifying it anywhere
#
# `tryon-lab export` writes everything a phone needs into one folder: the Core ML packages, the
# ExecuTorch programs (Android and iOS CPUs), the tokenizer files, golden inputs and outputs,
# and `manifest.json`, which records the contract, the bits read back from each program, sizes,
# chunk interfaces and a SHA-256 of every file. `tryon-lab verify` re-runs every component and a
# whole try-on on the golden inputs and compares them with PyTorch; an instructor can grade a
# bundle on Linux this way. Here we write one from what this notebook computed (the mixed-bit U-Net
# in its chunks, the other components as converted) and verify it.

# %%
import json

from tryon_lab.export.bundle import ExportOptions, compress_component, mixed_unet_component, write_bundle
from tryon_lab.export.verify import verify_bundle

options = ExportOptions(bits="mixed", target_psnr=settings["target_psnr"], chunks=settings["chunks"],
                        targets=tuple(settings["targets"]), granularity=palette.granularity,
                        group_size=palette.group_size, steps=settings["golden_steps"])
coreml = {name: (mixed_unet_component(conversion, mixed, chunks, unet_inputs, unet_reference, palette,
                                      settings["target_psnr"]) if name == "Unet"
                 else compress_component(name, conversion, golden, options))
          for name, conversion in conversions.items()}
bundle = write_bundle(build_dir() / "bundle", pipe, components, golden, coreml, options, source=model)
unet_bits = json.loads((bundle / "manifest.json").read_text())["components"]["Unet"]["coreml"]["bits"]
print(json.dumps(unet_bits, indent=1))
print(f"widths in the bundle's U-Net: {sorted(int(b) for b in unet_bits['histogram'])}")
print(verify_bundle(bundle).table())

# %% [markdown]
# ## 8. Exercises
#
# **Exercise 1: a k-means palette.** Write `kmeans_palette(weights, nbits)` returning
# `(lut, indices)`: a 1-D float array of at most `2**nbits` values and an integer array shaped
# like `weights`, such that `lut[indices]` approximates `weights`. Raise `ValueError` if `nbits`
# is below 1. Start the centres evenly spaced between the smallest and largest weight, then
# alternate: assign each weight to its nearest centre, move each centre to the mean of its
# weights (keep a centre that lost all its weights where it is). Finish with an assignment step.
# The exercise verifies that every weight uses its nearest entry and that your palette is at
# least as good as evenly spaced values.

# %%
import numpy as np


def kmeans_palette(weights: np.ndarray, nbits: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (lut, indices) with lut[indices] close to weights and at most 2**nbits lut entries."""
    # YOUR CODE HERE
    raise NotImplementedError


# %% tags=["raises-exception"]
from tryon_lab.course.exercises.ch04 import exercise_kmeans_palette

exercise_kmeans_palette(kmeans_palette)

# %% [markdown]
# **Exercise 2: balanced cuts.** Write `balanced_cuts(sizes, n_chunks)`: given the weight bytes of
# each layer in program order, return the `n_chunks - 1` indices of the layers after which to cut.
# Cut `k` (counting from 1) goes after the layer where the running total of bytes comes closest to
# `k / n_chunks` of the total, choosing among the layers that leave every chunk at least one layer:
# after the previous cut, and before the last `n_chunks - k` layers. Raise `ValueError` when there
# are more chunks than layers.
# `np.cumsum` gives the running totals.

# %%
def balanced_cuts(sizes: list[int], n_chunks: int) -> list[int]:
    """Return the layer indices after which to cut, so that chunks hold about equal bytes."""
    # YOUR CODE HERE
    raise NotImplementedError


# %% tags=["raises-exception"]
from tryon_lab.course.exercises.ch04 import exercise_balanced_cuts

exercise_balanced_cuts(balanced_cuts)

# %% [markdown]
# **Exercise 3: the greedy allocator.** Write `greedy_allocation(layers, budget)`, the heart of
# section 5. `layers` maps each layer's name to `{"elements": n, "noise": {bits: noise power}}`: the
# output noise power palettizing that layer *alone* at that width adds (fp16, 16 bits, adds none).
# Noise powers add, so the summed noise of the chosen widths must stay within `budget`. Every layer
# starts at 16 bits. Then repeat: for every layer, the move is to its next narrower width; its cost
# is the noise it adds per bit saved, counted over the layer's elements:
# `(noise[new] - noise[current]) / ((current - new) * elements)`. Try the moves from the cheapest
# (ties: the layer whose name sorts first) and make the first one that keeps the summed noise
# within the budget; stop when no move fits. Return `{name: bits}`.

# %%
def greedy_allocation(layers: dict, budget: float) -> dict[str, int]:
    """Return {layer name: bits}: the greedy mixed-bit allocation within a noise budget."""
    # YOUR CODE HERE
    raise NotImplementedError


# %% tags=["raises-exception"]
from tryon_lab.course.exercises.ch04 import exercise_greedy_allocation

exercise_greedy_allocation(greedy_allocation)

# %% [markdown]
# Next, **05 · the Fitting Room widget** puts the model behind a mask-drawing app, and **06**
# exports and verifies the phone models you will hand in.
