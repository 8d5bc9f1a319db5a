"""The bundle: layout, manifest, hashes, ExecuTorch programs, and `tryon-lab verify` on good and bad bundles."""

import json
import shutil

import numpy as np
import pytest

from tryon_lab.cli import main
from tryon_lab.export.bundle import ExportOptions, file_hashes
from tryon_lab.export.errors import BundleError, ExportInputError
from tryon_lab.export.palettize import weight_report
from tryon_lab.export.verify import read_manifest, verify_bundle


def test_the_bundle_has_the_designed_layout(bundle):
    assert {p.name for p in bundle.iterdir()} == {"manifest.json", "coreml", "golden"}
    coreml = sorted(p.name for p in (bundle / "coreml").iterdir())
    assert coreml == ["TextEncoder.mlpackage", "UnetChunk1.mlpackage", "UnetChunk2.mlpackage",
                      "VAEDecoder.mlpackage", "VAEEncoder.mlpackage", "merges.txt", "vocab.json"]
    assert sorted(p.name for p in (bundle / "golden").iterdir()) == [  # arrays only: no pickles
        "TextEncoder.safetensors", "Unet.safetensors", "VAEDecoder.safetensors", "VAEEncoder.safetensors",
        "tryon.safetensors"]


def test_the_tokenizer_files_rebuild_the_tokenizer(bundle, pipe):
    from transformers import CLIPTokenizer

    phone = CLIPTokenizer(str(bundle / "coreml" / "vocab.json"), str(bundle / "coreml" / "merges.txt"))
    caption = read_manifest(bundle).golden.prompt
    assert phone(caption).input_ids == pipe.tokenizer(caption).input_ids


def test_the_manifest_records_contract_bits_sizes_and_chunks(bundle):
    import coremltools as ct

    manifest = read_manifest(bundle)
    assert manifest.to_json() == json.loads((bundle / "manifest.json").read_text())  # what export wrote, exactly
    assert manifest.targets == ("coreml",)
    unet = manifest.components["Unet"]
    assert [t.name for t in unet.spec.inputs] == ["sample", "timestep", "encoder_hidden_states"]
    coreml = unet.coreml
    assert coreml.compression.mode == "kmeans" and coreml.compression.bits == 6
    assert coreml.chunking.chunks == 2 and coreml.chunking.max_abs_difference_vs_unchunked == 0.0
    for package in coreml.packages:  # bits come from the written programs
        program = ct.models.MLModel(str(bundle / package.path), skip_model_load=True)
        assert package.bits.to_json() == weight_report(program).to_json()
    assert 6 in coreml.bits.histogram and coreml.bits.average < 10
    assert manifest.components["VAEDecoder"].coreml.compression.to_json() == {"mode": "none"}
    assert manifest.components["VAEDecoder"].coreml.bits.average == 16
    assert manifest.files == file_hashes(bundle)


def test_verify_passes_a_fresh_bundle_and_reports_every_check(bundle, capsys):
    report = verify_bundle(bundle, backend="mil")
    assert report.passed, report.table()
    assert [(row.what, row.target) for row in report.rows] == [
        ("TextEncoder", "coreml"), ("Unet", "coreml"), ("VAEEncoder", "coreml"), ("VAEDecoder", "coreml"),
        ("try-on", "coreml")]
    assert report.rows[1].note == "2 chained chunks" and report.rows[-1].psnr > 20
    assert main(["verify", str(bundle), "--backend", "mil"]) == 0
    assert "PASSED" in capsys.readouterr().out


@pytest.fixture()
def bundle_copy(bundle, tmp_path):
    return shutil.copytree(bundle, tmp_path / "copy")


def test_a_tampered_file_fails_verification(bundle_copy, capsys):
    weights = next((bundle_copy / "coreml" / "UnetChunk2.mlpackage").rglob("weight.bin"))
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    report = verify_bundle(bundle_copy, backend="mil")
    assert not report.passed and any("UnetChunk2" in p and "sha256" in p for p in report.problems)
    assert main(["verify", str(bundle_copy)]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_missing_and_extra_files_are_reported(bundle_copy):
    (bundle_copy / "golden" / "Unet.safetensors").unlink()
    (bundle_copy / "golden" / "extra.npz").write_bytes(b"not listed")
    problems = verify_bundle(bundle_copy).problems
    assert any("Unet.safetensors: missing" in p for p in problems)
    assert any("extra.npz: not listed" in p for p in problems)


def test_a_malformed_manifest_is_a_bundle_error(bundle_copy, tmp_path, capsys):
    manifest_path = bundle_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["../../etc/passwd"] = {"sha256": "0" * 64, "bytes": 1}
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"field files\['\.\./\.\./etc/passwd'\]: path .* leaves the bundle"):
        verify_bundle(bundle_copy)
    manifest_path.write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        verify_bundle(bundle_copy)
    manifest_path.write_text(json.dumps({**manifest, "format_version": 1}))
    with pytest.raises(BundleError, match=r"format_version 1 cannot be read .* reads version 2 \(version 1 fed the U-Net"):
        verify_bundle(bundle_copy)
    assert main(["verify", str(bundle_copy)]) == 2
    assert "tryon-lab export" in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "nothing-here")]) == 2
    assert "no manifest.json" in capsys.readouterr().err


def test_export_options_are_validated():
    with pytest.raises(ExportInputError, match="bits"):
        ExportOptions(bits="5")
    with pytest.raises(ExportInputError, match="targets"):
        ExportOptions(targets=("tflite",))
    with pytest.raises(ExportInputError, match="exactly one"):
        ExportOptions(bits="mixed", target_psnr=None, target_bits=None)


@pytest.mark.slow
def test_the_export_command_writes_a_verifiable_bundle(tiny_pipeline_dir, tmp_path):
    """End to end through the CLI: converts every component again (about a minute on 2 cores)."""
    out = tmp_path / "cli-bundle"
    assert main(["export", "--model", str(tiny_pipeline_dir), "--out", str(out), "--bits", "mixed",
                 "--targets", "coreml", "--steps", "1", "--granularity", "per_tensor"]) == 0
    manifest = read_manifest(out)
    assert manifest.components["Unet"].coreml.compression.bits == "mixed"
    assert np.isfinite(manifest.components["Unet"].coreml.psnr)
    assert verify_bundle(out, backend="mil").passed
