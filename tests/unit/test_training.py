"""Training recipes on tiny sizes: losses fall, checkpoints are atomic and resume, outputs load."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
import torch
from accelerate import Accelerator
from PIL import Image

from tryon_lab.errors import ConfigError
from tryon_lab.pipelines.loading import load_inpaint_pipeline
from tryon_lab.profiles import load_profile
from tryon_lab.training.checkpoints import STATE_FILE, checkpoint_dirs, resume_latest, save_checkpoint
from tryon_lab.training.loop import LoopSettings, learning_rate_factor, parameter_groups, run_loop
from tryon_lab.training.losslog import read_losses


class _Quadratic(torch.nn.Module):
    """Objective with a known minimum: loss = |w - 3|^2."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(4))

    def forward(self, batch):
        loss = ((self.w - batch) ** 2).mean()
        return loss, {"w_mean": float(self.w.mean())}


def _batches(start):
    while True:
        yield torch.full((4,), 3.0)


def test_loop_reduces_loss_logs_and_checkpoints(tmp_path):
    result = run_loop(Accelerator(cpu=True), tmp_path, _Quadratic(), _batches,
                      LoopSettings(steps=60, learning_rate=0.1, checkpoint_every=25, log_every=5))
    rows = read_losses(tmp_path / "losses.csv")
    assert rows[0]["loss"] > rows[-1]["loss"]
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step-000050", "step-000060"]  # keeps the two newest
    assert result.resumed_from == 0


def test_resume_continues_from_the_newest_checkpoint(tmp_path):
    settings = LoopSettings(steps=20, learning_rate=0.1, checkpoint_every=10, log_every=1)
    first = _Quadratic()
    run_loop(Accelerator(cpu=True), tmp_path, first, _batches, settings)
    longer = LoopSettings(steps=30, learning_rate=0.1, checkpoint_every=10, log_every=1)
    second = _Quadratic()
    result = run_loop(Accelerator(cpu=True), tmp_path, second, _batches, longer)
    assert result.resumed_from == 20
    assert [r["step"] for r in read_losses(tmp_path / "losses.csv")] == list(range(1, 31))
    # the resumed model started from the first run's weights, not from zeros
    assert float(second.w.mean()) > float(first.w.mean()) - 1e-6


def test_half_written_and_damaged_checkpoints_are_ignored(tmp_path):
    accelerator = Accelerator(cpu=True)
    model = accelerator.prepare(_Quadratic())
    save_checkpoint(accelerator, tmp_path, 5)
    with torch.no_grad():
        model.w.fill_(7.0)
    complete = tmp_path / "step-000005"
    shutil.copytree(complete, tmp_path / ".tmp-step-000010")  # killed before the rename
    shutil.copytree(complete, tmp_path / "step-000015", ignore=shutil.ignore_patterns(STATE_FILE))  # no marker
    truncated = shutil.copytree(complete, tmp_path / "step-000020")
    with (truncated / "model.safetensors").open("r+b") as handle:
        handle.truncate(8)
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step-000005"]
    garbled = shutil.copytree(complete, tmp_path / "step-000025")  # the marker's sizes, unreadable contents
    size = (garbled / "model.safetensors").stat().st_size
    (garbled / "model.safetensors").write_bytes(b"\xff" * size)
    with pytest.warns(UserWarning, match="step-000025 does not load"):
        assert resume_latest(accelerator, tmp_path)["step"] == 5
    assert torch.equal(model.w, torch.zeros(4))  # the weights of step 5, not 7s

    save_checkpoint(accelerator, tmp_path, 30, keep=1)  # pruned only once the new one is complete
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000015", "step-000020", "step-000030"]


