"""LCM-LoRA distillation: the parts agree with diffusers' reference schedulers, training lowers the
consistency loss, the teacher is untouched, and the distilled pipeline samples with LCMScheduler."""

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, LCMScheduler

from tryon_lab.errors import ConfigError, TryOnInputError
from tryon_lab.training.distill import (
    LCM_ADAPTER,
    ConsistencyDistillObjective,
    DDIMSolver,
    DistillSettings,
    ReferenceConditioning,
    TextConditioning,
    boundary_scalings,
    distill_lcm,
)


def test_boundary_scalings_are_lcm_schedulers():
    scheduler = LCMScheduler()
    for t in (0, 1, 19, 259, 999):
        c_skip, c_out = boundary_scalings(torch.tensor([t]))
        ref_skip, ref_out = scheduler.get_scalings_for_boundary_condition_discrete(t)
        assert c_skip.item() == pytest.approx(float(ref_skip), rel=1e-6)
        assert c_out.item() == pytest.approx(float(ref_out), rel=1e-6, abs=1e-12)
    skip0, out0 = boundary_scalings(torch.tensor([0]))
    assert skip0.item() == 1.0 and out0.item() == 0.0


def test_the_teachers_solver_step_is_ddim_schedulers():
    ddim = DDIMScheduler(set_alpha_to_one=False, clip_sample=False, beta_schedule="scaled_linear")
    ddim.set_timesteps(50)
    solver = DDIMSolver(ddim.alphas_cumprod, 50)
    generator = torch.Generator().manual_seed(0)
    x, eps = torch.randn(2, 4, 8, 8, generator=generator), torch.randn(2, 4, 8, 8, generator=generator)
    for index in (0, 1, 25, 49):
        t = int(solver.timesteps[index])
        alpha = ddim.alphas_cumprod[t]
        x0 = (x - (1 - alpha).sqrt() * eps) / alpha.sqrt()
        ours = solver.step(x0, eps, torch.tensor([index, index]))
        reference = ddim.step(eps, t, x).prev_sample
        torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-5)


def _batch(pipe, generator):
    size = pipe.unet.config.sample_size
    return {"latents": torch.randn(2, 4, size, size, generator=generator),
            "masked_latents": torch.randn(2, 4, size, size, generator=generator),
            "mask": (torch.rand(2, 1, size, size, generator=generator) > 0.5).float(),
            "caption": ["a red striped shirt", "a blue plain bag"]}


def test_training_lowers_the_consistency_loss_and_leaves_the_teacher(tiny_pipeline):
    from tryon_lab.training.dreambooth.train import lora_config

    pipe = tiny_pipeline
    pipe.unet.requires_grad_(False)
    pipe.unet.add_adapter(lora_config(8, targets="all"), adapter_name=LCM_ADAPTER)
    conditioning = TextConditioning(pipe.text_encoder, pipe.tokenizer)
    objective = ConsistencyDistillObjective(pipe.unet, conditioning, pipe.scheduler.alphas_cumprod, ddim_timesteps=10)
    batch = _batch(pipe, torch.Generator().manual_seed(1))
    probe = torch.cat([batch["latents"], batch["mask"], batch["masked_latents"]], dim=1)
    hidden = conditioning.embed(batch["caption"])

    def teacher():
        pipe.unet.disable_adapters()
        try:
            return pipe.unet(probe, torch.tensor([500, 500]), encoder_hidden_states=hidden).sample
        finally:
            pipe.unet.enable_adapters()

    def loss():
        torch.manual_seed(0)  # the same timesteps, noise and guidance scales each time
        with torch.no_grad():
            return objective(batch)[0].item()

    before, teacher_before = loss(), teacher()
    params = [p for p in pipe.unet.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=3e-3)
    for _ in range(30):
        torch.manual_seed(0)
        value, _ = objective(batch)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    assert loss() < 0.8 * before
    torch.testing.assert_close(teacher(), teacher_before)


def test_bad_settings_are_refused_before_training():
    with pytest.raises(ConfigError, match="w_min"):
        DistillSettings(steps=1, w_min=5.0, w_max=2.0).check()
    with pytest.raises(ConfigError, match="ddim_timesteps"):
        DDIMSolver(torch.ones(1000), 0)


def _tryon(pipe, steps, guidance):
    import numpy as np

    image = np.full((pipe.resolution, pipe.resolution, 3), 128, np.uint8)
    mask = np.zeros((pipe.resolution, pipe.resolution), np.float32)
    mask[8:24, 8:24] = 1
    timesteps = []
    out = pipe(image, mask, "a red shirt", num_inference_steps=steps, guidance_scale=guidance, seed=0, output_type="np",
               callback_on_step_end=lambda p, i, t, state: timesteps.append(int(t)) or state)
    return out.images[0], timesteps


