"""The lcm sampler's fast VAE: shaped into the base VAE's latent space, trained toward it, attached
by ``load_lcm``, used by the lcm sampler only, fused into an export, and written by its recipe."""

import json
import shutil

import numpy as np
import pytest
import torch

from tryon_lab.errors import ConfigError
from tryon_lab.pipelines.samplers import FAST_VAE_FOLDER, load_fast_vae, load_lcm, use_sampler
from tryon_lab.training.fast_vae import FastVAEObjective, FastVAESettings, build_fast_vae

TINY = {"block_out_channels": [8, 8, 8, 8], "encoder_block_out_channels": [4, 4, 8, 8], "norm_num_groups": 4}


def test_the_fast_vae_shares_the_base_latent_space_and_bad_widths_are_refused(tiny_pipeline):
    base = tiny_pipeline.vae
    fast = build_fast_vae(base, FastVAESettings(steps=1, **TINY))
    assert fast.config.latent_channels == base.config.latent_channels
    assert fast.config.scaling_factor == base.config.scaling_factor
    assert sum(p.numel() for p in fast.parameters()) < sum(p.numel() for p in base.parameters())
    assert fast.encoder.conv_in.out_channels == 4 and fast.decoder.conv_out.in_channels == 8  # each its own widths
    image = torch.zeros(1, 3, 64, 64)
    assert fast.encode(image).latent_dist.mode().shape == base.encode(image).latent_dist.mode().shape
    with pytest.raises(ConfigError, match="4 levels"):
        FastVAESettings(steps=1, block_out_channels=[8, 8], norm_num_groups=4).check(base)
    with pytest.raises(ConfigError, match="encoder_block_out_channels needs 4 levels"):
        FastVAESettings(steps=1, **{**TINY, "encoder_block_out_channels": [4, 8]}).check(base)
    with pytest.raises(ConfigError, match="multiples of norm_num_groups"):
        FastVAESettings(steps=1, block_out_channels=[6, 8, 8, 8], norm_num_groups=4).check(base)
    with pytest.raises(ConfigError, match=r"encoder_block_out_channels \[4, 4, 6, 8\] must be multiples"):
        FastVAESettings(steps=1, **{**TINY, "encoder_block_out_channels": [4, 4, 6, 8]}).check(base)
    with pytest.raises(ConfigError, match="crop"):
        FastVAESettings(steps=1, crop=20, **TINY).check(base)


def test_a_fast_vae_folder_loads_back_and_a_symmetric_one_computes_what_autoencoderkl_does(tiny_pipeline, tmp_path):
    from diffusers import AutoencoderKL

    from tryon_lab.models.fast_autoencoder import FastAutoencoderKL

    torch.manual_seed(0)
    fast = build_fast_vae(tiny_pipeline.vae, FastVAESettings(steps=1, **TINY)).eval()
    fast.save_pretrained(tmp_path / "fast")
    image = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        again = FastAutoencoderKL.from_pretrained(tmp_path / "fast").eval()
        assert again.config.encoder_block_out_channels == [4, 4, 8, 8]
        torch.testing.assert_close(again.encode(image).latent_dist.mode(), fast.encode(image).latent_dist.mode(),
                                   rtol=0, atol=0)
        # a plain AutoencoderKL folder (a fast VAE written before the encoder had widths of its own)
        tiny_pipeline.vae.save_pretrained(tmp_path / "plain")
        plain = FastAutoencoderKL.from_pretrained(tmp_path / "plain").eval()
        reference = AutoencoderKL.from_pretrained(tmp_path / "plain").eval()
        latent = reference.encode(image).latent_dist.mode()
        torch.testing.assert_close(plain.encode(image).latent_dist.mode(), latent, rtol=0, atol=0)
        torch.testing.assert_close(plain.decode(latent).sample, reference.decode(latent).sample, rtol=0, atol=0)


