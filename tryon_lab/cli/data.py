"""``tryon-lab world``: the synthetic world's data on disk."""

from __future__ import annotations

import argparse

from tryon_lab.cli.parsing import command, count, folder_out


def add_world(subparsers) -> None:
    """Register ``world`` and its action ``render``."""
    parser = command(
        subparsers,
        "world",
        "The synthetic world: people, garments, rooms and products with ground truth.",
        "  tryon-lab world render --out build/catalog\n"
        "  tryon-lab world render --out build/tiny-world --garments 4 --products 2 --scenes 1 --resolution 64",
    )
    actions = parser.add_subparsers(title="actions", metavar="<action>", required=True)
    render = command(
        actions,
        "render",
        "Render a deterministic catalog of garments, products and scenes to a folder.",
        "  tryon-lab world render --out build/catalog --seed 1",
    )
    render.add_argument("--out", type=folder_out, required=True, help="folder to write the catalog to")
    render.add_argument("--seed", type=int, default=0, help="world seed (default: %(default)s)")
    render.add_argument("--resolution", type=int, default=128, help="image side in pixels (default: %(default)s)")
    render.add_argument("--garments", type=count, default=24, help="garment items (default: %(default)s)")
    render.add_argument("--products", type=count, default=16, help="try-all products (default: %(default)s)")
    render.add_argument(
        "--scenes", type=count, default=8, help="scenes, alternately people and rooms (default: %(default)s)"
    )
    render.set_defaults(handler=run_world_render)


def run_world_render(args: argparse.Namespace) -> int:
    """Write a catalog of the world to ``--out``."""
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
