"""``tryon-lab train-dtc``'s recipe on the smoke profile: perceptual net, ablation, shipped DTC."""

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tryon_lab.errors import ConfigError
from tryon_lab.pipelines.dtc import DTCPipeline
from tryon_lab.pipelines.loading import load_dtc_pipeline, load_pipeline
from tryon_lab.profiles import load_profile
from tryon_lab.training.dtc_recipe import recipe_plan, train_dtc_recipe


def test_the_recipe_ships_a_loadable_pipeline_with_a_card_and_the_ablation(tiny_pipeline_dir, tmp_path):
    import torch

    out, run = tmp_path / "dtc", tmp_path / "run"
    profile = load_profile("smoke")
    assert profile["dtc"]["train"]["unet"] == "lora"
    train_dtc_recipe(profile, out, run, base=tiny_pipeline_dir)
    # a LoRA recipe ships what DTC adds, the U-Net's LoRA among it, not a second U-Net and VAE
    assert {p.name for p in out.iterdir()} >= {"dtc.json", "unet_lora", "image_encoder", "hint_encoder",
                                               "MODEL_CARD.md", "ablation.md", "samples.png", "training.json", "logs"}
    assert not (out / "unet").exists() and not (out / "vae").exists()
    record = json.loads((out / "training.json").read_text())
    assert set(record["ablation"]) == set(record["val"]) == set(profile["dtc"]["variants"])
    assert "masked_psnr_db_lo" in record["ablation"]["film+perceptual"]
    assert record["unet"] == "lora" and "InfoNCE" in record["perceptual_net"]["objective"]
    assert "Paired differences" in (out / "ablation.md").read_text()
    # smoke's two variants differ in two factors: the card says there is nothing to compare
    assert "What the ablation decides" in (out / "MODEL_CARD.md").read_text()
    assert "nothing to compare" in (out / "MODEL_CARD.md").read_text()
    assert {p.name for p in (out / "logs").iterdir()} >= {"baseline_losses.csv", "film_perceptual_losses.csv"}
    assert not any(out.rglob("*.bin"))  # safetensors only
    pipe = load_dtc_pipeline(out, base=tiny_pipeline_dir, device="cpu")
    assert isinstance(pipe, DTCPipeline) and pipe.hint_encoder.config.fusion == "film"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    # the shipped parts (fp16, LoRA fused on load) compute what the scored run's fused fp32 U-Net computes
    trained = DTCPipeline.from_pretrained(run / "ablation" / "film+perceptual" / "seed-0" / "pipeline")
    original = load_pipeline(tiny_pipeline_dir, device="cpu").unet.state_dict()
    assert any(not torch.equal(weight, original[name]) for name, weight in trained.unet.state_dict().items())
    for name, weight in trained.unet.state_dict().items():
        torch.testing.assert_close(pipe.unet.state_dict()[name], weight, rtol=0, atol=2e-3, msg=name)
    # the LoRA fits only the U-Net it was trained on
    other = tmp_path / "other-base"
    shutil.copytree(tiny_pipeline_dir, other)
    moved = load_pipeline(other, device="cpu").unet
    with torch.no_grad():
        next(moved.parameters()).add_(0.01)
    moved.save_pretrained(other / "unet")
    with pytest.raises(ConfigError, match="another U-Net"):
        load_dtc_pipeline(out, base=other, device="cpu")
    # a second run finds every variant scored and trains nothing
    before = {p: p.stat().st_mtime for p in (run / "ablation").rglob("*.safetensors")}
    train_dtc_recipe(profile, out, run, base=tiny_pipeline_dir)
    assert before == {p: p.stat().st_mtime for p in (run / "ablation").rglob("*.safetensors")}


def test_a_frozen_unet_recipe_ships_only_the_parts(tiny_pipeline_dir, tmp_path):
    smoke = load_profile("smoke")
    section = {**smoke["dtc"], "variants": ["film"], "ship": "film", "train": {**smoke["dtc"]["train"], "unet": "frozen"}}
    profile = dataclasses.replace(smoke, sections={**smoke.sections, "dtc": section})
    train_dtc_recipe(profile, tmp_path / "dtc", tmp_path / "run", base=tiny_pipeline_dir)
    assert (tmp_path / "dtc" / "dtc.json").is_file() and not (tmp_path / "dtc" / "unet").exists()
    assert not (tmp_path / "run" / "perceptual-net").exists()  # no +perceptual variant: no perceptual network
    assert load_dtc_pipeline(tmp_path / "dtc", base=tiny_pipeline_dir, device="cpu").hint_encoder is not None


