"""The corpus graded as a class: every bad submission fails the check that names its fault, with a
clear reason; good ones pass; no crash, no write outside the output folder, submissions untouched."""

import csv

import pytest

from tryon_lab.grading.corpus import CASES

# A phrase each fault's reason must contain: the report says what is wrong, not just that something is.
REASONS = {
    "zip-traversal": "path traversal",
    "zip-absolute": "absolute path",
    "zip-symlink": "symbolic link",
    "zip-duplicate": "appears twice",
    "zip-bomb": "compression ratio",
    "zip-lying-size": "cannot be extracted intact",
    "folder-symlink": "outside the submission",
    "oversized-file": "limits.max_file_bytes",
    "fifo": "special file",
    "not-a-zip": "neither a folder nor a zip",
    "pickle": "PyTorch checkpoint",
    "executable": "ELF executable",
    "disguised-pickle": "a Python pickle, named .safetensors",
    "missing-component": "VAEDecoder",
    "missing-weights": "weights/weight.bin",
    "tampered-file": "sha256 differs",
    "size-lie": "the manifest says 8",
    "manifest-not-json": "not valid JSON",
    "corrupt-protobuf": "protobuf does not parse",
    "nan-weights": "NaN",
    "package-escape": "leaves the package",
    "shape-lie": "the reference bundle has [1, 3, 64, 64]",
    "renamed-input": "latent_sample",
    "bits-lie": "the manifest claims",
    "claims-no-palettes": "claims no palettization",
    "oversized-chunk": "the rubric allows",
    "wrong-weights": "misses the bar",
}


@pytest.fixture(scope="module")
def reports(graded_corpus):
    run = graded_corpus[0]
    return {report.student: report for report in run.reports}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_submission_gets_the_verdict_its_fault_calls_for(case, reports):
    report = reports[case.name]
    assert report.aborted is None and not any(c.error for c in report.checks), report.table()
    assert report.status == case.status, report.table()
    if case.fault is None:
        assert all(c.status == "passed" for c in report.checks), report.table()
        assert report.score == report.max_score == 100
    else:
        failed = report.check(case.fault)
        assert failed.status == "failed", report.table()
        assert REASONS[case.name] in failed.reason, failed.reason
        assert report.score < report.max_score


def test_an_unsafe_or_unreadable_submission_is_never_read_further(reports):
    for case in CASES:
        if case.fault == "unpack":
            assert [c.status for c in reports[case.name].checks[1:]] == ["blocked"] * 9


def test_grading_writes_nothing_outside_its_output_folder(graded_corpus, corpus):
    run, out, before, after = graded_corpus
    assert after == before  # the submissions themselves are untouched
    for sample in corpus.values():
        if sample.forbidden is not None:
            assert not sample.forbidden.exists(), f"{sample.name} escaped to {sample.forbidden}"
    students = {p.name for p in out.iterdir() if p.is_dir()}
    assert students == set(corpus)
    for folder in out.iterdir():
        if folder.is_dir():  # the unpacked copy and the temporary folder are removed after grading
            assert {p.name for p in folder.iterdir()} == {"report.json", "report.html"}


def test_the_class_run_writes_a_summary_and_an_index(graded_corpus, corpus):
    run, out, _, _ = graded_corpus
    rows = list(csv.DictReader(run.summary_csv.open()))
    assert [row["student"] for row in rows] == list(corpus)
    assert {row["student"]: row["status"] for row in rows}["not-a-zip"] == "unreadable"
    for row, case in zip(rows, CASES):
        assert (row[case.fault] == "failed" and row["first_failure"]) if case.fault else not row["first_failure"]
    index = run.index_html.read_text()
    assert all(f'href="{name}/report.html"' in index for name in corpus)
    assert run.exit_code == 2  # an unreadable submission is the worst verdict in this class


def test_the_html_report_is_readable_and_escaped(graded_corpus):
    _, out, _, _ = graded_corpus
    page = (out / "zip-traversal" / "report.html").read_text()
    assert "<table>" in page and "path traversal" in page and "FAILED" in page
    assert "<script" not in page.lower()


def test_a_damaged_executorch_program_fails_numerics_without_crashing(corpus, corpus_rubric, reference_bundle,
                                                                        tmp_path):
    import shutil
    from dataclasses import replace

    from tryon_lab.export.manifest import ExecuTorchEntry
    from tryon_lab.grading.corpus import refresh_manifest
    from tryon_lab.grading.grader import grade_submission
    from tryon_lab.grading.reference import load_reference

    bundle = shutil.copytree(corpus["good-folder"].path, tmp_path / "with-pte")
    (bundle / "executorch").mkdir()
    (bundle / "executorch" / "TextEncoder.pte").write_bytes(b"\x10\x00\x00\x00ET12" + bytes(range(256)) * 8)

    def add_program(manifest):
        text = manifest.components["TextEncoder"]
        program = ExecuTorchEntry("executorch/TextEncoder.pte", "none", 2056)
        return replace(manifest, targets=("coreml", "executorch"),
                       components={**manifest.components, "TextEncoder": replace(text, executorch=program)})

    refresh_manifest(bundle, add_program)
    report = grade_submission(bundle, tmp_path / "out", corpus_rubric, load_reference(reference_bundle))
    assert report.check("file_types").status == "passed" and report.check("manifest").status == "passed"
    assert "executorch/VAEDecoder.pte is missing" in report.check("structure").details
    rows = {(r["component"], r["target"]): r for r in report.check("numerics").rows}
    assert rows[("TextEncoder", "coreml")]["result"] == "ok"
    assert rows[("TextEncoder", "executorch")]["result"].startswith("could not run")
    assert report.check("numerics").status == "failed" and not any(c.error for c in report.checks)


def test_a_manifest_whose_golden_replay_or_scheduler_is_unusable_fails(corpus, corpus_rubric, reference_bundle,
                                                                        tmp_path):
    """The manifest check names every bad field; the checks that read the manifest are blocked."""
    import json
    import shutil

    from tryon_lab.grading.grader import grade_submission
    from tryon_lab.grading.reference import load_reference

    bundle = shutil.copytree(corpus["good-folder"].path, tmp_path / "lies")
    raw = json.loads((bundle / "manifest.json").read_text())
    raw["golden"]["steps"] = -1
    raw["scheduler"]["_class_name"] = "os.system"
    (bundle / "manifest.json").write_text(json.dumps(raw))
    report = grade_submission(bundle, tmp_path / "out", corpus_rubric, load_reference(reference_bundle))
    manifest = report.check("manifest")
    assert manifest.status == "failed" and "field scheduler._class_name" in manifest.reason
    assert any(p.startswith("golden.steps: must be an integer in [1, 1000], got -1") for p in manifest.details)
    assert any(p.startswith("scheduler._class_name: must be one of DDIMScheduler") for p in manifest.details)
    assert report.check("contract").status == "blocked" and not any(c.error for c in report.checks)
