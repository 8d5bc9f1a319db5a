"""The ablation's variant names: a fusion (``baseline`` = no hint, ``add``, ``film``), then
optionally ``+t`` (the hint encoder takes the timestep) and ``+perceptual`` (the perceptual loss),
in that order: ``film``, ``film+t``, ``add+perceptual``, ``film+t+perceptual``. ``baseline+t`` does
not exist (the baseline has no hint encoder). Names are checked before any work starts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tryon_lab.errors import ConfigError

FUSION_NAMES: dict[str, str | None] = {"baseline": None, "add": "add", "film": "film"}
TIMESTEP, PERCEPTUAL = "t", "perceptual"


@dataclass(frozen=True)
class Variant:
    """One ablation variant: its hint fusion (None: the Paint-by-Example-style baseline), whether
    its hint encoder takes the timestep and whether it trains with the perceptual loss."""

    fusion: str | None
    hint_timestep: bool = False
    perceptual: bool = False

    @property
    def name(self) -> str:
        """The variant's name, e.g. ``film+t+perceptual``."""
        head = next(k for k, v in FUSION_NAMES.items() if v == self.fusion)
        return "+".join([head] + [TIMESTEP] * self.hint_timestep + [PERCEPTUAL] * self.perceptual)

    def differs_in_one_factor(self, other: Variant) -> bool:
        """Whether ``other`` differs from this variant in exactly one of fusion, timestep, perceptual loss."""
        return sum(getattr(self, f) != getattr(other, f) for f in ("fusion", "hint_timestep", "perceptual")) == 1


def valid_names() -> list[str]:
    """Every variant name, in a fixed order."""
    names = []
    for fusion in FUSION_NAMES.values():
        for timestep in (False, True) if fusion is not None else (False,):
            names += [Variant(fusion, timestep, False).name, Variant(fusion, timestep, True).name]
    return names


def parse_variant(name: str) -> Variant:
    """The Variant called ``name``; ``ConfigError`` listing the valid names otherwise."""
    head, *modifiers = str(name).split("+")
    variant = None
    if head in FUSION_NAMES and modifiers in ([], [TIMESTEP], [PERCEPTUAL], [TIMESTEP, PERCEPTUAL]):
        variant = Variant(FUSION_NAMES[head], TIMESTEP in modifiers, PERCEPTUAL in modifiers)
    if variant is None or variant.name != name:
        raise ConfigError(f"unknown DTC variant {name!r}; valid variants: {', '.join(valid_names())}")
    return variant


def parse_variants(names: Iterable[str]) -> dict[str, Variant]:
    """{name: Variant} for every name (order kept, duplicates dropped); ``ConfigError`` naming every
    unknown one, with the valid names."""
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if n not in valid_names()]
    if unknown:
        raise ConfigError(f"unknown DTC variant{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                          f"valid variants: {', '.join(valid_names())}")
    if not names:
        raise ConfigError("no DTC variants given")
    return {n: parse_variant(n) for n in names}
