"""Phone export: Core ML (fp16, palettized, chunked) and ExecuTorch, verified on any machine.

Modules, in the order an export uses them:

- ``contract``: the components (TextEncoder, Unet, VAEEncoder, VAEDecoder; ImageEncoder, HintEncoder
  for Diffuse to Choose) and their I/O;  ``conditioning``: what a model is conditioned on (a prompt
  or a reference image) and everything the export does differently for it;
- ``wrappers``: the nn.Modules that are traced;  ``golden``: fixed inputs and PyTorch outputs;
- ``coreml``: conversion with a measured fp16/fp32 choice;  ``palettize``: k-means palettes and
  DKM fine-tuning;  ``mixed_bits``: sensitivity and allocation;  ``chunking``: N balanced chunks;
- ``mil``: the Linux MIL executor;  ``executorch``: ``.pte`` programs;  ``runner``: the phone's loop;
- ``bundle``: writing the bundle;  ``manifest``: its manifest, parsed and validated once;
  ``verify``: checking a bundle;
- ``compare``: PSNR and error measures;  ``figures``: the chapter's plots;  ``errors``.
"""