def test_a_run_folder_of_another_model_is_refused_not_overwritten(tmp_path):
    class Wider(_Quadratic):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(6))

    settings = LoopSettings(steps=10, learning_rate=0.1, checkpoint_every=5, log_every=1)
    run_loop(Accelerator(cpu=True), tmp_path, _Quadratic(), _batches, settings)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ConfigError, match="no checkpoint in .* loads into this model .*other settings"):
        run_loop(Accelerator(cpu=True), tmp_path, Wider(), _batches, settings)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_resumed_run_ends_with_the_weights_ema_and_losses_of_an_uninterrupted_one(tmp_path):
    from tryon_lab.training.common import loader_factory
    from tryon_lab.training.loop import endless

    class Noisy(_Quadratic):
        def forward(self, batch):
            return super().forward(batch[0] + torch.randn(4))

    def run(run_dir, steps):
        accelerator = Accelerator(cpu=True)
        torch.manual_seed(0)
        dataset = torch.utils.data.TensorDataset(torch.arange(28.0).reshape(7, 4))
        model = Noisy()
        settings = LoopSettings(steps=steps, learning_rate=0.1, checkpoint_every=5, log_every=1, ema_decay=0.9,
                                warmup_steps=3, anneal=True)
        result = run_loop(accelerator, run_dir, model, endless(loader_factory(accelerator, dataset, 2)), settings)
        return model, result

    whole, whole_result = run(tmp_path / "whole", 12)
    shutil.copytree(tmp_path / "whole" / "step-000010", tmp_path / "resumed" / "step-000010")  # an epoch is 3 steps
    shutil.copyfile(tmp_path / "whole" / "losses.csv", tmp_path / "resumed" / "losses.csv")
    resumed, resumed_result = run(tmp_path / "resumed", 12)
    assert resumed_result.resumed_from == 10
    assert torch.equal(resumed.w, whole.w)
    assert all(torch.equal(a, b) for a, b in zip(resumed_result.ema.shadow_params, whole_result.ema.shadow_params))
    assert read_losses(tmp_path / "resumed" / "losses.csv") == read_losses(tmp_path / "whole" / "losses.csv")


class _TwoParts(torch.nn.Module):
    """Two parameter vectors, both pulled towards 3 by the same loss."""

    def __init__(self):
        super().__init__()
        self.body, self.head = torch.nn.Linear(4, 4, bias=False), torch.nn.Linear(4, 4, bias=False)
        torch.nn.init.zeros_(self.body.weight)
        torch.nn.init.zeros_(self.head.weight)

    def forward(self, batch):
        loss = ((self.body.weight - batch) ** 2).mean() + ((self.head.weight - batch) ** 2).mean()
        return loss, {}


def test_a_learning_rate_scale_trains_the_named_parts_faster_and_a_typo_is_refused(tmp_path):
    settings = LoopSettings(steps=5, learning_rate=0.01, lr_scales=(("head.", 4.0),), log_every=1)
    groups = parameter_groups(_TwoParts(), settings)
    assert [g["lr"] for g in groups] == [0.01, 0.04] and [len(g["params"]) for g in groups] == [1, 1]
    model = _TwoParts()
    run_loop(Accelerator(cpu=True), tmp_path, model, _batches, settings)
    # Adam moves each weight by about its rate per step while the gradient's sign holds
    assert float(model.head.weight.mean()) == pytest.approx(4 * float(model.body.weight.mean()), rel=0.05)
    assert len(parameter_groups(_TwoParts(), LoopSettings(steps=1, learning_rate=0.01))) == 1
    with pytest.raises(ConfigError, match="'haed.'"):
        parameter_groups(_TwoParts(), replace(settings, lr_scales=(("haed.", 4.0),)))


def test_annealed_learning_rate_warms_up_then_decays_to_zero():
    annealed = LoopSettings(steps=100, learning_rate=1.0, warmup_steps=10, anneal=True)
    factors = [learning_rate_factor(annealed, step) for step in range(101)]
    assert factors[0] == pytest.approx(0.1, rel=1e-3)  # warmup: 1/10 of the rate at the first step
    assert factors[50] == pytest.approx(0.5, rel=1e-6)
    assert factors[100] == pytest.approx(0.0, abs=1e-12)
    assert all(later <= earlier for earlier, later in zip(factors[9:], factors[10:]))
    constant = LoopSettings(steps=100, learning_rate=1.0, warmup_steps=10)
    assert learning_rate_factor(constant, 100) == 1.0


def test_decoder_phases_train_the_decoder_and_keep_the_latent_space(tmp_path):
    from tryon_lab.models.config import load_model_config
    from tryon_lab.training.vae import VAESettings, train_vae

    config = load_model_config("tiny")
    encoder_only = VAESettings(steps=2, batch_size=2, crop=16, dataset_size=4)
    first, _ = train_vae(config, tmp_path / "run", tmp_path / "vae", encoder_only)
    # the same run dir: phase 1 resumes finished, then the two decoder phases train
    third, _ = train_vae(config, tmp_path / "run", tmp_path / "vae", replace(encoder_only, decoder_steps=1, anneal_steps=2))
    for name, weight in first.encoder.state_dict().items():
        assert torch.equal(weight, third.encoder.state_dict()[name]), name
    assert not all(torch.equal(w, third.decoder.state_dict()[n]) for n, w in first.decoder.state_dict().items())
    assert [p.name for p in checkpoint_dirs(tmp_path / "run" / "anneal")] == ["step-000002"]
    assert len(read_losses(tmp_path / "run" / "anneal" / "losses.csv")) == 1  # logged at its last step


