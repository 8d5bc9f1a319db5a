"""What a model's VAE lets through (notebook 03), said against the course's identity bar: the judge's
identity accuracy on ground-truth renderings as drawn and after the VAE encodes and decodes them
(``metrics.baselines.decoder_ceiling``). Every latent model paints through its decoder, so the round
trip's score is where its identity accuracy is expected to stop."""

from __future__ import annotations

from tryon_lab.models.config import load_model_config
from tryon_lab.training.dtc.curve import BARS


def ceiling_note(ceiling: dict) -> str:
    """A Markdown sentence on ``decoder_ceiling``'s result, against the course's identity bar."""
    bar, trip = BARS["identity_acc"], ceiling["round_trip"]
    verdict = ("so this decoder, not the U-Net's training, keeps identity under the bar" if trip.hi < bar else
               "so the decoder leaves room to reach the bar")
    return (f"On {ceiling['samples']} {ceiling['split']} renderings the judge finds the right motif in "
            f"**{ceiling['truth']}** of the pictures as drawn, and in **{trip}** after this model's VAE has "
            f"encoded and decoded them (chance {ceiling['chance']:.2f}, the bar {bar:.2f}): {verdict}.")


def latent_budget(config_names: tuple[str, ...] = ("mini", "mini16", "sd15")) -> list[list]:
    """One row per model config: name, picture size, latent shape (C x h x w), numbers in the latent,
    and how many picture numbers (H x W x 3) share one latent number (computed from the configs)."""
    rows = []
    for name in config_names:
        config = load_model_config(name)
        channels, side = config.vae["latent_channels"], config.latent_size
        pixels = config.resolution ** 2 * 3
        rows.append([name, f"{config.resolution}x{config.resolution}", f"{channels}x{side}x{side}",
                     channels * side * side, round(pixels / (channels * side * side), 1)])
    return rows
