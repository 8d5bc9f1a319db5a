"""diffusers' U-Net channel order: old model folders are refused and upgraded exactly, the shipped
models paint what they painted before the upgrade, and old bundles are refused by name."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from tryon_lab.cli import main
from tryon_lab.errors import ConfigError
from tryon_lab.models.channels import inpaint_channels, split_inpaint_channels
from tryon_lab.pipelines.loading import load_inpaint_pipeline
from tryon_lab.pipelines.upgrade import legacy_record, to_diffusers_order

UNET_WEIGHTS = "unet/diffusion_pytorch_model.safetensors"


def _old_order(weight: torch.Tensor) -> torch.Tensor:
    """The inverse of ``to_diffusers_order``: conv_in for [noisy, masked-image latent, mask]."""
    return weight[:, [0, 1, 2, 3, 5, 6, 7, 8, 4]]


@pytest.fixture()
def legacy_folder(tiny_pipeline_dir, tmp_path):
    """The tiny pipeline as an earlier tryon-lab saved it: conv_in in the old order, no inpaint_rule."""
    folder = shutil.copytree(tiny_pipeline_dir, tmp_path / "legacy")
    index = json.loads((folder / "model_index.json").read_text())
    del index["inpaint_rule"]
    (folder / "model_index.json").write_text(json.dumps(index))
    tensors = load_file(folder / UNET_WEIGHTS)
    tensors["conv_in.weight"] = _old_order(tensors["conv_in.weight"]).contiguous()
    save_file(tensors, folder / UNET_WEIGHTS, metadata={"format": "pt"})
    return folder


def test_the_channel_helpers_put_the_mask_first_and_invert():
    mask, masked = torch.rand(2, 1, 4, 4), torch.rand(2, 4, 4, 4)
    channels = inpaint_channels(mask, masked)
    assert torch.equal(channels[:, 0:1], mask) and torch.equal(channels[:, 1:], masked)
    back = split_inpaint_channels(channels)
    assert torch.equal(back[0], masked) and torch.equal(back[1], mask)
    assert np.array_equal(inpaint_channels(mask.numpy(), masked.numpy()), channels.numpy())


def test_the_permutation_is_exact_on_conv_in():
    weight = torch.randn(8, 9, 3, 3)
    assert torch.equal(to_diffusers_order(_old_order(weight)), weight)
    x_new = torch.randn(1, 9, 6, 6)
    x_old = x_new[:, [0, 1, 2, 3, 5, 6, 7, 8, 4]]  # [noisy, masked, mask]
    old = torch.nn.functional.conv2d(x_old.double(), _old_order(weight).double(), padding=1)
    new = torch.nn.functional.conv2d(x_new.double(), weight.double(), padding=1)
    assert torch.allclose(old, new, atol=1e-12)
    with pytest.raises(ConfigError, match="at least 5"):
        to_diffusers_order(torch.zeros(4, 3, 3, 3))


def test_an_old_folder_is_refused_then_upgraded_to_the_same_images(legacy_folder, tiny_pipeline_dir, capsys):
    with pytest.raises(ConfigError, match=f"tryon-lab upgrade {legacy_folder}"):
        load_inpaint_pipeline(legacy_folder, device="cpu")
    assert main(["upgrade", str(legacy_folder)]) == 0
    assert "unet/diffusion_pytorch_model.safetensors: sha256" in capsys.readouterr().out
    assert legacy_record(legacy_folder) is None and not list(legacy_folder.parent.glob(".upgrade-*"))
    upgraded, original = (load_inpaint_pipeline(f, device="cpu") for f in (legacy_folder, tiny_pipeline_dir))
    assert upgraded.inpaint_rule == "tryon-lab"
    assert torch.equal(upgraded.unet.conv_in.weight, original.unet.conv_in.weight)
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    mask = np.zeros((64, 64), bool)
    mask[10:40, 20:50] = True
    images = [np.asarray(p(photo, mask, "a tee", num_inference_steps=3, seed=0).images[0]) for p in (upgraded, original)]
    assert np.array_equal(*images)


def test_upgrade_refuses_a_current_folder_and_changes_nothing(tiny_pipeline_dir, capsys):
    before = (tiny_pipeline_dir / UNET_WEIGHTS).read_bytes()
    assert main(["upgrade", str(tiny_pipeline_dir)]) == 2
    assert "nothing to upgrade" in capsys.readouterr().err
    assert (tiny_pipeline_dir / UNET_WEIGHTS).read_bytes() == before


def test_the_shipped_models_paint_what_they_painted_before_the_upgrade():
    """Try-ons recorded by the code and weights before the upgrade (benchmarks.channel_order)."""
    from benchmarks.channel_order import differences, still_upgraded, tryons_now

    models = tuple(still_upgraded())
    if not models:
        pytest.skip("every shipped model was retrained after the upgrade: no recording applies")
    for model, row in differences(tryons_now(count=1, models=models)).items():
        assert row["max_levels"] <= 1, model  # fp32 summation order inside conv_in, nothing more
        assert row["values_differing"] <= row["values"] // 1000, model


def test_the_grader_names_an_old_bundle_format(tmp_path):
    from tryon_lab.grading.grader import grade_submission

    bundle = tmp_path / "old-bundle"
    bundle.mkdir()
    (bundle / "manifest.json").write_text(json.dumps({
        "format": "tryon-lab-bundle", "format_version": 1, "components": {}, "files": {}, "golden": {},
        "scheduler": {}, "runtime": {}}))
    report = grade_submission(bundle, tmp_path / "report")
    manifest = next(check for check in report.checks if check.name == "manifest")
    assert manifest.status == "failed"
    assert "format_version 1 cannot be read" in manifest.reason and "diffusers' order" in manifest.reason