def test_init_and_only_continue_a_finished_vae_with_one_phase(tmp_path):
    from tryon_lab.errors import ConfigError
    from tryon_lab.models.config import load_model_config
    from tryon_lab.training.vae import VAESettings, selected_phases, train_vae

    config = load_model_config("tiny")
    recipe = VAESettings(steps=2, batch_size=2, crop=16, dataset_size=4, anneal_steps=1, polish_steps=2)
    finished, _ = train_vae(config, tmp_path / "run", tmp_path / "vae", replace(recipe, polish_steps=0))
    polished, _ = train_vae(config, tmp_path / "later", tmp_path / "polished", recipe,
                            init_dir=tmp_path / "vae", only=["polish"])
    for name, weight in finished.encoder.state_dict().items():
        assert torch.equal(weight, polished.encoder.state_dict()[name]), name
    assert not all(torch.equal(w, polished.decoder.state_dict()[n]) for n, w in finished.decoder.state_dict().items())
    assert sorted(p.name for p in (tmp_path / "later").iterdir()) == ["polish"]  # phases 1 to 3 did not run again
    assert [p.name for p in checkpoint_dirs(tmp_path / "later" / "polish")] == ["step-000002"]
    with pytest.raises(ConfigError, match="no VAE phase named nope in this profile; it has vae, anneal, polish"):
        selected_phases(recipe, 64, ["polish", "nope"])


def test_swap_vae_ships_a_new_decoder_and_refuses_a_new_encoder(tiny_pipeline_dir, tmp_path):
    from diffusers import AutoencoderKL

    from tryon_lab.errors import ConfigError
    from tryon_lab.training.pretrain import swap_vae

    pipeline = shutil.copytree(tiny_pipeline_dir, tmp_path / "pipeline")
    vae = AutoencoderKL.from_pretrained(pipeline / "vae")
    with torch.no_grad():
        vae.decoder.conv_out.weight.add_(0.05)  # a retrained decoder, the same encoder
    vae.save_pretrained(tmp_path / "decoder")
    assert swap_vae(load_profile("smoke"), tmp_path / "decoder", pipeline) == pipeline
    shipped = AutoencoderKL.from_pretrained(pipeline / "vae")
    assert torch.equal(shipped.decoder.conv_out.weight, vae.decoder.conv_out.weight.half().float())
    for component in ("unet", "text_encoder", "tokenizer", "scheduler"):  # untouched, byte for byte
        for original in (tiny_pipeline_dir / component).iterdir():
            assert (pipeline / component / original.name).read_bytes() == original.read_bytes(), original
    assert "vae_update" in json.loads((pipeline / "training.json").read_text())
    assert (pipeline / "MODEL_CARD.md").is_file() and (pipeline / "samples.png").is_file()

    with torch.no_grad():
        vae.encoder.conv_in.weight.add_(0.05)  # a retrained encoder: another latent space
    vae.save_pretrained(tmp_path / "encoder")
    before = {p: p.read_bytes() for p in pipeline.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match="another latent space .* encoder weights differ, first encoder.conv_in"):
        swap_vae(load_profile("smoke"), tmp_path / "encoder", pipeline)
    assert {p: p.read_bytes() for p in pipeline.rglob("*") if p.is_file()} == before


