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
# # 02 · DreamBooth on a garment
#
# The inpainting model of notebook 01 paints *a* red striped tee when asked. A shop needs it to
# paint *this* tee, the one in its catalog, on any customer. The *Mobile Fitting Room* recipe does
# it with **DreamBooth**: fine-tune the model on a handful of photos of the garment, each captioned
# with a new, rare word, the **identifier** ("a photo of a person wearing a **sks** tee"), while
# **prior preservation** keeps the plain class word ("tee") meaning any tee. This notebook trains
# a garment both ways the recipe allows, the whole U-Net and small **LoRA** adapters, and measures
# both on people and masks training never saw.
#
# **What you will learn in this notebook**
# - what an instance set is: the garment on a few people, each photo with the mask the model repaints;
# - how the identifier token enters the tokenizer and the text encoder's embedding table;
# - the DreamBooth loss (masked noise prediction on instance and class images), watched as it trains;
# - before and after on *held-out* people, with the masks it trained on and a brush mask it never saw;
# - full fine-tuning against LoRA: quality, trainable parameters, speed and size on disk;
# - identity beyond words: DreamBooth against Diffuse to Choose (the next notebook) on the same people;
# - whether the class word survived (prior preservation), measured as the variety of what it paints;
# - many garments on one base model: LoRA adapters switched in milliseconds.
#
# **How long it takes**
#
# | profile | for | model |
# |---|---|---|
# | `smoke` | CI: checks that the code runs | a tiny random model (pictures are noise) |
# | `quick` (default) | a 2-core laptop | the shipped mini model, 128x128 |
# | `full` | a GPU machine | the shipped mini model, longer training, more held-out people |
#
# The first code cell reads this notebook's measured times from the recorded course run.
#
# Everything here calls the `tryon_lab` package: `tryon-lab dreambooth --garment ID [--lora-rank N]`
# runs the same training from a terminal, and on your own photos with `--images DIR`.

# %% [markdown]
# ## 1. The model and the garment
#
# The profile's `dreambooth` section holds the sizes: which base model, which garment, how many
# people, steps and held-out cases. The judge is the course's **world encoder**, a small
# classifier trained on the world (never on anything a model here is trained against): it reads a
# generated garment's category, colour and pattern, and how close it looks to the catalog picture.

# %%
from dataclasses import replace

from diffusers.utils import logging as diffusers_logging
from IPython.display import Markdown, display
from transformers.utils import logging as transformers_logging

from tryon_lab import current_profile
from tryon_lab.course.inpainting.models import course_pipeline, model_note
from tryon_lab.course.runner import recorded, times_note
from tryon_lab.data.world import World
from tryon_lab.metrics.judge import WorldJudge
from tryon_lab.paths import build_dir, shipped_model
from tryon_lab.training.dreambooth import DreamBoothSettings, item_from_id
from tryon_lab.training.dreambooth.recipe import base_model_dir

for library in (diffusers_logging, transformers_logging):  # quiet loading bars and notices; training keeps its bar
    library.disable_progress_bar()
    library.set_verbosity_error()
display(Markdown(times_note("02")))
profile = current_profile()
db = profile["dreambooth"]
settings = DreamBoothSettings.from_profile(profile)
base_dir = base_model_dir(db["model"], build_dir())
base = course_pipeline(str(base_dir), build_dir())
judge = WorldJudge.load(shipped_model("world-encoder"))
world = World(seed=0, resolution=base.resolution)
garment = item_from_id(db["garment"])
display(Markdown(model_note(db["model"], base)))
print(f"profile {profile.name!r}: garment {garment.item_id}, {settings.n_people} people, {settings.steps} steps")

# %% [markdown]
# ## 2. The instance set
#
# DreamBooth learns from very few pictures: here the garment worn by `n_people` people of the
# world's *training* split, each photo used twice, once with the garment's exact **shape mask**
# and once with its **box mask** (the coarse rectangle a user drags on a phone), so that the
# model learns to fill both. The tinted region is what the model repaints; the last picture is the
# catalog shot the shop has.

# %%
from tryon_lab.training.dreambooth import world_instances
from tryon_lab.training.dreambooth.figures import instance_grid

instances = world_instances(world, garment, settings.n_people, mask_kinds=settings.mask_kinds,
                            n_scenes=settings.num_class_images)
print(f"{len(instances.images)} training pairs; instance prompt: {instances.instance_prompt!r}")
print(f"class prompt: {instances.class_prompt!r}")
instance_grid(instances, ncols=settings.n_people + 1)

