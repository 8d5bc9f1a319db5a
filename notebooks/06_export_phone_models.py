# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Exporting and grading your phone models
#
# The finale. Two models leave the course as phone bundles: **your garment model** from notebook
# 02 (DreamBooth, Mobile Fitting Room) and the **Diffuse-to-Choose model** from notebook 03 (any
# product from one picture). Each bundle holds Core ML packages (palettized, the U-Net in
# chunks), ExecuTorch programs, golden inputs and outputs, and a manifest. Then you check them the
# way your instructor will: `tryon-lab verify`, and `tryon-lab grade`, on a Linux machine with no
# Mac.
#
# **What you will learn**
# - what goes into a bundle, file by file, and how large each part is;
# - how a text model and a reference-image model differ on the phone (which components, which
#   inputs);
# - how an export is verified without a Mac: every component, the chained chunks and a whole
#   try-on, against PyTorch;
# - a try-on produced by the exported programs (ExecuTorch, and Core ML through the Linux MIL
#   executor) beside PyTorch's;
# - what the grader checks with the course-recipe rubric, how it treats a submission it cannot trust,
#   and how to read a failing report and name the fix.
#
# **How long it takes**
#
# | profile | models |
# |---|---|
# | `smoke` | tiny random models, Core ML only |
# | `quick` (default) | your garment model (or the shipped base) and the shipped DTC: two exports with Core ML and ExecuTorch, then verification |
# | `full` | the same, more golden steps (CPU work) |
#
# The first code cell reads this notebook's measured times from the recorded course run.

# %% [markdown]
# ## 1. The two models
#
# The profile's `finale` section names them. Your garment model is the full fine-tune notebook 02
# saved in `build/garments/full`; if you have not run notebook 02, the shipped base model stands
# in for it (the export is the same). The DTC model is the shipped `data/models/dtc`.

# %%
from IPython.display import Markdown, display

from tryon_lab import current_profile
from tryon_lab.course.runner import times_note
from tryon_lab.export.finale import finale_models

display(Markdown(times_note("06")))
settings = current_profile()["finale"]
models = finale_models(settings)
for name, (path, note) in models.items():
    display(Markdown(f"**{name}**: `{path}`. {note}"))

# %% [markdown]
# ## 2. Export
#
# `export_bundle` is what `tryon-lab export` runs: it loads the model, records golden data (one
# try-on through the PyTorch components), converts each component to a Core ML ML Program
# (fp16 where measured safe), palettizes the U-Net and cuts it into chunks, lowers each component
# to an ExecuTorch program, and writes everything to a temporary folder that is renamed into
# place only when it is complete.

# %%
from tryon_lab.export.bundle import ExportOptions, export_bundle
from tryon_lab.paths import build_dir

options = ExportOptions(bits=settings["bits"], chunks=settings["chunks"], targets=tuple(settings["targets"]),
                        steps=settings["golden_steps"])
bundles = {}
for name, (path, _) in models.items():
    print(f"exporting the {name} ...")
    bundles[name] = export_bundle(path, build_dir("finale") / name.replace(" ", "-"), options, log=print)

# %% [markdown]
# ## 3. What is inside
#
# The tree below lists every file with its size. A text model's bundle carries a `TextEncoder`
# and the tokenizer's files; the DTC bundle carries an `ImageEncoder` (the reference's tokens) and
# a `HintEncoder` (the FiLM maps the U-Net's skips receive) instead, and its U-Net takes those maps
# as extra inputs. The manifest records each component's inputs and outputs: the contract a phone
# app is written against.

# %%
from tryon_lab.export.finale import bundle_tree, contract_table

for bundle in bundles.values():
    print(bundle_tree(bundle))
    print(contract_table(bundle))
    print()

# %% [markdown]
# ## 4. Verify
#
# `verify_bundle` (and `tryon-lab verify`) first checks every file's sha256 against the manifest,
# then runs each component on its golden input with every target the bundle has and compares the
# output with PyTorch's: PSNR for Core ML (35 dB for plain fp16 conversion, Apple's bar; 30 dB
# for a palettized U-Net), relative error for ExecuTorch's fp32 programs. The last rows run a
# whole try-on through the phone's denoising loop (`tryon_lab.export.runner.run_tryon`) and
# report the PSNR of the generated region against PyTorch's golden try-on.

# %%
from tryon_lab.export.verify import verify_bundle

reports = {name: verify_bundle(bundle) for name, bundle in bundles.items()}
for name, report in reports.items():
    print(f"--- {name}")
    print(report.table())

# %% [markdown]
# ## 5. The exported models at work
#
# The golden try-on again, once per runtime: PyTorch (what the bundle must reproduce), the Core
# ML programs run by the MIL executor, and the ExecuTorch programs run by the ExecuTorch runtime.
# Same photo, mask, noise, scheduler and steps; the title gives the PSNR of the generated region
# against PyTorch's.

# %%
from tryon_lab.export.finale import tryon_figure

for name, bundle in bundles.items():
    display(Markdown(f"**{name}**"))
    display(tryon_figure(bundle))