@pytest.mark.slow
def test_a_distilled_lora_saves_loads_and_samples_in_4_lcm_steps(tiny_pipeline_dir, tmp_path):
    from tryon_lab.pipelines.loading import load_inpaint_pipeline
    from tryon_lab.pipelines.samplers import load_lcm, use_sampler
    from tryon_lab.training.distill import save_lcm

    base = load_inpaint_pipeline(tiny_pipeline_dir)
    ddim_before, _ = _tryon(base, 3, 4.0)
    settings = DistillSettings(steps=2, batch_size=2, dataset_size=4, rank=4, checkpoint_every=2, warmup_steps=0,
                               learning_rate=1e-2)
    pipe, result = distill_lcm(load_inpaint_pipeline(tiny_pipeline_dir), tmp_path / "run", settings)
    assert result.steps == 2 and (tmp_path / "run" / "losses.csv").is_file()
    assert use_sampler(pipe, "lcm").steps == 4
    trained, timesteps = _tryon(pipe, 4, 1.0)
    assert len(timesteps) == 4 and timesteps == sorted(timesteps, reverse=True)

    lora = save_lcm(pipe, tmp_path / "pipeline")
    from safetensors.torch import load_file

    assert {value.dtype for value in load_file(lora / "pytorch_lora_weights.safetensors").values()} == {torch.float16}
    loaded = load_inpaint_pipeline(tiny_pipeline_dir)
    with pytest.raises(TryOnInputError, match="LCM LoRA"):
        use_sampler(loaded, "lcm")
    assert load_lcm(loaded, tmp_path / "pipeline") and not load_lcm(loaded, tmp_path / "nothing")
    use_sampler(loaded, "ddim")
    np.testing.assert_array_equal(_tryon(loaded, 3, 4.0)[0], ddim_before)  # adapter off: the base model exactly
    use_sampler(loaded, "lcm")
    again, _ = _tryon(loaded, 4, 1.0)
    np.testing.assert_allclose(again, trained, atol=2e-3)  # the fp16 file against the fp32 adapter trained
    assert np.abs(again - ddim_before).max() > 0.01


def test_the_distill_recipe_writes_a_scored_lora_into_the_pipeline_folder(tiny_pipeline_dir, tmp_path):
    import json
    import shutil

    from tryon_lab.models.world_encoder import WorldEncoder
    from tryon_lab.pipelines.loading import load_inpaint_pipeline, unet_sha256
    from tryon_lab.pipelines.samplers import load_lcm
    from tryon_lab.profiles import load_profile
    from tryon_lab.training.distill_recipe import distill_pipeline

    pipeline = tmp_path / "pipeline"
    shutil.copytree(tiny_pipeline_dir, pipeline)
    torch.manual_seed(0)
    WorldEncoder.for_world().save_pretrained(tmp_path / "judge")
    folder = distill_pipeline(load_profile("smoke"), pipeline, tmp_path / "run", tmp_path / "judge")
    record = json.loads((folder / "training.json").read_text())
    assert record["base_unet_sha256"] == unet_sha256(pipeline) and record["steps"] == 2
    metrics = record["metrics"]
    for name in ("val_ddim25_attr_acc_all", "val_lcm4_identity_acc", "val_lcm_minus_ddim_identity_acc"):
        assert "[" in metrics[name]  # a value with its interval
    assert metrics["lcm_to_ddim_time_ratio"] > 0  # recorded; on a tiny model under load, timings are noise
    assert "LCM-LoRA" in (folder / "MODEL_CARD.md").read_text() and (folder / "logs" / "lcm_losses.csv").is_file()
    assert load_lcm(load_inpaint_pipeline(pipeline), pipeline)


def test_the_distill_recipe_distils_a_dtc_model_with_its_own_guidance(tiny_pipeline, tmp_path):
    import json

    from tryon_lab.models.world_encoder import WorldEncoder
    from tryon_lab.pipelines.dtc import DTCPipeline
    from tryon_lab.pipelines.loading import load_dtc_pipeline
    from tryon_lab.pipelines.samplers import DTC_GUIDANCE, load_lcm
    from tryon_lab.profiles import load_profile
    from tryon_lab.training.common import module_fingerprint
    from tryon_lab.training.distill_recipe import distill_pipeline

    dtc = tmp_path / "dtc"
    DTCPipeline.from_base(tiny_pipeline, "film").save_pretrained(dtc)
    torch.manual_seed(0)
    WorldEncoder.for_world().save_pretrained(tmp_path / "judge")
    folder = distill_pipeline(load_profile("smoke"), dtc, tmp_path / "run", tmp_path / "judge")
    record = json.loads((folder / "training.json").read_text())
    assert record["settings"]["w_min"] == record["settings"]["w_max"] == DTC_GUIDANCE  # [distill.dtc]
    loaded = load_dtc_pipeline(dtc, device="cpu")
    assert record["unet_fingerprint"] == module_fingerprint(loaded.unet) and "base_unet_sha256" not in record
    assert "[" in record["metrics"]["val_lcm_minus_ddim_attr_acc_all"]
    assert "Diffuse to Choose" in (folder / "MODEL_CARD.md").read_text() and (tmp_path / "run" / "dtc-cache").is_dir()
    assert load_lcm(loaded, dtc)