# %% [markdown]
# ## 3. The identifier token
#
# The caption needs a word that means *this* garment and nothing else. A word the tokenizer
# already knows ("striped") carries its old meaning; a made-up one is split into pieces that
# each mean something.
#
# Two papers answer this differently. **DreamBooth** *reuses* a rare token the tokenizer already
# has ("sks" is one token in CLIP's vocabulary) and fine-tunes the model until that token means the
# subject; nothing is added to the vocabulary. **Textual inversion** *adds* a new token and learns
# only its embedding, with the model frozen. **This course combines the two:** our tokenizer is
# trained on the world's captions and has no rare token to spare, so it adds "sks" as one new
# token, as textual inversion does; the text encoder's embedding table grows by one row, which
# starts at the embedding of the class word "tee" (so that before training "sks tee" reads like
# "tee tee") and is learned (the text encoder stays frozen); and, as in DreamBooth, the U-Net is
# fine-tuned at the same time to learn what the garment looks like.

# %%
from tryon_lab.training.dreambooth import add_identifier_token
from tryon_lab.training.dreambooth.token import class_word_embedding

prompt = instances.instance_prompt
table = base.text_encoder.get_input_embeddings()
print("before:", base.tokenizer.tokenize(prompt), f"  embedding table {tuple(table.weight.shape)}")
token_id = add_identifier_token(base.tokenizer, base.text_encoder, instances.token, instances.class_word)
table = base.text_encoder.get_input_embeddings()
print("after: ", base.tokenizer.tokenize(prompt), f"  embedding table {tuple(table.weight.shape)}")
print(f"token ids: {base.tokenizer(prompt).input_ids}  ('{instances.token}' = {token_id}, the new last row)")
same = (table.weight[token_id] - class_word_embedding(base.tokenizer, base.text_encoder, instances.class_word)).detach()
print(f"new row minus the class word's embedding: largest difference {float(same.abs().max()):.1e}")

# %% [markdown]
# ## 4. Prior preservation: the class images
#
# Trained only on photos of one red striped tee, the model would soon paint that tee whenever it
# reads "tee": the class word would be lost (*language drift*), and every other tee in the shop
# with it. DreamBooth's fix is to keep training on what the **base** model paints for the plain
# class prompt, on other people: these **class images** are generated once, before training, and
# each training batch mixes them with the instance photos. Their loss is the *prior* term.

# %%
from tryon_lab.plotting import image_grid
from tryon_lab.training.dreambooth.instances import class_images
from tryon_lab.training.dreambooth.train import run_name

runs = build_dir("runs")
class_dir = runs / f"class-images-{garment.item_id}"  # painted once, shared by both fine-tunes
prior_pairs = class_images(base, instances, settings.num_class_images, class_dir,
                           steps=settings.class_steps, guidance_scale=settings.class_guidance)
shown = min(len(prior_pairs), 16)
image_grid(prior_pairs.images[:shown], [f"class {i}" for i in range(shown)], ncols=8, size=1.4)

# %% [markdown]
# ## 5. Training the whole U-Net
#
# Each step takes `batch_size` instance pairs and as many class pairs, noises their latents at
# random timesteps and asks the U-Net for the noise, exactly as in pre-training (notebook 01), with
# two changes: the loss is weighted by the mask (weight 1 inside, `outside_weight` outside, where
# the U-Net is shown the picture anyway), and it is the sum *instance loss + prior_weight × prior
# loss*. The plot below redraws itself while the model trains. The instance loss should fall
# below the prior loss: the model is learning the garment faster than anything else.

# %%
from tryon_lab.training.dreambooth import train_dreambooth
from tryon_lab.training.dreambooth.live import LiveLossPlot

full_dir = runs / run_name(instances, settings)
live = LiveLossPlot(full_dir, settings.steps, title="full fine-tune")
full = train_dreambooth(base_dir, instances, full_dir, settings, on_step=live, class_dir=class_dir)
live.finish()
print(f"full fine-tune: {full.trainable_parameters:,} trainable parameters, {full.steps_per_second:.2f} steps/s")

# %% [markdown]
# ## 6. Training LoRA adapters instead
#
# **LoRA** (low-rank adaptation) freezes the U-Net and adds, next to chosen layers, a small
# trainable update `scale · B·A` of rank r: A maps the layer's input down to r numbers, B maps
# them back up. B starts at zero, so the adapted model starts as the base model. Here adapters sit
# on the profile's `lora_targets` layers (`"all"`: attention, feed-forward *and* the resnets'
# convolutions; a Conv2d adapter is a small convolution followed by a 1x1 one). The garment then
# costs a small adapter instead of a whole U-Net (section 9 measures both on disk; the recorded
# benchmark's sizes are printed below), and many garments can share one base model (section 10).

