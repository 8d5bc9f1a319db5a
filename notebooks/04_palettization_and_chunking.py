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
# - what a palette is, and how size trades against quality over 8, 6 and 4 bits, per tensor and
#   per group of output channels;
# - which layers are sensitive, and how a mixed-bit allocation meets a quality target with fewer bits;
# - how a palettized U-Net is cut into chunks of equal weight bytes that still compute the same thing;
# - the bundle a phone gets, and `tryon-lab verify`, which checks it on any machine.
#
# **How long it takes**
#
# | profile | model | this notebook |
# |---|---|---|
# | `smoke` | tiny, random weights | under a minute |
# | `quick` (default) | the shipped mini model (tiny if it is not trained yet) | a few minutes |
# | `full` | the shipped mini model, a longer golden try-on | a few minutes (CPU work) |

# %% [markdown]
# ## 1. The model and its phone components
#
# The profile's `export` section says which model to export and how much of the lesson to run.

# %%
from IPython.display import Markdown, display

from tryon_lab import current_profile
from tryon_lab.paths import build_dir
from tryon_lab.errors import ConfigError
from tryon_lab.pipelines.inspect import course_pipeline, model_note

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
# ## 2. Conversion, checked without a Mac
#
# First we record **golden data**: one try-on through the PyTorch components, keeping each
# component's first input and output (the U-Net's are those of the first denoising step). Then
# each component is traced and converted to an ML Program in fp16. Core ML itself only runs on
# Apple devices, so `convert_measured` runs the converted program with the MIL executor (each
# operation with a torch kernel, every fp16 result rounded to fp16) and keeps fp16 only if the
# output is within 35 dB of PyTorch; otherwise it converts in fp32.

# %%
from tryon_lab.export.coreml import convert_measured
from tryon_lab.export.golden import make_golden
from tryon_lab.export.palettize import weight_report

golden = make_golden(pipe, components, steps=settings["golden_steps"])
conversions = {name: convert_measured(c, *golden.components[name]) for name, c in components.items()}
print(format_table(
    [[name, c.precision, round(c.psnr, 1), round(c.seconds, 1), round(weight_report(c.model).bytes / 1024, 1)]
     for name, c in conversions.items()],
    ["component", "precision", "PSNR vs PyTorch (dB)", "convert (s)", "weights (KiB)"],
))

# %% [markdown]
# ## 3. What a palette is
#
# Palettizing a layer with *n* bits runs k-means on its weights with 2ⁿ clusters: the cluster
# centres become a table (the *palette*, or lookup table) and each weight is stored as the index
# of its centre. One palette per tensor must serve every output channel; a palette per group of
# output channels (`per_grouped_channel`, iOS 18) fits each group better for a few bytes more.
# We palettize the U-Net at every width and granularity of the profile, then look at its largest
# layer at the fewest bits: a handful of values stand in for every weight.

# %%
from tryon_lab.export.figures import palette_figure
from tryon_lab.export.mil import MILExecutor
from tryon_lab.export.palettize import PaletteSettings, palettize, palettized_weights

unet = conversions["Unet"].model
unet_inputs, unet_reference = golden.components["Unet"]
sweep = {(bits, granularity): palettize(unet, bits, PaletteSettings(granularity, settings["group_size"]))
         for bits in settings["bits"] for granularity in settings["granularities"]}
fewest = min(settings["bits"])
shown = palettized_weights(sweep[(fewest, settings["granularities"][0])])
largest = max(shown, key=lambda name: shown[name].numel())
palette_figure(MILExecutor(unet).weight(largest).numpy(), shown[largest].numpy(),
               f"{largest}, {fewest} bits, {settings['granularities'][0]}")

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
# ## 5. Sensitivity and a mixed-bit allocation
#
# Layers are not equally fragile. For each layer we palettize *only that layer* and measure the
# output PSNR: a low bar marks a sensitive layer. If the layers' errors are independent, their
# noise powers add, so a PSNR target becomes a noise budget; the allocation spends it where bits
# buy the most, lowering layers greedily, then checks the result on the real program (and
# tightens the target if the prediction was optimistic).

# %%
from tryon_lab.export.figures import sensitivity_figure
from tryon_lab.export.mixed_bits import layer_sensitivity, mixed_bit_palettize

palette = PaletteSettings(settings["granularities"][-1], settings["group_size"])
sensitivities = layer_sensitivity(unet, unet_inputs, settings["bits"], palette,
                                  palettized={bits: sweep[(bits, palette.granularity)] for bits in settings["bits"]})
mixed = mixed_bit_palettize(unet, unet_inputs, unet_reference["noise_pred"], target_psnr=settings["target_psnr"],
                            settings=palette, bits=settings["bits"], sensitivities=sensitivities)
report = weight_report(mixed.model)
print(f"mixed bits: {report.average_bits:.2f} bits per weight on average (all weights), "
      f"{mixed.psnr:.1f} dB (target {settings['target_psnr']} dB), "
      f"size {report.bytes / fp16_bytes:.2f} x fp16; elements per width: {report.histogram}")
sensitivity_figure(sensitivities, mixed.allocation, bits=min(settings["bits"]))

# %% [markdown]
# ## 6. Chunks
#
# A program is cut between two operations. Every tensor computed before the cut and needed after
# it (skip connections, the time embedding) becomes an output of the first chunk and an input of
# the next; a tensor needed two chunks later is passed *through* the middle one, so a phone can
# feed each chunk only its predecessor's outputs plus the original inputs. Cuts are placed so the
# (palettized) weight bytes are balanced — palettize first, then chunk, or the chunks stay fp16.

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
# bundle on Linux this way. Here we write one from the conversions above and verify it.

# %%
import json

from tryon_lab.export.bundle import ExportOptions, compress_component, write_bundle
from tryon_lab.export.verify import read_manifest, verify_bundle

options = ExportOptions(bits=settings["bundle_bits"], chunks=settings["chunks"], targets=tuple(settings["targets"]),
                        granularity=palette.granularity, group_size=palette.group_size, steps=settings["golden_steps"])
coreml = {name: compress_component(name, conversion, golden, options) for name, conversion in conversions.items()}
bundle = write_bundle(build_dir() / "bundle", pipe, components, golden, coreml, options, source=model)
print(json.dumps(read_manifest(bundle)["components"]["Unet"]["coreml"]["bits"], indent=1))
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
# The checker verifies that every weight uses its nearest entry and that your palette is at
# least as good as evenly spaced values.

# %%
import numpy as np


def kmeans_palette(weights: np.ndarray, nbits: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (lut, indices) with lut[indices] close to weights and at most 2**nbits lut entries."""
    # YOUR CODE HERE
    raise NotImplementedError


# %% tags=["raises-exception"]
from tryon_lab.checks.ch04 import check_kmeans_palette

check_kmeans_palette(kmeans_palette)

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
from tryon_lab.checks.ch04 import check_balanced_cuts

check_balanced_cuts(balanced_cuts)

# %% [markdown]
# Next, **05 · the Fitting Room widget** puts the model behind a mask-drawing app, and **06**
# exports and verifies the phone models you will hand in.