def test_the_distill_recipe_refuses_a_bad_section_before_any_work(tmp_path):
    from tryon_lab.profiles import Profile
    from tryon_lab.training.distill_recipe import distill_pipeline

    profile = Profile("custom", "", {"distill": {"steps": 2, "rnak": 4}})
    with pytest.raises(ConfigError, match="rnak"):
        distill_pipeline(profile, tmp_path / "nowhere", tmp_path / "run", tmp_path / "judge")
    assert not (tmp_path / "run").exists()


def test_the_lcm_adapter_switches_without_touching_a_garments_adapter(tiny_lcm_pipeline_dir):
    from tryon_lab.pipelines.loading import load_inpaint_pipeline
    from tryon_lab.pipelines.samplers import enabled_adapters, load_lcm, use_sampler
    from tryon_lab.training.dreambooth.train import lora_config

    pipe = load_inpaint_pipeline(tiny_lcm_pipeline_dir)
    assert load_lcm(pipe, tiny_lcm_pipeline_dir) and enabled_adapters(pipe.unet) == []
    use_sampler(pipe, "lcm")
    assert enabled_adapters(pipe.unet) == [LCM_ADAPTER]
    use_sampler(pipe, "ddim")
    assert enabled_adapters(pipe.unet) == []
    pipe.unet.add_adapter(lora_config(4, targets="all"), adapter_name="garment")
    pipe.unet.enable_adapters()
    pipe.unet.set_adapter("garment")
    use_sampler(pipe, "ddim")
    assert enabled_adapters(pipe.unet) == ["garment"]  # the garment stays on
    with pytest.raises(TryOnInputError, match="garment"):
        use_sampler(pipe, "lcm")
    assert enabled_adapters(pipe.unet) == ["garment"]


