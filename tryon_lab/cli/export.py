"""Phone bundle commands: ``export`` (a model to Core ML and ExecuTorch) and ``verify`` (a bundle against PyTorch)."""

from __future__ import annotations

import argparse

from tryon_lab.cli.parsing import EXIT_FAILED, command, folder_out


def add_export(subparsers) -> None:
    """Register ``export``."""
    parser = command(
        subparsers,
        "export",
        "Export a try-on model as a phone bundle: Core ML packages, ExecuTorch programs, golden data.",
        "  tryon-lab export --out build/bundle                       # shipped model, 6-bit U-Net\n"
        "  tryon-lab export --model data/models/mini-sd-inpaint --out build/b --bits mixed --chunks 2\n"
        "  tryon-lab export --model /path/to/sd-inpainting --out b --bits 4 --targets coreml\n"
        "  tryon-lab export --model data/models/dtc --out build/dtc-bundle --bits 6 --chunks 2   # Diffuse to Choose\n"
        "  tryon-lab export --out build/instant --sampler lcm     # 4 LCM steps: the LCM LoRA fused in, the fast VAE\n"
        "Then check it anywhere (no Mac needed): tryon-lab verify build/bundle",
    )
    parser.add_argument("--model", help="pipeline folder: a text model, or a DTC parts (dtc.json) or DTCPipeline "
                                         "folder (default: the shipped mini-sd-inpaint)")
    parser.add_argument("--out", type=folder_out, required=True,
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
                        help="ExecuTorch programs: fp32, or int8 weights per output channel with activations "
                             "quantized on the fly (about 0.27x the U-Net's fp32 size; default: %(default)s)")
    parser.add_argument("--attention", choices=("original", "split_einsum"), default="original",
                        help="Core ML U-Net attention: diffusers' original, or split_einsum, the Neural Engine's "
                             "(B, C, 1, S) layout with per-head einsums as apple/ml-stable-diffusion's: the same "
                             "maths (`python -m benchmarks phone-programs` compares their PSNR); the default stays "
                             "original until a phone measures the speed-up (default: %(default)s)")
    parser.add_argument("--sampler", default="ddim",
                        help="what the phone loop runs: ddim (guided, 2 rows per U-Net call) or lcm (the model's LCM "
                             "LoRA fused in, 1 row, no guidance; from `tryon-lab distill`; and its fast VAE, from `tryon-lab distill-vae`, "
                             "when it has one) (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps of the golden try-on (default: %(default)s)")
    parser.set_defaults(handler=run_export)


def _targets(text: str) -> tuple[str, ...]:
    targets = tuple(t.strip() for t in text.split(",") if t.strip())
    unknown = [t for t in targets if t not in ("coreml", "executorch")]
    if unknown or not targets:
        raise argparse.ArgumentTypeError(f"expected coreml and/or executorch, got {text!r}")
    return targets


def run_export(args: argparse.Namespace) -> int:
    """Export the bundle and say how to check it."""
    import time

    from tryon_lab.export.bundle import ExportOptions, export_bundle

    target_psnr = args.target_psnr if args.target_psnr is not None else (None if args.target_bits else 30.0)
    options = ExportOptions(bits=args.bits, chunks=args.chunks, targets=args.targets, granularity=args.granularity,
                            group_size=args.group_size, target_psnr=target_psnr, target_bits=args.target_bits,
                            quantization=args.quantize, attention=args.attention, sampler=args.sampler,
                            steps=args.steps)
    began = time.perf_counter()
    path = export_bundle(args.model, args.out, options, overwrite=args.force)
    print(f"wrote bundle {path} in {time.perf_counter() - began:.0f} s; check it with: tryon-lab verify {path}")
    return 0


def add_verify(subparsers) -> None:
    """Register ``verify``."""
    parser = command(
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
    parser.set_defaults(handler=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    """Verify the bundle and print its table; 1 if a check fails."""
    from tryon_lab.export.verify import verify_bundle

    report = verify_bundle(args.bundle, backend=args.backend)
    print(report.table())
    return 0 if report.passed else EXIT_FAILED
