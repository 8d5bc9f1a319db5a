"""Diffuse to Choose on tiny random models: FiLM / addition start as the identity, shapes and
weight copying, cached hint modulation equals recomputation, save / load, exact paste-back,
training lowers the loss, and the ablation runner end to end (resumable)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tryon_lab.data.world import World
from tryon_lab.errors import ConfigError
from tryon_lab.models.dtc import (
    HintEncoder,
    PerceptualNet,
    ReferenceEncoder,
    dtc_unet_forward,
    skip_channels,
    unet_encode,
    unet_time_embedding,
)
from tryon_lab.pipelines.dtc import DTCPipeline


@pytest.fixture(scope="module")
def base(tiny_pipeline_dir):
    from tryon_lab.pipelines.loading import load_inpaint_pipeline

    torch.manual_seed(0)
    return load_inpaint_pipeline(tiny_pipeline_dir, device="cpu")


@pytest.fixture(scope="module")
def film_pipe(base):
    torch.manual_seed(1)
    pipe = DTCPipeline.from_base(base, "film")
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture()
def scene():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, size=(90, 70, 3), dtype=np.uint8))
    mask = np.zeros((90, 70), dtype=bool)
    mask[20:60, 15:50] = True
    reference = Image.fromarray(rng.integers(0, 255, size=(40, 30, 3), dtype=np.uint8))
    return image, mask, reference


def _perturb(module: torch.nn.Module, seed: int = 0, scale: float = 0.05) -> None:
    """Move the zero-initialised fusion layers away from the identity, so the hint matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.fusion_layers.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * scale)


def _inputs(unet, batch=2, tokens=65):
    gen = torch.Generator().manual_seed(0)
    sample = torch.randn(batch, 9, 8, 8, generator=gen)
    context = torch.randn(batch, tokens, unet.config.cross_attention_dim, generator=gen)
    hint = torch.rand(batch, 3, 64, 64, generator=gen) * 2 - 1
    return sample, torch.tensor([20, 700]), context, hint


@pytest.mark.parametrize("fusion,film_mode,timestep", [("film", "spatial", False), ("film", "channel", False),
                                                       ("film", "spatial", True), ("add", "spatial", False)])
def test_fusion_is_exactly_the_identity_at_init(base, fusion, film_mode, timestep):
    unet = base.unet
    hint_encoder = HintEncoder.from_unet(unet, fusion=fusion, film_mode=film_mode, timestep_conditioning=timestep)
    sample, t, context, hint = _inputs(unet)
    with torch.no_grad():
        modulation = hint_encoder(sample[:, 5:], sample[:, 4:5], hint, context, timestep=t if timestep else None)
        plain = unet(sample, t, encoder_hidden_states=context).sample
        fused = dtc_unet_forward(unet, sample, t, context, modulation)
    assert (modulation.scales is None) == (fusion == "add")
    if modulation.scales is not None:
        assert all(torch.equal(g, torch.ones_like(g)) for g in modulation.scales)
    assert all(torch.equal(b, torch.zeros_like(b)) for b in modulation.shifts)
    assert torch.equal(fused, plain)
    _perturb(hint_encoder)
    with torch.no_grad():
        modulation = hint_encoder(sample[:, 5:], sample[:, 4:5], hint, context, timestep=t if timestep else None)
        assert not torch.allclose(dtc_unet_forward(unet, sample, t, context, modulation), plain)


