"""RESULTS.md records what each section measured; `python -m benchmarks check` finds stale sections."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from benchmarks.__main__ import NAMES, render_section, update_results
from benchmarks.provenance import RESULTS_MD, check, git_commit, recorded_models, report, sections
from tryon_lab.errors import ConfigError
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
    from benchmarks.provenance import refresh_command

    assert "tryon-lab course --profile quick" in refresh_command("course-quick")

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
    result = check(RESULTS_MD)
    assert result.passed, report(result)


@pytest.mark.parametrize("name", NAMES)
def test_every_benchmark_declares_the_models_it_measures(name):
    source = Path(__file__).parents[2] / "benchmarks" / f"{name.replace('-', '_')}.py"
    assigned = [node.targets[0].id for node in ast.parse(source.read_text()).body
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)]
    assert "MODELS" in assigned


def test_results_json_is_written_with_every_section_and_matches_results_md(tmp_path):
    import json

    from benchmarks.provenance import RESULTS_JSON, results_data

    results = tmp_path / "RESULTS.md"
    update_results("one", render_section("one", [("size (bytes)", 1719332347, "1.601 GiB"), ("psnr", 37.92, "dB"),
                                                 ("mode", "float16", "a | b")], 3.0, ()), results)
    data = json.loads((tmp_path / "results.json").read_text())["sections"]
    rows = {row["metric"]: row for row in data["one"]["rows"]}
    assert rows["size (bytes)"]["value"] == 1719332347 and rows["psnr"]["value"] == 37.92
    assert rows["mode"] == {"metric": "mode", "value": "float16", "note": "a | b"}
    assert data["one"]["seconds"] == 3 and data["one"]["record"].startswith("Commit ")
    # the shipped copy is RESULTS.md's, section for section and row for row
    shipped = json.loads(RESULTS_JSON.read_text())["sections"]
    assert shipped == results_data(RESULTS_MD.read_text()), "results.json is stale: run python -m benchmarks.provenance"


def test_a_course_run_is_recorded_and_read_back(tmp_path):
    import json

    from benchmarks.__main__ import record_course
    from tryon_lab.course.runner import course_times, recorded, times_note

    timings = tmp_path / "timings.json"
    timings.write_text(json.dumps({"profile": "quick", "notebooks": {
        "00_welcome": {"seconds": 14.2, "slowest_cell": {"index": 3, "seconds": 5.0}},
        "04_palettization": {"seconds": 412.0, "slowest_cell": None}}}))
    results = tmp_path / "RESULTS.md"
    record_course(timings, results)
    path = tmp_path / "results.json"
    assert recorded("course-quick", "04_palettization", path) == 412.0
    assert recorded("course-quick", "total", path) == 426.2
    assert course_times("04", path=path) == {"smoke": None, "quick": 412.0, "full": None}
    assert "`quick` 6 min 52 s" in times_note("04", path) and "`smoke` not recorded yet" in times_note("04", path)

    from benchmarks.course_table import render

    table = ("| notebook | you learn | status |\n|---|---|---|\n| 00 welcome | the world | available |\n"
             "| 04 palettes | k-means | typed 3 min |\n| 05 app | canvas | typed |\n")
    rendered = render(table, path)
    assert "| 00 welcome | the world | quick 14 s |" in rendered
    assert "| 04 palettes | k-means | quick 6 min 52 s |" in rendered
    assert "| 05 app | canvas | not recorded yet |" in rendered
    assert rendered.startswith("| notebook | you learn | recorded wall time")


def test_the_readme_course_table_states_the_recorded_times():
    from benchmarks.course_table import README, render

    text = README.read_text()
    assert text == render(text), "the README's course table is stale: run python -m benchmarks record-course"


def test_a_nested_model_is_left_out_of_its_parents_hash(tmp_path):
    from benchmarks.provenance import nested_models

    (tmp_path / "unet").mkdir()
    (tmp_path / "unet" / "w.bin").write_bytes(b"weights")
    parent = sha256_folder(tmp_path, skip=nested_models(tmp_path))
    (tmp_path / "lcm").mkdir()
    (tmp_path / "lcm" / "MODEL_CARD.md").write_text("# an adapter")
    (tmp_path / "lcm" / "lora.bin").write_bytes(b"adapter")
    assert nested_models(tmp_path) == ("lcm",)
    assert sha256_folder(tmp_path, skip=nested_models(tmp_path)) == parent
    assert sha256_folder(tmp_path) != parent


def test_a_models_records_are_left_out_of_its_hash(tmp_path, monkeypatch):
    """Correcting a model card or training record, or adding a learning curve, keeps the sections measured
    on the model fresh; changing a weight does not."""
    import benchmarks.provenance as provenance

    (tmp_path / "unet").mkdir()
    (tmp_path / "unet" / "w.bin").write_bytes(b"weights")
    (tmp_path / "MODEL_CARD.md").write_text("# made on some machine")
    (tmp_path / "training.json").write_text("{}")
    monkeypatch.setattr(provenance, "shipped_model", lambda name: tmp_path)
    first = provenance.model_hashes(["m"])["m"]
    (tmp_path / "MODEL_CARD.md").write_text("# made in the repository")
    (tmp_path / "training.json").write_text('{"base": "data/models/m"}')
    (tmp_path / "learning_curve.csv").write_text("step,attr_acc_all\n700,0.1\n")  # dtc-curve --into, later
    assert provenance.model_hashes(["m"])["m"] == first
    (tmp_path / "unet" / "w.bin").write_bytes(b"other weights")
    assert provenance.model_hashes(["m"])["m"] != first


def test_a_section_measured_without_an_optional_model_goes_stale_when_it_arrives(tmp_path, monkeypatch):
    """A benchmark names the fast VAE it would use; recorded "absent", the section is stale once one lands."""
    import benchmarks.provenance as provenance

    models = tmp_path / "models"
    (models / "m").mkdir(parents=True)
    (models / "m" / "w.bin").write_bytes(b"weights")
    monkeypatch.setenv("TRYON_LAB_DATA", str(tmp_path))
    line = provenance.record_line(["m", "m/fast_vae"])
    assert "`m/fast_vae` absent" in line
    text = f"## samplers\n\n{line}\n"
    assert provenance.stale_sections(text) == []
    (models / "m" / "fast_vae").mkdir()
    (models / "m" / "fast_vae" / "MODEL_CARD.md").write_text("# fast")
    (models / "m" / "fast_vae" / "w.bin").write_bytes(b"fast weights")
    assert [s.section for s in provenance.stale_sections(text)] == ["samplers"]


def test_a_code_change_makes_the_sections_measured_before_it_stale(tmp_path, monkeypatch):
    import subprocess

    from benchmarks import provenance

    repo = tmp_path / "repo"
    repo.mkdir()
    git = lambda *args: subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                                       capture_output=True, text=True, check=True).stdout.strip()
    git("init", "-q")
    commits = []
    for message in ("measured", "seam changed", "measured again"):
        git("commit", "-q", "--allow-empty", "-m", message)
        commits.append(git("rev-parse", "--short", "HEAD"))
    monkeypatch.setattr(provenance, "REPO_ROOT", repo)
    before, change, after = commits
    assert provenance.descends(after, change) and provenance.descends(change, change)
    assert not provenance.descends(before, change) and not provenance.descends("0000000", change)

    monkeypatch.setenv("TRYON_LAB_DATA", str(tmp_path / "data"))
    results = tmp_path / "RESULTS.md"
    for name, commit in (("old", before), ("new", after)):
        monkeypatch.setattr(provenance, "git_commit", lambda commit=commit: commit + "+dirty")
        update_results(name, render_section(name, ROWS, 1.0, ()), results)
    allow = tmp_path / "STALE.toml"
    allow.write_text(f'[old]\nwhy = "feathered seam"\nmeasured_before = "{change}"\n\n'
                     f'[new]\nwhy = "feathered seam"\nmeasured_before = "{change}"\n')
    result = check(results, allow)
    assert [s.section for s in result.listed] == ["old"] and f"before {change}" in result.listed[0].reason
    assert result.fresh_but_listed == ["new"] and not result.unlisted
    allow.write_text(f'[old]\nmeasured_before = "{change}"\n')
    with pytest.raises(ConfigError, match="`why` string"):
        check(results, allow)
