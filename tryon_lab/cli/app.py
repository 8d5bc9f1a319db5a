"""``tryon-lab app``: serve the Fitting Room app."""

from __future__ import annotations

import argparse

from tryon_lab.cli.parsing import command, count


def add_app(subparsers) -> None:
    """Register ``app``."""
    parser = command(
        subparsers,
        "app",
        "Serve the Fitting Room app as a phone-shaped Voila page on 127.0.0.1 and print its address.",
        "  tryon-lab app                               # shipped model and data/ catalog, a free port\n"
        "  tryon-lab app --port 8866 --model build/garments/red-tee --catalog build/catalog\n"
        "  tryon-lab app --bundle build/bundle         # your exported phone model, run by ExecuTorch\n"
        "  tryon-lab app --garments build/garments     # DreamBooth LoRA garments in the gallery\n"
        "Open the printed address in a browser (a phone-width window looks like the phone app); Ctrl-C stops it.",
    )
    parser.add_argument("--port", type=count, default=0, help="port on 127.0.0.1 (default: a free one)")
    backend = parser.add_mutually_exclusive_group()
    backend.add_argument("--model", help="pipeline folder (default: the shipped mini-sd-inpaint)")
    backend.add_argument("--bundle", help="phone bundle from `tryon-lab export` with ExecuTorch programs, run by "
                                          "the ExecuTorch runtime instead of the PyTorch model")
    parser.add_argument("--catalog", help="catalog folder from `tryon-lab world render` (default: data/)")
    parser.add_argument("--garments", help="folder of LoRA garments from `tryon-lab dreambooth --lora-rank N`, "
                                           "shown as fine-tuned gallery entries (PyTorch model only)")
    parser.set_defaults(handler=run_app)


def run_app(args: argparse.Namespace) -> int:
    """Serve the app until interrupted (its inputs are checked first)."""
    from tryon_lab.app.page import serve

    serve(args.port, args.model, args.catalog, bundle=args.bundle, garments=args.garments)
    return 0