def test_a_wider_latent_trains_and_inpaints_through_the_same_code(tmp_path, monkeypatch, tiny_pipeline_dir, tiny16_config):
    from tryon_lab.models.config import load_model_config
    from tryon_lab.models.world_encoder import WorldEncoder
    from tryon_lab.profiles import with_settings
    from tryon_lab.training.pretrain import pretrain_unet, pretrain_vae
    from tryon_lab.training.vae_curve import vae_learning_curve, write_vae_learning_curve

    profile = with_settings(load_profile("smoke"), "pretrain",
                            {"model": str(tiny16_config), "vae": {"steps": 4, "checkpoint_every": 1, "milestone_every": 2}})
    judge = tmp_path / "judge"
    WorldEncoder.for_world().save_pretrained(judge)
    vae_dir = pretrain_vae(profile, tmp_path / "runs/vae", tmp_path / "vae", judge_dir=judge)
    record = json.loads((vae_dir / "training.json").read_text())
    assert (record["model_config"], record["settings"]["steps"]) == ("tiny16", 4)
    assert {"val_round_trip_identity", "test_round_trip_identity"} <= record["metrics"].keys()
    # the VAE's learning curve: every kept checkpoint (milestone 2, the newest two) read back by the judge
    rows = write_vae_learning_curve(tmp_path / "runs/vae", judge, load_model_config(str(tiny16_config)), samples=4)
    assert [row["step"] for row in rows] == [2, 3, 4]
    assert all(0 <= row["round_trip_identity_lo"] <= row["round_trip_identity"] <= row["round_trip_identity_hi"] <= 1
               for row in rows)
    assert (tmp_path / "runs/vae/curve.png").is_file()
    curve = (tmp_path / "runs/vae/curve.csv").read_text()
    assert write_vae_learning_curve(tmp_path / "runs/vae", judge, load_model_config(str(tiny16_config)), samples=4) == rows
    assert (tmp_path / "runs/vae/curve.csv").read_text() == curve  # scored once
    with pytest.raises(ConfigError, match="not a VAE checkpoint of this model config"):
        write_vae_learning_curve(tmp_path / "runs/vae", judge, load_model_config("tiny"), samples=4)
    # a checkpoint the training run prunes between listing and loading is passed over
    listed = checkpoint_dirs(tmp_path / "runs/vae") + [tmp_path / "runs/vae/step-000005"]
    monkeypatch.setattr("tryon_lab.training.curve.checkpoint_dirs", lambda run_dir: listed)
    assert vae_learning_curve(tmp_path / "runs/vae", judge, load_model_config(str(tiny16_config)), samples=4) == rows
    # its U-Net starts from the 4-channel tiny pipeline's: the body moves over, conv_in and conv_out start new
    out = pretrain_unet(profile, tmp_path / "runs/unet", vae_dir, tmp_path / "model", init_dir=tiny_pipeline_dir)
    assert json.loads((out / "training.json").read_text())["init_new_layers"] == ["conv_in", "conv_out"]
    assert (out / "logs" / "vae_curve.csv").read_text() == curve  # the VAE's learning curve ships with the model
    pipe = load_inpaint_pipeline(out, device="cpu")
    assert (pipe.vae.config.latent_channels, pipe.unet.config.in_channels) == (16, 33)
    image = Image.new("RGB", (64, 64), (200, 120, 40))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    result = pipe(prompt="a red tee", image=image, mask_image=mask, num_inference_steps=2,
                  generator=torch.Generator().manual_seed(0)).images[0]
    assert result.size == (64, 64)


def test_load_weights_moves_a_body_onto_another_latent_width_and_refuses_other_differences(tmp_path, tiny_pipeline_dir):
    from diffusers import UNet2DConditionModel

    from tryon_lab.training.inpaint import LATENT_LAYERS, load_weights

    saved = UNet2DConditionModel.from_pretrained(tiny_pipeline_dir / "unet", torch_dtype=torch.float32)
    wider = UNet2DConditionModel.from_config({**saved.config, "in_channels": 33, "out_channels": 16})
    new_in = wider.conv_in.weight.detach().clone()
    assert load_weights(wider, tiny_pipeline_dir / "unet", fresh=LATENT_LAYERS) == [
        "conv_in.weight", "conv_out.bias", "conv_out.weight"]
    assert torch.equal(wider.conv_in.weight, new_in)
    mine, theirs = wider.state_dict(), saved.state_dict()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine if not k.startswith(LATENT_LAYERS))
    with pytest.raises(ConfigError, match="another architecture"):
        load_weights(UNet2DConditionModel.from_config({**saved.config, "in_channels": 33, "out_channels": 16}),
                     tiny_pipeline_dir / "unet")  # without fresh, a wider latent is refused
    deeper = UNet2DConditionModel.from_config({**saved.config, "layers_per_block": 2})
    with pytest.raises(ConfigError, match="another architecture"):
        load_weights(deeper, tiny_pipeline_dir / "unet", fresh=LATENT_LAYERS)


