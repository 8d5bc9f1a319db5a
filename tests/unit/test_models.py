"""Model configs held as data, the world-caption tokenizer, and component builders."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import CLIPTokenizer

from tryon_lab.errors import ConfigError
from tryon_lab.models import CONFIG_NAMES, build_text_encoder, build_unet, build_vae, load_model_config, train_tokenizer

CAPTIONS = ["a photo of a person wearing a red striped tee", "a photo of a blue dotted mug in a kitchen"] * 20


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_every_config_is_consistent(name):
    config = load_model_config(name)
    latent = config.vae["latent_channels"]
    assert config.unet["in_channels"] == 2 * latent + 1  # noisy latent + masked-image latent + mask
    assert config.unet["out_channels"] == latent
    assert config.latent_size * config.vae_scale_factor == config.resolution


def test_mini_is_128_pixels_with_4x16x16_latents():
    config = load_model_config("mini")
    assert (config.resolution, config.vae["latent_channels"], config.latent_size) == (128, 4, 16)


def test_mini16_widens_the_latent_and_keeps_minis_grid():
    mini, mini16 = load_model_config("mini"), load_model_config("mini16")
    assert (mini16.vae["latent_channels"], mini16.latent_size, mini16.unet["in_channels"]) == (16, 16, 33)
    assert mini16.unet["block_out_channels"] == mini.unet["block_out_channels"]
    assert mini16.vae["block_out_channels"] == mini.vae["block_out_channels"]


def test_bad_configs_are_named(tmp_path):
    with pytest.raises(ConfigError, match="unknown model config 'huge'"):
        load_model_config("huge")
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"resolution": 128}))
    with pytest.raises(ConfigError, match="lacks"):
        load_model_config(broken)
    raw = json.loads((load_model_config.__globals__["resources"].files("tryon_lab.models.configs") / "tiny.json").read_text())
    raw["unet"]["sample_size"] = 5
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="sample_size 5"):
        load_model_config(bad)
    raw["unet"]["sample_size"], raw["vae"]["latent_channels"] = 8, 16  # a wider latent, the U-Net left at 9 in
    bad.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="16-channel latents takes 33 channels and returns 16"):
        load_model_config(bad)


def test_tokenizer_is_a_clip_tokenizer_folder_that_never_loses_a_word(tmp_path):
    tokenizer = train_tokenizer(CAPTIONS, tmp_path, vocab_size=400, max_length=16)
    assert {"vocab.json", "merges.txt"} <= {p.name for p in tmp_path.iterdir()}
    reloaded = CLIPTokenizer.from_pretrained(tmp_path)
    assert reloaded.model_max_length == 16
    ids = reloaded("a photo of a zebra!").input_ids
    assert reloaded.unk_token_id not in ids[1:-1]  # unseen words fall back to byte symbols
    assert reloaded.decode(ids, skip_special_tokens=True) == "a photo of a zebra !"
    caption = "a photo of a person wearing a red striped tee"
    assert len(tokenizer(caption).input_ids) == len(caption.split()) + 2  # one token per seen word, plus BOS/EOS


def test_builders_give_standard_classes_of_the_configured_size(tmp_path):
    config = load_model_config("tiny")
    tokenizer = train_tokenizer(CAPTIONS, tmp_path, vocab_size=400, max_length=16)
    vae, unet, text = build_vae(config), build_unet(config), build_text_encoder(config, tokenizer)
    latents = vae.encode(torch.zeros(1, 3, 64, 64)).latent_dist.mode()
    assert latents.shape == (1, 4, 8, 8)
    hidden = text(tokenizer(["a tee"], padding="max_length", return_tensors="pt").input_ids)[0]
    out = unet(torch.zeros(1, 9, 8, 8), 10, encoder_hidden_states=hidden).sample
    assert out.shape == (1, 4, 8, 8)


def test_the_shipped_models_fit_the_64_mb_budget():
    """Everything in data/models (weights, cards, logs) stays within what a course repository carries."""
    from tryon_lab.paths import data_dir

    files = [p for p in (data_dir() / "models").rglob("*") if p.is_file()]
    assert files and sum(p.stat().st_size for p in files) <= 64 * 10**6
