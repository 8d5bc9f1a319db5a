"""RESULTS.md records what each section measured; `python -m benchmarks check` finds stale sections."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from benchmarks.__main__ import NAMES, RESULTS, render_section, update_results
from benchmarks.provenance import check, git_commit, recorded_models, report, sections
from tryon_lab.paths import sha256_folder

ROWS = [("a metric", 1.5, "a note")]


def test_folder_hash_covers_names_and_contents(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "w.bin").write_bytes(b"weights")
    first = sha256_folder(tmp_path)
    assert sha256_folder(tmp_path) == first
    (tmp_path / "sub" / "w.bin").rename(tmp_path / "sub" / "v.bin")
    assert sha256_folder(tmp_path) != first
    (tmp_path / "sub" / "v.bin").rename(tmp_path / "sub" / "w.bin")
    assert sha256_folder(tmp_path) == first
    (tmp_path / "sub" / "w.bin").write_bytes(b"weightz")
    assert sha256_folder(tmp_path) != first


def test_check_lists_changed_and_unrecorded_sections(tmp_path, monkeypatch):
    monkeypatch.setenv("TRYON_LAB_DATA", str(tmp_path / "data"))
    for model in ("alpha", "beta"):
        (tmp_path / "data" / "models" / model).mkdir(parents=True)
        (tmp_path / "data" / "models" / model / "weights.bin").write_bytes(model.encode())
    results = tmp_path / "RESULTS.md"
    update_results("fresh", render_section("fresh", ROWS, 1.0, ("alpha",)), results)
    update_results("stale", render_section("stale", ROWS, 1.0, ("alpha", "beta")), results)
    update_results("no-models", render_section("no-models", ROWS, 1.0, ()), results)
    update_results("old", "## old\n\nRun 2026-11-22 06:15 UTC on x86_64.\n\n| metric | value | note |\n", results)
    (tmp_path / "data" / "models" / "beta" / "weights.bin").write_bytes(b"retrained")

    text = results.read_text()
    assert f"Commit {git_commit()}; shipped models (folder sha256, first 16 hex): `alpha` " in text
    assert recorded_models(sections(text)["no-models"]) == {}
    result = check(results, tmp_path / "absent.toml")
    assert [(s.section, s.reason.split(":")[0]) for s in result.unlisted] == [
        ("stale", "models changed since"), ("old", "no record of the models it measured (written before records)")]
    assert "beta " in result.unlisted[0].reason and "alpha" not in result.unlisted[0].reason
    assert not result.passed
    assert "STALE: stale: models changed since: beta" in report(result)
    assert "refresh with `python -m benchmarks stale`" in report(result)

    allow = tmp_path / "STALE.toml"
    allow.write_text('[old]\nwhy = "before records"\n\n[fresh]\nwhy = "was stale once"\n')
    result = check(results, allow)
    assert [s.section for s in result.unlisted] == ["stale"]
    assert [s.section for s in result.listed] == ["old"] and "why: before records" in result.listed[0].reason
    assert result.fresh_but_listed == ["fresh"]
    assert "listed in STALE.toml but fresh now: fresh" in report(result, allow)


def test_shipped_results_have_no_section_stale_silently():
    """The real RESULTS.md against the shipped models and benchmarks/STALE.toml: a section whose
    models changed, and that STALE.toml does not name, fails here (refresh it or list it, with why)."""
    result = check(RESULTS)
    assert result.passed, report(result)


@pytest.mark.parametrize("name", NAMES)
def test_every_benchmark_declares_the_models_it_measures(name):
    source = Path(__file__).parents[2] / "benchmarks" / f"{name.replace('-', '_')}.py"
    assigned = [node.targets[0].id for node in ast.parse(source.read_text()).body
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)]
    assert "MODELS" in assigned