@pytest.mark.slow
def test_smoke_profile_pretrains_every_component(tmp_path):
    from tryon_lab.pipelines.loading import load_inpaint_pipeline
    from tryon_lab.training.pretrain import pretrain_encoder, pretrain_unet, pretrain_vae

    profile = load_profile("smoke")
    vae_dir = pretrain_vae(profile, tmp_path / "runs/vae", tmp_path / "vae")
    assert json.loads((vae_dir / "training.json").read_text())["metrics"]["vae_heldout_psnr_db"] > 0
    judge_dir = pretrain_encoder(profile, tmp_path / "runs/enc", tmp_path / "encoder")
    assert (judge_dir / "MODEL_CARD.md").is_file()
    out = pretrain_unet(profile, tmp_path / "runs/unet", vae_dir, tmp_path / "model", judge_dir=judge_dir)
    card = (out / "MODEL_CARD.md").read_text()
    assert "test_masked_psnr_db" in card and "test_leftover" in card and "tryon-lab pretrain unet" in card
    assert (out / "samples.png").is_file()
    pipe = load_inpaint_pipeline(out, device="cpu")
    assert pipe.unet.dtype == torch.float32  # shipped fp16, loaded fp32
    assert not any(p.name.startswith(".tmp") for p in tmp_path.iterdir())


def test_milestone_checkpoints_are_kept_and_the_curve_scores_their_ema_weights(tmp_path, tiny_pipeline_dir):
    from tryon_lab.models.config import load_model_config
    from tryon_lab.models.world_encoder import WorldEncoder
    from tryon_lab.training.checkpoints import checkpoint_dirs
    from tryon_lab.training.curve import checkpoint_pipeline, curve_figure, learning_curve, read_curve
    from tryon_lab.training.inpaint import InpaintSettings, train_inpainting

    config = load_model_config("tiny")
    settings = InpaintSettings(steps=4, batch_size=2, dataset_size=4, checkpoint_every=1, milestone_every=2,
                               ema_decay=0.5, snr_gamma=5.0)
    vae_dir = tiny_pipeline_dir / "vae"
    pipe, _ = train_inpainting(config, tmp_path / "run", vae_dir, settings)
    assert [d.name for d in checkpoint_dirs(tmp_path / "run")] == ["step-000002", "step-000003", "step-000004"]
    last = checkpoint_pipeline(tmp_path / "run", tmp_path / "run" / "step-000004", vae_dir, config)
    for name, value in pipe.unet.state_dict().items():  # the EMA weights train_inpainting ships
        assert torch.equal(last.unet.state_dict()[name], value), name
    judge = tmp_path / "judge"
    WorldEncoder.for_world().save_pretrained(judge)
    rows = learning_curve(tmp_path / "run", vae_dir, judge, config, samples=2, steps=2)
    assert [row["step"] for row in rows] == [2, 3, 4] and all(0 <= row["attr_acc_all"] <= 1 for row in rows)
    again = learning_curve(tmp_path / "run", vae_dir, judge, config, samples=2, steps=2)  # nothing new to score
    assert [(r["step"], r["masked_psnr_db"]) for r in again] == [(r["step"], r["masked_psnr_db"]) for r in rows]
    assert len(read_curve(tmp_path / "run")) == 3
    assert len(curve_figure(rows).axes[0].lines) == 2


def test_steps_to_reach_a_bar_extends_the_last_segment_and_refuses_a_flat_one():
    from tryon_lab.training.curve import steps_to_reach

    rows = [{"step": 700.0, "acc": 0.1}, {"step": 1400.0, "acc": 0.2}, {"step": 2100.0, "acc": 0.4}]
    assert steps_to_reach(rows, "acc", 0.7) == pytest.approx(2100 + 0.3 / 0.2 * 700)  # the last segment's slope, not the first's
    assert steps_to_reach(rows, "acc", 0.3) == 2100  # reached already: the last point's step
    assert steps_to_reach(rows[:1], "acc", 0.7) is None
    falling = rows[:2] + [{"step": 2100.0, "acc": 0.15}]
    assert steps_to_reach(falling, "acc", 0.7) is None


