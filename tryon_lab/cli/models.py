"""Commands that use a model folder: ``tryon`` (one photo) and ``upgrade`` (an older folder's channel order)."""

from __future__ import annotations

import argparse
import sys

from tryon_lab.cli.parsing import command, file_out
from tryon_lab.pipelines.samplers import SAMPLERS


def add_tryon(subparsers) -> None:
    """Register ``tryon``."""
    parser = command(
        subparsers,
        "tryon",
        "Inpaint a garment or product onto one photo and save the result.",
        "  tryon-lab tryon --person me.jpg --mask auto --category tee \\\n"
        "      --prompt 'a photo of a person wearing a red striped tee' --out result.png\n"
        "  tryon-lab tryon --person me.jpg --mask my_mask.png --prompt '...' --out r.png --seed 3 --steps 40\n"
        "  tryon-lab tryon --person me.jpg --mask my_mask.png --prompt '...' --out r.png --sampler lcm   # 4 steps\n"
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
    parser.add_argument("--out", type=file_out, required=True, help="where to save the PNG result")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default: %(default)s)")
    parser.add_argument("--sampler", choices=tuple(SAMPLERS), default="ddim",
                        help="; ".join(f"{s.name}: {s.description}, {s.steps} steps" for s in SAMPLERS.values())
                        + " (default: %(default)s)")
    parser.add_argument("--steps", type=int, help="denoising steps (default: the sampler's)")
    parser.add_argument("--guidance", type=float, help="classifier-free guidance scale (default: 4 with --prompt, "
                                                       "5 with --reference, none with --sampler lcm)")
    parser.add_argument("--model", help="pipeline folder (default: the shipped mini-sd-inpaint, or with --reference "
                                        "the shipped dtc; both know only the course's synthetic world: for real "
                                        "photos, --prompt with a local SD-1.5-inpainting folder)")
    parser.set_defaults(handler=run_tryon)


def run_tryon(args: argparse.Namespace) -> int:
    """Try the item on the photo, save the PNG and say how long it took."""
    import time

    from tryon_lab.data.io import save_png
    from tryon_lab.pipelines.photo import tryon_photo

    began = time.perf_counter()
    result = tryon_photo(args.person, args.mask, prompt=args.prompt, reference=args.reference, category=args.category,
                         model=args.model, sampler=args.sampler, steps=args.steps, guidance=args.guidance,
                         seed=args.seed,
                         note=lambda text: print(f"note: {text}", file=sys.stderr))
    save_png(result.image, args.out)
    print(f"saved {args.out} ({result.photo.width}x{result.photo.height}); try-on {result.seconds:.2f} s, "
          f"total {time.perf_counter() - began:.2f} s including loading")
    return 0


def add_upgrade(subparsers) -> None:
    """Register ``upgrade``."""
    parser = command(
        subparsers,
        "upgrade",
        "Convert a model folder saved by an earlier tryon-lab to diffusers' U-Net channel order "
        "(an exact permutation of conv_in's input channels: the model computes what it did).",
        "  tryon-lab upgrade build/course/quick/02_dreambooth_garment/garment-full\n"
        "  tryon-lab upgrade my-dtc-parts/",
    )
    parser.add_argument("folders", nargs="+", metavar="FOLDER",
                        help="a pipeline folder (model_index.json) or DTC parts folder (dtc.json) to upgrade in place")
    parser.set_defaults(handler=run_upgrade)


def run_upgrade(args: argparse.Namespace) -> int:
    """Upgrade every folder in place and print the new hashes."""
    from tryon_lab.pipelines.upgrade import upgrade_folders

    for folder, changed in upgrade_folders(args.folders).items():
        print(f"upgraded {folder} to diffusers' channel order (inpaint_rule 'tryon-lab')")
        for name, hashes in changed.items():
            print(f"  {name}: sha256 {hashes}")
    return 0
