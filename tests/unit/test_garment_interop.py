"""LoRA garments and diffusers, both ways, on the tiny random model: a garment from `tryon-lab
dreambooth --lora-rank N` loads in plain diffusers (load_lora_weights + load_textual_inversion) and
paints the same image there; a folder from diffusers' DreamBooth-LoRA script joins the catalog;
first-layout garments still load; folders that are neither get a clear error."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from tryon_lab.errors import ConfigError
from tryon_lab.training.adapters import FineTunedGarment, GarmentAdapters, finetuned_catalog


@pytest.fixture(scope="module")
def garment(tiny_pipeline_dir, tmp_path_factory):
    """A LoRA garment on every layer (Conv2d adapters too, alpha != rank) after 2 training steps,
    saved as `tryon-lab dreambooth --lora-rank 4` saves it; and the training result."""
    from tryon_lab.data.world import World
    from tryon_lab.training.dreambooth import (
        DreamBoothSettings,
        item_from_id,
        save_dreambooth,
        train_dreambooth,
        world_instances,
    )

    settings = DreamBoothSettings(steps=2, batch_size=1, lora_rank=4, lora_alpha=8, lora_targets="all",
                                  lora_learning_rate=5e-2, token_learning_rate=5e-2, num_class_images=0,
                                  checkpoint_every=100)
    instances = world_instances(World(0, 64), item_from_id("garment-tee-red-stripes"), n_people=1,
                                mask_kinds=("shape",), n_scenes=1)
    root = tmp_path_factory.mktemp("interop")
    result = train_dreambooth(tiny_pipeline_dir, instances, root / "run", settings)
    return save_dreambooth(result, root / "garments" / "red"), result


def _diffusers_pipeline(folder):
    """diffusers' own inpainting pipeline over fresh copies of the tiny model's components."""
    from diffusers import DDIMScheduler, StableDiffusionInpaintPipeline

    from tryon_lab.pipelines.loading import load_inpaint_pipeline

    base = load_inpaint_pipeline(folder, device="cpu")
    pipe = StableDiffusionInpaintPipeline(
        vae=base.vae, text_encoder=base.text_encoder, tokenizer=base.tokenizer, unet=base.unet,
        scheduler=DDIMScheduler.from_config(base.scheduler.config), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _noise(unet, embeds, seed=0):
    """The U-Net's noise prediction for a fixed random 9-channel input."""
    size = unet.config.sample_size
    sample = torch.randn(1, unet.config.in_channels, size, size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return unet(sample, 500, encoder_hidden_states=embeds).sample


def _embeds(pipe, prompt):
    ids = pipe.tokenizer(prompt, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                         return_tensors="pt").input_ids
    with torch.no_grad():
        return pipe.text_encoder(ids)[0]


def test_a_lora_garment_is_saved_in_diffusers_layout(garment):
    from safetensors import safe_open

    folder, result = garment
    assert {"pytorch_lora_weights.safetensors", "learned_embeds.safetensors", "dreambooth.json"} <= \
        {p.name for p in folder.iterdir()}
    with safe_open(folder / "pytorch_lora_weights.safetensors", "pt") as weights:
        keys, metadata = list(weights.keys()), json.loads(weights.metadata()["lora_adapter_metadata"])
    assert keys and all(k.startswith("unet.") for k in keys)
    assert any(".conv1.lora_A" in k for k in keys)  # Conv2d adapters too
    assert (metadata["unet.r"], metadata["unet.lora_alpha"]) == (4, 8)  # the scale survives
    assert json.loads((folder / "dreambooth.json").read_text())["format"] == "tryon-lab-dreambooth/2"


def test_plain_diffusers_loads_a_lora_garment_and_its_identifier(garment, tiny_pipeline_dir):
    folder, result = garment
    theirs = _diffusers_pipeline(tiny_pipeline_dir)
    theirs.load_lora_weights(folder)
    theirs.load_textual_inversion(folder)
    assert theirs.get_list_adapters() == {"unet": ["default_0"]}
    prompt = result.instance_prompt
    ours = result.pipe  # the pipeline that trained the garment, its adapter active
    assert theirs.tokenizer(prompt).input_ids == ours.tokenizer(prompt).input_ids
    embeds = _embeds(ours, prompt)
    torch.testing.assert_close(_embeds(theirs, prompt), embeds)
    tuned = _noise(theirs.unet, embeds)
    torch.testing.assert_close(tuned, _noise(ours.unet, embeds))
    theirs.unet.disable_adapters()
    assert (tuned - _noise(theirs.unet, embeds)).abs().max() > 1e-3  # the adapter matters


def test_diffusers_paints_a_garment_as_tryon_lab_does(garment, tiny_pipeline_dir):
    """Same components, generator seed, prompt, DDIM steps, guidance and a mask on the 8-px latent
    grid, the garment active in both: diffusers' image is ours (the model's square, `raw`:
    diffusers does not paste back) within one level of 8 bits."""
    from diffusers import DDIMScheduler

    from tryon_lab.data.world import World
    from tryon_lab.pipelines.inpaint import TryOnInpaintPipeline

    folder, result = garment
    theirs = _diffusers_pipeline(tiny_pipeline_dir)
    theirs.load_lora_weights(folder)
    theirs.load_textual_inversion(folder)
    ours = TryOnInpaintPipeline.from_pretrained(tiny_pipeline_dir, inpaint_rule="diffusers", local_files_only=True)
    assert isinstance(ours.scheduler, DDIMScheduler) and isinstance(theirs.scheduler, DDIMScheduler)
    ours.set_progress_bar_config(disable=True)
    adapters = GarmentAdapters(ours)
    adapters.activate(adapters.load(folder).id)
    photo = World(0, 64).sample(3).scene
    mask = np.zeros((64, 64), dtype=bool)
    mask[16:48, 8:40] = True
    prompt, run = result.instance_prompt, {"num_inference_steps": 4, "guidance_scale": 4.0, "output_type": "np"}

    def paint(pipe):
        return np.asarray(pipe(photo, mask, prompt, generator=torch.Generator().manual_seed(0), **run).raw[0], dtype=int)

    tuned = paint(ours)
    painted = theirs(prompt=prompt, image=photo, mask_image=Image.fromarray(mask), height=64, width=64,
                     generator=torch.Generator().manual_seed(0), **run).images[0]
    assert np.abs(tuned - np.round(painted * 255).astype(int)).max() <= 1
    adapters.deactivate()
    assert np.abs(paint(ours) - tuned).max() > 8  # the garment changed the picture


def _script_lora(folder, tiny_pipeline_dir, text_encoder=False, seed=0):
    """Random non-zero LoRA layers saved as diffusers' examples/dreambooth/train_dreambooth_lora.py
    saves them at the end of training (its target modules, alpha = rank, keys converted to
    diffusers' names, no tryon-lab record); returns the pipeline whose adapters they are."""
    from diffusers.loaders import StableDiffusionLoraLoaderMixin
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from tryon_lab.pipelines.loading import load_inpaint_pipeline

    pipe = load_inpaint_pipeline(tiny_pipeline_dir, device="cpu")
    pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian",
                                     target_modules=["to_k", "to_q", "to_v", "to_out.0", "add_k_proj", "add_v_proj"]))
    if text_encoder:
        pipe.text_encoder.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian",
                                                 target_modules=["q_proj", "k_proj", "v_proj", "out_proj"]))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in (pipe.unet, pipe.text_encoder):
            for name, weight in module.named_parameters():
                if "lora_B" in name:
                    weight.copy_(0.1 * torch.randn(weight.shape, generator=generator))
    StableDiffusionLoraLoaderMixin.save_lora_weights(
        save_directory=folder,
        unet_lora_layers=convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.unet)),
        text_encoder_lora_layers=(convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.text_encoder))
                                  if text_encoder else None))
    return pipe


