"""scripts/carry_run.py: a run's newest complete checkpoint and logs are staged for a commit, and
carried checkpoints the trainer has since pruned are unstaged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch
from accelerate import Accelerator

from tryon_lab.training.loop import LoopSettings, run_loop

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "carry_run.py"


class _Scale(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, batch):
        return (self.scale * batch).square().mean(), {}


def _ones(start):
    while True:
        yield torch.ones(2)


def test_carry_stages_the_newest_checkpoint_and_drops_pruned_ones(tmp_path):
    def git(*args):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path,
                              check=True, capture_output=True, text=True).stdout

    def carry(*args):
        return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=tmp_path, capture_output=True, text=True)

    git("init", "-q")
    (tmp_path / ".gitignore").write_text("runs/\n")
    run_dir = tmp_path / "runs" / "r"
    assert carry("runs/r").returncode == 2  # nothing there yet: refused, nothing staged

    def train(steps):
        run_loop(Accelerator(cpu=True), run_dir, _Scale(), _ones,
                 LoopSettings(steps=steps, learning_rate=0.1, checkpoint_every=10, log_every=5))

    train(20)
    (tmp_path / "runs" / "final.txt").write_text("out")
    done = carry("runs/r", "--extra", "runs/final.txt")
    assert done.returncode == 0, done.stderr
    git("commit", "-qm", "carry")
    tracked = git("ls-files").split()
    assert "runs/r/losses.csv" in tracked and "runs/final.txt" in tracked
    assert {Path(p).parts[2] for p in tracked if p.startswith("runs/r/step-")} == {"step-000020"}

    train(40)  # keeps step-000030 and step-000040: the carried step-000020 is pruned
    assert carry("runs/r").returncode == 0
    staged = git("diff", "--cached", "--name-status", "--no-renames").splitlines()
    assert any(line.startswith("D") and "step-000020" in line for line in staged), staged
    assert any(line.startswith("A") and "step-000040" in line for line in staged)
    assert not any("step-000030" in line for line in staged)