# %%
lora_settings = replace(settings, lora_rank=db["lora_rank_demo"])
lora_dir = runs / run_name(instances, lora_settings)
live = LiveLossPlot(lora_dir, lora_settings.train_steps, title=f"LoRA rank {lora_settings.lora_rank}")
lora = train_dreambooth(base_dir, instances, lora_dir, lora_settings, on_step=live, class_dir=class_dir)
live.finish()
print(f"LoRA rank {lora_settings.lora_rank} on {lora_settings.lora_targets!r} layers: "
      f"{lora.trainable_parameters:,} trainable parameters, {lora.steps_per_second:.2f} steps/s")
print(f"recorded (benchmarks/RESULTS.md, dreambooth): a LoRA garment takes "
      f"{recorded('dreambooth', 'LoRA: size on disk (MB)')} MB on disk "
      f"({recorded('dreambooth', 'LoRA: size on disk (MB)', note=True)}), a full fine-tune "
      f"{recorded('dreambooth', 'full fine-tune: size on disk (MB)')} MB "
      f"({recorded('dreambooth', 'full fine-tune: size on disk (MB)', note=True)})")

# %% [markdown]
# ## 7. Before and after, on people it never saw
#
# The test is a try-on the model has not seen: the garment on **held-out people** (people who
# never wore it in training), with the two mask kinds it trained on and a **brush** mask, the loose
# region a user paints in the app, which it never saw. Columns: the base model with the class
# prompt (all it can be told without the identifier), the base model with the full description
# ("a red striped tee", a reference: a shop cannot describe a real garment that precisely), and
# the two fine-tuned models with the identifier prompt. Same cases, same noise.

# %%
from tryon_lab.training.dreambooth.evaluate import before_after, garment_scores, heldout_cases
from tryon_lab.training.dreambooth.figures import comparison_grid, scores_table

cases = heldout_cases(world, garment, db["eval_people"], db["eval_masks"])
scoring = dict(judge=judge, steps=db["eval_steps"], world=world)
results = before_after(base, full.pipe, cases, instances.instance_prompt, instances.class_prompt, **scoring,
                       tuned_name="full fine-tune")
results[f"LoRA r{lora_settings.lora_rank}"] = garment_scores(lora.pipe, cases, instances.instance_prompt, **scoring)
comparison_grid(cases, results, rows=min(len(cases), 6))

# %% [markdown]
# The judge's verdict, per mask kind. *All attributes* counts a try-on as right only when the
# category, the colour and the pattern are all recognised; *reference similarity* is the cosine
# between the judge's embeddings of the painted garment and the catalog picture; *masked PSNR*
# compares with the ground-truth photo inside the mask (low for everyone: a garment can be right
# and still fold differently from the photo).

# %%
print(scores_table(results))

# %% [markdown]
# ### DreamBooth or Diffuse to Choose?
#
# *Identity* is the column that matters here. The garment has **caption twins**: catalog items with
# the same category, colour and pattern that differ only in their motif. The judge picks, among the
# twins, the one the painted garment looks most like; a model that knows only the words is right
# by chance, one time in the number of twins. The garment is a *test* item: the base model never
# saw its motif, so the full caption cannot name it. DreamBooth learns the motif from the instance
# photos.
#
# The next notebook's method, **Diffuse to Choose** (DTC), gets there another way: no fine-tuning,
# it is *shown* the catalog picture at every try-on, and no DTC training ever saw this garment's motif
# (the try-on is zero-shot). The Diffuse-to-Choose paper compares itself with DreamPaint (DreamBooth
# for inpainting) in the same way. Below, the profile's DTC model tries the garment on the same cases
# with the same noise, and every method's identity accuracy is set beside the full fine-tune's, with
# 95% intervals; a difference counts only when its paired interval excludes zero.

# %%
from tryon_lab.course.dtc.models import load_dtc
from tryon_lab.data.attributes import caption_twins
from tryon_lab.pipelines.samplers import DTC_GUIDANCE
from tryon_lab.training.dreambooth.evaluate import ShownReference
from tryon_lab.training.dreambooth.figures import paired_table