def test_the_lcm_sampler_merges_its_adapter_and_ddim_restores_the_base_bit_for_bit(tiny_lcm_pipeline_dir):
    """use_sampler("lcm") folds the LoRA into the weights (a step costs what a base step costs) and
    computes what the unmerged adapter computes; switching back gives the base weights exactly."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    from tryon_lab.pipelines.loading import load_inpaint_pipeline
    from tryon_lab.pipelines.samplers import load_lcm, use_sampler

    pipe = load_inpaint_pipeline(tiny_lcm_pipeline_dir, device="cpu")
    load_lcm(pipe, tiny_lcm_pipeline_dir)
    base = {key: value.clone() for key, value in pipe.unet.state_dict().items()}
    size = pipe.unet.config.sample_size
    x = torch.randn(2, 9, size, size, generator=torch.Generator().manual_seed(0))
    embeds = pipe.encode_prompt(["a red tee", "a blue dress"])

    def forward():
        with torch.no_grad():
            return pipe.unet(x, 500, encoder_hidden_states=embeds).sample

    pipe.unet.enable_adapters()
    pipe.unet.set_adapter(LCM_ADAPTER)
    unmerged = forward()
    pipe.unet.disable_adapters()
    use_sampler(pipe, "lcm")
    layers = [m for m in pipe.unet.modules() if isinstance(m, BaseTunerLayer)]
    assert layers and all(m.merged for m in layers)
    torch.testing.assert_close(forward(), unmerged, rtol=1e-4, atol=1e-5)
    use_sampler(pipe, "ddim")
    assert not any(m.merged for m in layers)
    state = pipe.unet.state_dict()
    assert all(torch.equal(state[key], value) for key, value in base.items())
    # the second switch adds the kept updates instead of recomputing them: the same model, the same restore
    use_sampler(pipe, "lcm")
    assert all(m.merged for m in layers)
    torch.testing.assert_close(forward(), unmerged, rtol=1e-4, atol=1e-5)
    use_sampler(pipe, "ddim")
    assert not any(m.merged for m in layers)
    state = pipe.unet.state_dict()
    assert all(torch.equal(state[key], value) for key, value in base.items())


def test_a_dtc_teacher_guides_against_the_null_reference_and_the_empty_hint(tiny_pipeline):
    from tryon_lab.models.channels import inpaint_channels
    from tryon_lab.models.dtc import EMPTY_HINT, dtc_unet_forward
    from tryon_lab.pipelines.dtc import DTCPipeline, reference_size

    pipe = DTCPipeline.from_base(tiny_pipeline, "film")
    with torch.no_grad():
        for parameter in pipe.hint_encoder.parameters():  # a trained-looking hint path, not the zero init
            parameter.add_(0.05 * torch.randn_like(parameter))
    generator = torch.Generator().manual_seed(0)
    batch = _batch(pipe, generator)
    side, pixels = reference_size(pipe.resolution), pipe.resolution
    batch["reference"] = torch.randint(0, 256, (2, 3, side, side), generator=generator, dtype=torch.uint8)
    batch["hint"] = torch.randint(0, 256, (2, 3, pixels, pixels), generator=generator, dtype=torch.uint8)
    conditioning = ReferenceConditioning(pipe.image_encoder, pipe.hint_encoder)
    model_in = torch.cat([batch["latents"], inpaint_channels(batch["mask"], batch["masked_latents"])], dim=1)
    t = torch.tensor([500, 500])
    with torch.no_grad():
        condition, pair = conditioning.encode(batch)
        guided = conditioning.predict(pipe.unet, model_in.repeat(2, 1, 1, 1), t.repeat(2), pair)
        conditional = conditioning.predict(pipe.unet, model_in, t, condition)
        null = pipe.image_encoder.null(2)
        empty = torch.full((2, 3, pixels, pixels), EMPTY_HINT)
        unconditional = dtc_unet_forward(pipe.unet, model_in, t, null, pipe.hint_encoder(
            batch["masked_latents"], batch["mask"], empty, null))
    torch.testing.assert_close(guided[2:], conditional, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(guided[:2], unconditional, rtol=1e-4, atol=1e-5)
    assert (conditional - unconditional).abs().max() > 1e-3


@pytest.mark.slow
def test_a_dtc_model_distils_into_its_own_lcm_lora_that_the_cli_samples(tiny_pipeline, tmp_path, capsys):
    from PIL import Image

    from tryon_lab.cli import main
    from tryon_lab.data.world import World
    from tryon_lab.pipelines.dtc import DTCPipeline
    from tryon_lab.pipelines.loading import load_dtc_pipeline
    from tryon_lab.pipelines.samplers import load_lcm, use_sampler
    from tryon_lab.training.distill import save_lcm

    folder, plain = tmp_path / "dtc", tmp_path / "dtc-without-lcm"
    DTCPipeline.from_base(tiny_pipeline, "film").save_pretrained(folder)
    DTCPipeline.from_base(tiny_pipeline, "film").save_pretrained(plain)
    sample = World(0, 64).sample(0, split="val")

    def tryon(pipe, steps, guidance):
        return pipe(sample.scene, sample.shape_mask, sample.reference, num_inference_steps=steps,
                    guidance_scale=guidance, seed=0, output_type="np").images[0]

    before = tryon(load_dtc_pipeline(folder, device="cpu"), 3, 5.0)
    settings = DistillSettings(steps=2, batch_size=2, dataset_size=4, rank=4, checkpoint_every=2, warmup_steps=0,
                               learning_rate=1e-2, w_min=5.0, w_max=5.0)
    pipe, result = distill_lcm(load_dtc_pipeline(folder, device="cpu"), tmp_path / "run", settings)
    assert result.steps == 2 and (tmp_path / "run" / "dtc-cache").is_dir()
    save_lcm(pipe, folder)
    loaded = load_dtc_pipeline(folder, device="cpu")
    assert load_lcm(loaded, folder)
    use_sampler(loaded, "ddim")
    np.testing.assert_array_equal(tryon(loaded, 3, 5.0), before)  # adapter off: the DTC model exactly
    use_sampler(loaded, "lcm")
    assert np.abs(tryon(loaded, 4, 1.0) - before).max() > 0.01

    sample.scene.save(tmp_path / "scene.png")
    Image.fromarray(sample.shape_mask.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    sample.reference.save(tmp_path / "item.png")
    argv = ["tryon", "--person", str(tmp_path / "scene.png"), "--mask", str(tmp_path / "mask.png"),
            "--reference", str(tmp_path / "item.png"), "--sampler", "lcm"]
    assert main([*argv, "--model", str(folder), "--out", str(tmp_path / "lcm.png")]) == 0
    assert (tmp_path / "lcm.png").is_file()
    assert main([*argv, "--model", str(plain), "--out", str(tmp_path / "none.png")]) == 2
    assert "has no LCM LoRA" in capsys.readouterr().err and not (tmp_path / "none.png").exists()
