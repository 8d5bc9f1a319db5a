"""``tryon-lab train-dtc``'s recipe on the smoke profile: perceptual net, ablation, shipped DTC parts."""

import json

import pytest

from tryon_lab.errors import ConfigError
from tryon_lab.pipelines.loading import load_dtc_pipeline
from tryon_lab.profiles import load_profile
from tryon_lab.training.dtc_recipe import train_dtc_recipe


def test_the_recipe_ships_loadable_parts_with_a_card_and_the_ablation(tiny_pipeline_dir, tmp_path):
    out, run = tmp_path / "dtc", tmp_path / "run"
    train_dtc_recipe(load_profile("smoke"), out, run, base=tiny_pipeline_dir)
    assert {p.name for p in out.iterdir()} >= {"image_encoder", "hint_encoder", "dtc.json", "MODEL_CARD.md",
                                               "ablation.md", "samples.png", "training.json", "logs"}
    record = json.loads((out / "training.json").read_text())
    assert set(record["ablation"]) == set(load_profile("smoke")["dtc"]["variants"])
    assert "masked_psnr_db" in record["ablation"]["film+perceptual"]
    assert not any((out / "image_encoder").glob("*.bin"))  # safetensors only
    pipe = load_dtc_pipeline(out, base=tiny_pipeline_dir, device="cpu")
    assert pipe.hint_encoder is not None and pipe.hint_encoder.config.fusion == "film"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    # a second run finds every variant scored and trains nothing
    before = {p: p.stat().st_mtime for p in (run / "ablation").rglob("*.safetensors")}
    train_dtc_recipe(load_profile("smoke"), out, run, base=tiny_pipeline_dir)
    assert before == {p: p.stat().st_mtime for p in (run / "ablation").rglob("*.safetensors")}


def test_a_variant_list_without_the_shipped_variant_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="film\\+perceptual"):
        train_dtc_recipe(load_profile("smoke"), tmp_path / "o", tmp_path / "r", variants=["baseline"])
