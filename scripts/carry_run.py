"""Stage a long training run's state for a commit, so that it resumes on another machine.

The machines this course is developed on are lent for one session and come back bare: only what is
committed survives. A run that needs several sessions (the 16-channel VAE, a U-Net recipe) is carried
by committing its newest complete checkpoint and logs; the next session resumes it with the same
command. This stages, for every checkpointing folder under each RUN_DIR (a folder with ``step-*``
checkpoints), its newest complete checkpoint and the folder's logs, plus any EXTRA path (a phase's
finished output), and stages the removal of carried checkpoints the trainer has since pruned. It
commits nothing: read ``git status``, then commit.

    python scripts/carry_run.py runs/quick-c16/vae --extra runs/quick-c16/vae-final runs/quick-c16/vae.log

Carried state is removed (``git rm -r --cached``) when the run has shipped its model.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from tryon_lab.training.checkpoints import CHECKPOINT_PREFIX, checkpoint_dirs

LOGS = ("losses.csv", "training.json", "curve.csv", "curve.png")


def carried_paths(run_dir: Path) -> list[Path]:
    """The newest complete checkpoint and the logs of every checkpointing folder in ``run_dir``."""
    folders = {p.parent for p in run_dir.rglob(f"{CHECKPOINT_PREFIX}*") if p.is_dir()}
    paths = []
    for folder in sorted(folders):
        complete = checkpoint_dirs(folder)
        paths += complete[-1:] + [folder / name for name in LOGS if (folder / name).is_file()]
    return paths


def main(argv: list[str] | None = None) -> int:
    """Stage the carried paths (see the module docstring); return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run folders whose checkpoints to carry")
    parser.add_argument("--extra", nargs="*", type=Path, default=[], help="further files or folders to carry")
    args = parser.parse_args(argv)
    missing = [str(p) for p in [*args.run_dirs, *args.extra] if not p.exists()]
    if missing:
        print(f"not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    paths = [p for run_dir in args.run_dirs for p in carried_paths(run_dir)] + list(args.extra)
    if not any(p.name.startswith(CHECKPOINT_PREFIX) for p in paths):
        print("no complete checkpoint to carry in " + ", ".join(map(str, args.run_dirs)), file=sys.stderr)
        return 2
    subprocess.run(["git", "add", "--update", "--", *map(str, args.run_dirs)], check=True)  # pruned ones go
    subprocess.run(["git", "add", "--force", "--", *map(str, paths)], check=True)
    for path in paths:
        print(f"staged {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
