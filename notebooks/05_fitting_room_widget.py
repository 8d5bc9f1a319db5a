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
# # 05 · The Fitting Room widget
#
# The Mobile Fitting Room paper ends with an app: pick a garment, paint over yourself where it
# should go, and watch the try-on appear. This notebook builds that app from the pieces of the
# earlier chapters, as an ipywidgets application that runs in JupyterLab and, unchanged, as a
# phone-shaped web page.
#
# **What you will learn in this notebook**
# - how mouse and touch events on an ipycanvas canvas become a **bool mask at the photo's own
#   size** (canvas pixels, photo pixels, and a round brush between them);
# - how the app keeps the painting responsive while a model runs: generation on a **worker
#   thread**, a progress bar, step previews, cancel, and errors that become messages;
# - the paper's three screens (**Garments**, **Personalize**, **Result**), what this course adds to
#   them (suggested masks, the restore brush, live previews, cancel), and how to
#   serve the app to a phone-sized browser with `tryon-lab app`;
# - how the same app runs your **exported phone model** (ExecuTorch) and switches your
#   **fine-tuned garments** (LoRA adapters) without reloading the model.
#
# **How long it takes**
#
# | profile | for | model |
# |---|---|---|
# | `smoke` | CI: checks that the code runs | a tiny random model (pictures are noise) |
# | `quick` (default) | a 2-core laptop | the shipped mini model, 128x128 |
# | `full` | a GPU machine | the shipped mini model |
#
# The first code cell reads this notebook's measured times from the recorded course run.
#
# The widgets are live in JupyterLab: paint on them with the mouse (or a finger on a touch
# screen). Every cell also drives them from Python, so the notebook runs without a browser too.

# %% [markdown]
# ## 1. A canvas that paints a mask
#
# `MaskCanvas` shows a photo on an ipycanvas `MultiCanvas` and keeps a bool mask **at the
# photo's size**. The canvas has a fixed size in canvas pixels; the photo is fitted into it at
# `scale` canvas pixels per photo pixel, centred with `offset`. Paint on it below.

# %%
from IPython.display import Markdown, display

from tryon_lab.app import MaskCanvas
from tryon_lab.course.runner import times_note
from tryon_lab.data.world import World

display(Markdown(times_note("05")))

person = World(seed=0, resolution=256).sample(0, kind="garment")
demo = MaskCanvas(width=300, height=240)
demo.set_photo(person.scene)
print(f"photo {demo.photo.size}, canvas {demo.widget.width}x{demo.widget.height}, "
      f"scale {demo.scale:.3f} canvas px per photo px, offset {demo.offset}")
demo.widget

# %% [markdown]
# ### What the browser sends
#
# When you press, move and release the mouse on the canvas, the browser sends the kernel one
# message per event: `mouse_down`, `mouse_move` (for every move, pressed or not), `mouse_up`,
# each with `x, y` in **canvas pixels**. ipycanvas calls the handlers registered with
# `on_mouse_down(handler)` etc. `MaskCanvas` registers handlers that call its `pointer(kind, x, y)`:
#
# 1. map the point to photo pixels: `((x - offset_x) / scale, (y - offset_y) / scale)`;
# 2. on "down", stamp a disc of the brush radius; on each "move" while pressed, stamp the
#    **segment** from the previous point (events arrive tens of pixels apart when the hand is
#    fast, so dots alone would leave gaps);
# 3. on "up", record the stroke as one undoable edit.
#
# The brush size is in canvas pixels, what the user sees, so its radius in photo pixels is
# `brush_size / 2 / scale`. Here are the events of a quick drag, replayed from Python exactly
# as ipycanvas would deliver them:

# %%
from tryon_lab.data.masks import overlay
from tryon_lab.plotting import image_grid

events = [("move", 60, 40), ("down", 110, 90), ("move", 150, 100), ("move", 190, 95), ("move", 200, 150),
          ("up", 200, 150), ("move", 250, 200)]
