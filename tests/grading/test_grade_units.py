"""The grader's parts on small synthetic inputs: rubric, unpacking, file types, reports (no bundle needed)."""

import json
import stat
import zipfile

import pytest

from tryon_lab.export.palettize import WEIGHT_THRESHOLD, WeightInfo, WeightReport
from tryon_lab.grading.checks import graded_average_bits
from tryon_lab.grading.errors import RubricError, SubmissionRejected
from tryon_lab.grading.filetypes import file_problem
from tryon_lab.grading.report import (
    NOT_VERIFIED,
    CheckResult,
    Report,
    read_report,
    render_class_html,
    render_html,
    summary_csv,
    write_report,
)
from tryon_lab.grading.rubric import CHECK_NAMES, load_rubric
from tryon_lab.grading.submission import student_name, unpack_submission

ALLOWED = [".json", ".txt", ".mlmodel", ".bin", ".safetensors", ".pte"]


def test_the_default_rubric_scores_every_check_out_of_100():
    rubric = load_rubric()
    assert set(rubric.settings) == set(CHECK_NAMES) and rubric.total_points == 100
    assert rubric.get("chunks", "component") == "Unet" and rubric.limits.max_compression_ratio > 1


def test_the_default_rubric_holds_the_course_recipe():
    rubric = load_rubric()
    assert rubric.get("bits", "components") == ["Unet"] and rubric.get("bits", "max_average_bits") == 6.0
    assert rubric.get("chunks", "min_chunks") == 2
    # The course's 6-bit U-Net is 7.1 MB (3.6 MB a chunk in two); its fp16 one (17.9 MB) in two is over the limit.
    assert 4_000_000 < rubric.get("chunks", "max_chunk_bytes") < 17_951_090 / 2


def test_a_rubric_file_is_laid_over_the_default(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\n[numerics]\npoints = 40\n[limits]\nmax_files = 10\n'
                    '[bits]\nmax_average_bits = 8\n[chunks]\nmin_chunks = 1\n')
    rubric = load_rubric(path)
    assert rubric.name == "mine" and rubric.points("numerics") == 40.0 and rubric.limits.max_files == 10
    assert rubric.get("bits", "max_average_bits") == 8.0 and rubric.get("chunks", "min_chunks") == 1
    assert rubric.points("tryon") == load_rubric().points("tryon") and rubric.source == str(path)
    assert rubric.get("chunks", "max_chunk_bytes") == load_rubric().get("chunks", "max_chunk_bytes")


def test_the_graded_average_leaves_out_only_small_uncompressed_tensors():
    big, small = WEIGHT_THRESHOLD * 3, WEIGHT_THRESHOLD
    palettized = WeightInfo("conv", big, 6, 0)
    assert graded_average_bits(WeightReport((palettized, WeightInfo("norm", small, 16, 0)))) == 6.0
    assert graded_average_bits(WeightReport((palettized, WeightInfo("proj", big, 16, 0)))) == 11.0
    assert graded_average_bits(WeightReport((palettized, WeightInfo("tiny lut", small, 4, 0)))) == 5.5


