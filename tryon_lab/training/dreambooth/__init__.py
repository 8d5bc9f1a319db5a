"""DreamBooth for one garment (the Mobile Fitting Room recipe) on the inpainting model.

- ``instances``: what to learn: ``world_instances`` (a catalog item on 3-8 world people) or
  ``folder_instances`` (a user's photos with ``*_mask.png`` masks); ``class_images`` (the prior).
- ``token``: the identifier token added to the tokenizer, its embedding started at the class word's.
- ``objective``: the masked inpainting loss on instance + prior samples.
- ``train``: ``train_dreambooth`` (full U-Net or peft LoRA, under accelerate, resumable),
  ``save_dreambooth`` / ``load_dreambooth`` (a pipeline folder or a LoRA adapter folder).
- ``lora_files``: a LoRA garment's files in diffusers' layout (plain diffusers loads them with
  ``load_lora_weights`` and ``load_textual_inversion``), and reading LoRA folders into a pipeline.
- ``evaluate``: held-out people and masks, before/after, prior diversity, full versus LoRA,
  a gallery of LoRA garments.
- ``live``: a loss plot that redraws itself while training runs (notebook 02).
- ``figures``: the notebook's grids and tables of those results.
- ``recipe``: ``run_dreambooth`` (the ``tryon-lab dreambooth`` command), ``base_model_dir``.
Many garments on one base model: ``tryon_lab.training.adapters.GarmentAdapters``.
"""

from tryon_lab.training.dreambooth.instances import (
    InstanceSet,
    PairDataset,
    category_scenes,
    class_images,
    folder_instances,
    item_from_id,
    world_instances,
)
from tryon_lab.training.dreambooth.objective import DreamBoothObjective, masked_noise_loss, prior_preservation_loss
from tryon_lab.training.dreambooth.token import TokenVector, add_identifier_token, check_token, ensure_token
from tryon_lab.training.dreambooth.train import (
    DreamBoothResult,
    DreamBoothSettings,
    build_objective,
    folder_size,
    load_dreambooth,
    lora_config,
    read_record,
    run_name,
    save_dreambooth,
    train_dreambooth,
    trainable_parameters,
)

__all__ = [
    "DreamBoothObjective",
    "DreamBoothResult",
    "DreamBoothSettings",
    "InstanceSet",
    "PairDataset",
    "TokenVector",
    "add_identifier_token",
    "build_objective",
    "category_scenes",
    "check_token",
    "class_images",
    "ensure_token",
    "folder_instances",
    "folder_size",
    "item_from_id",
    "load_dreambooth",
    "lora_config",
    "masked_noise_loss",
    "prior_preservation_loss",
    "read_record",
    "run_name",
    "save_dreambooth",
    "train_dreambooth",
    "trainable_parameters",
    "world_instances",
]