for kind, x, y in events:
    demo.pointer(kind, x, y)
print(f"painted {demo.mask.sum()} photo pixels ({100 * demo.coverage:.1f}% of the photo)")
image_grid([person.scene, demo.mask, overlay(person.scene, demo.mask)], ["photo", "mask (photo pixels)", "overlay"],
           ncols=3)

# %% [markdown]
# The eraser is the same brush painting `False`; undo and redo restore whole masks. The first
# and last "move" above happened with the button up, so they painted nothing.

# %%
demo.tool = "eraser"
demo.stroke([(150, 60), (150, 140)])
erased = demo.mask
demo.undo()
print(f"after the eraser: {erased.sum()} px; after undo: {demo.mask.sum()} px; redo available: {demo.can_redo}")
demo.tool = "brush"

# %% [markdown]
# Why this design? The mask lives in the kernel, at full photo resolution, so the model's input
# never depends on the screen's size. The browser only draws feedback: each event's segment is
# drawn back on a translucent layer. That round trip, browser → kernel → browser, is what the
# app's browser test times: it must stay under 200 ms for painting to feel direct
# (`benchmarks/app.py` records it).

# %% [markdown]
# ## 2. The app
#
# `FittingRoom(pipeline, catalog)` puts three screens behind a tab bar. The three screens, and the
# brush and eraser, are the paper's app; the rest is this course's addition, marked **[course]**:
#
# - **Garments** *(paper)*: the catalog as a gallery, filtered by category, with your DreamBooth
#   garments from chapter 02 first, marked *fine-tuned* (section 3); *add your own item* from an
#   image and the words the prompt should use.
# - **Personalize** *(the paper's Personalization: your photo, a brush and an eraser for the
#   mask)*: a sample photo or your own upload, the canvas, brush / eraser / size, undo / redo / clear, and
#   **[course] Suggest mask**: where an item of the chosen category usually goes, learned from the
#   world, as a starting point to edit.
# - **Result** *(paper: the try-on)*: before/after, seed and steps, save as PNG, and
#   **[course]** live previews of the try-on forming step by step and a **restore brush** that
#   paints your original pixels back.
#
# | feature | from |
# |---|---|
# | Garments screen, Personalization screen with brush and eraser, Result screen | the Mobile Fitting Room paper |
# | suggested masks, restore brush, live step previews, cancel | this course |
#
# Generation runs on a worker thread: the kernel keeps handling your strokes and clicks while
# the model works, the progress bar and **[course]** previews update, **[course] Cancel** stops it
# after the current step (`pipe.interrupt()`), and any error appears as a message in the app. The
# model is used through a small interface, `generate(image, mask, prompt, steps, seed, on_step)`,
# so an exported phone bundle can stand in for the PyTorch pipeline (section 3).

# %%
from IPython.display import Markdown

from tryon_lab import current_profile
from tryon_lab.app import FittingRoom
from tryon_lab.course.inpainting.models import course_pipeline, model_note
from tryon_lab.paths import build_dir

settings = current_profile()["inpainting"]
pipe = course_pipeline(settings["model"], build_dir())
display(Markdown(model_note(settings["model"], pipe)))
room = FittingRoom(pipe, steps=settings["steps"])
room

# %% [markdown]
# ### Driving the app from Python
#
# Everything a click does is a method call, which is how the tests drive the app. Choose the
# first garment, start from the suggested mask, try it on, and wait for the worker thread:

# %%
item = room.garments.select(next(i.id for i in room.garments.items.values() if i.kind == "garment"))
room.personalize.suggest()
room.try_on()
room.wait()
print(room.status.text)
print(f"first preview after {room.jobs.first_preview_seconds:.2f} s, result after {room.jobs.seconds:.2f} s")
photo = room.personalize.canvas.photo
image_grid([photo, overlay(photo, room.personalize.canvas.mask), room.result.result],
           ["photo", f"mask for a {item.category}", f"try-on: {item.phrase}"], ncols=3)