def test_shapes_and_copied_weights(base):
    unet = base.unet
    hint_encoder = HintEncoder.from_unet(unet, fusion="film")
    sample, t, context, hint = _inputs(unet)
    with torch.no_grad():
        emb = unet_time_embedding(unet, sample, t)
        skips, mid = unet_encode(unet, sample, emb, context)
        features = hint_encoder.features(sample[:, 5:], sample[:, 4:5], hint, context)
        modulation = hint_encoder.modulation(features)
    assert len(features) == len(skips) + 1 == len(skip_channels(unet)) == len(modulation)
    for feature, skip, gamma in zip(features, (*skips, mid), modulation.scales):
        assert feature.shape == skip.shape == gamma.shape
    assert hint_encoder.adapter(hint).shape == (2, 4, 8, 8)
    # the secondary encoder is a copy of the main encoder: down and mid blocks, mask/masked-latent input channels
    for name in ("down_blocks", "mid_block"):
        ours, theirs = getattr(hint_encoder.encoder, name).state_dict(), getattr(unet, name).state_dict()
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert torch.equal(hint_encoder.encoder.conv_in.weight, unet.conv_in.weight[:, 4:])
    # with a zero hint the secondary encoder's conv_in computes the main conv_in's mask and masked-latent part
    with torch.no_grad():
        blank = hint_encoder.encoder.conv_in(torch.cat([sample[:, 4:5], sample[:, 5:]], dim=1))
        main = torch.nn.functional.conv2d(sample[:, 4:], unet.conv_in.weight[:, 4:], unet.conv_in.bias, padding=1)
    assert torch.allclose(blank, main, atol=1e-6)
    assert not hasattr(hint_encoder.encoder, "up_blocks")
    # reference tokens: 8x8 cells + a pooled token, of the U-Net's cross-attention width
    encoder = ReferenceEncoder(cross_attention_dim=32, image_size=32, channels=(16, 32))
    tokens = encoder(torch.rand(3, 3, 50, 40) * 2 - 1)
    assert tokens.shape == (3, 65, 32)
    dropped = encoder.tokens(torch.rand(2, 3, 32, 32), drop=torch.tensor([True, False]))
    assert torch.equal(dropped[0], encoder.null_tokens[0]) and not torch.equal(dropped[1], encoder.null_tokens[0])


def test_cached_hint_modulation_equals_recomputing_it(film_pipe, scene):
    image, mask, reference = scene
    _perturb(film_pipe.hint_encoder)
    try:
        cached = film_pipe(image, mask, reference, num_inference_steps=3, seed=2, output_type="np").images
        again = film_pipe(image, mask, reference, num_inference_steps=3, seed=2, output_type="np", cache_hint=False).images
        assert np.array_equal(cached, again)
        # the hint matters once FiLM left the identity: another reference gives another result
        other = film_pipe(image, mask, Image.new("RGB", (8, 8), (255, 0, 0)), num_inference_steps=3, seed=2,
                          output_type="np").images
        assert not np.array_equal(cached, other)
    finally:
        for layer in film_pipe.hint_encoder.fusion_layers:
            torch.nn.init.zeros_(layer.weight)
            torch.nn.init.zeros_(layer.bias)


def test_outside_the_mask_is_exact_and_seeds_callbacks_interrupt_work(film_pipe, scene):
    image, mask, reference = scene
    out = film_pipe(image, mask, reference, num_inference_steps=3, seed=1)
    before, after = np.asarray(image), np.asarray(out.images[0])
    assert after.shape == before.shape and np.array_equal(before[~mask], after[~mask])
    assert (before[mask] != after[mask]).mean() > 0.5
    assert out.raw[0].size == (64, 64)
    again = film_pipe(image, mask, reference, num_inference_steps=3, seed=1).images[0]
    assert np.array_equal(after, np.asarray(again))
    seen = []

    def callback(pipe, step, t, state):
        seen.append(tuple(state["latents"].shape))
        if step == 1:
            pipe.interrupt()
        return state

    film_pipe([image, image], [mask, mask], reference, num_inference_steps=5, seed=0, callback_on_step_end=callback)
    assert seen == [(2, 4, 8, 8)] * 2


def test_timestep_conditioned_hint_encoder_runs_in_the_pipeline(base, scene):
    image, mask, reference = scene
    pipe = DTCPipeline.from_base(base, "film", timestep_conditioning=True)
    pipe.set_progress_bar_config(disable=True)
    assert "time_embedding" in dict(pipe.hint_encoder.encoder.named_children())
    out = pipe(image, mask, reference, num_inference_steps=2, seed=0).images[0]
    assert np.array_equal(np.asarray(out)[~mask], np.asarray(image)[~mask])