dtc = load_dtc(db["dtc"], base)
results["DTC, catalog picture"] = garment_scores(ShownReference(dtc, instances.reference), cases, None,
                                                 judge=judge, steps=db["eval_steps"], guidance_scale=DTC_GUIDANCE,
                                                 world=world)
twins = len(caption_twins(garment))
print(f"{len(cases)} held-out cases; {twins} caption twins, so chance is 1/{twins}\n")
print(paired_table(results, against="full fine-tune"))
comparison_grid(cases, {name: results[name] for name in ("base, full caption", "full fine-tune",
                                                          "DTC, catalog picture")}, rows=min(len(cases), 4))

# %% [markdown]
# ## 8. Did the class word survive?
#
# Now the plain class prompt, "a photo of a person wearing a tee", on held-out people. The base
# model paints a variety of tees; a model that forgot the class paints the learned garment
# every time. We measure variety three ways: the mean pairwise distance between the judge's
# embeddings of the painted garments, and the entropy (in bits) of their predicted colours and
# patterns. Prior preservation should keep each close to the base model's.

# %%
from tryon_lab.training.dreambooth.evaluate import diversity_ratio, prior_diversity
from tryon_lab.training.dreambooth.figures import diversity_table

diversity = {name: prior_diversity(pipe, world, garment, instances.class_prompt, judge, n=db["diversity_images"],
                                   steps=db["eval_steps"])
             for name, pipe in (("base", base), ("full fine-tune", full.pipe), ("LoRA", lora.pipe))}
print(diversity_table(diversity))
for name in ("full fine-tune", "LoRA"):
    ratios = diversity_ratio(diversity["base"], diversity[name])
    print(f"{name} / base: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
n_show = min(8, db["diversity_images"])
image_grid([im for s in diversity.values() for im in s.images[:n_show]],
           [f"{name}, class prompt" for name in diversity for _ in range(n_show)], ncols=n_show, size=1.4)

# %% [markdown]
# ## 9. Full fine-tuning versus LoRA: what each costs
#
# Both are saved the way a shop would ship them: the full fine-tune as a whole diffusers
# pipeline folder (fp16 weights), the LoRA garment as an adapter folder that loads onto the
# unchanged base model. The adapter folder is in diffusers' own layout, so plain diffusers loads it
# too: `pytorch_lora_weights.safetensors` holds the matrices (keys prefixed `unet.`, rank and alpha
# in its metadata) for `pipe.load_lora_weights(folder)`, and `learned_embeds.safetensors` the
# identifier's embedding for `pipe.load_textual_inversion(folder)`; `dreambooth.json` records the
# token, the prompts and the cost. (A LoRA trained with diffusers' own DreamBooth-LoRA script loads
# into `GarmentAdapters` and the app as well.)

# %%
from tryon_lab.training.dreambooth import save_dreambooth
from tryon_lab.training.dreambooth.evaluate import footprint
from tryon_lab.training.dreambooth.figures import cost_table

garments_dir = build_dir("garments")
saved = {"full fine-tune": save_dreambooth(full, garments_dir / "full"),
         f"LoRA r{lora_settings.lora_rank}": save_dreambooth(lora, garments_dir / "lora" / lora.adapter_name)}
rows = [{**footprint(result, saved[name]), "attr_acc_all": results[name].scores["all"]["attr_acc_all"]}
        for name, result in zip(saved, (full, lora))]
print(cost_table(rows))

# %% [markdown]
# ## 10. Many garments on one base model
#
# A catalog has hundreds of garments; a phone cannot hold a U-Net for each. With LoRA it holds one
# base model and one small adapter per garment. Below, more garments are trained (shorter runs,
# without class images: here the lesson is switching, not quality),
# all are loaded side by side into a single pipeline with `GarmentAdapters`, and switched on one at
# a time: switching selects the adapter inside the U-Net (peft) and writes that garment's
# identifier row into the embedding table; nothing is reloaded.

# %%
from tryon_lab.training.adapters import GarmentAdapters

more_settings = replace(lora_settings, steps=db["adapter_steps"], num_class_images=db["adapter_class_images"])
for i, item_id in enumerate(db["more_garments"]):
    other = world_instances(world, item_from_id(item_id), settings.n_people, token=f"{instances.token}{i + 2}",
                            mask_kinds=settings.mask_kinds, n_scenes=settings.num_class_images)
    result = train_dreambooth(base_dir, other, runs / run_name(other, more_settings), more_settings)
    save_dreambooth(result, garments_dir / "lora" / result.adapter_name)

shop = course_pipeline(str(base_dir), build_dir())
adapters = GarmentAdapters(shop)
loaded = adapters.load_all(garments_dir / "lora")
times = adapters.switch_times(repeats=5)
print(f"{len(loaded)} garments on one base model; switching takes {1000 * times['mean_s']:.1f} ms on average "
      f"({1000 * times['max_s']:.1f} ms at most, {times['switches']:.0f} switches)")
for entry in loaded:
    print(f"  {entry.id}: {entry.prompt!r}")

# %%
from tryon_lab.data.io import load_image
from tryon_lab.training.dreambooth.evaluate import garment_gallery
from tryon_lab.training.dreambooth.figures import gallery_grid

people = [c for c in cases if c.mask_kind == "box"][:3] or cases[:3]
gallery = garment_gallery(adapters, people, steps=db["eval_steps"])
gallery_grid(people, gallery, {e.id: load_image(e.file) for e in loaded if e.file})

# %% [markdown]
# ## 11. Exercises
#
# Each exercise has a stub that raises `NotImplementedError`, followed by its exercise. The exercise runs
# your function on fixed inputs and tells you what is wrong, never what the answer is.
#
# ### 11.1 A LoRA layer
#
# Write `lora_linear(x, weight, bias, lora_A, lora_B, scale)`: the output of a frozen
# `nn.Linear` (`weight` of shape `(out, in)`, `bias` `(out,)`) with a rank-r LoRA adapter
# (`lora_A` `(r, in)`, `lora_B` `(out, r)`), for inputs `x` of shape `(..., in)`: the frozen
# layer's output plus `scale` times the adapter's. (peft's `scale` is `lora_alpha / r`.)

# %%
import torch


def lora_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, lora_A: torch.Tensor,
                lora_B: torch.Tensor, scale: float) -> torch.Tensor:
    """Return the adapted layer's output, shape (..., out)."""
    # YOUR CODE HERE
    raise NotImplementedError