# %% [markdown]
# ### On a phone-sized page
#
# From a terminal, `tryon-lab app` serves the same widget as a Voila page on `127.0.0.1` and
# prints its address; `--model` (or `--bundle`), `--catalog` and `--garments` choose what it
# shows. Open it in a narrow browser window (or your browser's device mode) and it looks like the
# phone app. Nothing leaves your machine: the page talks only to the local kernel that runs the
# model.

# %% [markdown]
# ## 3. Your phone model and your fine-tuned garments
#
# **The phone model.** Chapter 06 exports the model as a bundle of ExecuTorch programs
# (`tryon-lab export --out build/bundle`). `FittingRoom(bundle="build/bundle")` runs those
# programs with the ExecuTorch runtime, the way the phone does: the same denoising loop
# (`tryon_lab.export.runner.run_tryon`, with a per-step hook for previews and cancel), the
# bundle's fixed resolution, the photo padded to the model's square and the result pasted back
# inside your mask. Before anything runs, every file is checked against the manifest's SHA-256;
# a missing, modified or ExecuTorch-less bundle opens the app with the reason on its status line.
#
# ```python
# room = FittingRoom(bundle="build/bundle")     # ExecuTorchBackend.from_bundle(...) behind it
# ```
#
# Exported in fp32, the programs paint what the PyTorch model paints from the same seed (the
# app's tests check it to within 2 levels of 255); an int8 export shows you what quantization
# costs, in your own try-ons.
#
# **Fine-tuned garments.** A DreamBooth LoRA run (`tryon-lab dreambooth --garment ... --lora-rank 4
# --out build/garments/red-tee`) saves a small adapter folder with its identifier token.
# `FittingRoom(garments_dir="build/garments")` loads every adapter in the folder into the one
# base model (`GarmentAdapters`) and lists them first in the gallery, marked *fine-tuned*.
# Choosing one activates its adapter and writes its identifier's embedding (milliseconds, no
# reload), and the prompt becomes its identifier prompt, e.g. "a photo of a person wearing a sks
# tee"; choosing a catalog item goes back to the base model. The paper trains one model per
# garment; with adapters, a catalog of garments shares one base model.
#
# ```python
# room = FittingRoom(catalog="build/catalog", garments_dir="build/garments")
# room.finetuned.adapters.active      # the adapter in use, or None for the base model
# ```

# %% [markdown]
# ## 4. Exercise: events to a mask
#
# Write `events_to_mask(events, radius, size)`: `events` is a list of `(kind, x, y)` with `kind`
# one of `"down"`, `"move"`, `"up"`; `size` is `(width, height)`. Return a bool mask of shape
# `(height, width)` painted by a round brush of `radius` pixels: a "down" paints a disc, every
# "move" while the button is down paints the segment from the previous point, "up" ends the
# stroke, and moves with the button up paint nothing. Points may lie outside the image.
#
# Hint: `tryon_lab.data.masks.add_stroke(mask, points, radius)` paints a polyline into a mask in
# place. The exercise tries a click, a fast drag, hovering, two strokes, a stroke that leaves the
# image, and a non-square canvas.

# %%
import numpy as np


def events_to_mask(events: list, radius: float, size: tuple[int, int]) -> np.ndarray:
    """Return the bool (height, width) mask a round brush paints for these pointer events."""
    # YOUR CODE HERE
    raise NotImplementedError


# %% tags=["raises-exception"]
from tryon_lab.course.exercises.ch05 import exercise_events_to_mask

exercise_events_to_mask(events_to_mask)

# %% [markdown]
# When the exercise passes, you are ready for **06 · exporting and verifying the phone models**,
# where the model behind this app becomes Core ML and ExecuTorch programs for a real phone.
