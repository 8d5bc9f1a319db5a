"""Training commands: ``pretrain`` (a component of the mini model), ``curve`` (a U-Net or VAE run's
learning curve), ``train-dtc`` (Diffuse to Choose), ``dtc-curve`` (one DTC run trained longer, scored as it goes), ``distill`` (an LCM LoRA), ``distill-vae`` (the LCM sampler's fast
VAE) and ``dreambooth`` (one garment)."""

from __future__ import annotations

import argparse

from tryon_lab.cli.parsing import at_least_two, command, count, folder_out, positive
from tryon_lab.profiles import DEFAULT_PROFILE, PROFILE_NAMES


def add_pretrain(subparsers) -> None:
    """Register ``pretrain``."""
    parser = command(
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
        "Train the judge's motif network further; its attribute scores and KID features stay as they are:\n"
        "  tryon-lab pretrain encoder --init data/models/world-encoder --out data/models/world-encoder\n"
        "A VAE with a 16-channel latent (models/configs/mini16.json), its phase 1 trained longer:\n"
        "  tryon-lab pretrain vae --model mini16 --steps 12000 --run-dir runs/quick-c16/vae --out runs/quick-c16/vae-final\n"
        "Data-parallel on 2 CPU processes (gloo) or GPUs, same command:\n"
        "  accelerate launch --multi_gpu --num_processes 2 --no_python tryon-lab pretrain encoder --out OUT\n"
        "The quick profile's sizes are the recipe of the shipped checkpoints: hours on a 2-core CPU.\n"
        "Interrupt at any time; the same command resumes from the newest checkpoint in --run-dir.",
    )
    parser.add_argument("component", choices=("vae", "encoder", "unet"), help="what to train")
    parser.add_argument("--profile", choices=PROFILE_NAMES, default=DEFAULT_PROFILE,
                        help="sizes and step counts (default: %(default)s)")
    parser.add_argument("--out", type=folder_out, required=True,
                        help="folder for the finished model (written atomically)")
    parser.add_argument("--run-dir", help="checkpoints and losses.csv (default: runs/<profile>/<component>)")
    parser.add_argument("--vae", help="(unet) folder of the trained VAE")
    parser.add_argument("--judge", help="folder of the world encoder: (unet) scores the model card; (vae) its "
                                        "identity accuracy after the VAE's round trip on val and test renderings")
    parser.add_argument("--init", metavar="DIR",
                        help="(vae) start from this saved VAE; (unet) from this finished pipeline's tokenizer, "
                             "text encoder and U-Net, instead of new ones (a pipeline of another latent width too: its U-Net's "
                             "conv_in and conv_out then start new); (encoder) continue this saved judge: its "
                             "attribute network frozen, its motif network trained further (the profile's init_steps)")
    parser.add_argument("--phases", nargs="+", metavar="NAME",
                        help="(vae) run only these phases of the recipe: vae, decoder, anneal, polish "
                             "(with --init, continues a finished VAE)")
    parser.add_argument("--into", metavar="PIPELINE",
                        help="(vae) then put the VAE into this finished pipeline and re-score its model card; "
                             "its encoder must be the pipeline's (a decoder-only retraining)")
    parser.add_argument("--minutes", type=float, metavar="M",
                        help="(unet) stop after M minutes of training with a checkpoint, then ship what it has "
                             "(a GPU lease's length); the same command continues the run")
    parser.add_argument("--model", metavar="CONFIG",
                        help="model config to train (a name in tryon_lab/models/configs or a JSON file; "
                             "default: the profile's, mini)")
    parser.add_argument("--steps", type=positive, metavar="N",
                        help="training steps instead of the profile's (vae: phase 1's); raising it later "
                             "continues the same run")
    parser.add_argument("--seed", type=int, default=0, help="world and initialisation seed (default: %(default)s)")
    parser.set_defaults(handler=run_pretrain)


def run_pretrain(args: argparse.Namespace) -> int:
    """Train the component (resuming from its run folder) and say where it was saved."""
    from tryon_lab.profiles import load_profile, with_settings
    from tryon_lab.training.pretrain import pretrain_component

    profile = _with_model(load_profile(args.profile), args.model)
    if args.steps:
        profile = with_settings(profile, "pretrain", {args.component: {"steps": args.steps}})
    out = pretrain_component(args.component, profile, args.out, args.run_dir, vae_dir=args.vae,
                             judge_dir=args.judge, init_dir=args.init, phases=args.phases, into=args.into,
                             seed=args.seed, minutes=args.minutes)
    what = "the pipeline with the new vae" if args.into else args.component
    print(f"saved {what} to {out}")
    return 0


