"""Notebook 01's look inside latent inpainting, one subject per module: which pipeline (``models``), the
VAE's latents, the noise schedule, the U-Net's input, the sampling loop's inputs, step previews,
samplers compared, paste-back. Each runs the real ``TryOnInpaintPipeline``, so what the notebook shows
is what the try-on does; any pipeline folder works (the tiny random one, the shipped mini model, SD-1.5).
"""