def test_parts_keep_the_main_unet_they_were_trained_with_when_the_base_moves_on(tiny_pipeline_dir, tmp_path):
    import torch

    smoke = load_profile("smoke")
    section = {**smoke["dtc"], "variants": ["film"], "ship": "film", "train": {**smoke["dtc"]["train"], "unet": "frozen"}}
    profile = dataclasses.replace(smoke, sections={**smoke.sections, "dtc": section})
    train_dtc_recipe(profile, tmp_path / "dtc", tmp_path / "run", base=tiny_pipeline_dir)
    shutil.copytree(Path(tiny_pipeline_dir) / "unet", tmp_path / "dtc" / "unet")  # pinned before the base changes
    moved = tmp_path / "base"
    shutil.copytree(tiny_pipeline_dir, moved)
    retrained = load_pipeline(moved, device="cpu")
    with torch.no_grad():
        for parameter in retrained.unet.parameters():
            parameter.add_(0.01)
    retrained.unet.save_pretrained(moved / "unet")
    pinned = load_dtc_pipeline(tmp_path / "dtc", base=moved, device="cpu").unet.state_dict()
    original = load_pipeline(tiny_pipeline_dir, device="cpu").unet.state_dict()
    assert all(torch.equal(pinned[name], original[name]) for name in original)


def _forget_weights(folder: Path) -> None:
    """Delete what a machine that lost its runs does not keep of an ablation run: all but its record,
    scores and loss curve."""
    kept = {"losses.csv", "scores-val.npz", "scores-test.npz", "pipeline/training.json"}
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_file() and path.relative_to(folder).as_posix() not in kept:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def test_a_run_kept_without_its_weights_is_retrained_to_the_same_weights_when_shipped(tiny_pipeline_dir, tmp_path):
    from safetensors.torch import load_file

    smoke = load_profile("smoke")
    section = {**smoke["dtc"], "variants": ["film"], "ship": "film"}
    profile = dataclasses.replace(smoke, sections={**smoke.sections, "dtc": section})
    run = tmp_path / "run"
    train_dtc_recipe(profile, tmp_path / "first", run, base=tiny_pipeline_dir)
    folder = run / "ablation" / "film" / "seed-0"
    _forget_weights(folder)
    shutil.rmtree(run / "ablation" / "dtc-cache")
    assert not (folder / "pipeline" / "model_index.json").exists()
    train_dtc_recipe(profile, tmp_path / "second", run, base=tiny_pipeline_dir)
    for part in ("hint_encoder/diffusion_pytorch_model.safetensors", "unet_lora/pytorch_lora_weights.safetensors"):
        first, second = load_file(tmp_path / "first" / part), load_file(tmp_path / "second" / part)
        assert first.keys() == second.keys() and all(first[k].equal(second[k]) for k in first), part
    # a kept loss curve that retraining does not reproduce: the kept scores describe other weights
    _forget_weights(folder)
    lines = (folder / "losses.csv").read_text().splitlines()
    (folder / "losses.csv").write_text("\n".join(lines + ["99" + lines[-1][lines[-1].index(","):]]) + "\n")
    with pytest.raises(ConfigError, match="did not reproduce"):
        train_dtc_recipe(profile, tmp_path / "third", run, base=tiny_pipeline_dir)
    assert not (tmp_path / "third").exists()


def test_bad_recipes_are_refused_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="film\\+perceptual"):
        train_dtc_recipe(load_profile("smoke"), tmp_path / "o", tmp_path / "r", variants=["baseline"])
    with pytest.raises(ConfigError, match="--judge"):
        recipe_plan(load_profile("quick"))
    plan = recipe_plan(load_profile("quick"), judge_dir="data/models/world-encoder")
    assert len(plan.ablation.runs()) == 10 and plan.ablation.train.unet == "lora"
    assert plan.ablation.eval_samples >= 500
    # the GPU lease's recipe: the same runs, the U-Net as a LoRA (the shipped folder stays small), FID's sample size
    full = recipe_plan(load_profile("full"), judge_dir="data/models/world-encoder")
    assert full.ablation.runs() == plan.ablation.runs() and full.ablation.train.unet == "lora"
    assert full.ablation.eval_samples >= 1000 and full.perceptual == plan.perceptual
    assert not (tmp_path / "r").exists()