def test_training_moves_the_student_toward_the_base_vae_and_leaves_it_alone(tiny_pipeline):
    base = tiny_pipeline.vae
    torch.manual_seed(0)
    objective = FastVAEObjective(build_fast_vae(base, FastVAESettings(steps=1, **TINY)), base, crop=32)
    generator = torch.Generator().manual_seed(1)
    targets = torch.rand(4, 3, 64, 64, generator=generator) * 2 - 1
    batch = {"pixel_values": targets, "masked_pixel_values": targets * (torch.rand(4, 1, 64, 64) > 0.5)}
    before_base = {key: value.clone() for key, value in base.state_dict().items()}

    def losses():
        torch.manual_seed(0)  # the same crop each time
        with torch.no_grad():
            return objective(batch)[1]

    first = losses()
    optimizer = torch.optim.Adam([p for p in objective.parameters() if p.requires_grad], lr=3e-3)
    objective.train()
    assert not objective.base.training
    for _ in range(40):
        torch.manual_seed(0)
        loss, _ = objective(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    last = losses()
    assert last["latent_mse"] < 0.5 * first["latent_mse"] and last["mse"] < 0.7 * first["mse"]
    for key, value in base.state_dict().items():
        torch.testing.assert_close(value, before_base[key], rtol=0, atol=0)


def test_the_polish_phase_trains_the_decoder_alone_on_whole_images(tiny_pipeline):
    base = tiny_pipeline.vae
    torch.manual_seed(0)
    student = build_fast_vae(base, FastVAESettings(steps=1, **TINY))
    objective = FastVAEObjective(student, base, crop=32, decoder_only=True)
    assert not any(p.requires_grad for p in student.encoder.parameters())
    assert all(p.requires_grad for p in student.decoder.parameters())
    encoder_before = {key: value.clone() for key, value in student.encoder.state_dict().items()}
    targets = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    batch = {"pixel_values": targets, "masked_pixel_values": torch.zeros_like(targets)}
    optimizer = torch.optim.Adam([p for p in objective.parameters() if p.requires_grad], lr=3e-3)
    decoded = []
    student.decode = lambda latents, decode=student.decode: decoded.append(latents.shape) or decode(latents)
    for _ in range(3):
        loss, logged = objective(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert set(logged) == {"mse", "psnr_db"}  # no latent regression
    assert decoded[0][-1] == 4  # 32 px crops: 4 latent cells
    for key, value in student.encoder.state_dict().items():
        torch.testing.assert_close(value, encoder_before[key], rtol=0, atol=0)
    objective.crop = None
    objective(batch)
    assert decoded[-1][-1] == 8  # whole 64 px images


def _tryon(pipe, steps, guidance):
    image = np.full((pipe.resolution, pipe.resolution, 3), 128, np.uint8)
    mask = np.zeros((pipe.resolution, pipe.resolution), np.float32)
    mask[8:24, 8:24] = 1
    return pipe(image, mask, "a red shirt", num_inference_steps=steps, guidance_scale=guidance, seed=0,
                output_type="np").images[0]


@pytest.fixture()
def fast_vae_pipeline_dir(tiny_lcm_pipeline_dir, tmp_path):
    """A copy of the tiny LCM pipeline with a (random) fast VAE in its fast_vae/ folder."""
    from tryon_lab.pipelines.loading import load_inpaint_pipeline

    folder = shutil.copytree(tiny_lcm_pipeline_dir, tmp_path / "pipeline")
    torch.manual_seed(0)
    build_fast_vae(load_inpaint_pipeline(folder).vae, FastVAESettings(steps=1, **TINY)).save_pretrained(
        folder / FAST_VAE_FOLDER)
    return folder


def test_only_the_lcm_sampler_codes_with_the_fast_vae(fast_vae_pipeline_dir, tiny_lcm_pipeline_dir):
    from tryon_lab.pipelines.loading import load_inpaint_pipeline

    without = load_inpaint_pipeline(tiny_lcm_pipeline_dir)
    assert load_lcm(without, tiny_lcm_pipeline_dir) and getattr(without, "fast_vae", None) is None
    pipe = load_inpaint_pipeline(fast_vae_pipeline_dir)
    assert load_lcm(pipe, fast_vae_pipeline_dir) and pipe.fast_vae is not None
    use_sampler(without, "ddim")
    use_sampler(pipe, "ddim")
    assert pipe.sampling_vae is pipe.vae
    np.testing.assert_array_equal(_tryon(pipe, 3, 4.0), _tryon(without, 3, 4.0))  # ddim: the base VAE exactly
    use_sampler(without, "lcm")
    use_sampler(pipe, "lcm")
    assert pipe.sampling_vae is pipe.fast_vae
    assert np.abs(_tryon(pipe, 4, 1.0) - _tryon(without, 4, 1.0)).max() > 0.01  # lcm: the fast VAE's pixels
    use_sampler(without, "ddim")
    use_sampler(pipe, "ddim")
    np.testing.assert_array_equal(_tryon(pipe, 3, 4.0), _tryon(without, 3, 4.0))


def test_an_lcm_export_converts_the_fast_vae(fast_vae_pipeline_dir):
    from tryon_lab.export.bundle import prepare_sampler
    from tryon_lab.export.contract import pipeline_components
    from tryon_lab.pipelines.loading import load_inpaint_pipeline

    pipe = load_inpaint_pipeline(fast_vae_pipeline_dir)
    load_lcm(pipe, fast_vae_pipeline_dir)
    fast = pipe.fast_vae
    use_sampler(pipe, "lcm")
    instant = _tryon(pipe, 4, 1.0)
    prepare_sampler(pipe, fast_vae_pipeline_dir, "lcm")  # fuse_lcm: what `tryon-lab export --sampler lcm` does
    assert pipe.vae is fast and pipe.sampling_vae is fast and pipe.components["vae"] is fast
    np.testing.assert_allclose(_tryon(pipe, 4, 1.0), instant, atol=1e-6)
    components = pipeline_components(pipe, only=("VAEEncoder", "VAEDecoder"))
    assert all(component.module.vae is fast for component in components.values())


def test_a_fast_vae_of_another_latent_space_is_refused(fast_vae_pipeline_dir):
    from tryon_lab.models.fast_autoencoder import FastAutoencoderKL
    from tryon_lab.pipelines.loading import load_inpaint_pipeline

    folder = fast_vae_pipeline_dir / FAST_VAE_FOLDER
    config = json.loads((folder / "config.json").read_text())
    config["scaling_factor"] = 0.123
    shutil.rmtree(folder)
    FastAutoencoderKL(**{k: v for k, v in config.items() if not k.startswith("_")}).save_pretrained(folder)
    with pytest.raises(ConfigError, match="not distilled from this model's VAE"):
        load_fast_vae(load_inpaint_pipeline(fast_vae_pipeline_dir), fast_vae_pipeline_dir)


def test_distill_vae_writes_a_scored_fast_vae_into_the_pipeline_folder(tiny_lcm_pipeline_dir, tmp_path):
    from tryon_lab.cli import main
    from tryon_lab.models.world_encoder import WorldEncoder
    from tryon_lab.pipelines.loading import load_inpaint_pipeline

    pipeline = shutil.copytree(tiny_lcm_pipeline_dir, tmp_path / "pipeline")
    torch.manual_seed(0)
    WorldEncoder.for_world().save_pretrained(tmp_path / "judge")
    assert main(["distill-vae", "--profile", "smoke", "--base", str(pipeline), "--judge", str(tmp_path / "judge"),
                 "--run-dir", str(tmp_path / "run")]) == 0
    folder = pipeline / FAST_VAE_FOLDER
    record = json.loads((folder / "training.json").read_text())
    assert record["steps"] == 2 and record["polish_steps"] == 2
    assert record["settings"]["block_out_channels"] == [8, 8, 8, 8]
    metrics = record["metrics"]
    for name in ("val_decoder_psnr_db", "val_encoder_relative_error", "val_lcm4_fast_vae_attr_acc_all",
                 "val_lcm4_fast_minus_base_identity_acc"):
        assert "[" in metrics[name]  # a value with its interval
    assert metrics["fast_to_base_time_ratio"] > 0
    assert (folder / "logs" / "fast_vae_losses.csv").is_file() and "fast VAE" in (folder / "MODEL_CARD.md").read_text()
    polish_log = (folder / "logs" / "fast_vae_polish_losses.csv").read_text().splitlines()
    assert polish_log[0].split(",") == ["step", "loss", "mse", "psnr_db"] and polish_log[-1].startswith("2,")
    pipe = load_inpaint_pipeline(pipeline)
    assert load_lcm(pipe, pipeline) and pipe.fast_vae.config.block_out_channels == [8, 8, 8, 8]


def test_distill_vae_refuses_a_bad_section_before_any_work(tmp_path):
    from tryon_lab.profiles import Profile
    from tryon_lab.training.fast_vae_recipe import distil_pipeline_vae

    profile = Profile("custom", "", {"fast_vae": {"steps": 2, "widths": [8]}})
    with pytest.raises(ConfigError, match="widths"):
        distil_pipeline_vae(profile, tmp_path / "nowhere", tmp_path / "run", tmp_path / "judge")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_an_lcm_bundle_with_a_narrower_encoder_converts_and_verifies(fast_vae_pipeline_dir, tmp_path):
    from tryon_lab.export.bundle import ExportOptions, export_bundle
    from tryon_lab.export.verify import verify_bundle

    out = export_bundle(fast_vae_pipeline_dir, tmp_path / "bundle",
                        ExportOptions(sampler="lcm", bits="16", targets=("coreml",), steps=4), log=lambda _: None)
    report = verify_bundle(out, backend="mil")
    assert report.passed, report.table()
    checked = " ".join(row.what for row in report.rows)
    assert "VAEEncoder" in checked and "VAEDecoder" in checked, report.table()
