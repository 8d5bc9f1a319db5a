"""`accelerate launch --num_processes 2` on CPU trains data-parallel (gloo) with synchronised gradients."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ACCELERATE = Path(sys.executable).with_name("accelerate")
TRYON_LAB = Path(sys.executable).with_name("tryon-lab")


@pytest.mark.skipif(not (ACCELERATE.exists() and TRYON_LAB.exists()), reason="needs the installed console scripts")
def test_two_cpu_processes_train_one_synchronised_model(tmp_path):
    run_dir, out = tmp_path / "run", tmp_path / "encoder"
    command = [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29517",
               "--no_python", str(TRYON_LAB), "pretrain", "encoder", "--profile", "smoke",
               "--out", str(out), "--run-dir", str(run_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    (checkpoint,) = sorted(run_dir.glob("step-*"))
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    # Each process draws a different shard of every batch, so the replicas only agree if the
    # gradients were all-reduced at every step.
    assert state["num_processes"] == 2
    assert state["replicas_in_sync"] is True
    assert (out / "config.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_the_replica_check_notices_diverged_weights():
    import torch
    from accelerate import Accelerator

    from tryon_lab.training.checkpoints import replicas_in_sync

    class FakeGather(Accelerator):
        def gather(self, tensor):
            return torch.cat([tensor, tensor + 1.0])

    model = torch.nn.Linear(3, 2)
    assert not replicas_in_sync(FakeGather(cpu=True), model)
    assert replicas_in_sync(Accelerator(cpu=True), model)