def test_a_diffusers_dreambooth_lora_folder_joins_the_catalog(tiny_pipeline_dir, tmp_path):
    from tryon_lab.app.finetuned import FineTunedGarments
    from tryon_lab.pipelines.loading import load_inpaint_pipeline

    red = _script_lora(tmp_path / "red-tee", tiny_pipeline_dir)
    shop = _script_lora(tmp_path / "shop-item-7", tiny_pipeline_dir, text_encoder=True, seed=1)
    (tmp_path / "shop-item-7" / "README.md").write_text(  # the model card the script writes with --push_to_hub
        "---\nlibrary_name: diffusers\ninstance_prompt: a photo of a person wearing a zwx dress\n---\n# LoRA\n")
    (tmp_path / "runs").mkdir()  # not a garment: ignored
    entries = {e.id: e for e in finetuned_catalog(tmp_path)}
    assert list(entries) == ["red-tee", "shop-item-7"]
    assert entries["red-tee"] == FineTunedGarment(
        id="red-tee", kind="garment", category="tee", colour=None, pattern=None, caption_phrase="red tee", file=None,
        prompt="a photo of a person wearing a red tee", token=None, adapter=(tmp_path / "red-tee").resolve(),
        mode="lora")
    assert entries["shop-item-7"].category == "dress"
    assert entries["shop-item-7"].prompt == "a photo of a person wearing a zwx dress"
    assert FineTunedGarment.from_folder(tmp_path / "red-tee", prompt="a sks hoodie").category == "hoodie"

    pipe = load_inpaint_pipeline(tiny_pipeline_dir, device="cpu")
    prompt = "a photo of a person wearing a zwx dress"
    base_text = _embeds(pipe, prompt)
    base = _noise(pipe.unet, base_text)
    adapters = GarmentAdapters(pipe)
    assert [g.id for g in adapters.load_all(tmp_path)] == ["red-tee", "shop-item-7"]
    assert torch.equal(_noise(pipe.unet, base_text), base)  # loaded, not active
    adapters.activate("red-tee")
    tuned = _noise(pipe.unet, base_text)
    assert (tuned - base).abs().max() > 1e-3
    torch.testing.assert_close(tuned, _noise(red.unet, base_text))
    torch.testing.assert_close(_embeds(pipe, prompt), base_text)  # a U-Net-only LoRA leaves the text encoder
    adapters.activate("shop-item-7")
    text = _embeds(pipe, prompt)
    torch.testing.assert_close(text, _embeds(shop, prompt))
    assert (text - base_text).abs().max() > 1e-3
    torch.testing.assert_close(_noise(pipe.unet, text), _noise(shop.unet, text))
    adapters.activate("red-tee")
    torch.testing.assert_close(_embeds(pipe, prompt), base_text)
    adapters.deactivate()
    assert torch.equal(_embeds(pipe, prompt), base_text) and torch.equal(_noise(pipe.unet, base_text), base)

    room = FineTunedGarments(SimpleNamespace(name="PyTorch", pipe=load_inpaint_pipeline(tiny_pipeline_dir, "cpu")),
                             tmp_path)
    assert [(i.id, i.category, i.phrase) for i in room.items] == [
        ("finetuned-red-tee", "tee", "red tee"), ("finetuned-shop-item-7", "dress", "shop item 7")]
    assert room.items[1].prompt() == prompt and not room.skipped
    room.use(room.items[0])
    assert room.adapters.active == "red-tee"