@pytest.mark.parametrize("fusion", ["add", None])
def test_save_load_round_trip(base, scene, tmp_path, fusion):
    image, mask, reference = scene
    pipe = DTCPipeline.from_base(base, fusion)
    if fusion is not None:
        _perturb(pipe.hint_encoder)
    pipe.set_progress_bar_config(disable=True)
    pipe.save_pretrained(tmp_path / "dtc")
    loaded = DTCPipeline.from_pretrained(tmp_path / "dtc", local_files_only=True)
    loaded.set_progress_bar_config(disable=True)
    assert (loaded.hint_encoder is None) == (fusion is None)
    if fusion is not None:
        assert loaded.hint_encoder.config.fusion == fusion
        index = json.loads((tmp_path / "dtc" / "model_index.json").read_text())
        assert index["hint_encoder"] == ["tryon_lab.models.dtc", "HintEncoder"]
    a = pipe(image, mask, reference, num_inference_steps=2, seed=3, output_type="np").images
    b = loaded(image, mask, reference, num_inference_steps=2, seed=3, output_type="np").images
    # same weights, separately allocated: CPU kernels may round differently (~1e-7), at most one 8-bit level
    assert np.abs(a - b).max() <= 1 / 255 + 1e-6


def test_the_hint_layout_is_saved_with_the_pipeline_and_builds_its_hints(base, scene, tmp_path):
    from tryon_lab.data.masks import make_collage
    from tryon_lab.errors import TryOnInputError
    from tryon_lab.pipelines.latents import pil_to_tensor
    from tryon_lab.training.dtc import DTCSettings

    _, mask, reference = scene
    mask = mask.copy()
    mask[60:80, 15:30] = True  # an L: its bounding box is not its largest rectangle
    DTCPipeline.from_base(base, "film", hint_layout="box").save_pretrained(tmp_path / "box")
    loaded = DTCPipeline.from_pretrained(tmp_path / "box", local_files_only=True)
    assert loaded.config.hint_layout == "box"
    expected = pil_to_tensor(make_collage(reference, mask, layout="box"))
    assert torch.equal(loaded.make_hints([reference], [mask])[0], expected)
    assert not torch.equal(expected, pil_to_tensor(make_collage(reference, mask)))
    index = tmp_path / "box" / "model_index.json"  # a folder saved before the layout was a choice
    index.write_text(json.dumps({k: v for k, v in json.loads(index.read_text()).items() if k != "hint_layout"}))
    assert DTCPipeline.from_pretrained(tmp_path / "box", local_files_only=True).config.hint_layout == "rectangle"
    with pytest.raises(ConfigError, match=r"\[dtc.train\] hint_layout"):  # refused before any cache or training
        DTCSettings(steps=1, hint_layout="grid")
    with pytest.raises(TryOnInputError, match="hint_layout"):
        DTCPipeline.from_base(base, "film", hint_layout="grid")