def test_a_learning_curve_continues_a_run_to_the_weights_of_one_longer_run(tiny_pipeline_dir, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from tryon_lab.models.world_encoder import WorldEncoder
    from tryon_lab.training.dtc import DTCSettings
    from tryon_lab.training.dtc.train import train_dtc
    from tryon_lab.training.dtc_recipe import dtc_curve_recipe

    judge = tmp_path / "judge"
    WorldEncoder.for_world().save_pretrained(judge)
    smoke = load_profile("smoke")
    section = {**smoke["dtc"], "variants": ["baseline", "film"], "ship": "auto"}
    profile = dataclasses.replace(smoke, sections={**smoke.sections, "dtc": section})
    run = tmp_path / "run"
    train_dtc_recipe(profile, tmp_path / "dtc", run, base=tiny_pipeline_dir, judge_dir=judge)
    # "auto" picks among the hint variants: the no-hint baseline is the comparator, whatever it scores
    assert json.loads((tmp_path / "dtc" / "training.json").read_text())["variant"] == "film"
    ablation_run = run / "ablation" / "film" / "seed-0"
    before = {p: p.stat().st_mtime for p in ablation_run.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match="adds no point"):
        dtc_curve_recipe(profile, run, "film", 2, base=tiny_pipeline_dir, judge_dir=judge)
    with pytest.raises(ConfigError, match="not one of"):
        dtc_curve_recipe(profile, run, "add", 4, base=tiny_pipeline_dir, judge_dir=judge)
    with pytest.raises(ConfigError, match="--judge"):
        dtc_curve_recipe(profile, run, "film", 4, base=tiny_pipeline_dir, judge_dir=tmp_path / "nothing")
    with pytest.raises(ConfigError, match="ships 'baseline', not 'film'"):
        dtc_curve_recipe(profile, run, "film", 4, base=tiny_pipeline_dir, judge_dir=judge,
                         into=run / "ablation" / "baseline" / "seed-0" / "pipeline")
    rows, folder = dtc_curve_recipe(profile, run, "film", 4, 1, base=tiny_pipeline_dir, judge_dir=judge,
                                    into=tmp_path / "dtc")
    assert [int(r["step"]) for r in rows] == [2, 3, 4] and (folder / "curve.png").is_file()
    assert (tmp_path / "dtc" / "learning_curve.csv").read_text() == (folder / "curve.csv").read_text()
    from tryon_lab.training.dtc.curve import shipped_curve_figure

    assert len(shipped_curve_figure(tmp_path / "dtc").axes[0].lines) == 4  # two metrics and their bars
    assert shipped_curve_figure(None) is None and shipped_curve_figure(run) is None
    from tryon_lab.training.dtc.evaluation import load_scores

    kept = load_scores(ablation_run / "scores-val.npz")
    assert rows[0]["identity_acc"] == pytest.approx(kept["identity_acc"].mean())
    assert all(r["identity_acc_lo"] <= r["identity_acc"] <= r["identity_acc_hi"] for r in rows)
    assert before == {p: p.stat().st_mtime for p in ablation_run.rglob("*") if p.is_file()}  # the ablation's run stays
    # continuing from the ablation's checkpoint equals one run of 4 steps from the start (which loads the
    # cache that the ablation's run built: building it draws nothing from the RNG the training uses)
    train = dataclasses.replace(DTCSettings.from_mapping(section["train"]), steps=4)
    train_dtc(tiny_pipeline_dir, tmp_path / "straight", train, fusion="film", seed=0, world_seed=0,
              cache_dir=run / "ablation" / "dtc-cache")
    continued, straight = (load_file(f / "step-000004" / "model.safetensors") for f in (folder, tmp_path / "straight"))
    assert continued.keys() == straight.keys() and all(continued[k].equal(straight[k]) for k in continued)
    # a second call scores nothing again
    again, _ = dtc_curve_recipe(profile, run, "film", 4, 1, base=tiny_pipeline_dir, judge_dir=judge)
    assert again == rows
    # a new judge: the curve refuses the old scores; train-dtc scores the kept runs again without training them
    from tryon_lab.training.dtc.evaluation import judge_id, scoring_of

    other = tmp_path / "other-judge"
    WorldEncoder.for_world().save_pretrained(other)
    assert judge_id(other) != judge_id(judge) == scoring_of(ablation_run / "scores-test.npz")["judge"]
    with pytest.raises(ConfigError, match="scored otherwise"):
        dtc_curve_recipe(profile, run, "film", 5, 1, base=tiny_pipeline_dir, judge_dir=other)
    trained = (ablation_run / "pipeline" / "training.json").stat().st_mtime
    train_dtc_recipe(profile, tmp_path / "dtc-rescored", run, base=tiny_pipeline_dir, judge_dir=other)
    assert all(scoring_of(ablation_run / f"scores-{split}.npz")["judge"] == judge_id(other) for split in ("val", "test"))
    assert (ablation_run / "pipeline" / "training.json").stat().st_mtime == trained
    with pytest.raises(ConfigError, match="the curve in .* was scored otherwise"):
        dtc_curve_recipe(profile, run, "film", 5, 1, base=tiny_pipeline_dir, judge_dir=other)
    # other sampler settings: the kept runs are scored again too
    fewer = dataclasses.replace(profile, sections={**profile.sections, "dtc": {**section, "sample_steps": 1}})
    train_dtc_recipe(fewer, tmp_path / "dtc-fewer", run, base=tiny_pipeline_dir, judge_dir=other)
    assert scoring_of(ablation_run / "scores-val.npz")["steps"] == 1
    # more samples, scored as before: the kept scores grow by the new samples only, to what one pass over all gives
    from tryon_lab.data.world import World
    from tryon_lab.metrics.judge import WorldJudge
    from tryon_lab.training.dtc import ablation as ablation_module

    def scored_as(**changes):
        return dataclasses.replace(profile, sections={**profile.sections, "dtc": {**section, "sample_steps": 1,
                                                                                   **changes}})

    train_dtc_recipe(scored_as(eval_batch_size=2), tmp_path / "dtc-batched", run, base=tiny_pipeline_dir,
                     judge_dir=other)
    kept = load_scores(ablation_run / "scores-test.npz")
    sampled = []
    one_pass = ablation_module.dtc_method

    def counted(*args):
        method = one_pass(*args)
        return lambda samples: sampled.append(len(samples)) or method(samples)

    monkeypatch.setattr(ablation_module, "dtc_method", counted)
    more = scored_as(eval_batch_size=2, eval_samples=8)
    train_dtc_recipe(more, tmp_path / "dtc-more", run, base=tiny_pipeline_dir, judge_dir=other)
    assert sampled == [4, 4]  # the 4 new test pairs of each run (baseline, film); val is as it was
    grown = load_scores(ablation_run / "scores-test.npz")
    assert scoring_of(ablation_run / "scores-test.npz")["samples"] == 8
    settings = recipe_plan(more, judge_dir=other).ablation
    pipe = DTCPipeline.from_pretrained(ablation_run / "pipeline")
    pipe.set_progress_bar_config(disable=True)
    world = World(settings.world_seed, pipe.resolution)
    monkeypatch.setattr(ablation_module, "dtc_method", one_pass)
    fresh = ablation_module.score_run(pipe, settings, ablation_module.split_samples(world, settings, "test"),
                                      WorldJudge.load(other), world)
    assert grown.keys() == fresh.keys()
    for key in grown:
        assert np.array_equal(grown[key][:4], kept[key], equal_nan=True), key
        np.testing.assert_allclose(grown[key], fresh[key], rtol=0, atol=1e-5, err_msg=key)


def test_the_reach_note_extends_each_bars_curve_or_says_it_is_not_rising(tmp_path):
    from tryon_lab.training.dtc.curve import SHIPPED_CURVE, reach_note

    assert reach_note(None) == "" and reach_note(tmp_path) == ""
    (tmp_path / SHIPPED_CURVE).write_text("step,identity_acc,attr_acc_all\n700,0.26,0.1\n1400,0.25,0.3\n")
    note = reach_note(tmp_path)
    assert "identity accuracy is not rising" in note
    assert "all-attribute accuracy would reach 0.7 at about step 2800" in note  # 1400 + 0.4 / 0.2 x 700
