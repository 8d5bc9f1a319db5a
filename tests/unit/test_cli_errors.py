"""Every ``tryon-lab`` subcommand, given bad arguments or bad files, says what is wrong in one line and
exits with status 2: no traceback, and before any long work starts (each case has seconds), run
in-process through ``tryon_lab.cli.main``."""

import json

import pytest
from PIL import Image

from tryon_lab.cli import main

BAD_NUMBER = "many"


@pytest.fixture()
def files(tmp_path, tiny_pipeline_dir):
    """Bad inputs: ``missing`` (no such path), ``empty`` (an empty file), ``text`` (a text file),
    ``folder`` (an empty folder), ``manifest`` (a folder whose manifest.json is empty), ``malformed`` (a
    folder whose manifest.json is a bundle manifest missing its fields); a good ``photo`` (a PNG) and
    ``tiny``, a model without an LCM LoRA."""
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.txt").write_text("just words, not what was asked for\n")
    (tmp_path / "folder").mkdir()
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "manifest.json").write_text("")
    (tmp_path / "malformed").mkdir()
    (tmp_path / "malformed" / "manifest.json").write_text(json.dumps({"format": "tryon-lab-bundle", "format_version": 2,
                                                                       "components": {"Unet": {"inputs": 3}}}))
    Image.new("RGB", (64, 64), (200, 120, 40)).save(tmp_path / "photo.png")
    return {"missing": str(tmp_path / "missing"), "empty": str(tmp_path / "empty.png"),
            "text": str(tmp_path / "text.txt"), "folder": str(tmp_path / "folder"),
            "manifest": str(tmp_path / "bundle"), "malformed": str(tmp_path / "malformed"),
            "photo": str(tmp_path / "photo.png"), "out": str(tmp_path / "out"), "tiny": str(tiny_pipeline_dir)}


PERSON = ["--person", "{empty}"]
PHOTO = ["tryon", "--person", "{photo}", "--prompt", "a tee", "--out", "{out}.png"]


