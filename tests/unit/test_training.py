"""Training recipes on tiny sizes: losses fall, checkpoints are atomic and resume, outputs load."""

from __future__ import annotations

import json

import pytest
import torch
from accelerate import Accelerator

from tryon_lab.profiles import load_profile
from tryon_lab.training.checkpoints import checkpoint_dirs, resume_latest, save_checkpoint
from tryon_lab.training.loop import LoopSettings, run_loop
from tryon_lab.training.losslog import read_losses


class _Quadratic(torch.nn.Module):
    """Objective with a known minimum: loss = |w - 3|^2."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(4))

    def forward(self, batch):
        loss = ((self.w - batch) ** 2).mean()
        return loss, {"w_mean": float(self.w.mean())}


def _batches(start):
    while True:
        yield torch.full((4,), 3.0)


def test_loop_reduces_loss_logs_and_checkpoints(tmp_path):
    result = run_loop(Accelerator(cpu=True), tmp_path, _Quadratic(), _batches,
                      LoopSettings(steps=60, learning_rate=0.1, checkpoint_every=25, log_every=5))
    rows = read_losses(tmp_path / "losses.csv")
    assert rows[0]["loss"] > rows[-1]["loss"]
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step-000050", "step-000060"]  # keeps the two newest
    assert result.resumed_from == 0


def test_resume_continues_from_the_newest_checkpoint(tmp_path):
    settings = LoopSettings(steps=20, learning_rate=0.1, checkpoint_every=10, log_every=1)
    first = _Quadratic()
    run_loop(Accelerator(cpu=True), tmp_path, first, _batches, settings)
    longer = LoopSettings(steps=30, learning_rate=0.1, checkpoint_every=10, log_every=1)
    second = _Quadratic()
    result = run_loop(Accelerator(cpu=True), tmp_path, second, _batches, longer)
    assert result.resumed_from == 20
    assert [r["step"] for r in read_losses(tmp_path / "losses.csv")] == list(range(1, 31))
    # the resumed model started from the first run's weights, not from zeros
    assert float(second.w.mean()) > float(first.w.mean()) - 1e-6


def test_a_half_written_checkpoint_is_ignored(tmp_path):
    accelerator = Accelerator(cpu=True)
    model = accelerator.prepare(_Quadratic())
    save_checkpoint(accelerator, tmp_path, 5)
    (tmp_path / ".tmp-step-000010").mkdir()  # a run killed while writing
    (tmp_path / "step-000015").mkdir()  # no trainer state: incomplete
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step-000005"]
    assert resume_latest(accelerator, tmp_path)["step"] == 5


@pytest.mark.slow
def test_smoke_profile_pretrains_every_component(tmp_path):
    from tryon_lab.pipelines.loading import load_inpaint_pipeline
    from tryon_lab.training.pretrain import pretrain_encoder, pretrain_unet, pretrain_vae

    profile = load_profile("smoke")
    vae_dir = pretrain_vae(profile, tmp_path / "runs/vae", tmp_path / "vae")
    assert json.loads((vae_dir / "training.json").read_text())["metrics"]["vae_heldout_psnr_db"] > 0
    judge_dir = pretrain_encoder(profile, tmp_path / "runs/enc", tmp_path / "encoder")
    assert (judge_dir / "MODEL_CARD.md").is_file()
    out = pretrain_unet(profile, tmp_path / "runs/unet", vae_dir, tmp_path / "model", judge_dir=judge_dir)
    card = (out / "MODEL_CARD.md").read_text()
    assert "heldout_masked_psnr_db" in card and "tryon-lab pretrain unet" in card
    assert (out / "samples.png").is_file()
    pipe = load_inpaint_pipeline(out, device="cpu")
    assert pipe.unet.dtype == torch.float32  # shipped fp16, loaded fp32
    assert not any(p.name.startswith(".tmp") for p in tmp_path.iterdir())
