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
# # 00 · Welcome to the fitting room, and the world it lives in
#
# This course builds **on-device virtual try-on** with diffusion models, step by step: you will
# fine-tune a small Stable-Diffusion-style inpainting model on one garment (the *Mobile Fitting
# Room* recipe), teach it to paste any product into a scene (*Diffuse to Choose*), shrink it with
# palettization and chunking, draw masks in an app, and export models that run on a phone.
#
# Every notebook is thin: the code lives in the `tryon_lab` package, so what you run here is the
# same code the tests check and the `tryon-lab` command line runs.
#
# **What you will learn in this notebook**
# - how to check that your machine is ready, and which *profile* you are running;
# - the synthetic world the course trains and tests on: people wearing garments, rooms with
#   products, catalog shots, and the ground truth that comes with every sample;
# - how a try-on sample is a triplet *scene → target, with a mask*;
# - *caption twins*: items a caption cannot tell apart, and why the course needs them;
# - the train / val / test splits of items, people and rooms, and why results come from test;
# - the masks a try-on model sees: shape vs box, dilation, erosion, feathering, brush strokes,
#   and the *collage* hint Diffuse to Choose builds from a catalog shot.
#
# **How long it takes**
#
# | profile | for |
# |---|---|
# | `smoke` | CI: checks that the code runs |
# | `quick` (default) | a 2-core laptop |
# | `full` | a GPU machine (this notebook uses only the CPU) |
#
# How long each notebook takes is measured, never typed: the first code cell of every notebook
# reads its times from the recorded course run (`benchmarks/results.json`, the machine-readable copy
# of `benchmarks/RESULTS.md`). Every measured number the course states is read the same way.
#
# Choose the profile before starting Jupyter, e.g. `TRYON_LAB_PROFILE=smoke jupyter lab`, or run
# the whole course from a terminal with `tryon-lab course --profile quick`.

# %% [markdown]
# ## 1. Your environment
#
# The course runs on a CPU; a GPU only makes the `full` profile faster. Check the versions below
# against `pyproject.toml` if something misbehaves. `torch_threads` is how many cores PyTorch
# uses; `usable_cpus` is how many this process may use (containers often allow fewer than the
# machine has).

# %%
from IPython.display import Markdown, display

from tryon_lab.course.runner import times_note
from tryon_lab.environment import environment_report, format_report
from tryon_lab.paths import build_dir

display(Markdown(times_note("00")))
print(format_report(environment_report()))

# %% [markdown]
# ## 2. The profile in use
#
# A profile changes sizes and step counts, never code. This notebook reads the `world` section:
# how many samples to draw in each grid and how large a catalog to write.

# %%
from tryon_lab import current_profile

profile = current_profile()
settings = profile["world"]
print(f"profile {profile.name!r}: {profile.description}")
print(settings)
n_grid = settings["grid_samples"]

# %% [markdown]
# ## 3. A tour of the world
#
# `World(seed, resolution)` renders every sample from its seed, split and index: the same call
# always gives the same pixels, and every sample knows its ground truth. People wear garments
# (tees, long sleeves, tanks, dresses, jackets, hoodies in ten colours and six patterns); rooms
# hold products (mugs, lamps, vases, plants, bags, shoes, framed pictures, chairs).

# %%
from tryon_lab.data.world import World
from tryon_lab.plotting import image_grid

world = World(seed=0, resolution=128)
people = [world.sample(i, kind="garment") for i in range(n_grid)]
image_grid([s.target for s in people], [s.item.caption_phrase for s in people], ncols=4)

# %%
rooms = [world.sample(i, kind="product") for i in range(n_grid)]
image_grid([s.target for s in rooms], [s.item.caption_phrase for s in rooms], ncols=4)

# %% [markdown]
# Each item also has a **catalog shot**: the flat-lay garment or the product on its own, on white
# or (for some products) on a busy backdrop. This is the *reference* image a try-on model must
# copy onto the person or into the room.

