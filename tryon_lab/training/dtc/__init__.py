"""Recipe: train Diffuse to Choose on the world's try-all pairs, and the paper's ablation.

- ``variants``: the ablation's variant names (``baseline``, ``add``, ``film``, ``+t``, ``+perceptual``),
  checked before any work.
- ``cache``: the try-all pairs (shape or box mask) and their latent cache.
- ``objective``: ``DTCObjective``, the diffusion + perceptual loss of one step.
- ``unet_tuning``: which main-U-Net parameters train (frozen, LoRA or full; the same for every variant).
- ``train``: ``DTCSettings`` and ``train_dtc``, one resumable run.
- ``perceptual``: the perceptual network's self-supervised, label-free recipe.
- ``evaluation``: per-try-on scores, KID, intervals, paired comparisons, tables.
- ``ablation``: ``run_ablation``, every variant and seed trained and scored on val and test.
- ``cost``: what the hint encoder's timestep costs per sampling step.
"""

from tryon_lab.training.dtc.ablation import (
    AblationResult,
    AblationSettings,
    comparison_pairs,
    run_ablation,
    select_variant,
)
from tryon_lab.training.dtc.cache import (
    CACHE_FILE,
    DTCCache,
    ShapeOrBoxDTCDataset,
    build_dtc_cache,
    ensure_dtc_cache,
)
from tryon_lab.training.dtc.cost import hint_step_seconds
from tryon_lab.training.dtc.evaluation import (
    ablation_table,
    compare_variants,
    comparisons_table,
    dtc_method,
    factor_verdicts,
    score_tryons,
    summarize_variant,
)
from tryon_lab.training.dtc.objective import DTCObjective
from tryon_lab.training.dtc.perceptual import (
    ContrastiveObjective,
    PerceptualSettings,
    UnlabelledCropDataset,
    train_perceptual_net,
)
from tryon_lab.training.dtc.train import DTCSettings, train_dtc
from tryon_lab.training.dtc.unet_tuning import UNET_MODES, finish_unet, prepare_unet
from tryon_lab.training.dtc.variants import (
    Variant,
    parse_variant,
    parse_variants,
    valid_names,
)

__all__ = [
    "CACHE_FILE",
    "UNET_MODES",
    "AblationResult",
    "AblationSettings",
    "ContrastiveObjective",
    "DTCCache",
    "DTCObjective",
    "DTCSettings",
    "PerceptualSettings",
    "ShapeOrBoxDTCDataset",
    "UnlabelledCropDataset",
    "Variant",
    "ablation_table",
    "build_dtc_cache",
    "compare_variants",
    "comparison_pairs",
    "comparisons_table",
    "dtc_method",
    "factor_verdicts",
    "ensure_dtc_cache",
    "finish_unet",
    "hint_step_seconds",
    "parse_variant",
    "parse_variants",
    "prepare_unet",
    "run_ablation",
    "score_tryons",
    "select_variant",
    "summarize_variant",
    "train_dtc",
    "train_perceptual_net",
    "valid_names",
]
