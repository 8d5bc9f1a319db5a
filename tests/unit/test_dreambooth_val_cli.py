"""``python -m benchmarks.dreambooth_val --base``: a candidate base is checked before any fine-tuning."""

from benchmarks.dreambooth_val import main


def test_a_folder_that_is_not_a_pipeline_is_refused_before_work(tmp_path, capsys):
    out = tmp_path / "table.md"
    assert main(["--base", str(tmp_path), "--out", str(out)]) == 2
    assert "not a pipeline folder" in capsys.readouterr().err
    assert not out.exists()


def test_recipe_changes_are_read_as_toml_and_unknown_fields_refused(tmp_path, capsys):
    import pytest

    from benchmarks.dreambooth_val import recipe_overrides
    from tryon_lab.errors import ConfigError

    assert recipe_overrides(["learning_rate=2e-4", " steps = 300"]) == {"learning_rate": 2e-4, "steps": 300}
    with pytest.raises(ConfigError, match="lerning_rate"):
        recipe_overrides(["lerning_rate=1e-4"])
    with pytest.raises(ConfigError, match="not a TOML value"):
        recipe_overrides(["steps=three hundred"])
    assert main(["--base", str(tmp_path), "--set", "steps"]) == 2
    assert "FIELD=VALUE" in capsys.readouterr().err


def test_class_words_name_what_follows_the_identifier_and_unknown_ones_are_refused():
    import pytest

    from benchmarks.dreambooth import class_word
    from tryon_lab.errors import ConfigError
    from tryon_lab.training.dreambooth.instances import item_from_id

    tee = item_from_id("garment-tee-red-stripes-2")
    assert class_word(tee, "category") is None  # the dataset's default: the category
    assert class_word(tee, "caption") == tee.caption_phrase and tee.category in tee.caption_phrase
    with pytest.raises(ConfigError, match="category, caption"):
        class_word(tee, "colour")
    with pytest.raises(SystemExit):
        main(["--base", ".", "--class-words", "colour"])


def test_prior_drift_is_read_from_the_whole_interval():
    from benchmarks.dreambooth import drift_verdict
    from tryon_lab.metrics.stats import Interval

    assert drift_verdict(Interval(0.2, 0.05, 0.35)).startswith("drifted")
    assert drift_verdict(Interval(0.1, -0.02, 0.25)) == "no drift distinguishable"
    assert "less often" in drift_verdict(Interval(-0.2, -0.3, -0.1))


def test_a_lora_rank_change_is_the_lora_arms_rank_and_the_full_arm_stays_full():
    from benchmarks.dreambooth import arm_settings
    from tryon_lab.profiles import load_profile

    profile = load_profile("quick")
    full, lora = arm_settings(profile, {"lora_rank": 32, "steps": 800})
    assert full.mode == "full" and lora.lora_rank == 32
    assert full.steps == lora.steps == 800
    assert arm_settings(profile)[1].lora_rank == profile["dreambooth"]["lora_rank_demo"]


def test_a_garments_identity_ceilings_judge_its_held_out_renderings_and_their_round_trip(monkeypatch):
    import tryon_lab.metrics.baselines as baselines
    from benchmarks.dreambooth import identity_ceilings
    from tryon_lab.data.world import World
    from tryon_lab.metrics.judge import WorldJudge
    from tryon_lab.paths import shipped_model
    from tryon_lab.training.dreambooth.instances import item_from_id

    judge, world = WorldJudge.load(shipped_model("world-encoder")), World(0, 128)
    seen = []
    monkeypatch.setattr(baselines, "vae_round_trip", lambda vae, images: seen.extend(images) or list(images))
    ceilings = identity_ceilings("vae", judge, world, item_from_id("garment-tee-red-solid-2"), "val")
    assert ceilings["ground truth"] >= 0.75  # the judge reads this val garment's motif on people it never saw
    assert ceilings["round trip"] == ceilings["ground truth"]  # a lossless round trip keeps all of it
    assert [image.size for image in seen] == [(128, 128)] * 8  # the benchmark's 8 held-out people