def test_a_few_training_steps_lower_the_loss(base, tmp_path):
    from diffusers import DDPMScheduler

    from tryon_lab.training.dtc import (
        DTCCache,
        DTCObjective,
        ShapeOrBoxDTCDataset,
        build_dtc_cache,
    )

    dataset = ShapeOrBoxDTCDataset(World(seed=0, resolution=64), "train", 4)
    assert {dataset.uses_box(i) for i in range(16)} == {True, False}
    rng = torch.get_rng_state()
    cache = DTCCache(build_dtc_cache(base.vae, dataset, tmp_path / "cache", reference_size=32,
                                     inpaint_rule=base.inpaint_rule))
    assert torch.equal(torch.get_rng_state(), rng)  # a run that builds its cache trains as one that loads it
    batch = next(iter(torch.utils.data.DataLoader(cache, batch_size=4)))
    assert batch["hint"].dtype == torch.uint8 and batch["reference"].shape == (4, 3, 32, 32)
    torch.manual_seed(0)
    pipe = DTCPipeline.from_base(base, "film")
    objective = DTCObjective(pipe.unet, pipe.image_encoder, pipe.hint_encoder,
                             DDPMScheduler.from_config(base.scheduler.config), vae=base.vae,
                             perceptual=PerceptualNet(channels=(8, 8, 16, 16, 16)), perceptual_batch=2, drop_rate=0.5)

    def loss_at_fixed_noise() -> float:
        torch.manual_seed(123)
        with torch.no_grad():
            return float(objective(batch)[0])

    before = loss_at_fixed_noise()
    optimizer = torch.optim.AdamW([p for p in objective.parameters() if p.requires_grad], lr=1e-3)
    objective.train()
    for step in range(12):
        torch.manual_seed(step)
        loss, logs = objective(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert set(logs) == {"diffusion", "perceptual"}
    assert not any(p.requires_grad for p in objective.vae.parameters())
    assert objective.hint_encoder.fusion_layers[0].weight.abs().sum() > 0  # FiLM left the identity
    assert loss_at_fixed_noise() < before


def test_ablation_runner_trains_scores_and_resumes(base, tiny_pipeline_dir, tmp_path):
    from tryon_lab.training.dtc import (
        AblationSettings,
        DTCSettings,
        PerceptualSettings,
        ablation_table,
        run_ablation,
        train_dtc,
        train_perceptual_net,
    )

    train_perceptual_net(tmp_path / "perc-run", PerceptualSettings(steps=1, batch_size=2, dataset_size=4, crop_size=32),
                         resolution=64, out_dir=tmp_path / "perceptual")
    settings = AblationSettings(
        train=DTCSettings(steps=2, batch_size=2, dataset_size=4, checkpoint_every=1, perceptual_batch=1, warmup_steps=1,
                          unet="lora", unet_lora_rank=2),
        variants=("baseline", "film", "film+perceptual"), seeds=(0, 1), seed_variants=("baseline",), eval_samples=2,
        val_samples=2, sample_steps=1, guidance_scale=2.0, bootstrap_resamples=20)
    result = run_ablation(tiny_pipeline_dir, tmp_path / "ablation", settings, perceptual_dir=tmp_path / "perceptual")
    assert list(result.test) == list(result.scores["val"]) == ["baseline", "film", "film+perceptual"]
    scores = result.test["baseline"]
    assert len(scores["masked_psnr_db_seeds"]) == 2 and len(result.test["film"]["masked_psnr_db_seeds"]) == 1
    assert scores["masked_psnr_db_lo"] <= scores["masked_psnr_db"] <= scores["masked_psnr_db_hi"]
    assert np.isclose(scores["masked_psnr_db"], np.mean(scores["masked_psnr_db_seeds"]))
    assert {(r["a"], r["b"]) for r in result.comparisons} == {("film", "baseline"), ("film+perceptual", "film")}
    assert set(result.wall_seconds) == {"baseline/seed-0", "baseline/seed-1", "film/seed-0", "film+perceptual/seed-0"}
    folder = tmp_path / "ablation" / "film+perceptual" / "seed-0"
    assert (folder / "pipeline" / "hint_encoder" / "config.json").is_file()
    assert "perceptual" in (folder / "losses.csv").read_text().splitlines()[0]
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "ablation").rglob("*.safetensors")}
    again = run_ablation(tiny_pipeline_dir, tmp_path / "ablation", settings, perceptual_dir=tmp_path / "perceptual")
    assert again.to_json() == result.to_json()
    assert before == {p: p.stat().st_mtime_ns for p in (tmp_path / "ablation").rglob("*.safetensors")}
    # a variant's run resumes from its newest checkpoint instead of training again
    _, loop = train_dtc(base, tmp_path / "ablation" / "baseline" / "seed-0", settings.train, fusion=None,
                        cache_dir=tmp_path / "ablation" / "dtc-cache")
    assert loop.resumed_from == 2
    table = ablation_table(result.test)
    assert table.count("\n") == 4 and "film+perceptual" in table and "(seeds " in table


def test_ablation_runs_train_in_worker_processes_as_they_train_here(tiny_pipeline_dir, tmp_path):
    """``jobs`` > 1 (a GPU lease runs every run at once): the same scores as one run after another."""
    from tryon_lab.pipelines.loading import LORA_WEIGHTS
    from tryon_lab.training.dtc import AblationSettings, DTCSettings, run_ablation
    from tryon_lab.training.dtc.ablation import LORA_FOLDER, VAL_FILE

    settings = AblationSettings(
        train=DTCSettings(steps=2, batch_size=2, dataset_size=4, checkpoint_every=2, warmup_steps=1, unet="lora",
                          unet_lora_rank=2),
        variants=("baseline", "film"), eval_samples=2, val_samples=2, sample_steps=1, guidance_scale=2.0,
        bootstrap_resamples=20)
    here = run_ablation(tiny_pipeline_dir, tmp_path / "here", settings, perceptual_dir=None)
    workers = run_ablation(tiny_pipeline_dir, tmp_path / "workers", settings, perceptual_dir=None, jobs=2)
    for split in ("val", "test"):
        for variant in ("baseline", "film"):
            np.testing.assert_allclose(workers.scores[split][variant]["masked_psnr_db"],
                                       here.scores[split][variant]["masked_psnr_db"], rtol=1e-4)
    assert (tmp_path / "workers" / "film" / "seed-0" / LORA_FOLDER / LORA_WEIGHTS).is_file()
    assert set(json.loads((tmp_path / "workers" / VAL_FILE).read_text())) == {"baseline", "film"}
    with pytest.raises(ConfigError, match="folder"):
        run_ablation(object(), tmp_path / "x", settings, perceptual_dir=None, jobs=2)


