"""The DTC recipe made ready for the paper-faithful retraining: variant names checked before any
work, a perceptual network trained without labels, the same U-Net parameters for every variant
(LoRA fused into the saved pipeline), the hint timestep option, and evaluation that decides
(intervals, seeds, paired verdicts)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tryon_lab.data.world import World
from tryon_lab.errors import ConfigError, SplitError
from tryon_lab.metrics.stats import verdict
from tryon_lab.models.dtc import PerceptualNet
from tryon_lab.pipelines.dtc import DTCPipeline
from tryon_lab.training.dtc import (
    AblationSettings,
    ContrastiveObjective,
    DTCSettings,
    PerceptualSettings,
    UnlabelledCropDataset,
    ablation_table,
    compare_variants,
    comparison_pairs,
    comparisons_table,
    factor_verdicts,
    finish_unet,
    parse_variants,
    prepare_unet,
    summarize_variant,
    train_dtc,
    train_perceptual_net,
    valid_names,
)
from tryon_lab.training.dtc.evaluation import comparison_factor


@pytest.fixture(scope="module")
def base(tiny_pipeline_dir):
    from tryon_lab.pipelines.loading import load_inpaint_pipeline

    return load_inpaint_pipeline(tiny_pipeline_dir, device="cpu")


@pytest.fixture()
def scene():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, size=(64, 64, 3), dtype=np.uint8))
    mask = np.zeros((64, 64), dtype=bool)
    mask[16:48, 12:50] = True
    return image, mask, Image.fromarray(rng.integers(0, 255, size=(40, 30, 3), dtype=np.uint8))


# --- variant names -------------------------------------------------------------------------------


def test_variant_names_parse_and_unknown_ones_are_refused_with_the_valid_list():
    parsed = parse_variants(["baseline", "film+t", "add+t+perceptual"])
    assert parsed["film+t"].fusion == "film" and parsed["film+t"].hint_timestep and not parsed["film+t"].perceptual
    assert parsed["baseline"].fusion is None and parsed["add+t+perceptual"].perceptual
    for bad in ("typo", "baseline+t", "film+perceptual+t", "film+t+t", "FiLM"):
        with pytest.raises(ConfigError, match="valid variants: baseline, baseline\\+perceptual"):
            parse_variants(["film", bad])
    assert len(valid_names()) == 10
    with pytest.raises(ConfigError, match="seed_variants"):
        AblationSettings(train=DTCSettings(steps=1), variants=("film",), seed_variants=("add",))


def test_train_dtc_refuses_a_typo_before_any_work(tmp_path, capsys):
    from tryon_lab.cli import main

    run_dir = tmp_path / "run"
    status = main(["train-dtc", "--profile", "smoke", "--out", str(tmp_path / "out"), "--run-dir", str(run_dir),
                   "--variants", "film+perceptual", "typo"])
    err = capsys.readouterr().err
    assert status == 2 and "'typo'" in err and "film+t" in err and "Traceback" not in err
    assert not run_dir.exists() and not (tmp_path / "out").exists()


def test_profile_settings_are_typed_and_unknown_keys_named():
    with pytest.raises(ConfigError, match="train_unet"):
        DTCSettings.from_mapping({"steps": 2, "train_unet": False})
    with pytest.raises(ConfigError, match="unet = 'partly'"):
        DTCSettings(steps=2, unet="partly")
    with pytest.raises(ConfigError, match="unet_lora_rank"):
        DTCSettings(steps=2, unet="lora", unet_lora_rank=0)


def test_comparison_pairs_differ_in_exactly_one_factor():
    pairs = comparison_pairs(parse_variants(["baseline", "add", "film", "film+perceptual", "film+t", "add+perceptual"]))
    assert set(pairs) == {("add", "baseline"), ("film", "baseline"), ("film", "add"),
                          ("film+perceptual", "film"), ("film+t", "film"), ("add+perceptual", "add"),
                          ("film+perceptual", "add+perceptual")}



def test_factor_verdicts_tally_each_factor_from_the_paired_intervals():
    def row(a, b, metric, lo, hi):
        interval = type("I", (), {"lo": lo, "hi": hi, "excludes": lambda self, v: not lo <= v <= hi})()
        return {"a": a, "b": b, "metric": metric, "difference": (lo + hi) / 2, "lo": lo, "hi": hi,
                "verdict": verdict(interval, metric == "kid_world", (a, b))}

    rows = [row("film", "add", "identity_acc", 0.01, 0.09), row("film", "add", "kid_world", -0.002, 0.003),
            row("film+perceptual", "add+perceptual", "identity_acc", -0.05, 0.04),
            row("add+perceptual", "add", "kid_world", 0.001, 0.004), row("film", "baseline", "identity_acc", 0.2, 0.4)]
    text = factor_verdicts(rows)
    fusion = text[text.index("**FiLM against direct addition**"):text.index("**The perceptual loss**")]
    assert "1 favour FiLM, 0 favour addition, 2 not distinguishable (of 3 paired comparisons)." in fusion
    assert "- `film` against `add`: film beats add on identity acc." in fusion
    assert "not distinguishable on KID (world enc.) ↓" in fusion
    assert "add beats add+perceptual on KID" in text  # lower KID wins: the loss made it worse here
    assert "0 favour with the loss, 1 favour without it, 0 not distinguishable (of 1 paired comparison)" in text
    assert text.index("**The hint") < text.index("**FiLM") and "timestep" not in text
    assert comparison_factor("film+t", "film") == "timestep"
    with pytest.raises(ConfigError, match="exactly one factor"):
        comparison_factor("film+perceptual", "add")
    assert "nothing to compare" in factor_verdicts([])


# --- the perceptual network: no labels -----------------------------------------------------------


class _OnlyImages(dict):
    """A batch that fails the test if anything but the pixels is read."""

    def __getitem__(self, key):
        assert key == "image", f"the perceptual objective read {key!r}"
        return super().__getitem__(key)


def test_perceptual_training_reads_no_labels_and_its_loss_falls(tmp_path):
    world = World(seed=1, resolution=64)
    dataset = UnlabelledCropDataset(world, "train", length=16, crop_size=32)
    assert set(dataset[0]) == {"image"} and dataset[0]["image"].shape == (3, 32, 32)
    for split in ("val", "test"):
        with pytest.raises(SplitError):
            UnlabelledCropDataset(world, split)
    images = torch.stack([dataset[i]["image"] for i in range(16)])
    torch.manual_seed(0)
    objective = ContrastiveObjective(PerceptualNet(channels=(8, 8, 16, 16, 32), projection_dim=16))

    def loss_at_fixed_views() -> float:
        torch.manual_seed(123)
        with torch.no_grad():
            return float(objective(_OnlyImages(image=images))[0])

    before = loss_at_fixed_views()
    optimizer = torch.optim.AdamW(objective.parameters(), lr=3e-3)
    for step in range(30):
        torch.manual_seed(step)
        loss, logs = objective(_OnlyImages(image=images))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert set(logs) == {"info_nce", "positive_top1"}
    assert loss_at_fixed_views() < 0.8 * before
    # the recipe end to end: its folder says what it was trained on and how
    net = train_perceptual_net(tmp_path / "run", PerceptualSettings(steps=2, batch_size=4, dataset_size=8, crop_size=32),
                               resolution=64, out_dir=tmp_path / "net")
    record = json.loads((tmp_path / "net" / "training.json").read_text())
    assert record["labels_used"] is False and "InfoNCE" in record["objective"] and "train-split" in record["data"]
    assert "never saw an attribute label" in (tmp_path / "net" / "README.md").read_text()
    assert not any(p.requires_grad for p in net.parameters())
    assert PerceptualNet.from_pretrained(tmp_path / "net").config.projection_dim == net.config.projection_dim


# --- the same U-Net parameters for every variant ---------------------------------------------------


def test_unet_modes_train_the_same_set_whatever_the_fusion(base):
    import copy

    total = sum(p.numel() for p in base.unet.parameters())
    assert prepare_unet(copy.deepcopy(base.unet), "frozen") == 0
    assert prepare_unet(copy.deepcopy(base.unet), "full") == total
    counts = set()
    for fusion in (None, "add", "film"):
        pipe = DTCPipeline.from_base(base, fusion)
        counts.add(prepare_unet(pipe.unet, "lora", 4, "all"))
    assert len(counts) == 1 and 0 < counts.pop() < total


def test_the_hint_learning_rate_scale_applies_to_the_hint_path_only(base):
    from tryon_lab.training.dtc.objective import DTCObjective
    from tryon_lab.training.loop import parameter_groups

    settings = DTCSettings(steps=1, learning_rate=1e-4, hint_lr_scale=10.0)
    for fusion in ("film", "add"):
        pipe = DTCPipeline.from_base(base, fusion)
        prepare_unet(pipe.unet, "lora", 4, "all")
        objective = DTCObjective(pipe.unet, pipe.image_encoder, pipe.hint_encoder, base.scheduler)
        plain, hint = parameter_groups(objective, settings.loop())
        assert hint["lr"] == pytest.approx(1e-3) and plain["lr"] == pytest.approx(1e-4)
        assert {id(p) for p in hint["params"]} == {id(p) for p in pipe.hint_encoder.parameters()}
    baseline = DTCPipeline.from_base(base, None)
    objective = DTCObjective(baseline.unet, baseline.image_encoder, None, base.scheduler)
    assert len(parameter_groups(objective, settings.loop(hint=False))) == 1  # no hint path: nothing to scale
    assert DTCSettings(steps=1).loop().lr_scales == ()
    with pytest.raises(ConfigError, match=r"\[dtc.train\] hint_lr_scale"):
        DTCSettings(steps=1, hint_lr_scale=0.0)


def test_a_lora_trained_unet_is_fused_into_the_saved_pipeline(base, scene, tmp_path):
    settings = DTCSettings(steps=2, batch_size=2, dataset_size=4, learning_rate=1e-2, checkpoint_every=2,
                           perceptual_batch=1, warmup_steps=1, unet="lora", unet_lora_rank=4)
    pipe, _ = train_dtc(base, tmp_path / "run", settings, fusion="film", seed=0)
    assert not getattr(pipe.unet, "_hf_peft_config_loaded", False)
    assert not any("lora" in name for name, _ in pipe.unet.named_parameters())
    moved = [not torch.equal(a, b) for a, b in zip(pipe.unet.state_dict().values(), base.unet.state_dict().values())]
    assert any(moved), "the fused LoRA changed the U-Net's weights"
    pipe.save_pretrained(tmp_path / "saved")
    loaded = DTCPipeline.from_pretrained(tmp_path / "saved", local_files_only=True)
    for p in (pipe, loaded):
        p.set_progress_bar_config(disable=True)
    image, mask, reference = scene
    a = pipe(image, mask, reference, num_inference_steps=1, seed=4, output_type="np").images
    b = loaded(image, mask, reference, num_inference_steps=1, seed=4, output_type="np").images
    assert np.abs(a - b).max() <= 1 / 255 + 1e-6


def test_fusing_keeps_the_adapted_unets_output(base):
    import copy

    unet = copy.deepcopy(base.unet)
    prepare_unet(unet, "lora", 4, "all")
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05, generator=torch.Generator().manual_seed(len(name)))
    sample = torch.randn(2, 9, 8, 8, generator=torch.Generator().manual_seed(0))
    context = torch.randn(2, 5, unet.config.cross_attention_dim, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([10, 600])
    with torch.no_grad():
        adapted = unet(sample, t, encoder_hidden_states=context).sample
        plain = base.unet(sample, t, encoder_hidden_states=context).sample
        fused = finish_unet(unet)(sample, t, encoder_hidden_states=context).sample
    assert not torch.allclose(adapted, plain, atol=1e-4)
    assert torch.allclose(fused, adapted, atol=1e-5)


# --- the hint timestep ---------------------------------------------------------------------------


def test_the_hint_timestep_option_recomputes_the_hint_every_step(base, scene):
    from tryon_lab.export.contract import pipeline_components
    from tryon_lab.export.errors import ExportInputError
    from tryon_lab.training.dtc import hint_step_seconds

    image, mask, reference = scene
    calls = {}
    for hint_timestep in (False, True):
        pipe = DTCPipeline.from_base(base, "film", timestep_conditioning=hint_timestep)
        pipe.set_progress_bar_config(disable=True)
        seen = []
        pipe.hint_encoder.register_forward_hook(lambda *_, seen=seen: seen.append(1))
        pipe(image, mask, reference, num_inference_steps=3, seed=0)
        calls[hint_timestep] = len(seen)
    assert calls == {False: 1, True: 3}
    with pytest.raises(ExportInputError, match="timestep_conditioning"):
        pipeline_components(pipe, only=("HintEncoder",))
    seconds = hint_step_seconds(base, steps=2, repeats=1)
    assert set(seconds) == {"film", "film+t"} and all(s > 0 for s in seconds.values())


# --- evaluation that decides ---------------------------------------------------------------------


def test_intervals_seeds_and_paired_verdicts():
    rng = np.random.default_rng(0)
    n, d = 40, 8
    real = rng.normal(size=(n, d))

    def run(hits: float, shift: float, seed: int) -> dict:
        r = np.random.default_rng(seed)
        return {"identity_acc": (r.random(n) < hits).astype(float), "masked_psnr_db": 20 + r.normal(size=n),
                "features": real + shift + 0.1 * r.normal(size=(n, d))}

    good, bad = [run(0.9, 0.0, 1), run(0.9, 0.0, 2)], [run(0.1, 2.0, 3)]
    summary = summarize_variant(good, real, resamples=100)
    for metric in ("identity_acc", "masked_psnr_db", "kid_world"):
        assert summary[f"{metric}_lo"] <= summary[metric] <= summary[f"{metric}_hi"]
        assert len(summary[f"{metric}_seeds"]) == 2
    assert "fid_world" in summary  # 40 samples >= 2 x 8 dimensions: FID is defined
    rows = {r["metric"]: r for r in compare_variants(("film", good), ("baseline", bad), real, resamples=100)}
    assert rows["identity_acc"]["verdict"] == "film beats baseline"
    assert rows["kid_world"]["verdict"] == "film beats baseline" and rows["kid_world"]["difference"] < 0
    assert rows["fid_world"]["verdict"] == "film beats baseline" and rows["fid_world"]["difference"] < 0
    assert rows["masked_psnr_db"]["verdict"] == "not distinguishable"
    few = [{k: v[:10] for k, v in r.items()} for r in (good[0], bad[0])]  # 10 < 2 x 8: no FID, KID still
    metrics = {r["metric"] for r in compare_variants(("film", few[:1]), ("baseline", few[1:]), real[:10], resamples=20)}
    assert "kid_world" in metrics and "fid_world" not in metrics
    table = ablation_table({"baseline": summarize_variant(bad, real, resamples=100), "film": summary})
    assert "KID" in table and "(seeds " in table and table.index("| baseline") < table.index("| film")
    assert "film beats baseline" in comparisons_table(list(rows.values()))


def test_scoring_try_ons_shows_a_progress_bar_only_when_titled(base, capsys):
    from tryon_lab.training.dtc.evaluation import dtc_method

    pipe = DTCPipeline.from_base(base, "film")
    pipe.set_progress_bar_config(disable=True)
    samples = [World(seed=0, resolution=64).sample(i, split="val") for i in range(3)]
    assert len(dtc_method(pipe, steps=1, batch_size=2)(samples)) == 3
    assert capsys.readouterr().err == ""
    assert len(dtc_method(pipe, steps=1, batch_size=2, progress="scoring film on val")(samples)) == 3
    err = capsys.readouterr().err
    assert "scoring film on val" in err and "3/3" in err


def test_the_judge_scores_identity_and_features_on_test_items():
    from tryon_lab.metrics.judge import WorldJudge
    from tryon_lab.models.world_encoder import WorldEncoder
    from tryon_lab.training.dtc.evaluation import real_features, score_tryons

    judge = WorldJudge(WorldEncoder.for_world())
    world = World(seed=0, resolution=64)
    samples = [world.sample(i, split="test") for i in range(3)]
    values = score_tryons(samples, [s.target for s in samples], judge, world)
    assert values["identity_acc"].shape == (3,) and set(np.unique(values["identity_acc"])) <= {0.0, 1.0}
    assert values["features"].shape[0] == 3
    assert np.allclose(values["features"], real_features(samples, judge), atol=1e-5)