# %%
examples = people[: n_grid // 2] + rooms[: n_grid // 2]
image_grid([s.reference for s in examples], [s.item.item_id for s in examples], ncols=4)

# %% [markdown]
# ### The triplet: scene, target, mask
#
# A sample shows the **scene** (the person in their own garment, or the room with another product
# or an empty spot) and the **target**: the same picture with the reference item in place. The two
# are identical outside the **shape mask**, so the shape mask is exactly what a model must repaint.
# The **box mask** is its bounding box: the coarse mask a user drags on a phone.

# %%
from tryon_lab.data.masks import overlay

for sample in (people[0], rooms[0]):
    print(f"{sample.kind}: {sample.caption!r}")
    print("  attributes:", sample.attributes)
image_grid(
    [
        image
        for s in (people[0], rooms[0])
        for image in (s.scene, s.target, s.shape_mask, s.box_mask, s.reference)
    ],
    ["scene", "target", "shape mask", "box mask", "reference"] * 2,
    ncols=5,
)

# %% [markdown]
# ### Caption twins: what text cannot say
#
# Category, colour and pattern are all a caption names. Every caption is shared by several items,
# its **caption twins**: the same garment or product, each with its own small **motif** (an
# emblem: a shape, where it sits, two colours). No caption mentions the motif, so no prompt can
# ask for one twin rather than another. That is the point: fine-tuning on one garment
# (DreamBooth, notebook 02) and conditioning on its catalog shot (Diffuse to Choose, notebook 03)
# exist to capture what text cannot, and the twins let us measure it: a good try-on paints *this*
# item, and picking it out among its twins tells whether the model kept its identity. Below, the
# twins of the first garment and product above, as catalog shots and worn or in place.

# %%
from tryon_lab.data.attributes import N_MOTIFS, caption_twins, room_from_id

garment_twins = caption_twins(people[0].item)
product_twins = caption_twins(rooms[0].item)
person, room = world.person(0), room_from_id(rooms[0].attributes["room_id"])
print(f"{N_MOTIFS} items share {people[0].caption!r}, and {N_MOTIFS} share {rooms[0].caption!r}")
image_grid(
    [world.catalog_image(t) for t in garment_twins]
    + [world.render_person(person, t)[0] for t in garment_twins]
    + [world.catalog_image(t) for t in product_twins]
    + [world.render_room(room, t)[0] for t in product_twins],
    [t.item_id for t in garment_twins] * 2 + [t.item_id for t in product_twins] * 2,
    ncols=N_MOTIFS,
)

# %% [markdown]
# ### Splits by identity: train, val, test
#
# Every item, person and room belongs to exactly one split: **train** (70%), **val** (15%) or
# **test** (15%), fixed by its id. Training reads train only (the datasets that feed training
# refuse anything else); val is for tuning choices; every result the course reports comes from
# test, that is from items, people and rooms that no training saw, so a good score means the
# model generalises rather than recalls. Caption twins are split *apart*: every caption keeps at
# least two train twins, so the words are learnt, and a test item differs from its train twins
# only in its motif, the part that only pictures carry. Its twins, from any split, are the
# distractors it must be told from. A sample of a split shows only that split's items, people and
# rooms; the check below looks for any id in two splits over a preview of each.

# %%
from tryon_lab.data.splits import SPLITS, item_split, split_sizes

print(f"{'split':6} {'garments':>9} {'products':>9} {'people':>8} {'rooms':>6} {'twin groups':>12}")
for split, counts in split_sizes().items():
    print(f"{split:6} {counts['garments']:9} {counts['products']:9} {counts['people']:8} {counts['rooms']:6}"
          f" {counts['twin_groups']:12}")
print("splits of the garment twins above:", [item_split(t) for t in garment_twins])


# %%
def identities(sample):
    context = "person_id" if sample.kind == "garment" else "room_id"
    return {("item", sample.item.item_id), (context, sample.attributes[context])}


n_preview = settings["dataset_preview"]
seen = {split: set().union(*(identities(world.sample(i, split)) for i in range(n_preview))) for split in SPLITS}
shared = (seen["train"] & seen["val"]) | (seen["train"] & seen["test"]) | (seen["val"] & seen["test"])
print(f"{n_preview} samples per split; items, people or rooms in two splits: {len(shared)}")
test = [world.sample(i, split="test") for i in range(n_grid)]
image_grid([s.target for s in test], [f"test: {s.item.caption_phrase}" for s in test], ncols=4)

# %% [markdown]
# ### How identity is measured
#
# The course's judge (`data/models/world-encoder`, trained on train items only) has a *motif
# network* that reads the motif's shape and its two colours. To score a try-on it reads the motif
# on the painted item and on the catalog shots of the item's twins, and picks the twin that reads
# most alike: **identity accuracy**, chance 1 in 4. On the ground-truth pictures of test items
# (the best a try-on can do) it is the judge's *ceiling*. Below, what it reads on the test
# samples above, and its ceiling over a few of them (`benchmarks/RESULTS.md`, section `judge`,
# gives it on many more). It misreads some factors, often a shape a few pixels across; retrieval
# needs less than a perfect reading, only that the right twin reads most alike, and twins always
# differ in shape.
#
# The motif network learnt on train items wearing motifs drawn at random, never one of a val or
# test item. Trained on the items' own motifs, it had a shortcut: each train item always wears
# the same motif, so the caption and the motif's corner give it away without reading it, and on
# unseen items it read worse.

# %%
import torch

from tryon_lab.data.attributes import COLOURS
from tryon_lab.data.render.items import MOTIF_SHAPES, motif_labels
from tryon_lab.metrics.judge import WorldJudge
from tryon_lab.paths import shipped_model
from tryon_lab.training.pretrain import identity_ceiling

judge = WorldJudge.load(shipped_model("world-encoder"))
with torch.no_grad():
    read = judge.encoder.motif_logits(judge.crops([s.target for s in test], [s.item_mask for s in test]))
names = {"shape": MOTIF_SHAPES, "fill": list(COLOURS), "inner": list(COLOURS)}
for i, s in enumerate(test):
    truth = motif_labels(world.motif(s.item))
    drawn = " ".join(names[f][truth[f]] for f in names)
    seen = " ".join(names[f][int(read[f][i].argmax())] for f in names)
    print(f"{s.item.item_id:34} motif drawn: {drawn:24} judge reads: {seen}")
print(f"identity ceiling on {n_preview} test renderings: {identity_ceiling(judge.encoder, world, n_preview)}")

# %% [markdown]
# ## 4. Masks
#
# How large a region a model repaints matters: a tight shape mask keeps the person's arms and
# the room intact, a box mask gives the model room to change the garment's silhouette. The
# `tryon_lab.data.masks` tools grow a mask (**dilate**), shrink it (**erode**), soften its edge
# for blending (**feather**), and paint one with a round brush the way the app does
# (**stroke_mask**).

# %%
from tryon_lab.data.masks import dilate, erode, feather, largest_rectangle, make_collage, stroke_mask

mask = people[0].shape_mask
stroke = stroke_mask([(40, 40), (64, 70), (90, 50)], radius=9, size=(128, 128))
image_grid(
    [mask, dilate(mask, 4), erode(mask, 4), feather(mask, 4), overlay(people[0].scene, stroke)],
    ["shape mask", "dilate 4 px", "erode 4 px", "feather 4 px", "a brush stroke"],
    ncols=5,
)

# %% [markdown]
# ### The Diffuse-to-Choose collage
#
# Diffuse to Choose gives its model a **hint**: the reference pasted into the largest rectangle
# that fits inside the mask, on an otherwise empty image. The hint tells the model *where* the
# item goes and *what* its fine details are.

# %%
collage_samples = rooms[: min(3, n_grid)]
print("largest rectangle in the first mask (top, left, bottom, right):", largest_rectangle(rooms[0].shape_mask))
image_grid(
    [
        image
        for s in collage_samples
        for image in (overlay(s.scene, s.shape_mask), s.reference, make_collage(s.reference, s.shape_mask))
    ],
    ["scene + mask", "reference", "collage hint"] * len(collage_samples),
    ncols=3,
)

# %% [markdown]
# ## 5. A catalog on disk
#
# Artifacts go to the build folder (`$TRYON_LAB_BUILD_DIR`, default `build/`). Here we write a
# catalog (item images with a JSON index, and sample scenes with their masks), exactly as
# `tryon-lab world render --out DIR` does from a terminal, and read it back.

# %%
from tryon_lab.data.catalog import load_catalog, write_catalog
from tryon_lab.data.io import load_image

catalog_dir = write_catalog(
    build_dir() / "catalog",
    world,
    n_garments=settings["catalog_garments"],
    n_products=settings["catalog_products"],
    n_scenes=settings["catalog_scenes"],
)
entries = load_catalog(catalog_dir)
print(f"wrote {len(entries)} catalog items and {settings['catalog_scenes']} scenes to {catalog_dir}")
shown = entries[: n_grid // 2] + entries[-(n_grid // 2) :]  # garments come first, products last
image_grid([load_image(e.file) for e in shown], [e.caption_phrase for e in shown], ncols=4)

# %% [markdown]
# ## 6. Exercise: the box of a mask
#
# The box mask above is the bounding box of the shape mask. Write `box_from_mask(mask)`: given a
# bool `H x W` numpy array, return `(top, left, bottom, right)`, the tightest box around its
# `True` pixels, with **`bottom` and `right` exclusive** like Python slices, so that
# `mask[top:bottom, left:right]` holds every `True` pixel. An empty mask has no box: raise
# `ValueError`.
#
# Hints: `mask.any(axis=1)` tells you which rows hold a pixel; `np.flatnonzero` lists the indices
# of the `True` values. The exercise tries your function on world masks, masks that touch the
# image border, single pixels, and an empty mask. (The package has its own version; write yours
# before you look for it.)

# %%
import numpy as np


def box_from_mask(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Return (top, left, bottom, right) of the True pixels, bottom and right exclusive."""
    # YOUR CODE HERE
    raise NotImplementedError


# %% tags=["raises-exception"]
from tryon_lab.course.exercises.ch00 import exercise_box_from_mask

exercise_box_from_mask(box_from_mask)

# %% [markdown]
# When the exercise passes, you are ready for **01 · latent inpainting**, where a small diffusion
# model learns to repaint exactly the pixels such a mask selects.
