"""``FastAutoencoderKL``: diffusers' ``AutoencoderKL`` whose encoder has widths of its own.

``AutoencoderKL`` gives its encoder and decoder the same ``block_out_channels``. A fast VAE for
inpainting does not want that: the decoder paints the result and its width is what the result's
quality costs, while the encoder only has to reproduce the base VAE's latent of the masked photo,
and at full resolution its first level (memory-bound GroupNorms and convolutions over 128 x 128
maps) is most of its time. This subclass builds the encoder from ``encoder_block_out_channels``;
everything else (encode, decode, slicing, tiling, saving) is ``AutoencoderKL``'s own. A config
without the key (any ``AutoencoderKL`` folder) loads as the symmetric model it was.
"""

from __future__ import annotations

from diffusers import AutoencoderKL
from diffusers.configuration_utils import register_to_config
from diffusers.models.autoencoders.vae import Encoder


class FastAutoencoderKL(AutoencoderKL):
    """``AutoencoderKL`` with the encoder's own ``encoder_block_out_channels`` (None: the decoder's
    ``block_out_channels``, as ``AutoencoderKL``). The other arguments are ``AutoencoderKL``'s."""

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        down_block_types: tuple[str, ...] = ("DownEncoderBlock2D",),
        up_block_types: tuple[str, ...] = ("UpDecoderBlock2D",),
        block_out_channels: tuple[int, ...] = (64,),
        layers_per_block: int = 1,
        act_fn: str = "silu",
        latent_channels: int = 4,
        norm_num_groups: int = 32,
        sample_size: int = 32,
        scaling_factor: float = 0.18215,
        shift_factor: float | None = None,
        latents_mean: tuple[float, ...] | None = None,
        latents_std: tuple[float, ...] | None = None,
        force_upcast: bool = True,
        use_quant_conv: bool = True,
        use_post_quant_conv: bool = True,
        mid_block_add_attention: bool = True,
        encoder_block_out_channels: tuple[int, ...] | None = None,
    ):
        super().__init__(
            in_channels=in_channels, out_channels=out_channels, down_block_types=down_block_types,
            up_block_types=up_block_types, block_out_channels=block_out_channels, layers_per_block=layers_per_block,
            act_fn=act_fn, latent_channels=latent_channels, norm_num_groups=norm_num_groups, sample_size=sample_size,
            scaling_factor=scaling_factor, shift_factor=shift_factor, latents_mean=latents_mean,
            latents_std=latents_std, force_upcast=force_upcast, use_quant_conv=use_quant_conv,
            use_post_quant_conv=use_post_quant_conv, mid_block_add_attention=mid_block_add_attention,
        )
        if encoder_block_out_channels is not None:
            if len(encoder_block_out_channels) != len(block_out_channels):
                raise ValueError(f"encoder_block_out_channels {list(encoder_block_out_channels)} needs "
                                 f"{len(block_out_channels)} levels, as block_out_channels has (the downsampling)")
            self.encoder = Encoder(
                in_channels=in_channels, out_channels=latent_channels, down_block_types=down_block_types,
                block_out_channels=encoder_block_out_channels, layers_per_block=layers_per_block, act_fn=act_fn,
                norm_num_groups=norm_num_groups, double_z=True, mid_block_add_attention=mid_block_add_attention,
            )
