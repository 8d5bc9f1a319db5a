"""The ``tryon-lab`` command line.

Each subcommand is one ``_add_<name>(subparsers)`` function that registers its parser (via
``_command``, whose help ends with examples) and a handler ``_run_<name>(args) -> int``;
handlers import their heavy modules inside, so ``tryon-lab --help`` stays fast. Input errors
(``TryOnInputError``, and arguments argparse refuses) become a one-line ``error: ...`` on stderr
and exit status 2; a failed course notebook exits with status 1. Third-party output goes to a log
file unless ``--verbose``
(``tryon_lab.quiet``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from contextlib import nullcontext

from tryon_lab import __version__, quiet
from tryon_lab.errors import TryOnInputError
from tryon_lab.profiles import DEFAULT_PROFILE, PROFILE_NAMES

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


# Commands that draw their own progress bars or notes on stderr; the others' stderr is all third-party.
STDERR_COMMANDS = ("course", "pretrain", "train-dtc", "dreambooth", "tryon")
# Commands that never import torch: no need to import the noisy libraries up front.
TORCH_FREE_COMMANDS = ("course", "world")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the subcommand, return the exit status.

    Unless ``--verbose``, third-party output goes to ``quiet.log_path(command)``, named on stderr
    when the command fails or crashes.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    log = quiet.log_path(args.command)
    output = nullcontext() if args.verbose else quiet.third_party_to_log(
        log, preload=args.command not in TORCH_FREE_COMMANDS, keep_stderr=args.command in STDERR_COMMANDS)
    log_note = "" if args.verbose else f"third-party output of this run: {log}"
    try:
        with output:
            status = args.handler(args)
    except TryOnInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception:
        if log_note:
            print(log_note, file=sys.stderr)
        raise
    if status == EXIT_FAILED and log_note:
        print(log_note, file=sys.stderr)
    return status


class _Parser(argparse.ArgumentParser):
    """An argument parser whose refusals are one line, like the package's own errors (its subparsers
    are of this class too)."""

    def error(self, message: str):
        """Print ``error: <prog>: message`` and where to look, then exit with status 2."""
        self.exit(EXIT_BAD_INPUT, f"error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the ``tryon-lab`` parser with every subcommand registered."""
    parser = _Parser(
        prog="tryon-lab",
        description="On-device diffusion virtual try-on: the course runner and toolkit.",
        epilog="Run `tryon-lab <command> --help` for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_verbose(parser, default=False)
    subparsers = parser.add_subparsers(title="commands", metavar="<command>", dest="command", required=True)
    for add in (_add_course, _add_world, _add_pretrain, _add_curve, _add_train_dtc, _add_tryon, _add_dreambooth, _add_info, _add_export, _add_verify, _add_app, _add_grade, _add_upgrade):
        add(subparsers)
    return parser


def _add_verbose(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument("--verbose", action="store_true", default=default,
                        help="show third-party libraries' messages (torch, diffusers, coremltools, ExecuTorch); "
                             "by default they go to build/logs/tryon-lab-<command>.log "
                             "(under $TRYON_LAB_BUILD_DIR when set)")


def _command(subparsers, name: str, help: str, examples: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        name,
        help=help.replace("%", "%%"),  # argparse %-formats help strings, not descriptions
        description=help,
        epilog=f"examples:\n{examples}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_verbose(parser, default=argparse.SUPPRESS)  # SUPPRESS: a --verbose before the command still counts
    return parser


def _add_course(subparsers) -> None:
    parser = _command(
        subparsers,
        "course",
        "Execute the course notebooks in order and save executed copies.",
        "  tryon-lab course                      # every notebook, quick profile\n"
        "  tryon-lab course --profile smoke      # seconds per notebook (CI)\n"
        "  tryon-lab course --only 00 02 --out build/try\n"
        "  tryon-lab course --sync               # regenerate .ipynb files from their .py pairs",
    )
    parser.add_argument(
        "--profile",
        choices=PROFILE_NAMES,
        default=DEFAULT_PROFILE,
        help="sizes and step counts to run with (default: %(default)s)",
    )
    parser.add_argument("--only", nargs="+", metavar="NN", help="run only these notebook numbers")
    parser.add_argument(
        "--out", type=_folder_out, default="build/course",
        help="where executed notebooks and artifacts go (default: %(default)s)"
    )
    parser.add_argument("--notebooks", help="folder of NN_*.ipynb notebooks (default: the course's own)")
    parser.add_argument("--cell-timeout", type=float, help="seconds per cell (default: the profile's)")
    parser.add_argument(
        "--sync", action="store_true", help="update the .ipynb files from their .py scripts and exit"
    )
    parser.set_defaults(handler=_run_course)


def _run_course(args: argparse.Namespace) -> int:
    from tryon_lab import course

    notebooks = args.notebooks or course.DEFAULT_NOTEBOOKS_DIR
    if args.sync:
        updated = course.sync_pairs(notebooks)
        print(f"updated {len(updated)} file(s)" + "".join(f"\n  {p}" for p in updated))
        return 0
    try:
        runs = course.run_course(
            profile=args.profile,
            only=args.only,
            notebooks_dir=notebooks,
            out_dir=args.out,
            timeout_per_cell=args.cell_timeout,
        )
    except course.CourseError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"executed {len(runs)} notebook(s) into {args.out}")
    return 0


def _add_world(subparsers) -> None:
    parser = _command(
        subparsers,
        "world",
        "The synthetic world: people, garments, rooms and products with ground truth.",
        "  tryon-lab world render --out build/catalog\n"
        "  tryon-lab world render --out build/tiny-world --garments 4 --products 2 --scenes 1 --resolution 64",
    )
    actions = parser.add_subparsers(title="actions", metavar="<action>", required=True)
    render = _command(
        actions,
        "render",
        "Render a deterministic catalog of garments, products and scenes to a folder.",
        "  tryon-lab world render --out build/catalog --seed 1",
    )
    render.add_argument("--out", type=_folder_out, required=True, help="folder to write the catalog to")
    render.add_argument("--seed", type=int, default=0, help="world seed (default: %(default)s)")
    render.add_argument("--resolution", type=int, default=128, help="image side in pixels (default: %(default)s)")
    render.add_argument("--garments", type=_count, default=24, help="garment items (default: %(default)s)")
    render.add_argument("--products", type=_count, default=16, help="try-all products (default: %(default)s)")
    render.add_argument(
        "--scenes", type=_count, default=8, help="scenes, alternately people and rooms (default: %(default)s)"
    )
    render.set_defaults(handler=_run_world_render)


def _run_world_render(args: argparse.Namespace) -> int:
    from tryon_lab.data.catalog import write_catalog
    from tryon_lab.data.world import World

    path = write_catalog(
        args.out,
        World(seed=args.seed, resolution=args.resolution),
        n_garments=args.garments,
        n_products=args.products,
        n_scenes=args.scenes,
    )
    print(
        f"wrote a catalog to {path}: {args.garments} garments, {args.products} products, "
        f"{args.scenes} scenes (seed {args.seed}, {args.resolution}px)"
    )
    return 0


def _folder_out(text: str) -> str:
    """An output folder's path: refused (before any work) when a file is there."""
    from pathlib import Path

    if Path(text).exists() and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder to write into")
    return text


def _file_out(text: str) -> str:
    """An output file's path: refused (before any work) when a folder is there."""
    from pathlib import Path

    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file to write")
    return text


def _checked(convert, what: str, ok, bound: str):
    """An argparse type: ``convert`` the text (refused unless it is ``what``), then refuse values for
    which ``ok`` is false (they must be ``bound``)."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value

    return parse


_count = _checked(int, "a whole number", lambda value: value >= 0, ">= 0")
_seconds = _checked(float, "a number of seconds", lambda value: 0 < value < float("inf"), "a positive number")
_at_least_two = _checked(int, "a whole number", lambda value: value >= 2, ">= 2")


def _add_info(subparsers) -> None:
    parser = _command(
        subparsers,
        "info",
        "Show versions, CPU/GPU, torch threads, the active profile and the build folder.",
        "  tryon-lab info\n  TRYON_LAB_PROFILE=smoke tryon-lab info --json",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=_run_info)


def _run_info(args: argparse.Namespace) -> int:
    import json

    from tryon_lab.environment import environment_report, format_report

    report = environment_report()
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _add_pretrain(subparsers) -> None:
    parser = _command(
        subparsers,
        "pretrain",
        "Train a component of the mini model from scratch on the world (resumes from its run folder).",
        "  tryon-lab pretrain vae --profile quick --out runs/quick/vae/final\n"
        "  tryon-lab pretrain encoder --profile quick --out data/models/world-encoder\n"
        "  tryon-lab pretrain unet --profile quick --vae runs/quick/vae/final \\\n"
        "      --judge data/models/world-encoder --out data/models/mini-sd-inpaint\n"
        "Retrain a shipped decoder with one phase of the recipe; the latent space, and so the U-Net, stay:\n"
        "  tryon-lab pretrain vae --init data/models/mini-sd-inpaint/vae --phases polish --out runs/quick/vae-polished \\\n"
        "      --into data/models/mini-sd-inpaint --judge data/models/world-encoder\n"
        "Data-parallel on 2 CPU processes (gloo) or GPUs, same command:\n"
        "  accelerate launch --multi_gpu --num_processes 2 --no_python tryon-lab pretrain encoder --out OUT\n"
        "The quick profile's sizes are the recipe of the shipped checkpoints: hours on a 2-core CPU.\n"
        "Interrupt at any time; the same command resumes from the newest checkpoint in --run-dir.",
    )
    parser.add_argument("component", choices=("vae", "encoder", "unet"), help="what to train")
    parser.add_argument("--profile", choices=PROFILE_NAMES, default=DEFAULT_PROFILE,
                        help="sizes and step counts (default: %(default)s)")
    parser.add_argument("--out", type=_folder_out, required=True,
                        help="folder for the finished model (written atomically)")
    parser.add_argument("--run-dir", help="checkpoints and losses.csv (default: runs/<profile>/<component>)")
    parser.add_argument("--vae", help="(unet) folder of the trained VAE")
    parser.add_argument("--judge", help="(unet, or vae with --into) folder of the world encoder, to score the model card")
    parser.add_argument("--init", metavar="DIR", help="(vae) start from this saved VAE instead of random weights")
    parser.add_argument("--phases", nargs="+", metavar="NAME",
                        help="(vae) run only these phases of the recipe: vae, decoder, anneal, polish "
                             "(with --init, continues a finished VAE)")
    parser.add_argument("--into", metavar="PIPELINE",
                        help="(vae) then put the VAE into this finished pipeline and re-score its model card; "
                             "its encoder must be the pipeline's (a decoder-only retraining)")
    parser.add_argument("--seed", type=int, default=0, help="world and initialisation seed (default: %(default)s)")
    parser.set_defaults(handler=_run_pretrain)


def _run_pretrain(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tryon_lab.errors import ConfigError
    from tryon_lab.profiles import load_profile
    from tryon_lab.training import pretrain

    profile = load_profile(args.profile)
    run_dir = Path(args.run_dir or Path("runs") / profile.name / args.component)
    what = args.component
    if args.component == "vae":
        if args.init and not Path(args.init, "config.json").is_file():
            raise ConfigError(f"--init must name a saved VAE folder (with config.json); got {args.init!r}")
        if args.into and (args.phases is None or "vae" in args.phases):
            # refused before hours of training, not after: phase 1 retrains the encoder
            raise ConfigError("--into ships a retrained decoder only, and phase 'vae' retrains the encoder: "
                              "choose decoder phases with --phases (e.g. --phases polish)")
        out = pretrain.pretrain_vae(profile, run_dir, args.out, seed=args.seed, init_dir=args.init, only=args.phases)
        if args.into:
            print(f"saved vae to {out}")
            out = pretrain.swap_vae(profile, out, args.into, judge_dir=args.judge, seed=args.seed)
            what = "the pipeline with the new vae"
    elif args.component == "encoder":
        out = pretrain.pretrain_encoder(profile, run_dir, args.out, seed=args.seed)
    else:
        if not args.vae or not Path(args.vae, "config.json").is_file():
            raise ConfigError(f"--vae must name a trained VAE folder (with config.json); got {args.vae!r}")
        out = pretrain.pretrain_unet(profile, run_dir, args.vae, args.out, judge_dir=args.judge, seed=args.seed)
    print(f"saved {what} to {out}")
    return 0


def _add_curve(subparsers) -> None:
    parser = _command(
        subparsers,
        "curve",
        "Score the kept checkpoints of a U-Net run on val samples: its learning curve "
        "(all-attribute accuracy, leftover, 95% intervals) in <run-dir>/curve.csv and curve.png.",
        "  tryon-lab curve --profile quick --run-dir runs/quick/unet --vae runs/quick/vae \\\n"
        "      --judge data/models/world-encoder\n"
        "Re-run while training goes on: checkpoints already in curve.csv are not scored again.",
    )
    parser.add_argument("--profile", choices=PROFILE_NAMES, default=DEFAULT_PROFILE,
                        help="the run's profile: its model config (default: %(default)s)")
    parser.add_argument("--run-dir", required=True, help="the U-Net run folder (its step-* checkpoints)")
    parser.add_argument("--vae", required=True, help="folder of the VAE the run trained on")
    parser.add_argument("--judge", required=True, help="folder of the world encoder that scores")
    parser.add_argument("--samples", type=_at_least_two, default=64, help="val samples per checkpoint (default: %(default)s)")
    parser.set_defaults(handler=_run_curve)


def _run_curve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tryon_lab.errors import ConfigError
    from tryon_lab.models.config import load_model_config
    from tryon_lab.profiles import load_profile
    from tryon_lab.tables import format_table
    from tryon_lab.training.checkpoints import checkpoint_dirs
    from tryon_lab.training.curve import curve_figure, learning_curve

    run_dir = Path(args.run_dir)
    if not checkpoint_dirs(run_dir) or not (run_dir / "tokenizer").is_dir():
        raise ConfigError(f"--run-dir {run_dir} holds no U-Net checkpoints (step-* folders and a tokenizer)")
    for flag, folder in (("--vae", args.vae), ("--judge", args.judge)):
        if not Path(folder, "config.json").is_file():
            raise ConfigError(f"{flag} must name a saved model folder (with config.json); got {folder!r}")
    config = load_model_config(load_profile(args.profile)["pretrain"]["model"])
    rows = learning_curve(run_dir, args.vae, args.judge, config, samples=args.samples)
    curve_figure(rows, f"{run_dir}: {args.samples} val samples, 95% intervals").savefig(run_dir / "curve.png", dpi=80)
    print(format_table([[int(r["step"]), f"{r['attr_acc_all']:.3f} [{r['attr_acc_all_lo']:.3f}, {r['attr_acc_all_hi']:.3f}]",
                         f"{r['leftover']:.3f} [{r['leftover_lo']:.3f}, {r['leftover_hi']:.3f}]", f"{r['masked_psnr_db']:.2f}"]
                        for r in rows], ["step", "all-attribute accuracy", "leftover", "masked PSNR dB"]))
    print(f"wrote {run_dir / 'curve.csv'} and {run_dir / 'curve.png'}")
    return 0


def _add_train_dtc(subparsers) -> None:
    parser = _command(
        subparsers,
        "train-dtc",
        "Train Diffuse to Choose on the mini model: perceptual network, the paper's ablation, the shipped variant.",
        "  tryon-lab train-dtc --profile quick --judge data/models/world-encoder --out data/models/dtc\n"
        "  tryon-lab train-dtc --profile smoke --out build/dtc-smoke    # seconds, results not meaningful\n"
        "Every variant (and seed) of the ablation trains in --run-dir/ablation/<variant>/seed-<s> and is scored\n"
        "on the same val and test pairs (ablation.json). Interrupt at any time; the same command resumes.",
    )
    parser.add_argument("--profile", choices=PROFILE_NAMES, default=DEFAULT_PROFILE,
                        help="sizes, step counts and variants (default: %(default)s)")
    parser.add_argument("--out", required=True, help="folder for the shipped variant (written atomically)")
    parser.add_argument("--base", metavar="DIR", help="text inpainting pipeline to build on (default: the shipped mini-sd-inpaint)")
    parser.add_argument("--judge", metavar="DIR", help="world encoder folder: scores attribute and identity accuracy, "
                                                      "reference similarity and KID (default: masked PSNR / SSIM only)")
    parser.add_argument("--run-dir", help="checkpoints, latent cache, ablation.json (default: runs/<profile>/dtc)")
    parser.add_argument("--variants", nargs="+", metavar="NAME",
                        help="train and score only these ablation variants (default: the profile's): "
                             "baseline, add or film, then optionally +t (hint timestep) and +perceptual; "
                             "must include the profile's shipped variant unless it ships 'auto'")
    parser.add_argument("--seed", type=int, default=0,
                        help="world of the training pairs and evaluation samples (training seeds: the profile's "
                             "seeds; default: %(default)s)")
    parser.set_defaults(handler=_run_train_dtc)


def _run_train_dtc(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tryon_lab.profiles import load_profile
    from tryon_lab.training.dtc_recipe import train_dtc_recipe

    profile = load_profile(args.profile)
    run_dir = Path(args.run_dir or Path("runs") / profile.name / "dtc")
    out = train_dtc_recipe(profile, args.out, run_dir, base=args.base, judge_dir=args.judge, seed=args.seed,
                           variants=args.variants)
    print(f"saved DTC to {out}; ablation table in {out / 'ablation.md'}")
    return 0


def _add_tryon(subparsers) -> None:
    parser = _command(
        subparsers,
        "tryon",
        "Inpaint a garment or product onto one photo and save the result.",
        "  tryon-lab tryon --person me.jpg --mask auto --category tee \\\n"
        "      --prompt 'a photo of a person wearing a red striped tee' --out result.png\n"
        "  tryon-lab tryon --person me.jpg --mask my_mask.png --prompt '...' --out r.png --seed 3 --steps 40\n"
        "  tryon-lab tryon --person room.jpg --mask box.png --reference lamp.png --out r.png   # any product (DTC)\n"
        "  tryon-lab tryon ... --model /path/to/stable-diffusion-inpainting   # any local SD-inpainting folder",
    )
    parser.add_argument("--person", required=True, help="the photo (any size or mode; EXIF rotation is applied)")
    parser.add_argument("--mask", required=True, help="mask image (white = repaint), or 'auto' to suggest one")
    parser.add_argument("--category", help="with --mask auto: the item category whose usual region to mask")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--prompt", help="what to paint, e.g. 'a photo of a person wearing a red tee'")
    what.add_argument("--reference", metavar="ITEM.png", help="a picture of the item to insert (Diffuse to Choose; "
                                                             "no text, no per-item training)")
    parser.add_argument("--out", type=_file_out, required=True, help="where to save the PNG result")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=25, help="denoising steps (default: %(default)s)")
    parser.add_argument("--guidance", type=float, help="classifier-free guidance scale (default: 4 with --prompt, "
                                                       "5 with --reference)")
    parser.add_argument("--model", help="pipeline folder (default: the shipped mini-sd-inpaint, or with --reference "
                                        "the shipped dtc; both know only the course's synthetic world: for real "
                                        "photos, --prompt with a local SD-1.5-inpainting folder)")
    parser.set_defaults(handler=_run_tryon)


def _run_tryon(args: argparse.Namespace) -> int:
    import time

    from tryon_lab.data.domain import is_shipped_model, looks_like_world_render, outside_world_note
    from tryon_lab.data.io import load_image, load_mask
    from tryon_lab.errors import ConfigError
    from tryon_lab.pipelines.loading import load_dtc_pipeline, load_inpaint_pipeline

    began = time.perf_counter()
    photo = load_image(args.person)
    if args.mask == "auto":
        from tryon_lab.data.suggest import suggest_mask

        if not args.category:
            raise ConfigError("--mask auto needs --category (e.g. tee, dress, mug) to know where the item goes")
        mask = suggest_mask(photo, args.category)
    else:
        mask = load_mask(args.mask, image=photo)
    if args.steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {args.steps}")
    if args.reference is not None:
        condition = load_image(args.reference, min_side=1)
        pipe, guidance = load_dtc_pipeline(args.model), args.guidance if args.guidance is not None else 5.0
    else:
        condition = args.prompt
        pipe, guidance = load_inpaint_pipeline(args.model), args.guidance if args.guidance is not None else 4.0
    if (args.model is None or is_shipped_model(args.model)) and not looks_like_world_render(photo):
        print(f"note: {outside_world_note(args.person)}", file=sys.stderr)
    loaded = time.perf_counter()
    result = pipe(photo, mask, condition, num_inference_steps=args.steps, guidance_scale=guidance, seed=args.seed)
    generated = time.perf_counter()
    _save_png(result.images[0], args.out)
    print(f"saved {args.out} ({photo.width}x{photo.height}); try-on {generated - loaded:.2f} s, "
          f"total {time.perf_counter() - began:.2f} s including loading")
    return 0


def _save_png(image, path: str) -> None:
    """Write a PNG atomically: a failed save never leaves a half-written file at ``path``."""
    import os
    import tempfile
    from pathlib import Path

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".png")
    os.close(fd)
    try:
        image.save(tmp, format="PNG")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _add_dreambooth(subparsers) -> None:
    parser = _command(
        subparsers,
        "dreambooth",
        "Teach the inpainting model one garment (DreamBooth): full fine-tuning or a LoRA adapter.",
        "  tryon-lab dreambooth --garment garment-tee-red-stripes --out build/garments/red-tee\n"
        "  tryon-lab dreambooth --garment garment-tee-red-stripes --lora-rank 8 --out build/garments/red-tee-lora\n"
        "  tryon-lab dreambooth --images my_shirt/ --class-word tee --token zwx --lora-rank 8 --out build/garments/mine\n"
        "A photo folder holds NAME.jpg/.png with masks NAME_mask.png (white = the garment).\n"
        "Then: tryon-lab tryon --model OUT (full) ... --prompt 'a photo of a person wearing a sks tee'.\n"
        "Interrupt at any time; the same command resumes from the newest checkpoint in --run-dir.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--garment", metavar="ID", help="catalog item id, e.g. garment-tee-red-stripes")
    source.add_argument("--images", metavar="DIR", help="folder of your photos with NAME_mask.png masks")
    parser.add_argument("--token", default="sks", help="the new identifier word (default: %(default)s)")
    parser.add_argument("--class-word", metavar="WORD", help="what the garment is, e.g. tee (default: the item's category; "
                                             "needed with --images)")
    parser.add_argument("--lora-rank", type=_count, metavar="N", help="train LoRA adapters of this rank (default: the whole U-Net)")
    parser.add_argument("--train-text-encoder", action="store_true", help="(full) also fine-tune the text encoder")
    parser.add_argument("--steps", type=int, metavar="N", help="training steps (default: the profile's)")
    parser.add_argument("--profile", choices=PROFILE_NAMES, default=DEFAULT_PROFILE,
                        help="sizes and step counts (default: %(default)s)")
    parser.add_argument("--base", metavar="DIR", help="base pipeline folder (default: the shipped mini-sd-inpaint)")
    parser.add_argument("--run-dir", help="class images, checkpoints, losses.csv (default: runs/<profile>/dreambooth/...)")
    parser.add_argument("--seed", type=int, default=0, help="world and initialisation seed (default: %(default)s)")
    parser.add_argument("--out", type=_folder_out, required=True,
                        help="folder for the pipeline (full) or adapter (LoRA), written atomically")
    parser.set_defaults(handler=_run_dreambooth)


def _run_dreambooth(args: argparse.Namespace) -> int:
    from tryon_lab.profiles import load_profile
    from tryon_lab.training.dreambooth.recipe import run_dreambooth

    run = run_dreambooth(load_profile(args.profile), args.out, garment=args.garment, images=args.images,
                         token=args.token, class_word=args.class_word, lora_rank=args.lora_rank,
                         train_text_encoder=args.train_text_encoder, steps=args.steps, base=args.base,
                         run_dir=args.run_dir, seed=args.seed)
    print(run.summary)
    return 0


def _add_export(subparsers) -> None:
    parser = _command(
        subparsers,
        "export",
        "Export a try-on model as a phone bundle: Core ML packages, ExecuTorch programs, golden data.",
        "  tryon-lab export --out build/bundle                       # shipped model, 6-bit U-Net\n"
        "  tryon-lab export --model data/models/mini-sd-inpaint --out build/b --bits mixed --chunks 2\n"
        "  tryon-lab export --model /path/to/sd-inpainting --out b --bits 4 --targets coreml\n"
        "  tryon-lab export --model data/models/dtc --out build/dtc-bundle --bits 6 --chunks 2   # Diffuse to Choose\n"
        "Then check it anywhere (no Mac needed): tryon-lab verify build/bundle",
    )
    parser.add_argument("--model", help="pipeline folder: a text model, or a DTC parts (dtc.json) or DTCPipeline "
                                         "folder (default: the shipped mini-sd-inpaint)")
    parser.add_argument("--out", type=_folder_out, required=True,
                        help="bundle folder to write (written atomically; an existing one only with --force)")
    parser.add_argument("--force", action="store_true", help="replace what --out holds (refused by default)")
    parser.add_argument("--bits", choices=("16", "8", "6", "4", "mixed"), default="6",
                        help="U-Net palettization: 16 = none, or k-means bits, or per-layer mixed (default: %(default)s)")
    parser.add_argument("--chunks", type=int, default=1, help="split the U-Net into N chunks (default: %(default)s)")
    parser.add_argument("--targets", type=_targets, default=("coreml", "executorch"),
                        help="comma-separated: coreml, executorch (default: both)")
    parser.add_argument("--granularity", choices=("per_tensor", "per_grouped_channel"), default="per_grouped_channel",
                        help="one palette per tensor or per group of output channels (default: %(default)s)")
    parser.add_argument("--group-size", type=int, default=32, help="output channels per palette (default: %(default)s)")
    goal = parser.add_mutually_exclusive_group()
    goal.add_argument("--target-psnr", type=float, help="with --bits mixed: the U-Net PSNR to hold, dB (default: 30)")
    goal.add_argument("--target-bits", type=float, help="with --bits mixed: the average bits to reach instead")
    parser.add_argument("--quantize", choices=("none", "int8"), default="none",
                        help="ExecuTorch weights: fp32 or int8 per channel; the U-Net stays fp32, as ExecuTorch "
                             "1.5.1 cannot lower its int8 program (default: %(default)s)")
    parser.add_argument("--attention", choices=("original", "split_einsum"), default="original",
                        help="Core ML U-Net attention: diffusers' original, or split_einsum, the Neural Engine's "
                             "(B, C, 1, S) layout with per-head einsums as apple/ml-stable-diffusion's: the same "
                             "maths (`python -m benchmarks phone-programs` compares their PSNR); the default stays "
                             "original until a phone measures the speed-up (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps of the golden try-on (default: %(default)s)")
    parser.set_defaults(handler=_run_export)


def _targets(text: str) -> tuple[str, ...]:
    targets = tuple(t.strip() for t in text.split(",") if t.strip())
    unknown = [t for t in targets if t not in ("coreml", "executorch")]
    if unknown or not targets:
        raise argparse.ArgumentTypeError(f"expected coreml and/or executorch, got {text!r}")
    return targets


def _run_export(args: argparse.Namespace) -> int:
    import time

    from pathlib import Path

    from tryon_lab.errors import ConfigError
    from tryon_lab.export.bundle import ExportOptions, export_bundle

    if not args.force and Path(args.out).is_dir() and any(Path(args.out).iterdir()):
        raise ConfigError(f"--out {args.out} is not empty (an earlier bundle?); pass --force to replace it, "
                          "or choose another folder")
    target_psnr = args.target_psnr if args.target_psnr is not None else (None if args.target_bits else 30.0)
    options = ExportOptions(bits=args.bits, chunks=args.chunks, targets=args.targets, granularity=args.granularity,
                            group_size=args.group_size, target_psnr=target_psnr, target_bits=args.target_bits,
                            quantization=args.quantize, attention=args.attention, steps=args.steps)
    began = time.perf_counter()
    path = export_bundle(args.model, args.out, options)
    print(f"wrote bundle {path} in {time.perf_counter() - began:.0f} s; check it with: tryon-lab verify {path}")
    return 0


def _add_verify(subparsers) -> None:
    parser = _command(
        subparsers,
        "verify",
        "Check a phone bundle: file hashes, every component and a whole try-on against PyTorch.",
        "  tryon-lab verify build/bundle\n"
        "  tryon-lab verify build/bundle --backend mil     # the Linux MIL executor even on macOS\n"
        "Exit status: 0 all checks pass, 1 a check fails, 2 the bundle cannot be read.",
    )
    parser.add_argument("bundle", help="bundle folder written by tryon-lab export")
    parser.add_argument("--backend", choices=("auto", "mil", "coreml"), default="auto",
                        help="how to run Core ML packages: Core ML on macOS, else the MIL executor (default: %(default)s)")
    parser.set_defaults(handler=_run_verify)


def _run_verify(args: argparse.Namespace) -> int:
    from tryon_lab.export.verify import verify_bundle

    report = verify_bundle(args.bundle, backend=args.backend)
    print(report.table())
    return 0 if report.passed else EXIT_FAILED


def _add_app(subparsers) -> None:
    parser = _command(
        subparsers,
        "app",
        "Serve the Fitting Room app as a phone-shaped Voila page on 127.0.0.1 and print its address.",
        "  tryon-lab app                               # shipped model and data/ catalog, a free port\n"
        "  tryon-lab app --port 8866 --model build/garments/red-tee --catalog build/catalog\n"
        "  tryon-lab app --bundle build/bundle         # your exported phone model, run by ExecuTorch\n"
        "  tryon-lab app --garments build/garments     # DreamBooth LoRA garments in the gallery\n"
        "Open the printed address in a browser (a phone-width window looks like the phone app); Ctrl-C stops it.",
    )
    parser.add_argument("--port", type=_count, default=0, help="port on 127.0.0.1 (default: a free one)")
    backend = parser.add_mutually_exclusive_group()
    backend.add_argument("--model", help="pipeline folder (default: the shipped mini-sd-inpaint)")
    backend.add_argument("--bundle", help="phone bundle from `tryon-lab export` with ExecuTorch programs, run by "
                                          "the ExecuTorch runtime instead of the PyTorch model")
    parser.add_argument("--catalog", help="catalog folder from `tryon-lab world render` (default: data/)")
    parser.add_argument("--garments", help="folder of LoRA garments from `tryon-lab dreambooth --lora-rank N`, "
                                           "shown as fine-tuned gallery entries (PyTorch model only)")
    parser.set_defaults(handler=_run_app)


def _run_app(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tryon_lab.app.page import serve
    from tryon_lab.data.catalog import load_catalog
    from tryon_lab.errors import ConfigError

    if args.garments and args.bundle:
        raise ConfigError("--garments are LoRA adapters on the PyTorch model; a bundle cannot switch them "
                          "(leave out --bundle, or export a fine-tuned model as its own bundle)")
    # Refuse bad paths here, not in a page that then shows an error to whoever opens it.
    if args.model and not Path(args.model, "model_index.json").is_file():
        raise ConfigError(f"--model {args.model} is not a pipeline folder (no model_index.json)")
    if args.bundle:
        from tryon_lab.app.executorch_backend import check_bundle

        check_bundle(args.bundle)
    if args.catalog:
        load_catalog(args.catalog)
    if args.garments:
        from tryon_lab.training.adapters import finetuned_catalog

        if not any(g.mode == "lora" for g in finetuned_catalog(args.garments)):
            raise ConfigError(f"--garments {args.garments} holds no LoRA garment "
                              "(folders written by `tryon-lab dreambooth --lora-rank N`)")
    serve(args.port, args.model, args.catalog, bundle=args.bundle, garments=args.garments)
    return 0


def _add_grade(subparsers) -> None:
    parser = _command(
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
    parser.add_argument("--out", type=_folder_out, default="build/grading",
                        help="folder for the reports and unpacked copies (default: %(default)s)")
    parser.add_argument("--json", metavar="OUT", help="also write the report as JSON here (several: a list)")
    parser.add_argument("--html", metavar="OUT", help="also write the report as HTML here (several: a class page)")
    parser.add_argument("--jobs", type=_count, help="submissions graded at once (default: one per CPU core)")
    parser.add_argument("--timeout", type=_seconds, help="seconds per submission (default: the rubric's limits)")
    parser.add_argument("--keep-files", action="store_true", help="keep each unpacked copy in OUT/<student>/submission")
    parser.add_argument("--force", action="store_true", help="replace OUT/<student>/ reports of other submissions "
                                                             "of the same name (refused by default)")
    parser.set_defaults(handler=_run_grade)


def _run_grade(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from tryon_lab.errors import ConfigError
    from tryon_lab.grading.classroom import find_submissions, grade_class
    from tryon_lab.grading.reference import load_reference
    from tryon_lab.grading.report import NO_REFERENCE, render_class_html, render_html, write_json, write_text
    from tryon_lab.grading.rubric import load_rubric

    if bool(args.submissions) == bool(args.class_dir):
        raise ConfigError("give SUBMISSION paths or --class DIR, not both and not neither")
    rubric = load_rubric(args.rubric)
    reference = load_reference(args.reference) if args.reference else None  # hashed once here, not per student
    sources, notes = (find_submissions(args.class_dir, exclude=[args.out]) if args.class_dir
                      else ([Path(s) for s in args.submissions], []))
    if not sources:
        raise ConfigError(f"{args.class_dir} holds no submissions (folders or .zip files)")
    print(f"grading {len(sources)} submission(s) with {rubric.name!r}" + "".join(f"\n  {n}" for n in notes))
    if reference is None:
        print(f"{NO_REFERENCE}.")
    run = grade_class(sources, args.out, rubric, reference.path if reference else None, args.jobs, args.timeout,
                      args.keep_files, force=args.force)
    single = len(run.reports) == 1 and not args.class_dir
    if single:
        print(run.reports[0].table())
    if args.json:
        write_json(run.reports[0].to_json() if single else [r.to_json() for r in run.reports], Path(args.json))
    if args.html:
        html = Path(args.html)
        links = {r.student: os.path.relpath(Path(args.out, r.student, "report.html"), html.parent.resolve())
                 for r in run.reports}
        write_text(html, render_html(run.reports[0]) if single else render_class_html(run.reports, links))
    passed = sum(r.status == "passed" for r in run.reports)
    print(f"{passed} of {len(run.reports)} passed in {run.seconds:.0f} s; reports in {args.out}/<student>/, "
          f"summary of {run.listed} student(s) in {run.summary_csv} and {run.index_html}")
    return run.exit_code


def _add_upgrade(subparsers) -> None:
    parser = _command(
        subparsers,
        "upgrade",
        "Convert a model folder saved by an earlier tryon-lab to diffusers' U-Net channel order "
        "(an exact permutation of conv_in's input channels: the model computes what it did).",
        "  tryon-lab upgrade build/course/quick/02_dreambooth_garment/garment-full\n"
        "  tryon-lab upgrade my-dtc-parts/",
    )
    parser.add_argument("folders", nargs="+", metavar="FOLDER",
                        help="a pipeline folder (model_index.json) or DTC parts folder (dtc.json) to upgrade in place")
    parser.set_defaults(handler=_run_upgrade)


def _run_upgrade(args: argparse.Namespace) -> int:
    from tryon_lab.pipelines.upgrade import legacy_record, upgrade_folder

    stale = [folder for folder in args.folders if legacy_record(folder) is None]
    if stale:  # checked for every folder before any is changed
        from tryon_lab.errors import ConfigError

        raise ConfigError(f"not a model folder in the old channel order (nothing to upgrade): {', '.join(stale)}")
    for folder in args.folders:
        changed = upgrade_folder(folder)
        print(f"upgraded {folder} to diffusers' channel order (inpaint_rule 'tryon-lab')")
        for name, hashes in changed.items():
            print(f"  {name}: sha256 {hashes}")
    return 0