# (case name, arguments with {file} placeholders)
CASES = [
    ("no command", []),
    ("unknown command", ["dance"]),
    ("course: wrong profile", ["course", "--profile", "huge"]),
    ("course: missing notebooks folder", ["course", "--notebooks", "{missing}"]),
    ("course: no such notebook", ["course", "--only", "99", "--notebooks", "{folder}"]),
    ("course: bad number", ["course", "--cell-timeout", BAD_NUMBER]),
    ("world: no action", ["world"]),
    ("world: bad count", ["world", "render", "--out", "{out}", "--garments", "-1"]),
    ("world: bad resolution", ["world", "render", "--out", "{out}", "--resolution", "8"]),
    ("world: negative seed", ["world", "render", "--out", "{out}", "--seed", "-1"]),
    ("world: more garments than the world has", ["world", "render", "--out", "{out}", "--garments", "100000",
                                                 "--products", "0", "--scenes", "0", "--resolution", "32"]),
    ("world: out is a file", ["world", "render", "--out", "{text}", "--garments", "1", "--products", "0",
                              "--scenes", "0", "--resolution", "32"]),
    ("pretrain: wrong profile", ["pretrain", "vae", "--profile", "huge", "--out", "{out}"]),
    ("pretrain: wrong component", ["pretrain", "everything", "--out", "{out}"]),
    ("pretrain: missing vae", ["pretrain", "unet", "--vae", "{missing}", "--out", "{out}"]),
    ("pretrain: vae is a text file", ["pretrain", "unet", "--vae", "{text}", "--out", "{out}"]),
    ("pretrain: init is a text file", ["pretrain", "vae", "--init", "{text}", "--out", "{out}"]),
    ("pretrain: unknown phase", ["pretrain", "vae", "--phases", "sculpt", "--out", "{out}"]),
    ("pretrain: out is a file", ["pretrain", "encoder", "--out", "{text}"]),
    ("pretrain: missing judge", ["pretrain", "unet", "--vae", "{folder}", "--judge", "{missing}", "--out", "{out}"]),
    ("curve: missing run", ["curve", "--run-dir", "{missing}", "--vae", "{folder}", "--judge", "{folder}"]),
    ("curve: run without checkpoints", ["curve", "--run-dir", "{folder}", "--vae", "{folder}", "--judge", "{folder}"]),
    ("curve: VAE run without checkpoints", ["curve", "--run-dir", "{folder}", "--judge", "{folder}"]),
    ("curve: bad samples", ["curve", "--run-dir", "{folder}", "--vae", "{folder}", "--judge", "{folder}",
                            "--samples", "1"]),
    ("train-dtc: wrong profile", ["train-dtc", "--profile", "huge", "--out", "{out}"]),
    ("train-dtc: missing base", ["train-dtc", "--base", "{missing}", "--out", "{out}"]),
    ("train-dtc: missing judge", ["train-dtc", "--judge", "{missing}", "--out", "{out}"]),
    ("train-dtc: variant name", ["train-dtc", "--variants", "film+perceptual", "typo", "--out", "{out}"]),
    ("dtc-curve: variant name", ["dtc-curve", "--profile", "smoke", "--variant", "typo", "--steps", "4",
                                 "--judge", "{folder}", "--run-dir", "{folder}"]),
    ("dtc-curve: run never trained", ["dtc-curve", "--profile", "smoke", "--variant", "film+perceptual", "--steps", "4",
                                      "--judge", "{folder}", "--run-dir", "{folder}"]),
    ("dtc-curve: bad steps", ["dtc-curve", "--variant", "film", "--steps", BAD_NUMBER, "--judge", "{folder}"]),
    ("distill: wrong profile", ["distill", "--profile", "huge"]),
    ("distill: missing base", ["distill", "--base", "{missing}", "--run-dir", "{out}"]),
    ("distill: text file as base", ["distill", "--base", "{text}", "--run-dir", "{out}"]),
    ("distill: missing judge", ["distill", "--base", "{folder}", "--judge", "{missing}", "--run-dir", "{out}"]),
    ("distill-vae: wrong profile", ["distill-vae", "--profile", "huge"]),
    ("distill-vae: missing base", ["distill-vae", "--base", "{missing}", "--run-dir", "{out}"]),
    ("distill-vae: text file as base", ["distill-vae", "--base", "{text}", "--run-dir", "{out}"]),
    ("distill-vae: missing judge", ["distill-vae", "--base", "{folder}", "--judge", "{missing}", "--run-dir", "{out}"]),
    ("tryon: missing photo", ["tryon", "--person", "{missing}", "--mask", "auto", "--category", "tee",
                              "--prompt", "a tee", "--out", "{out}"]),
    ("tryon: empty photo", [*PERSON, "--mask", "auto", "--category", "tee", "--prompt", "a tee", "--out", "{out}"]),
    ("tryon: text file as photo", ["tryon", "--person", "{text}", "--mask", "auto", "--category", "tee",
                                   "--prompt", "a tee", "--out", "{out}"]),
    ("tryon: no prompt or reference", ["tryon", "--person", "{text}", "--mask", "auto", "--out", "{out}"]),
    ("tryon: bad steps", ["tryon", "--person", "{text}", "--mask", "auto", "--prompt", "x", "--out", "{out}",
                          "--steps", BAD_NUMBER]),
    ("tryon: missing reference", ["tryon", "--person", "{missing}", "--mask", "auto", "--category", "mug",
                                  "--reference", "{missing}", "--out", "{out}"]),
    ("dreambooth: wrong profile", ["dreambooth", "--garment", "x", "--profile", "huge", "--out", "{out}"]),
    ("dreambooth: unknown garment", ["dreambooth", "--garment", "garment-cape-gold-sparkles", "--out", "{out}"]),
    ("dreambooth: missing photos", ["dreambooth", "--images", "{missing}", "--class-word", "tee", "--out", "{out}"]),
    ("dreambooth: text file as photos", ["dreambooth", "--images", "{text}", "--class-word", "tee",
                                         "--out", "{out}"]),
    ("dreambooth: empty photo folder", ["dreambooth", "--images", "{folder}", "--class-word", "tee",
                                        "--out", "{out}"]),
    ("dreambooth: negative rank", ["dreambooth", "--garment", "garment-tee-red-stripes", "--lora-rank", "-1",
                                   "--out", "{out}"]),
    ("dreambooth: zero steps", ["dreambooth", "--garment", "garment-tee-red-stripes", "--steps", "0",
                                "--out", "{out}"]),
    ("dreambooth: missing base", ["dreambooth", "--garment", "garment-tee-red-stripes", "--base", "{missing}",
                                  "--out", "{out}"]),
    ("info: unknown option", ["info", "--xml"]),
    ("export: missing model", ["export", "--model", "{missing}", "--out", "{out}"]),
    ("export: text file as model", ["export", "--model", "{text}", "--out", "{out}"]),
    ("export: empty model folder", ["export", "--model", "{folder}", "--out", "{out}"]),
    ("export: zero chunks", ["export", "--chunks", "0", "--out", "{out}"]),
    ("export: bad bits", ["export", "--bits", "5", "--out", "{out}"]),
    ("export: unknown target", ["export", "--targets", "tflite", "--out", "{out}"]),
    ("export: bad group size", ["export", "--group-size", "0", "--out", "{out}"]),
    ("export: zero steps", ["export", "--steps", "0", "--out", "{out}"]),
    ("export: unknown attention", ["export", "--attention", "flash", "--out", "{out}"]),
    ("export: out is a file", ["export", "--out", "{text}"]),
    ("export: out holds files", ["export", "--out", "{manifest}"]),
    ("tryon: auto mask without a category", [*PHOTO, "--mask", "auto"]),
    ("tryon: unknown category", [*PHOTO, "--mask", "auto", "--category", "cape"]),
    ("tryon: zero steps", [*PHOTO, "--mask", "auto", "--category", "tee", "--steps", "0"]),
    ("tryon: text file as mask", [*PHOTO, "--mask", "{text}"]),
    ("tryon: unknown sampler", [*PHOTO, "--mask", "auto", "--category", "tee", "--sampler", "plms"]),
    ("tryon: lcm with guidance", [*PHOTO, "--mask", "auto", "--category", "tee", "--sampler", "lcm",
                                  "--guidance", "4"]),
    ("tryon: lcm without an LCM LoRA", [*PHOTO, "--mask", "auto", "--category", "tee", "--sampler", "lcm",
                                        "--model", "{tiny}"]),
    ("export: unknown sampler", ["export", "--sampler", "plms", "--out", "{out}"]),
    ("tryon: out is a folder", ["tryon", "--person", "{text}", "--mask", "auto", "--prompt", "x", "--out", "{folder}"]),
    ("verify: missing bundle", ["verify", "{missing}"]),
    ("verify: empty folder", ["verify", "{folder}"]),
    ("verify: text file as bundle", ["verify", "{text}"]),
    ("verify: empty manifest", ["verify", "{manifest}"]),
    ("verify: malformed manifest", ["verify", "{malformed}"]),
    ("verify: wrong backend", ["verify", "{folder}", "--backend", "gpu"]),
    ("app: missing model", ["app", "--model", "{missing}"]),
    ("app: text file as bundle", ["app", "--bundle", "{text}"]),
    ("app: empty manifest", ["app", "--bundle", "{manifest}"]),
    ("app: malformed manifest", ["app", "--bundle", "{malformed}"]),
    ("app: garments with a bundle", ["app", "--bundle", "{manifest}", "--garments", "{folder}"]),
    ("app: missing catalog", ["app", "--catalog", "{missing}"]),
    ("app: text file as catalog", ["app", "--catalog", "{text}"]),
    ("app: missing garments", ["app", "--garments", "{missing}"]),
    ("app: bad port", ["app", "--port", BAD_NUMBER]),
    ("grade: nothing to grade", ["grade", "--out", "{out}"]),
    ("grade: missing class", ["grade", "--class", "{missing}", "--out", "{out}"]),
    ("grade: empty class", ["grade", "--class", "{folder}", "--out", "{out}"]),
    ("grade: text file as class", ["grade", "--class", "{text}", "--out", "{out}"]),
    ("grade: missing reference", ["grade", "{folder}", "--reference", "{missing}", "--out", "{out}"]),
    ("grade: text file as reference", ["grade", "{folder}", "--reference", "{text}", "--out", "{out}"]),
    ("grade: empty manifest reference", ["grade", "{folder}", "--reference", "{manifest}", "--out", "{out}"]),
    ("grade: malformed manifest reference", ["grade", "{folder}", "--reference", "{malformed}", "--out", "{out}"]),
    ("grade: submissions and a class", ["grade", "{folder}", "--class", "{folder}", "--out", "{out}"]),
    ("grade: text file as rubric", ["grade", "{folder}", "--rubric", "{text}", "--out", "{out}"]),
    ("grade: missing rubric", ["grade", "{folder}", "--rubric", "{missing}", "--out", "{out}"]),
    ("grade: bad jobs", ["grade", "{folder}", "--jobs", BAD_NUMBER, "--out", "{out}"]),
    ("grade: negative timeout", ["grade", "{folder}", "--timeout", "-5", "--out", "{out}"]),
    ("upgrade: missing folder", ["upgrade", "{missing}"]),
    ("upgrade: text file", ["upgrade", "{text}"]),
    ("upgrade: nothing", ["upgrade"]),
]
@pytest.mark.timeout(120)
@pytest.mark.parametrize("args", [pytest.param(args, id=name) for name, args in CASES])
def test_a_bad_input_is_one_line_and_exit_status_2(args, files, capsys):
    argv = [arg.format(**files) for arg in args]
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's refusals exit from inside parse_args
        code = exit_.code
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    # the tool's own line; libraries loading for the first time in this process may talk before it (a real
    # tryon-lab process sends that to its log: test_cli_quiet)
    ours = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(ours) == 1 and err.strip().endswith(ours[0]), err
