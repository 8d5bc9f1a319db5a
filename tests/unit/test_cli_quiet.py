"""The CLI prints only its own lines: third-party chatter goes to build/logs/tryon-lab-<command>.log,
``--verbose`` shows it, and a failure names the log."""

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tryon_lab import quiet
from tryon_lab.cli import build_parser, main

# Lines that torchao, torch, coremltools, ExecuTorch, diffusers and transformers print on import or at work.
CHATTER = ("Failed to load", "torchao", "register_constant", "has not been tested", "_MLModelProxy", "cpuinfo",
           "Loading pipeline components", "Loading weights", "cannot get type annotation", "Running MIL",
           "Converting PyTorch Frontend", "Warning")


def tryon_lab(build: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the installed ``tryon-lab`` console script in a fresh process, as a user does."""
    script = Path(sys.executable).with_name("tryon-lab")
    env = {**os.environ, "TRYON_LAB_BUILD_DIR": str(build)}
    return subprocess.run([str(script), *args], check=False, capture_output=True, text=True, env=env, timeout=600)


def chatter(run: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (run.stdout + run.stderr).splitlines() if any(p in line for p in CHATTER)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_pipeline_dir):
    """The tiny model exported once by the CLI, with the cheapest options: (run, bundle, build folder)."""
    root = tmp_path_factory.mktemp("quiet")
    bundle, build = root / "bundle", root / "build"
    run = tryon_lab(build, "export", "--model", str(tiny_pipeline_dir), "--out", str(bundle), "--bits", "8",
                    "--chunks", "1", "--targets", "coreml", "--steps", "1")
    return run, bundle, build


@pytest.mark.slow
def test_export_prints_its_own_lines_and_logs_the_rest(exported):
    run, bundle, build = exported
    assert run.returncode == 0, run.stderr
    assert f"wrote bundle {bundle}" in run.stdout and "Unet: converted in" in run.stdout
    assert chatter(run) == [] and run.stderr == ""
    log = (build / "logs" / "tryon-lab-export.log").read_text()
    assert "has not been tested" in log and "Running MIL" in log and "torchao" in log


@pytest.mark.slow
def test_verify_prints_only_its_report(exported):
    _, bundle, build = exported
    run = tryon_lab(build, "verify", str(bundle))
    assert run.returncode == 0, run.stderr
    assert "PASSED" in run.stdout and chatter(run) == [] and run.stderr == ""


@pytest.mark.slow
def test_grade_prints_only_its_report_and_names_the_log_when_a_check_fails(exported, tmp_path):
    _, bundle, build = exported
    run = tryon_lab(build, "grade", str(bundle), "--out", str(tmp_path / "grading"), "--jobs", "1")
    assert run.returncode == 1  # an 8-bit, unchunked U-Net fails the default rubric
    assert "FAILED" in run.stdout and chatter(run) == []
    log = build / "logs" / "tryon-lab-grade.log"
    assert run.stderr == f"third-party output of this run: {log}\n"
    assert "has not been tested" in log.read_text()  # printed by the process grading the submission


@pytest.mark.slow
def test_a_bad_folder_gets_one_error_line_in_both_modes(tmp_path):
    quiet_run = tryon_lab(tmp_path, "upgrade", str(tmp_path / "missing"))
    assert quiet_run.returncode == 2 and quiet_run.stdout == ""
    assert quiet_run.stderr.startswith("error: not a model folder") and quiet_run.stderr.count("\n") == 1
    assert (tmp_path / "logs" / "tryon-lab-upgrade.log").exists()
    loud = tryon_lab(tmp_path, "--verbose", "upgrade", str(tmp_path / "missing"))
    assert loud.returncode == 2
    # What --verbose adds depends on which libraries the command imported before it failed (none
    # here since the upgrade check reads the folder first); the error line ends it either way.
    assert loud.stderr.rstrip().endswith(quiet_run.stderr.rstrip())


def test_verbose_is_accepted_before_and_after_the_command():
    parser = build_parser()
    assert parser.parse_args(["--verbose", "upgrade", "x"]).verbose
    assert parser.parse_args(["upgrade", "x", "--verbose"]).verbose
    assert not parser.parse_args(["upgrade", "x"]).verbose
    assert "build/logs/tryon-lab-<command>.log" in parser.format_help()


def test_fd_writes_loggers_and_warnings_go_to_the_log_and_everything_is_restored(tmp_path, capfd):
    log = tmp_path / "logs" / "x.log"
    root_handlers = list(logging.getLogger().handlers)
    with quiet.third_party_to_log(log, preload=False):
        os.write(1, b"from C on stdout\n")
        os.write(2, b"from C on stderr\n")
        logging.getLogger("some.library").warning("a library warning")
        warnings.warn("a Python warning", UserWarning, stacklevel=1)
        print("the tool's own line")
    text = log.read_text()
    for line in ("from C on stdout", "from C on stderr", "a library warning", "a Python warning"):
        assert line in text
    out, err = capfd.readouterr()
    assert "the tool's own line" in out and "from C" not in out + err and "warning" not in out + err
    assert logging.getLogger().handlers == root_handlers
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"


def test_a_crash_names_the_log_and_keeps_its_exception(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TRYON_LAB_BUILD_DIR", str(tmp_path))

    def broken(args):
        raise RuntimeError("boom")

    monkeypatch.setattr("tryon_lab.cli.info.run_info", broken)
    with pytest.raises(RuntimeError, match="boom"):
        main(["info"])
    assert capsys.readouterr().err == f"third-party output of this run: {tmp_path / 'logs' / 'tryon-lab-info.log'}\n"


EXECUTORCH_RUN = """
import sys
from pathlib import Path

import torch
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from executorch.exir import to_edge_transform_and_lower
from executorch.runtime import Runtime

from tryon_lab import quiet

pte = Path(sys.argv[1])
program = torch.export.export(torch.nn.Linear(4, 4).eval(), (torch.randn(1, 4),))
pte.write_bytes(to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch().buffer)
with quiet.third_party_to_log(Path(sys.argv[2]), keep_stderr=False):
    Runtime.get().load_program(pte).load_method("forward").execute([torch.randn(1, 4)])
    print("ran")
"""


@pytest.mark.slow
def test_executorch_cpp_prints_go_to_the_log(tmp_path):
    log = tmp_path / "run.log"
    run = subprocess.run([sys.executable, "-c", EXECUTORCH_RUN, str(tmp_path / "linear.pte"), str(log)],
                         check=False, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "ran\n" and "cpuinfo" not in run.stderr
    assert "cpuinfo_utils.cpp" in log.read_text()  # XNNPACK's C++ start-up lines, caught at the fd level
