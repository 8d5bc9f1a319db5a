"""`tryon-lab grade` from the command line, and class runs that survive crashing and hanging graders."""

import csv
import json
import shutil

import pytest
from grading_workers import misbehaving_worker

from tryon_lab.cli import main
from tryon_lab.grading.classroom import grade_class


@pytest.fixture(scope="module")
def small_class(corpus, tmp_path_factory):
    folder = tmp_path_factory.mktemp("class") / "submissions"
    folder.mkdir()
    for name in ("good-zip", "folder-symlink", "zip-traversal", "not-a-zip"):
        source = corpus[name].path
        (shutil.copytree if source.is_dir() else shutil.copy)(source, folder / source.name)
    (folder / "notes.txt").write_text("not a submission")
    return folder


def test_a_class_run_grades_zips_and_folders_and_writes_every_report(small_class, reference_bundle,
                                                                     corpus_rubric_path, tmp_path, capsys):
    out, page = tmp_path / "out", tmp_path / "pages" / "class.html"
    code = main(["grade", "--class", str(small_class), "--reference", str(reference_bundle), "--rubric",
                 str(corpus_rubric_path), "--out", str(out), "--json", str(tmp_path / "class.json"),
                 "--html", str(page), "--jobs", "2"])
    printed = capsys.readouterr().out
    assert code == 2 and "ignored notes.txt" in printed and "1 of 4 passed" in printed, printed
    assert "zip-traversal: failed" in printed and "; unpack: " in printed  # each student's first failure, as it comes
    rows = {row["student"]: row for row in csv.DictReader((out / "summary.csv").open())}
    assert {name: row["status"] for name, row in rows.items()} == {
        "folder-symlink": "failed", "good-zip": "passed", "not-a-zip": "unreadable", "zip-traversal": "failed"}
    assert rows["zip-traversal"]["unpack"] == "failed" and rows["zip-traversal"]["numerics"] == "blocked"
    reports = json.loads((tmp_path / "class.json").read_text())
    assert [r["student"] for r in reports] == sorted(rows) and reports[0]["checks"][0]["name"] == "unpack"
    assert 'href="../out/good-zip/report.html"' in page.read_text()
    assert (out / "good-zip" / "report.html").is_file() and (out / "index.html").is_file()


def test_grading_one_submission_prints_its_table_and_exits_0(corpus, reference_bundle, corpus_rubric_path,
                                                             tmp_path, capsys):
    report = tmp_path / "alice.json"
    code = main(["grade", str(corpus["good-zip"].path), "--reference", str(reference_bundle), "--rubric",
                 str(corpus_rubric_path), "--out", str(tmp_path / "out"), "--json", str(report)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "tryon" in printed and "PASSED  100/100 points" in printed
    assert json.loads(report.read_text())["status"] == "passed"


@pytest.mark.parametrize("args, message", [
    (["grade"], "SUBMISSION paths or --class"),
    (["grade", "x.zip", "--class", "."], "SUBMISSION paths or --class"),
    (["grade", "x.zip", "--rubric", "/nonexistent/rubric.toml"], "does not exist"),
    (["grade", "x.zip", "--reference", "/nonexistent/bundle"], "not a folder"),
    (["grade", "--class", "/nonexistent/class"], "is not a folder"),
])
def test_unusable_grader_inputs_exit_2_with_a_message(args, message, capsys):
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_a_crashing_or_hanging_grader_costs_only_that_student(corpus, corpus_rubric, tmp_path):
    sources = [corpus["zip-traversal"].path]
    for name in ("crashes", "hangs"):
        sources.append(shutil.copytree(corpus["good-folder"].path, tmp_path / "in" / name))
    run = grade_class(sources, tmp_path / "out", corpus_rubric, jobs=3, timeout=15, worker=misbehaving_worker,
                      log=lambda _: None)
    graded, crashed, hung = run.reports
    assert graded.status == "failed" and graded.aborted is None and graded.check("unpack").status == "failed"
    assert crashed.status == "failed" and "SIGSEGV" in crashed.aborted
    assert crashed.checks[0].status == "failed" and "died (SIGSEGV)" in crashed.checks[0].reason
    assert [c.status for c in crashed.checks[1:]] == ["blocked"] * 9
    assert hung.status == "failed" and "timed out after 15 s" in hung.aborted
    assert run.exit_code == 1 and len(run.summary_csv.read_text().splitlines()) == 4
    assert (tmp_path / "out" / "hangs" / "report.html").is_file()



def test_grading_one_more_submission_keeps_the_class_summary(corpus, corpus_rubric_path, tmp_path, capsys):
    """`grade --class` then `grade ONE` into the same folder: the summary lists the class and the one;
    a different submission of a graded student's name is refused unless --force."""
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    for name in ("zip-traversal", "not-a-zip", "zip-absolute"):
        shutil.copy(corpus[name].path, submissions)
    out = tmp_path / "grading"
    grade = ["grade", "--rubric", str(corpus_rubric_path), "--out", str(out), "--jobs", "2"]
    assert main([*grade, "--class", str(submissions)]) == 2
    assert main([*grade, str(submissions / "zip-traversal.zip")]) == 1  # the same submission, graded again
    printed = capsys.readouterr().out
    assert "1 of 1 passed" not in printed and "summary of 3 student(s)" in printed
    rows = {row["student"]: row["status"] for row in csv.DictReader((out / "summary.csv").open())}
    assert rows == {"not-a-zip": "unreadable", "zip-absolute": "failed", "zip-traversal": "failed"}
    page = (out / "index.html").read_text()
    assert all(f'href="{name}/report.html"' in page for name in rows)

    elsewhere = tmp_path / "resubmitted"
    elsewhere.mkdir()
    other = shutil.copy(corpus["zip-symlink"].path, elsewhere / "zip-absolute.zip")  # another submission, same name
    assert main([*grade, str(other)]) == 2
    error = capsys.readouterr().err
    assert "holds the report of" in error and "--force" in error and len(error.strip().splitlines()) == 1
    assert json.loads((out / "zip-absolute" / "report.json").read_text())["submission"].endswith(
        "submissions/zip-absolute.zip")  # untouched
    assert main([*grade, str(other), "--force"]) == 1
    assert len(list(csv.DictReader((out / "summary.csv").open()))) == 3
    assert json.loads((out / "zip-absolute" / "report.json").read_text())["submission"] == str(other)