# %% tags=["raises-exception"]
from tryon_lab.course.exercises.ch02 import exercise_lora_linear

exercise_lora_linear(lora_linear)

# %% [markdown]
# ### 11.2 What an adapter costs
#
# Write `lora_parameter_count(layer, rank)`: the number of trainable parameters peft adds when it
# puts a rank-`rank` adapter on `layer`, an `nn.Linear` or an `nn.Conv2d` (groups = 1); raise
# `TypeError` for any other layer. For a `Conv2d`, peft's A is a convolution from the layer's input
# channels to `rank` channels *with the layer's kernel size*, and B a 1x1 convolution from `rank`
# channels to the output channels; neither has a bias. Compare your numbers with the table of
# section 9.

# %%
def lora_parameter_count(layer: torch.nn.Module, rank: int) -> int:
    """Return the number of parameters of a rank-``rank`` LoRA adapter on ``layer``."""
    # YOUR CODE HERE
    raise NotImplementedError


# %% tags=["raises-exception"]
from tryon_lab.course.exercises.ch02 import exercise_lora_parameter_count

exercise_lora_parameter_count(lora_parameter_count)

# %% [markdown]
# ### 11.3 The DreamBooth loss
#
# Write `dreambooth_loss(prediction, noise, mask, is_prior, prior_weight, outside_weight)`.
# `prediction` and `noise` are `(B, 4, h, w)`, `mask` is `(B, 1, h, w)` of 0s and 1s (1 = the
# garment's cells), `is_prior` a bool tensor `(B,)` marking the class (prior) samples. For each
# sample: average the squared error over the 4 channels, then take its weighted mean over the
# cells, with weight 1 inside the mask and `outside_weight` outside. Return a 0-d tensor: the
# mean over instance samples, plus `prior_weight` times the mean over class samples (if there
# are any).

# %%
def dreambooth_loss(prediction: torch.Tensor, noise: torch.Tensor, mask: torch.Tensor, is_prior: torch.Tensor,
                    prior_weight: float, outside_weight: float) -> torch.Tensor:
    """Return the DreamBooth training loss of one batch (a 0-d tensor)."""
    # YOUR CODE HERE
    raise NotImplementedError


# %% tags=["raises-exception"]
from tryon_lab.course.exercises.ch02 import exercise_dreambooth_loss

exercise_dreambooth_loss(dreambooth_loss)

# %% [markdown]
# When the exercises pass, you are ready for **03 · Diffuse to Choose**, which puts *any* catalog item
# into a photo without fine-tuning at all, by showing the model the item's picture instead.