# %% [markdown]
# ## 6. Grade yourself
#
# Your instructor runs `tryon-lab grade` on every student's bundle (a folder or a zip). The grader
# never imports, unpickles or runs anything from a submission: it reads the manifest and the
# programs as data, refuses links and paths that leave the submission, caps sizes (zip bombs),
# and runs the numeric checks through the same verifier you just used. Each named check is worth
# points set by a rubric (`tryon_lab/configs/rubric.toml`), and the course's rubric holds the
# **course recipe**: the bars printed below are read from it. Here your garment bundle is graded
# with the course-recipe rubric, and the DTC bundle is graded again after one of its weight files is
# tampered with, to see what a fault looks like. You grade without your instructor's reference
# bundle, so the checks that could only compare your bundle with itself (its numbers against its
# own golden data, the try-on, and a DTC bundle's contract) are "not verified (no reference)" and
# earn no points: expect less than full marks here, and a warning at the top of the report.

# %%
from tryon_lab.export.finale import tamper_copy
from tryon_lab.grading.grader import grade_submission
from tryon_lab.grading.rubric import load_rubric

rubric = load_rubric()  # the course default: the course recipe
print(f"rubric: {rubric.name}; U-Net widths allowed {rubric.get('bits', 'allowed_bits')}, at most "
      f"{rubric.get('bits', 'max_average_bits')} bits on average; {rubric.get('chunks', 'min_chunks')} to "
      f"{rubric.get('chunks', 'max_chunks')} chunks of at most {rubric.get('chunks', 'max_chunk_bytes') / 2**20:.0f} MiB")
report = grade_submission(bundles["garment model"], build_dir("finale", "grades", "garment"), rubric=rubric)
print(report.table())
tampered = tamper_copy(bundles["DTC model"], build_dir("finale") / "DTC-tampered")
tampered_report = grade_submission(tampered, build_dir("finale", "grades", "tampered"), rubric=rubric)
print(tampered_report.table())

# %% [markdown]
# ## 7. Exercises
#
# ### 7.1 Tampered files
#
# The grader's first question: are the files the ones the manifest lists? Write
# `tampered_files(folder, files)`: `files` is the manifest's table
# `{relative path: {"sha256": hex digest, "bytes": size}}`. Return, **sorted**, every listed path
# that is missing from `folder`, has another size, or whose sha256 differs. Read files in pieces
# (`hashlib.sha256().update(block)`): a weight file may be larger than memory. Files that are not
# listed are not your concern here.

# %%


def tampered_files(folder: str, files: dict) -> list[str]:
    """Return the sorted relative paths of listed files that are missing, resized or altered."""
    # YOUR CODE HERE
    raise NotImplementedError


# %% tags=["raises-exception"]
from tryon_lab.course.exercises.ch06 import exercise_tampered_files

exercise_tampered_files(tampered_files)

# %% [markdown]
# ### 7.2 Average bits
#
# A manifest reports the U-Net's palettization as a histogram read from the program itself, e.g.
# `{"6": 8600000, "16": 190000}` (a made-up example): 8.6 M weights stored with 6-bit indices and
# 190 k left in fp16 (small tensors are not worth a palette). Write `average_bits(histogram)`: the average bits
# per weight. An empty histogram has no average: raise `ValueError`.

# %%
def average_bits(histogram: dict[str, int]) -> float:
    """Return the average bits per weight of a {bits: number of weights} histogram."""
    # YOUR CODE HERE
    raise NotImplementedError


# %% tags=["raises-exception"]
from tryon_lab.course.exercises.ch06 import exercise_average_bits

exercise_average_bits(average_bits)

# %% [markdown]
# ### 7.3 Read a failing report, name the fix
#
# A report is only useful if you can act on it. Write `name_the_fix(report)`: `report` is a
# grading report as JSON (`report.to_json()`, as `report.json` holds it). Look at its `checks` in
# order and return the name of the fix, one of the keys of `FIXES` below, for the **first** check
# whose `status` is `"failed"`; return `"nothing to fix"` when none failed. Mind the other
# statuses: a `"blocked"` check was not run because an earlier one failed, and an `"unverified"`
# check passed but had no reference bundle to compare with. The tampered DTC report above is one
# such report: which fix does it need?

# %%
from tryon_lab.course.exercises.ch06 import FIXES

for name, what in FIXES.items():
    print(f"{name:28s} {what}")
print("the tampered report's checks:", [(c.name, c.status) for c in tampered_report.checks])


def name_the_fix(report: dict) -> str:
    """Return the key of FIXES that answers the first failed check of a grading report."""
    # YOUR CODE HERE
    raise NotImplementedError


# %% tags=["raises-exception"]
from tryon_lab.course.exercises.ch06 import exercise_name_the_fix

exercise_name_the_fix(name_the_fix)

# %% [markdown]
# That is the course. Your bundles are in `build/finale/`; hand in a folder or a zip of one, and
# run `tryon-lab grade YOUR_BUNDLE` first to see what your instructor will see, less the checks
# that need the reference bundle.