def test_a_cache_built_with_other_settings_is_rebuilt_not_refused(base, tmp_path, capsys):
    """One profile's DTC cache, then another profile's run in the same folder (the course re-runs cleanly)."""
    from accelerate import Accelerator

    from tryon_lab.training.dtc import ensure_dtc_cache

    accelerator, world = Accelerator(cpu=True), World(seed=0, resolution=64)
    smoke = ensure_dtc_cache(accelerator, base.vae, world, tmp_path / "cache", 4, 32, base.inpaint_rule)
    assert len(smoke) == 4 and smoke.record["pairs"] == "4"
    stamp = (tmp_path / "cache" / "dtc.safetensors").stat().st_mtime_ns
    assert len(ensure_dtc_cache(accelerator, base.vae, world, tmp_path / "cache", 4, 32, base.inpaint_rule)) == 4
    assert (tmp_path / "cache" / "dtc.safetensors").stat().st_mtime_ns == stamp, "a matching cache is reused"
    bigger = ensure_dtc_cache(accelerator, base.vae, world, tmp_path / "cache", 6, 32, base.inpaint_rule)
    assert len(bigger) == 6 and "rebuilding" in capsys.readouterr().out
    other_world = ensure_dtc_cache(accelerator, base.vae, World(seed=1, resolution=64), tmp_path / "cache", 6, 32,
                                   base.inpaint_rule)
    assert other_world.record["world"] == repr(World(seed=1, resolution=64))
    assert not torch.equal(other_world.tensors["latents"], bigger.tensors["latents"])
    boxed = ensure_dtc_cache(accelerator, base.vae, World(seed=1, resolution=64), tmp_path / "cache", 6, 32,
                             base.inpaint_rule, hint_layout="box")
    assert boxed.record["hint_layout"] == "box" and other_world.record["hint_layout"] == "rectangle"
    assert torch.equal(boxed.tensors["latents"], other_world.tensors["latents"])  # the same pairs, other hints
    assert not torch.equal(boxed.tensors["hints"], other_world.tensors["hints"])


def test_the_shipped_dtc_loads_every_saved_weight_and_config_field():
    """data/models/dtc was saved before the FiLM output was called modulation: its weight keys and
    config fields must still be exactly the HintEncoder's."""
    from safetensors.torch import load_file

    from tryon_lab.paths import data_dir
    from tryon_lab.pipelines.loading import load_dtc_pipeline

    folder = data_dir() / "models" / "dtc" / "hint_encoder"
    if not (folder / "config.json").is_file():
        pytest.skip("no shipped DTC model")
    saved = load_file(folder / "diffusion_pytorch_model.safetensors")
    encoder = load_dtc_pipeline(device="cpu").hint_encoder
    state = encoder.state_dict()
    assert set(saved) == set(state)
    assert all(torch.equal(saved[key], state[key].to(saved[key].dtype)) for key in saved)
    config = {k: v for k, v in json.loads((folder / "config.json").read_text()).items() if not k.startswith("_")}
    assert json.loads(json.dumps({k: encoder.config[k] for k in config})) == config


def test_a_wider_latent_gets_the_same_dtc_model_and_try_on(tmp_path, scene, tiny16_config):
    from tryon_lab.models.tiny import make_random_pipeline

    torch.manual_seed(0)
    pipe = DTCPipeline.from_base(make_random_pipeline(str(tiny16_config), tmp_path / "base"), "film")
    pipe.set_progress_bar_config(disable=True)
    assert pipe.hint_encoder.encoder.conv_in.in_channels == 17  # mask 1 + masked-image latent (with hint) 16
    image, mask, reference = scene
    out = pipe(image, mask, reference, num_inference_steps=2, seed=0).images[0]
    before, after = np.asarray(image), np.asarray(out)
    assert after.shape == before.shape and np.array_equal(before[~mask], after[~mask])
