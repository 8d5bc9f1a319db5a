"""Long runs survive the machine: a training process SIGKILLed anywhere, even during a checkpoint
write, resumes with the same command to the weights of a run never interrupted."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import torch

from tryon_lab.training.losslog import read_losses

STEPS = 30

# A real DataLoader (10 samples in batches of 3: epochs of 3 batches, so resumes land mid-epoch),
# an objective drawing from torch, numpy and python RNGs, AdamW with warmup and a cosine decay.
# Each checkpoint write pauses after accelerate has written its files, before the checkpoint is
# complete: a window for the test to kill the process in (the package itself has no such hook).
SCRIPT = textwrap.dedent(f"""
    import random, sys, time

    import numpy as np
    import torch

    from tryon_lab.training.common import loader_factory, make_accelerator
    from tryon_lab.training.loop import LoopSettings, endless, run_loop

    class Objective(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(3, 2)

        def forward(self, batch):
            x, y = batch
            time.sleep(0.02)
            x = x + 0.1 * torch.randn_like(x) + np.random.normal(0, 0.1) + random.gauss(0, 0.1)
            return ((self.layer(x) - y) ** 2).mean(), {{}}

    torch.set_num_threads(1)
    accelerator = make_accelerator(seed=3)
    save_state = accelerator.save_state

    def slow_save_state(*args, **kwargs):
        saved = save_state(*args, **kwargs)
        time.sleep(0.3)
        return saved

    accelerator.save_state = slow_save_state
    generator = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(10, 3, generator=generator), torch.randn(10, 2, generator=generator))
    objective = Objective()
    settings = LoopSettings(steps={STEPS}, learning_rate=0.05, checkpoint_every=4, log_every=1, weight_decay=0.01,
                            warmup_steps=5, anneal=True)
    result = run_loop(accelerator, sys.argv[1], objective, endless(loader_factory(accelerator, data, 3)), settings)
    print("resumed from", result.resumed_from)
    torch.save(objective.state_dict(), sys.argv[2])
""")


def _start(script: Path, run_dir: Path, out: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    with log.open("a") as handle:
        return subprocess.Popen([sys.executable, str(script), str(run_dir), str(out)], stdout=handle, stderr=handle,
                                env=env)


def _kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


def _wait_for(condition, process: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"training ended before the test could kill it:\n{log.read_text()[-3000:]}"
        if time.monotonic() > deadline:
            _kill(process)
            raise AssertionError(f"timed out waiting:\n{log.read_text()[-3000:]}")
        time.sleep(0.005)


def _finish(process: subprocess.Popen, log: Path) -> None:
    try:
        assert process.wait(timeout=120) == 0, log.read_text()[-3000:]
    finally:
        if process.poll() is None:
            _kill(process)


def _last_step(run_dir: Path) -> int:
    try:
        rows = read_losses(run_dir / "losses.csv")
    except (ValueError, TypeError):  # a row being written
        return 0
    return rows[-1]["step"] if rows else 0


def _half_written(run_dir: Path) -> set[tuple[str, int, int]]:
    """Checkpoints being written (accelerate's files are in, the marker is not), as (name, inode, mtime)."""
    found = set()
    for tmp in run_dir.glob(".tmp-step-*"):
        try:
            if (tmp / "random_states_0.pkl").is_file():
                found.add((tmp.name, tmp.stat().st_ino, tmp.stat().st_mtime_ns))
        except FileNotFoundError:  # removed meanwhile
            pass
    return found


def test_sigkill_anywhere_then_the_same_command_ends_with_the_uninterrupted_weights(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    log = tmp_path / "log.txt"
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    _finish(_start(script, reference, tmp_path / "reference.pt", log), log)

    chance = random.Random()
    seed = chance.randrange(10**6)
    chance.seed(seed)
    kill_after = chance.randint(5, 12)  # past the first checkpoint (step 4), so that the next run resumes
    first = _start(script, resumed, tmp_path / "resumed.pt", log)
    _wait_for(lambda: _last_step(resumed) >= kill_after, first, log)
    time.sleep(chance.uniform(0.0, 0.3))
    _kill(first)

    left_by_first = _half_written(resumed)
    second = _start(script, resumed, tmp_path / "resumed.pt", log)
    _wait_for(lambda: _half_written(resumed) - left_by_first, second, log)
    _kill(second)
    assert list(resumed.glob(".tmp-step-*")), "the kill should have left a half-written checkpoint"

    log.write_text("")
    _finish(_start(script, resumed, tmp_path / "resumed.pt", log), log)
    assert "resumed from 0" not in log.read_text()
    expected, got = torch.load(tmp_path / "reference.pt"), torch.load(tmp_path / "resumed.pt")
    context = f"random seed of the kill times {seed}, first kill after step {kill_after}"
    for name, weight in expected.items():
        assert torch.equal(weight, got[name]), f"{name} differs ({context})"
    assert read_losses(resumed / "losses.csv") == read_losses(reference / "losses.csv"), context
    assert sorted(p.name for p in resumed.iterdir() if p.is_dir()) == ["step-000028", "step-000030"]