def test_first_layout_garments_still_load(garment, tiny_pipeline_dir, tmp_path):
    """Format 1: U-Net keys without the `unet.` prefix and token_embedding.safetensors."""
    from safetensors.torch import save_file

    from tryon_lab.pipelines.loading import load_inpaint_pipeline

    folder, result = garment
    old = tmp_path / "old"
    old.mkdir()
    result.pipe.unet.save_lora_adapter(old, adapter_name=result.adapter_name,
                                       weight_name="pytorch_lora_weights.safetensors")
    token_id = result.pipe.tokenizer.convert_tokens_to_ids(result.instances.token)
    vector = result.pipe.text_encoder.get_input_embeddings().weight[token_id].detach().clone()
    save_file({result.instances.token: vector}, old / "token_embedding.safetensors")
    record = json.loads((folder / "dreambooth.json").read_text())
    (old / "dreambooth.json").write_text(json.dumps({**record, "format": "tryon-lab-dreambooth/1"}))

    prompt = result.instance_prompt
    pipe = load_inpaint_pipeline(tiny_pipeline_dir, device="cpu")
    adapters = GarmentAdapters(pipe)
    adapters.activate(adapters.load(old).id)
    embeds = _embeds(pipe, prompt)
    torch.testing.assert_close(embeds, _embeds(result.pipe, prompt))
    torch.testing.assert_close(_noise(pipe.unet, embeds), _noise(result.pipe.unet, embeds))


def test_folders_that_are_no_garment_get_clear_errors(garment, tiny_pipeline_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    from tryon_lab.pipelines.loading import load_inpaint_pipeline

    folder, _ = garment
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"neither a tryon-lab DreamBooth output \(dreambooth.json\) nor a "
                                          r"diffusers LoRA folder \(pytorch_lora_weights.safetensors\)"):
        FineTunedGarment.from_folder(tmp_path / "empty")
    unnamed = tmp_path / "lora-out"
    unnamed.mkdir()
    shutil.copy(folder / "pytorch_lora_weights.safetensors", unnamed)
    with pytest.raises(ConfigError, match="cannot tell which category this LoRA is for"):
        finetuned_catalog(unnamed)
    adapters = GarmentAdapters(load_inpaint_pipeline(tiny_pipeline_dir, device="cpu"))
    with pytest.raises(ConfigError, match="neither a tryon-lab DreamBooth output"):
        adapters.load(tmp_path / "empty")
    sdxl = tmp_path / "sdxl-tee"
    sdxl.mkdir()
    layers = load_file(folder / "pytorch_lora_weights.safetensors")
    save_file({**layers, "text_encoder_2.proj.lora_A.weight": torch.zeros(4, 8)}, sdxl / "pytorch_lora_weights.safetensors")
    with pytest.raises(ConfigError, match="LoRA layers for text_encoder_2, unet; a garment needs U-Net layers"):
        adapters.load(sdxl)
    save_file({}, sdxl / "pytorch_lora_weights.safetensors")
    with pytest.raises(ConfigError, match="holds no LoRA layers"):
        adapters.load(sdxl)
    assert adapters.names == []
