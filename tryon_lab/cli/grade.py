"""``tryon-lab grade``: grade students' phone bundles, one or a class."""

from __future__ import annotations

import argparse

from tryon_lab.cli.parsing import command, count, folder_out, seconds


def add_grade(subparsers) -> None:
    """Register ``grade``."""
    parser = command(
        subparsers,
        "grade",
        "Grade students' phone bundles (folders or .zip files) against the course contract and a reference bundle.",
        "  tryon-lab grade alice.zip --reference build/bundle\n"
        "  tryon-lab grade alice.zip bob/ --reference build/bundle --json grades.json --html grades.html\n"
        "  tryon-lab grade --class submissions/ --reference build/bundle --out build/grading --jobs 4\n"
        "  tryon-lab grade alice.zip --rubric my_rubric.toml   # laid over tryon_lab/configs/rubric.toml\n"
        "Each submission is unpacked into OUT/<student>/ and graded in its own process, with the rubric's\n"
        "time and memory limits; nothing in it is imported, unpickled or executed. Every student gets\n"
        "OUT/<student>/report.json and report.html; OUT/summary.csv and OUT/index.html list every student\n"
        "graded into OUT, by this run or an earlier one (grading one more adds it to the class's summary).\n"
        "Exit status: 0 every submission passed, 1 a check failed, 2 an input could not be read.",
    )
    parser.add_argument("submissions", nargs="*", metavar="SUBMISSION", help="bundle folders or .zip files of them")
    parser.add_argument("--class", dest="class_dir", metavar="DIR", help="grade every folder and .zip in DIR")
    parser.add_argument("--reference", metavar="BUNDLE", help="the course's own bundle: the contract, golden inputs and "
                                                             "golden try-on to meet (without it, checks that can only "
                                                             "compare a submission with itself earn no points)")
    parser.add_argument("--rubric", metavar="RUBRIC.toml", help="points, bars and limits to use instead of the defaults")
    parser.add_argument("--out", type=folder_out, default="build/grading",
                        help="folder for the reports and unpacked copies (default: %(default)s)")
    parser.add_argument("--json", metavar="OUT", help="also write the report as JSON here (several: a list)")
    parser.add_argument("--html", metavar="OUT", help="also write the report as HTML here (several: a class page)")
    parser.add_argument("--jobs", type=count, help="submissions graded at once (default: one per CPU core)")
    parser.add_argument("--timeout", type=seconds, help="seconds per submission (default: the rubric's limits)")
    parser.add_argument("--keep-files", action="store_true", help="keep each unpacked copy in OUT/<student>/submission")
    parser.add_argument("--force", action="store_true", help="replace OUT/<student>/ reports of other submissions "
                                                             "of the same name (refused by default)")
    parser.set_defaults(handler=run_grade)


def run_grade(args: argparse.Namespace) -> int:
    """Grade the submissions, print the result and write the reports; the worst student's exit status."""
    from tryon_lab.grading.classroom import grade_class, submissions_to_grade, write_run_reports
    from tryon_lab.grading.reference import load_reference
    from tryon_lab.grading.report import NO_REFERENCE
    from tryon_lab.grading.rubric import load_rubric

    sources, notes = submissions_to_grade(args.submissions, args.class_dir, args.out)
    rubric = load_rubric(args.rubric)
    reference = load_reference(args.reference) if args.reference else None  # hashed once here, not per student
    print(f"grading {len(sources)} submission(s) with {rubric.name!r}" + "".join(f"\n  {n}" for n in notes))
    if reference is None:
        print(f"{NO_REFERENCE}.")
    run = grade_class(sources, args.out, rubric, reference.path if reference else None, args.jobs, args.timeout,
                      args.keep_files, force=args.force)
    single = len(run.reports) == 1 and not args.class_dir
    if single:
        print(run.reports[0].table())
    write_run_reports(run, args.out, args.json, args.html, single=single)
    passed = sum(r.status == "passed" for r in run.reports)
    print(f"{passed} of {len(run.reports)} passed in {run.seconds:.0f} s; reports in {args.out}/<student>/, "
          f"summary of {run.listed} student(s) in {run.summary_csv} and {run.index_html}")
    return run.exit_code