def test_a_unet_run_starts_from_a_finished_pipeline_and_stops_resumably_at_its_time_budget(tmp_path, tiny_pipeline_dir):
    from tryon_lab.models.config import load_model_config
    from tryon_lab.training.checkpoints import checkpoint_dirs
    from tryon_lab.training.inpaint import InpaintSettings, train_inpainting

    config = load_model_config("tiny")
    start = load_inpaint_pipeline(tiny_pipeline_dir, device="cpu")
    budget = InpaintSettings(steps=50, batch_size=2, dataset_size=4, checkpoint_every=100, ema_decay=None,
                             max_minutes=1e-9)  # spent by the first check (every 10 steps)
    pipe, result = train_inpainting(config, tmp_path / "run", tiny_pipeline_dir / "vae", budget,
                                    init_dir=tiny_pipeline_dir)
    assert result.steps == 10 and [d.name for d in checkpoint_dirs(tmp_path / "run")] == ["step-000010"]
    assert pipe.tokenizer.get_vocab() == start.tokenizer.get_vocab()
    # 10 warm-up Adam steps move a weight by at most about 10 x lr x 10/200; new weights differ by ~0.1
    drift = max(float((value - start.unet.state_dict()[name]).abs().max()) for name, value in pipe.unet.state_dict().items())
    assert 0 < drift < 1e-3
    _, rest = train_inpainting(config, tmp_path / "run", tiny_pipeline_dir / "vae",
                               InpaintSettings(steps=12, batch_size=2, dataset_size=4, checkpoint_every=100,
                                               ema_decay=None), init_dir=tiny_pipeline_dir)
    assert (rest.resumed_from, rest.steps) == (10, 12)


def test_pretrain_refuses_a_bad_init_or_budget_before_training(tmp_path):
    from tryon_lab.errors import ConfigError
    from tryon_lab.profiles import load_profile
    from tryon_lab.training.pretrain import pretrain_component

    profile = load_profile("smoke")
    vae = tmp_path / "vae"
    vae.mkdir()
    (vae / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="--init must name a finished pipeline"):
        pretrain_component("unet", profile, tmp_path / "out", vae_dir=vae, init_dir=tmp_path / "nothing")
    with pytest.raises(ConfigError, match="--minutes applies to the U-Net only"):
        pretrain_component("encoder", profile, tmp_path / "out", minutes=5)
    with pytest.raises(ConfigError, match="--init must name a saved world encoder"):
        pretrain_component("encoder", profile, tmp_path / "out", init_dir=vae.parent / "nothing")
    assert not (tmp_path / "out").exists()


def test_a_judge_continued_from_init_keeps_its_attribute_network_and_says_where_both_networks_came_from(tmp_path):
    from tryon_lab.models.world_encoder import WorldEncoder
    from tryon_lab.training.pretrain import pretrain_component

    first, saved = tmp_path / "judge", WorldEncoder.for_world()
    saved.save_pretrained(first)
    (first / "logs").mkdir()
    (first / "logs" / "encoder_losses.csv").write_text("step,loss\n1,2.0\n")
    (first / "training.json").write_text(json.dumps({"command": "tryon-lab pretrain encoder --out judge"}))
    out = pretrain_component("encoder", load_profile("smoke"), first, tmp_path / "run", init_dir=first)  # in place
    trained = WorldEncoder.from_pretrained(out).state_dict()
    assert all(torch.equal(trained[n], v) for n, v in saved.state_dict().items() if not n.startswith("motif_"))
    assert not torch.equal(trained["motif_heads.shape.weight"], saved.state_dict()["motif_heads.shape.weight"])
    record = json.loads((out / "training.json").read_text())
    assert "trained by `tryon-lab pretrain encoder --out judge`" in record["init"]
    assert (out / "logs" / "attribute_network_losses.csv").read_text() == "step,loss\n1,2.0\n"
    assert (out / "logs" / "encoder_losses.csv").is_file() and "--init" in (out / "MODEL_CARD.md").read_text()
    assert record["motif_init"] == record["init"]  # the first continuation starts both from the same judge
    assert (out / "logs" / "motif_network_start_losses.csv").read_text() == "step,loss\n1,2.0\n"
    # continued again from the result: the attribute network's origin and log carry over; the motif
    # network names the judge it continued and carries that judge's own loss log
    again = pretrain_component("encoder", load_profile("smoke"), tmp_path / "again", tmp_path / "run2", init_dir=out)
    again_record = json.loads((again / "training.json").read_text())
    assert again_record["init"] == record["init"]
    assert again_record["motif_init"].startswith(f"{out} (weights sha256 ") and again_record["motif_init"] != record["init"]
    assert (again / "logs" / "attribute_network_losses.csv").read_text() == "step,loss\n1,2.0\n"
    assert (again / "logs" / "motif_network_start_losses.csv").read_text() == (out / "logs" / "encoder_losses.csv").read_text()
