"""The ``tryon-lab`` command line: help texts, world render, info, course, and error handling."""

import argparse
import json
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tryon_lab.cli import build_parser, main
from tryon_lab.data.catalog import load_catalog


def command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every (sub)command path the parser knows, e.g. ("world", "render")."""
    paths = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths.append(prefix + (name,))
                paths.extend(command_paths(sub, prefix + (name,)))
    return paths


COMMANDS = command_paths(build_parser())


def test_the_expected_commands_are_registered():
    assert {("course",), ("world",), ("world", "render"), ("info",)} <= set(COMMANDS)


@pytest.mark.parametrize("path", [()] + COMMANDS, ids=lambda p: " ".join(p) or "top")
def test_help_works_and_shows_examples(path, capsys):
    with pytest.raises(SystemExit) as info:
        main([*path, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: tryon-lab {' '.join(path)}".rstrip())
    assert "example" in text or "tryon-lab <command> --help" in text


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys\nfrom tryon_lab.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'nbclient', 'diffusers', 'matplotlib') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_world_render_writes_a_catalog(tmp_path, capsys):
    out = tmp_path / "catalog"
    args = ["world", "render", "--out", str(out), "--garments", "2", "--products", "1", "--scenes", "1"]
    assert main([*args, "--resolution", "64", "--seed", "3"]) == 0
    entries = load_catalog(out)
    assert [entry.kind for entry in entries] == ["garment", "garment", "product"]
    assert len(list((out / "scenes").glob("*_mask.png"))) == 1
    printed = capsys.readouterr().out
    assert str(out) in printed and "2 garments, 1 products, 1 scenes" in printed


def test_input_error_exits_2_with_a_one_line_message(tmp_path, capsys):
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "notes.txt").write_text("not a catalog")
    assert main(["world", "render", "--out", str(tmp_path), "--garments", "1"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and str(tmp_path) in captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


def test_into_refuses_a_vae_run_that_retrains_the_encoder_before_training(tmp_path, capsys):
    args = ["pretrain", "vae", "--profile", "smoke", "--out", str(tmp_path / "vae"), "--into", str(tmp_path / "pipe")]
    assert main(args) == 2
    assert main(args + ["--phases", "vae", "polish"]) == 2
    assert "--into ships a retrained decoder only" in capsys.readouterr().err
    assert not (tmp_path / "vae").exists() and not (tmp_path / "pipe").exists()


def test_pretrain_names_an_unknown_model_config_before_training(tmp_path, capsys):
    assert main(["pretrain", "vae", "--profile", "smoke", "--model", "huge", "--out", str(tmp_path / "vae")]) == 2
    assert "unknown model config 'huge'" in capsys.readouterr().err
    assert not (tmp_path / "vae").exists()


def test_bad_argument_values_are_usage_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["world", "render", "--out", str(tmp_path), "--garments", "-1"])
    assert info.value.code == 2
    assert "must be >= 0" in capsys.readouterr().err


def test_info_json_reports_versions_and_profile(capsys, monkeypatch):
    monkeypatch.setenv("TRYON_LAB_PROFILE", "smoke")
    assert main(["info", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["profile"] == "smoke"
    assert {"python", "torch", "diffusers", "transformers", "coremltools", "executorch"} <= set(report)
    assert {"cpu_count", "torch_threads", "cuda", "mps"} <= set(report)


def test_course_reports_unknown_notebooks_and_failures(tmp_path, capsys):
    folder = tmp_path / "nb"
    folder.mkdir()
    nbformat.write(new_notebook(cells=[new_code_cell("raise KeyError('boom')")]), folder / "00_bad.ipynb")
    base = ["course", "--profile", "smoke", "--notebooks", str(folder), "--out", str(tmp_path / "out")]

    assert main([*base, "--only", "05"]) == 2
    assert "no notebook numbered 05" in capsys.readouterr().err

    assert main(base) == 1
    err = capsys.readouterr().err
    assert "00_bad.ipynb failed in cell index 0: KeyError" in err


def test_course_sync_writes_missing_pairs(tmp_path, capsys):
    nbformat.write(new_notebook(cells=[new_code_cell("x = 1")]), tmp_path / "00_a.ipynb")
    assert main(["course", "--sync", "--notebooks", str(tmp_path)]) == 0
    assert (tmp_path / "00_a.py").exists()
    assert "updated 1 file(s)" in capsys.readouterr().out
