"""The bundle manifest's schema: a round trip is equal, and every malformed manifest is one typed
error naming the field (missing, wrong type, unknown format version, hostile values)."""

import json

import pytest

from tryon_lab.export.errors import BundleError
from tryon_lab.export.manifest import Manifest, ManifestError, parse_manifest, read_manifest


@pytest.fixture()
def sample(fake_bundle):
    """(folder, manifest.json's content) of a small text bundle with a component."""
    folder = fake_bundle("sample", components=("Unet", "VAEDecoder"))
    return folder, json.loads((folder / "manifest.json").read_text())


def test_a_manifest_written_and_read_back_is_equal(sample):
    folder, raw = sample
    manifest = read_manifest(folder)
    assert isinstance(manifest, Manifest) and manifest.to_json() == raw
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert manifest.conditioning.name == "text" and list(manifest.components) == ["Unet", "VAEDecoder"]


def test_a_dtc_runtime_round_trips(fake_bundle):
    manifest = read_manifest(fake_bundle("dtc", conditioning="reference"))
    assert manifest.runtime.reference_tokens == 5 and manifest.runtime.hint is None
    assert Manifest.from_json(manifest.to_json()) == manifest


def _set(raw, path, value):
    *parents, last = path
    for key in parents:
        raw = raw[key]
    if value is DELETE:
        del raw[last]
    else:
        raw[last] = value


DELETE = object()
SHA = "0" * 64
# (what is wrong, where in the JSON, the value put there, the field the error must name)
MALFORMED = [
    ("missing field", ("golden", "steps"), DELETE, "golden.steps"),
    ("missing section", ("runtime",), DELETE, "runtime"),
    ("missing component field", ("components", "Unet", "golden"), DELETE, "components.Unet.golden"),
    ("wrong type", ("runtime", "resolution"), "64", "runtime.resolution"),
    ("bool for an int", ("golden", "seed"), True, "golden.seed"),
    ("list for an object", ("components",), [], "components"),
    ("wrong tensor shape", ("components", "Unet", "inputs", 0, "shape"), [2, -9], "components.Unet.inputs[0]"),
    ("unknown dtype", ("components", "Unet", "outputs", 0, "dtype"), "complex64", "components.Unet.outputs[0]"),
    ("unknown conditioning", ("runtime", "conditioning"), "telepathy", "runtime.conditioning"),
    ("unknown target", ("targets",), ["tflite"], "targets[0]"),
    ("steps without end", ("golden", "steps"), 10**9, "golden.steps"),
    ("infinite guidance", ("golden", "guidance_scale"), float("inf"), "golden.guidance_scale"),
    ("a scheduler class that is code", ("scheduler", "_class_name"), "os.system", "scheduler._class_name"),
    ("a path leaving the bundle", ("components", "Unet", "golden"), "../../etc/passwd", "components.Unet.golden"),
    ("an absolute path", ("golden", "tryon"), "/etc/passwd", "golden.tryon"),
    ("a path no sha256 covers", ("components", "Unet", "golden"), "golden/other.safetensors",
     "components.Unet.golden"),
    ("a listed file outside", ("files", "../outside"), {"sha256": SHA, "bytes": 1}, "files['../outside']"),
    ("a hash that is not hex", ("files", "golden/tryon.safetensors", "sha256"), "x" * 64,
     "files['golden/tryon.safetensors'].sha256"),
    ("a negative size", ("files", "golden/tryon.safetensors", "bytes"), -1, "files['golden/tryon.safetensors'].bytes"),
    ("a component name that is markup", ("components", "<script>"), {}, "components"),
    ("an unknown compression", ("components", "Unet", "coreml"),
     {"precision": "float16", "deployment_target": "iOS18", "conversion_psnr": None, "psnr": None,
      "compression": {"mode": "zip"}}, "components.Unet.coreml.compression.mode"),
]


@pytest.mark.parametrize("what, where, value, field", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_manifest_is_one_typed_error_naming_the_field(sample, what, where, value, field):
    _, raw = sample
    _set(raw, where, value)
    with pytest.raises(ManifestError) as caught:
        Manifest.from_json(json.loads(json.dumps(raw)), "manifest.json")
    assert caught.value.field == field
    assert f"field {field}: " in str(caught.value) and "\n" not in str(caught.value)
    assert isinstance(caught.value, BundleError)


def test_every_bad_section_is_listed(sample):
    _, raw = sample
    raw["golden"]["steps"] = 0
    raw["scheduler"]["_class_name"] = "eval"
    del raw["created_at"]
    with pytest.raises(ManifestError, match=r"\(and 2 more\)") as caught:
        Manifest.from_json(raw)
    assert [name for name, _ in caught.value.problems] == ["created_at", "scheduler._class_name", "golden.steps"]


@pytest.mark.parametrize("version, why", [(1, "diffusers' order"), (3, "reads version 2"), ("2", "reads version 2")])
def test_another_format_version_names_the_version_and_why(sample, version, why):
    _, raw = sample
    with pytest.raises(ManifestError, match=f"field format_version: bundle format_version .*{why}") as caught:
        Manifest.from_json({**raw, "format_version": version})
    assert caught.value.field == "format_version" and "tryon-lab export" in str(caught.value)


@pytest.mark.parametrize("text, message", [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),  # nesting deep enough to exhaust the parser
    (b"[]", "not a tryon-lab-bundle manifest"),
    (b'{"format": "something else"}', "not a tryon-lab-bundle manifest"),
])
def test_text_that_is_no_manifest_is_a_bundle_error(text, message):
    with pytest.raises(BundleError, match=message):
        parse_manifest(text)


def test_a_folder_without_a_manifest_is_a_bundle_error(tmp_path):
    (tmp_path / "a-file").write_text("not a bundle")
    for path in (tmp_path, tmp_path / "missing", tmp_path / "a-file"):
        with pytest.raises(BundleError, match="no manifest.json"):
            read_manifest(path)


def test_a_coreml_entry_without_attention_reads_as_original_and_split_einsum_round_trips():
    from tryon_lab.export.manifest import Bits, Compression, CoreMLEntry, Package
    from tryon_lab.export.manifest_fields import Invalid

    package = Package("Unet", "coreml/Unet.mlpackage", (), (), Bits(16.0, {16: 10}, 10, 20), 20)
    entry = CoreMLEntry("float16", "iOS18", 60.0, 60.0, Compression("none"), package.bits, 20, (package,), None,
                        "split_einsum")
    raw = entry.to_json()
    assert raw["attention"] == "split_einsum" and CoreMLEntry.from_json(raw, "coreml") == entry
    del raw["attention"]  # a bundle written before the field
    assert CoreMLEntry.from_json(raw, "coreml").attention == "original"
    with pytest.raises(Invalid, match="attention"):
        CoreMLEntry.from_json({**raw, "attention": "flash"}, "coreml")


def test_every_precision_the_converter_keeps_is_one_a_manifest_accepts():
    """The converter may keep fp16 with fp32 variance (the shipped VAE decoder needs it: its GroupNorm
    variance overflows fp16); its bundle's manifest must read back."""
    from tryon_lab.export.coreml import PRECISIONS
    from tryon_lab.export.manifest import Bits, Compression, CoreMLEntry, Package

    package = Package("VAEDecoder", "coreml/VAEDecoder.mlpackage", (), (), Bits(16.0, {16: 10}, 10, 20), 20)
    for precision in PRECISIONS:
        entry = CoreMLEntry(precision, "iOS18", 60.0, 60.0, Compression("none"), package.bits, 20, (package,), None,
                            "original")
        assert CoreMLEntry.from_json(entry.to_json(), "coreml") == entry