@pytest.mark.parametrize("text, message", [
    ("[numerics]\npoint = 3\n", "unknown setting 'numerics.point'"),
    ("[checks]\npoints = 3\n", "unknown section or key 'checks'"),
    ("[bits]\nallowed_bits = ['6']\n", "bits.allowed_bits must be list"),
    ("[chunks]\nmin_chunks = 5\nmax_chunks = 2\n", "min_chunks <= max_chunks"),
    ("[limits]\nmax_files = -1\n", "limits.max_files must be positive"),
    ("not toml = = 1", "not a readable TOML file"),
])
def test_a_bad_rubric_is_a_typed_error_naming_the_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(RubricError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_rubric(path)


def test_a_missing_rubric_file_is_a_typed_error(tmp_path):
    with pytest.raises(RubricError, match="does not exist"):
        load_rubric(tmp_path / "nope.toml")


def _zip(path, entries):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize("name, reason", [
    ("bundle\\..\\..\\evil.txt", "backslash"),
    ("C:/evil.txt", "absolute path"),
    ("a/../../evil.txt", "path traversal"),
    ("a/\x01b.txt", "control characters"),
])
def test_unsafe_zip_names_are_refused_before_anything_is_written(tmp_path, name, reason):
    archive = _zip(tmp_path / "s.zip", [("bundle/manifest.json", "{}"), (name, "x")])
    with pytest.raises(SubmissionRejected, match=reason) as caught:
        unpack_submission(archive, tmp_path / "work", load_rubric().limits)
    assert not caught.value.unreadable
    assert not any((tmp_path / "work").rglob("*.json"))  # checks come before any extraction


def test_a_file_entry_clashing_with_a_folder_is_refused(tmp_path):
    archive = _zip(tmp_path / "s.zip", [("a", "file"), ("a/b.json", "{}")])
    with pytest.raises(SubmissionRejected, match="a file of that name exists"):
        unpack_submission(archive, tmp_path / "work", load_rubric().limits)


def test_too_many_files_are_refused(tmp_path):
    from dataclasses import replace

    limits = replace(load_rubric().limits, max_files=3)
    archive = _zip(tmp_path / "s.zip", [(f"f{i}.json", "{}") for i in range(5)])
    with pytest.raises(SubmissionRejected, match="holds 5 files, more than 3"):
        unpack_submission(archive, tmp_path / "work", limits)
    archive = _zip(tmp_path / "t.zip", [(f"f{i}.json", "{}") for i in range(20)])
    with pytest.raises(SubmissionRejected, match="declares 20 entries"):  # refused before zipfile lists them
        unpack_submission(archive, tmp_path / "work2", limits)


def test_a_zip_with_one_top_folder_and_macos_litter_unpacks_to_that_folder(tmp_path):
    archive = _zip(tmp_path / "alice smith.zip", [("b/manifest.json", "{}"), ("b/golden/x.json", "[]"),
                                                  ("__MACOSX/b/._manifest.json", "junk"), ("b/.DS_Store", "junk")])
    unpacked = unpack_submission(archive, tmp_path / "work", load_rubric().limits)
    assert unpacked.root == tmp_path / "work" / "b" and unpacked.files == 2
    assert any("macOS" in note for note in unpacked.notes)
    assert stat.S_IMODE((unpacked.root / "manifest.json").stat().st_mode) == 0o600  # no modes taken from the zip
    assert student_name(archive) == "alice_smith"


def test_a_missing_path_is_unreadable(tmp_path):
    with pytest.raises(SubmissionRejected) as caught:
        unpack_submission(tmp_path / "nothing.zip", tmp_path / "work", load_rubric().limits)
    assert caught.value.unreadable


def test_file_types_are_judged_by_content(tmp_path):
    def problem(name, data):
        path = tmp_path / name.replace("/", "_")
        path.write_bytes(data)
        return file_problem(path, name, ALLOWED)

    header = json.dumps({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    assert problem("golden/a.safetensors", len(header).to_bytes(8, "little") + header + bytes(4)) is None
    assert "bad header length" in problem("golden/b.safetensors", b"\xff" * 16)
    assert problem("coreml/w.bin", (1).to_bytes(4, "little") + (2).to_bytes(4, "little") + bytes(56)) is None
    assert "MIL blob" in problem("coreml/v.bin", bytes(64))
    assert "ETnn" in problem("executorch/x.pte", b"\x00" * 16)
    assert "damaged ExecuTorch" in problem("executorch/y.pte", b"\x10\x00\x00\x00ET12eh00" + (32).to_bytes(4, "little")
                                           + (10 ** 6).to_bytes(8, "little") + bytes(16))
    assert "a script (#!)" in problem("run.sh", b"#!/bin/sh\nrm -rf /\n")
    assert "a Python pickle" in problem("notes.json", b"\x80\x04\x95")
    assert "NUL" in problem("coreml/merges.txt", b"a b\x00")
    assert "a Windows executable" in problem("coreml/x.mlmodel", b"MZ\x90\x00")


def _report(reason="fine", reference=None):
    report = Report("bob", "/subs/bob.zip", "course", reference, status="failed")
    report.checks = [CheckResult("unpack", "Unpacking", "passed", 5.0, 5.0, "ok"),
                     CheckResult("numerics", "Numbers", "failed", 20.0, 0.0, reason,
                                 rows=[{"component": "Unet", "psnr": float("-inf")}]),
                     CheckResult("tryon", "Try-on", "unverified", 10.0, 0.0, "no reference")]
    return report


def test_a_report_round_trips_through_json_with_infinite_numbers(tmp_path):
    report = _report()
    json_path, html_path = write_report(report, tmp_path)
    again = read_report(json_path)
    assert again.checks[1].rows[0]["psnr"] == "-inf" and again.score == 5 and again.max_score == 35
    assert again.exit_code == 1 and again.failed_checks() == ["numerics"]
    assert html_path.read_text().count("<tr>") >= 4


def test_a_report_without_a_reference_says_so_at_the_top(tmp_path):
    report = _report()
    warning = report.warning
    assert f"{NOT_VERIFIED}: tryon (10 points)" in warning and "no bundle gets full marks" in warning
    assert _report(reference="/ref").warning is None
    data = json.loads(write_report(report, tmp_path)[0].read_text())
    assert list(data)[:3] == ["format", "format_version", "warning"] and data["warning"] == warning
    assert report.table().splitlines()[1] == warning and NOT_VERIFIED in report.table().splitlines()[-2]
    page = render_html(report)
    assert page.index(warning) < page.index("<table>") and f'class="unverified">{NOT_VERIFIED}<' in page
    class_page = render_class_html([report, _report(reference="/ref")])
    assert class_page.index("Graded without a reference bundle") < class_page.index("<table>")


def test_submission_text_is_escaped_in_html_and_defused_in_csv():
    report = _report(reason="<script>alert(1)</script>")
    assert "<script>" not in render_html(report) and "&lt;script&gt;" in render_html(report)
    report.student = "=HYPERLINK(1)"
    assert "'=HYPERLINK(1)" in summary_csv([report])