def _with_model(profile, model: str | None):
    """``profile`` with ``model`` as its pretrain model config (unchanged when None); ``ConfigError``
    naming an unknown or inconsistent config before any work."""
    from tryon_lab.models.config import load_model_config
    from tryon_lab.profiles import with_settings

    if not model:
        return profile
    load_model_config(model)
    return with_settings(profile, "pretrain", {"model": model})


def add_curve(subparsers) -> None:
    """Register ``curve``."""
    parser = command(
        subparsers,
        "curve",
        "Score the kept checkpoints of a training run on val samples: its learning curve in <run-dir>/curve.csv "
        "and curve.png. A U-Net run (with --vae): all-attribute accuracy and leftover of its try-ons. A VAE run "
        "(without --vae): the judge's identity accuracy after each checkpoint's round trip, which bounds the "
        "identity of every model built on that VAE. 95% intervals.",
        "  tryon-lab curve --profile quick --run-dir runs/quick/unet --vae runs/quick/vae \\\n"
        "      --judge data/models/world-encoder\n"
        "  tryon-lab curve --model mini16 --run-dir runs/quick-c16/vae --judge data/models/world-encoder\n"
        "Re-run while training goes on: checkpoints already in curve.csv are not scored again.",
    )
    parser.add_argument("--profile", choices=PROFILE_NAMES, default=DEFAULT_PROFILE,
                        help="the run's profile: its model config (default: %(default)s)")
    parser.add_argument("--run-dir", required=True, help="the run folder (its step-* checkpoints)")
    parser.add_argument("--vae", help="a U-Net run: folder of the VAE it trained on (leave out for a VAE run)")
    parser.add_argument("--judge", required=True, help="folder of the world encoder that scores")
    parser.add_argument("--samples", type=at_least_two,
                        help="val samples per checkpoint (default: 64 for a U-Net run, 256 for a VAE run)")
    parser.add_argument("--model", metavar="CONFIG", help="the run's model config, when not the profile's (as pretrain --model)")
    parser.set_defaults(handler=run_curve)


def run_curve(args: argparse.Namespace) -> int:
    """Score the run's new checkpoints and print its learning curve as a table."""
    from pathlib import Path

    from tryon_lab.models.config import load_model_config
    from tryon_lab.profiles import load_profile
    from tryon_lab.tables import format_table
    from tryon_lab.training.curve import CURVE_FILE, FIGURE_FILE, write_learning_curve
    from tryon_lab.training.vae_curve import write_vae_learning_curve

    profile = _with_model(load_profile(args.profile), args.model)
    if args.vae:
        rows = write_learning_curve(args.run_dir, args.vae, args.judge, profile, samples=args.samples or 64)
        print(format_table([[int(r["step"]), _interval(r, "attr_acc_all"), _interval(r, "leftover"), f"{r['masked_psnr_db']:.2f}"]
                            for r in rows], ["step", "all-attribute accuracy", "leftover", "masked PSNR dB"]))
    else:
        rows = write_vae_learning_curve(args.run_dir, args.judge, load_model_config(profile["pretrain"]["model"]),
                                        samples=args.samples or 256)
        print(format_table([[int(r["step"]), _interval(r, "round_trip_identity")] for r in rows],
                           ["step", "identity after the round trip"]))
    run_dir = Path(args.run_dir)
    print(f"wrote {run_dir / CURVE_FILE} and {run_dir / FIGURE_FILE}")
    return 0


def add_train_dtc(subparsers) -> None:
    """Register ``train-dtc``."""
    parser = command(
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
    parser.add_argument("--jobs", type=positive, default=1,
                        help="ablation runs trained and scored at once, each in its own process (a GPU or many "
                             "cores; default: %(default)s)")
    parser.set_defaults(handler=run_train_dtc)


def run_train_dtc(args: argparse.Namespace) -> int:
    """Run the DTC recipe (its ablation, then the shipped variant) and say where it was saved."""
    from pathlib import Path

    from tryon_lab.profiles import load_profile
    from tryon_lab.training.dtc_recipe import train_dtc_recipe

    profile = load_profile(args.profile)
    run_dir = Path(args.run_dir or Path("runs") / profile.name / "dtc")
    out = train_dtc_recipe(profile, args.out, run_dir, base=args.base, judge_dir=args.judge, seed=args.seed,
                           variants=args.variants, jobs=args.jobs)
    print(f"saved DTC to {out}; ablation table in {out / 'ablation.md'}")
    return 0


def _interval(row: dict[str, float], key: str) -> str:
    """A learning-curve cell: ``row[key]`` and its interval (``<key>_lo``, ``<key>_hi``)."""
    return f"{row[key]:.3f} [{row[key + '_lo']:.3f}, {row[key + '_hi']:.3f}]"


def add_dtc_curve(subparsers) -> None:
    """Register ``dtc-curve``."""
    parser = command(
        subparsers,
        "dtc-curve",
        "Train one DTC ablation run past the ablation's length and score it on val every --every steps: "
        "its learning curve (identity and all-attribute accuracy, 95% intervals) in "
        "<run-dir>/curve/<variant>/seed-<s>/curve.csv and curve.png.",
        "  tryon-lab dtc-curve --profile quick --variant film+perceptual --steps 2100 \\\n"
        "      --judge data/models/world-encoder --into data/models/dtc\n"
        "Starts from the run train-dtc trained (copied; the ablation stays as it is). Interrupt at any time;\n"
        "the same command resumes, and points already in curve.csv are not scored again.",
    )
    parser.add_argument("--profile", choices=PROFILE_NAMES, default=DEFAULT_PROFILE,
                        help="the ablation's profile: its recipe, val pairs and sampling (default: %(default)s)")
    parser.add_argument("--variant", required=True, help="the ablation variant to train on (its first seed's run)")
    parser.add_argument("--steps", type=positive, required=True, help="train to this step in all")
    parser.add_argument("--every", type=positive, help="score after every N steps (default: the ablation's run length)")
    parser.add_argument("--judge", required=True, metavar="DIR", help="world encoder folder that scores")
    parser.add_argument("--base", metavar="DIR", help="the text inpainting pipeline the ablation trained on "
                                                     "(default: the shipped mini-sd-inpaint)")
    parser.add_argument("--run-dir", help="the train-dtc run folder (default: runs/<profile>/dtc)")
    parser.add_argument("--seed", type=int, default=0, help="world of the training pairs and val samples, as "
                                                           "train-dtc's --seed (default: %(default)s)")
    parser.add_argument("--into", metavar="DIR", help="a DTC folder that ships this variant (e.g. data/models/dtc): "
                                                     "the curve is copied there as learning_curve.csv and .png")
    parser.set_defaults(handler=run_dtc_curve)


def run_dtc_curve(args: argparse.Namespace) -> int:
    """Extend the run, then print its curve as a table and say where it was written."""
    from pathlib import Path

    from tryon_lab.profiles import load_profile
    from tryon_lab.tables import format_table
    from tryon_lab.training.dtc_recipe import dtc_curve_recipe

    profile = load_profile(args.profile)
    run_dir = Path(args.run_dir or Path("runs") / profile.name / "dtc")
    rows, folder = dtc_curve_recipe(profile, run_dir, args.variant, args.steps, args.every, base=args.base,
                                    judge_dir=args.judge, seed=args.seed, into=args.into)
    print(format_table([[int(r["step"]), _interval(r, "identity_acc"), _interval(r, "attr_acc_all"),
                         _interval(r, "ref_similarity")]
                        for r in rows], ["step", "identity accuracy", "all-attribute accuracy", "ref. similarity"]))
    print(f"wrote {folder / 'curve.csv'} and {folder / 'curve.png'}")
    return 0


def _add_distillation(subparsers, name: str, summary: str, examples: str, settings: str, written: str,
                      run_files: str, handler) -> None:
    """Register a command that distils a part of a pipeline folder into ``written``/ beside it: the
    options ``distill`` and ``distill-vae`` share."""
    parser = command(subparsers, name, summary,
                     examples + "Interrupt at any time; the same command resumes from --run-dir.")
    parser.add_argument("--profile", choices=PROFILE_NAMES, default=DEFAULT_PROFILE,
                        help=f"{settings} (default: %(default)s)")
    parser.add_argument("--base", metavar="DIR", help=f"the pipeline folder to distil; its {written}/ is written "
                                                      "(default: the shipped mini-sd-inpaint)")
    parser.add_argument("--judge", metavar="DIR", help="world encoder folder that scores the card's val comparison "
                                                      "(default: the shipped world-encoder)")
    parser.add_argument("--run-dir", help=f"{run_files} (default: runs/<profile>/{name})")
    parser.add_argument("--seed", type=int, default=0, help="world and initialisation seed (default: %(default)s)")
    parser.set_defaults(handler=handler)


def _run_distillation(args: argparse.Namespace, recipe, what: str) -> int:
    """Run ``recipe(profile, base, run_dir, judge, seed=...)`` on a distillation command's ``args``
    (defaults: the shipped model and judge, ``runs/<profile>/<command>``, ``<command>-dtc`` for a
    Diffuse to Choose model); say where ``what`` went."""
    from pathlib import Path

    from tryon_lab.paths import shipped_model
    from tryon_lab.pipelines.loading import SHIPPED_INPAINT, is_dtc_folder
    from tryon_lab.profiles import load_profile

    profile = load_profile(args.profile)
    base = Path(args.base) if args.base else shipped_model(SHIPPED_INPAINT)
    judge = Path(args.judge) if args.judge else shipped_model("world-encoder")
    default_run = args.command + "-dtc" * (base.is_dir() and is_dtc_folder(base))
    run_dir = Path(args.run_dir or Path("runs") / profile.name / default_run)
    out = recipe(profile, base, run_dir, judge, seed=args.seed)
    print(f"saved {what} to {out}; its card: {out / 'MODEL_CARD.md'}")
    return 0


def add_distill(subparsers) -> None:
    """Register ``distill``."""
    _add_distillation(
        subparsers, "distill",
        "Distil a text inpainting or Diffuse to Choose model into an LCM LoRA: 4 unguided steps instead of 25 "
        "guided ones (written into the model's folder as lcm/, with its card).",
        "  tryon-lab distill --profile quick                       # the shipped mini-sd-inpaint\n"
        "  tryon-lab distill --base data/models/dtc                # the shipped DTC ([distill.dtc] overrides)\n"
        "  tryon-lab distill --base build/my-model --judge data/models/world-encoder\n"
        "Then: tryon-lab tryon ... --sampler lcm (a prompt or a --reference), or tryon-lab export --sampler lcm.\n",
        "steps, batch and LoRA rank", "lcm", "checkpoints, latent cache, losses.csv", run_distill)


def run_distill(args: argparse.Namespace) -> int:
    """Distil (resuming from the run folder), score and save the LCM LoRA; say where it went."""
    from tryon_lab.training.distill_recipe import distill_pipeline

    return _run_distillation(args, distill_pipeline, "the LCM LoRA")


def add_distill_vae(subparsers) -> None:
    """Register ``distill-vae``."""
    _add_distillation(
        subparsers, "distill-vae",
        "Distil a text inpainting model's VAE into a narrower one in the same latent space, which the lcm "
        "sampler encodes and decodes with (written into the model's folder as fast_vae/, with its card).",
        "  tryon-lab distill-vae --profile quick                   # the shipped mini-sd-inpaint\n"
        "  tryon-lab distill-vae --base build/my-model --judge data/models/world-encoder\n"
        "Run it after `tryon-lab distill`: the card then compares 4-step LCM try-ons with either VAE.\n",
        "steps (crops, then the decoder alone on whole images), batch and the fast VAE's widths", "fast_vae",
        "checkpoints and losses.csv (the decoder's whole-image phase in polish/)", run_distill_vae)


def run_distill_vae(args: argparse.Namespace) -> int:
    """Distil (resuming from the run folder), score and save the fast VAE; say where it went."""
    from tryon_lab.training.fast_vae_recipe import distil_pipeline_vae

    return _run_distillation(args, distil_pipeline_vae, "the fast VAE")


def add_dreambooth(subparsers) -> None:
    """Register ``dreambooth``."""
    parser = command(
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
    parser.add_argument("--lora-rank", type=count, metavar="N", help="train LoRA adapters of this rank (default: the whole U-Net)")
    parser.add_argument("--train-text-encoder", action="store_true", help="(full) also fine-tune the text encoder")
    parser.add_argument("--steps", type=int, metavar="N", help="training steps (default: the profile's)")
    parser.add_argument("--profile", choices=PROFILE_NAMES, default=DEFAULT_PROFILE,
                        help="sizes and step counts (default: %(default)s)")
    parser.add_argument("--base", metavar="DIR", help="base pipeline folder (default: the shipped mini-sd-inpaint)")
    parser.add_argument("--run-dir", help="class images, checkpoints, losses.csv (default: runs/<profile>/dreambooth/...)")
    parser.add_argument("--seed", type=int, default=0, help="world and initialisation seed (default: %(default)s)")
    parser.add_argument("--out", type=folder_out, required=True,
                        help="folder for the pipeline (full) or adapter (LoRA), written atomically")
    parser.set_defaults(handler=run_dreambooth)


def run_dreambooth(args: argparse.Namespace) -> int:
    """Teach the model the garment and print the run's summary."""
    from tryon_lab.profiles import load_profile
    from tryon_lab.training.dreambooth.recipe import run_dreambooth

    run = run_dreambooth(load_profile(args.profile), args.out, garment=args.garment, images=args.images,
                         token=args.token, class_word=args.class_word, lora_rank=args.lora_rank,
                         train_text_encoder=args.train_text_encoder, steps=args.steps, base=args.base,
                         run_dir=args.run_dir, seed=args.seed)
    print(run.summary)
    return 0
