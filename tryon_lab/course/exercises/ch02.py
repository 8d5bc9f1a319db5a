"""Chapter 02 exercises: a LoRA layer's output, what an adapter costs, and the DreamBooth loss.

1. ``lora_linear(x, weight, bias, lora_A, lora_B, scale)``: a frozen ``Linear`` (weight (out, in),
   bias (out,)) with a rank-r adapter (lora_A (r, in), lora_B (out, r)) -> its output for inputs
   x (..., in): the frozen layer's output plus ``scale`` times the adapter's.
2. ``lora_parameter_count(layer, rank)``: how many parameters peft's LoRA adds to an
   ``nn.Linear`` or ``nn.Conv2d`` at ``rank`` (an int); other layers raise ``TypeError``.
3. ``dreambooth_loss(prediction, noise, mask, is_prior, prior_weight, outside_weight)``: the
   training loss of notebook 02 for a batch of instance and class samples (a 0-d tensor).

Judges compare with the right answer internally and recognise the usual mistakes, but describe
only what is wrong (which part, how large an error, which input), never the expected values.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from tryon_lab.course.exercises.core import Case, describe, run_exercise
from tryon_lab.course.exercises.tensors import as_torch, tensor_problem

LORA_LINEAR = "lora_linear"
LORA_COUNT = "lora_parameter_count"
DREAMBOOTH_LOSS = "dreambooth_loss"
_RTOL = 1e-4


def _close(result: torch.Tensor, expected: np.ndarray) -> bool:
    got = result.detach().double().numpy()
    return bool(np.allclose(got, expected, rtol=_RTOL, atol=1e-6))


def _error(result: torch.Tensor, expected: np.ndarray) -> float:
    return float(np.abs(result.detach().double().numpy() - expected).max())


# --- exercise 1: a LoRA linear layer ----------------------------------------------------------------


def exercise_lora_linear(fn) -> bool:
    """Test the student's ``lora_linear(x, weight, bias, lora_A, lora_B, scale)`` on fixed layers
    and adapters; return True (printing "✓ ... passed") or raise ``ExerciseError``."""
    __tracebackhide__ = True
    return run_exercise(LORA_LINEAR, as_torch(fn), lora_linear_cases(), judge_lora_linear)


@lru_cache(maxsize=1)
def lora_linear_cases() -> tuple[Case, ...]:
    """Fixed inputs: a fresh adapter (lora_B zero, as peft starts it), trained adapters of rank 4
    and 1 at scales 1, 2 and 0.5, and a batch of token sequences (B, T, in)."""
    rng = np.random.default_rng(21)

    def layer(n_in, n_out, rank, fresh=False):
        weight = (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)
        bias = (0.5 * rng.standard_normal(n_out) + 1.0).astype(np.float32)
        lora_a = (rng.standard_normal((rank, n_in)) / np.sqrt(n_in)).astype(np.float32)
        lora_b = np.zeros((n_out, rank), np.float32) if fresh else (0.7 * rng.standard_normal((n_out, rank))).astype(np.float32)
        return weight, bias, lora_a, lora_b

    def inputs(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    return (
        Case("a fresh rank-4 adapter (lora_B all zeros) on a 16 -> 24 layer", (inputs(3, 16), *layer(16, 24, 4, True), 1.0)),
        Case("a trained rank-4 adapter on a 16 -> 24 layer at scale 1", (inputs(3, 16), *layer(16, 24, 4), 1.0)),
        Case("a trained rank-4 adapter at scale 2 (alpha = 2 x rank)", (inputs(3, 16), *layer(16, 24, 4), 2.0)),
        Case("a rank-1 adapter on a 32 -> 8 layer at scale 0.5", (inputs(5, 32), *layer(32, 8, 1), 0.5)),
        Case("a batch of 2 token sequences of length 5, shape (2, 5, 16)", (inputs(2, 5, 16), *layer(16, 12, 4), 1.0)),
    )


def _lora_parts(x, weight, bias, lora_a, lora_b):
    x = x.astype(np.float64)
    frozen = x @ weight.T.astype(np.float64)
    adapter = (x @ lora_a.T.astype(np.float64)) @ lora_b.T.astype(np.float64)
    return frozen, bias.astype(np.float64), adapter


def judge_lora_linear(result, case: Case) -> str | None:
    """Return what is wrong with ``result`` as the adapted layer's output for ``case``, or None."""
    x, weight, bias, lora_a, lora_b, scale = case.args
    problem = tensor_problem(result, (*x.shape[:-1], weight.shape[0]),
                              "one output row per input row, with the layer's output width")
    if problem:
        return problem
    frozen, b, adapter = _lora_parts(x, weight, bias, lora_a, lora_b)
    if _close(result, frozen + b + scale * adapter):
        return None
    mistakes: list[tuple[np.ndarray, str]] = [
        (frozen + b, "your output is the frozen layer's alone; the adapter's contribution is missing"),
        (frozen + b + adapter, "the adapter's contribution is not multiplied by `scale`"),
        (scale * (frozen + b + adapter), "you scaled the frozen layer's output too; only the adapter's part is scaled"),
        (frozen + scale * adapter, "the frozen layer's bias is missing"),
        (b + scale * adapter, "the frozen layer's own product x·Wᵀ is missing"),
        (scale * adapter, "your output is the adapter's contribution alone; the frozen layer's output is missing"),
    ]
    for wrong, message in mistakes:
        if scale == 1.0 and "scale" in message:
            continue  # at scale 1 these look like the right answer
        if _close(result, wrong):
            return message
    return f"your output is off by up to {_error(result, frozen + b + scale * adapter):.3g}"


# --- exercise 2: what an adapter costs ------------------------------------------------------------


def exercise_lora_parameter_count(fn) -> bool:
    """Test the student's ``lora_parameter_count(layer, rank)`` on fixed Linear and Conv2d layers;
    return True (printing "✓ ... passed") or raise ``ExerciseError``."""
    __tracebackhide__ = True
    if not callable(fn):
        return run_exercise(LORA_COUNT, fn, (), judge_lora_count)  # reports "expected a function"

    def call(spec: LayerSpec, rank: int):
        __tracebackhide__ = True
        return fn(spec.build(), rank)

    return run_exercise(LORA_COUNT, call, lora_count_cases(), judge_lora_count)


@dataclass(frozen=True)
class LayerSpec:
    """A layer to build fresh for each call (modules compare by identity, specs by value)."""

    kind: str
    n_in: int
    n_out: int = 0
    kernel: int = 1
    bias: bool = True

    def build(self) -> torch.nn.Module:
        """The torch layer this spec describes."""
        torch.manual_seed(0)
        if self.kind == "Linear":
            return torch.nn.Linear(self.n_in, self.n_out, bias=self.bias)
        if self.kind == "Conv2d":
            return torch.nn.Conv2d(self.n_in, self.n_out, self.kernel, padding=self.kernel // 2, bias=self.bias)
        return torch.nn.LayerNorm(self.n_in)


def lora_count_cases() -> tuple[Case, ...]:
    """Fixed layers: attention-sized and feed-forward Linear layers (with and without bias), 3x3 and
    1x1 Conv2d layers as in the U-Net's resnets, and a LayerNorm (which must raise TypeError)."""
    return (
        Case("a Linear(128, 128) (an attention projection) at rank 8", (LayerSpec("Linear", 128, 128), 8)),
        Case("a Linear(128, 512, bias=False) at rank 4", (LayerSpec("Linear", 128, 512, bias=False), 4)),
        Case("a Linear(256, 64) at rank 16", (LayerSpec("Linear", 256, 64), 16)),
        Case("a 3x3 Conv2d(64, 128) (a resnet convolution) at rank 8", (LayerSpec("Conv2d", 64, 128, 3), 8)),
        Case("a 1x1 Conv2d(192, 96) (a shortcut) at rank 4", (LayerSpec("Conv2d", 192, 96, 1), 4)),
        Case("a 3x3 Conv2d(32, 32) at rank 1", (LayerSpec("Conv2d", 32, 32, 3), 1)),
        Case("a LayerNorm(128), which LoRA does not adapt here", (LayerSpec("LayerNorm", 128), 8), raises=TypeError),
    )


def lora_count_reference(spec: LayerSpec, rank: int) -> int:
    """The count the judge expects, for tests and the judge only."""
    if spec.kind == "Conv2d":
        return rank * spec.n_in * spec.kernel**2 + spec.n_out * rank
    return rank * (spec.n_in + spec.n_out)


def judge_lora_count(result, case: Case) -> str | None:
    """Return what is wrong with ``result`` as the adapter size for ``case``'s layer, or None."""
    spec, rank = case.args
    if isinstance(result, bool) or not isinstance(result, numbers.Integral):
        return f"expected an int (a number of parameters), got {describe(result)}"
    expected = lora_count_reference(spec, rank)
    if result == expected:
        return None
    conv, n_in, n_out, k = spec.kind == "Conv2d", spec.n_in, spec.n_out, spec.kernel**2
    own = sum(p.numel() for p in spec.build().parameters())
    if result in (own, n_in * n_out * k):
        return "that is the size of the layer's own weight, which stays frozen; count only the adapter's two matrices"
    if result in (expected + n_out, expected + n_out + rank):
        return "LoRA's two matrices carry no bias"
    if conv and result == rank * (n_in + n_out):
        return ("on a convolution with a kernel larger than 1x1 your count is too small: the down-projection A of "
                "a Conv2d adapter is itself a convolution with the adapted layer's kernel")
    if conv and result == rank * (n_in + n_out) * k:
        return ("on a convolution your count is too large: peft's up-projection B mixes channels only, "
                "at each position")
    if rank > 1 and result in (rank * expected, expected // rank):
        return "your count does not grow linearly with the rank"
    direction = "too large" if result > expected else "too small"
    return f"your count is {direction} by {abs(result - expected):,} parameters"


# --- exercise 3: the DreamBooth loss --------------------------------------------------------------


def exercise_dreambooth_loss(fn) -> bool:
    """Test the student's ``dreambooth_loss(prediction, noise, mask, is_prior, prior_weight,
    outside_weight)`` on fixed batches; return True (printing "✓ ... passed") or raise ``ExerciseError``."""
    __tracebackhide__ = True
    return run_exercise(DREAMBOOTH_LOSS, as_torch(fn), dreambooth_loss_cases(), judge_dreambooth_loss)


@lru_cache(maxsize=1)
def dreambooth_loss_cases() -> tuple[Case, ...]:
    """Fixed batches: one instance and one class sample; instance samples only; one instance and
    three class samples (so separate means differ from one pooled mean); masks of very different
    sizes; outside_weight 0; and an empty mask on a class sample."""
    rng = np.random.default_rng(22)

    def batch(masks, prior):
        b = len(masks)
        noise = rng.standard_normal((b, 4, 8, 8)).astype(np.float32)
        inside = np.stack([m[None] for m in masks]).astype(np.float32)
        # errors larger inside the masks than outside, as after training on the instance photos
        prediction = (noise + rng.standard_normal((b, 4, 8, 8)) * (0.2 + 0.8 * inside)).astype(np.float32)
        return prediction, noise, inside, np.asarray(prior, dtype=bool)

    def box(top, left, bottom, right):
        m = np.zeros((8, 8), np.float32)
        m[top:bottom, left:right] = 1
        return m

    small, large, empty = box(3, 3, 5, 5), box(1, 1, 7, 7), np.zeros((8, 8), np.float32)
    return (
        Case("one instance and one class sample, prior_weight 1", (*batch([large, large], [False, True]), 1.0, 0.1)),
        Case("two instance samples and no class samples", (*batch([large, box(2, 2, 6, 5)], [False, False]), 1.0, 0.1)),
        Case("one instance and three class samples, prior_weight 0.5",
             (*batch([large, box(0, 0, 4, 8), small, large], [False, True, True, True]), 0.5, 0.1)),
        Case("a 2x2-cell mask next to a 6x6-cell mask, prior_weight 2",
             (*batch([small, large, large], [False, False, True]), 2.0, 0.1)),
        Case("outside_weight 0 (only masked cells count)", (*batch([small, large], [False, True]), 1.0, 0.0)),
        Case("an empty mask on a class sample", (*batch([large, empty], [False, True]), 1.0, 0.1)),
    )


def _per_sample(prediction, noise, mask, outside_weight, weighted=True, normalise=True, reduce=np.mean):
    error = reduce((prediction.astype(np.float64) - noise) ** 2, axis=1, keepdims=True)
    weight = mask + outside_weight * (1.0 - mask) if weighted else np.ones_like(mask, dtype=np.float64)
    total = (error * weight).sum(axis=(1, 2, 3))
    return total / np.maximum(weight.sum(axis=(1, 2, 3)), 1e-8) if normalise else total / weight[0].size


def _combine(losses, is_prior, prior_weight):
    instance = losses[~is_prior].mean()
    return instance + prior_weight * losses[is_prior].mean() if is_prior.any() else instance


def dreambooth_loss_reference(prediction, noise, mask, is_prior, prior_weight, outside_weight) -> float:
    """The loss the judge expects (float64 numpy), for tests and the judge only."""
    return float(_combine(_per_sample(prediction, noise, mask, outside_weight), is_prior, prior_weight))


def _mistakes(prediction, noise, mask, is_prior, prior_weight, outside_weight) -> list[tuple[float, str]]:
    per_sample = _per_sample(prediction, noise, mask, outside_weight)
    pooled_weights = np.where(is_prior, prior_weight, 1.0)
    alternatives: list[tuple[Callable[[], float], str]] = [
        (lambda: float(((prediction.astype(np.float64) - noise) ** 2).mean()),
         "your loss is the plain mean squared error over the whole batch; it ignores the mask and the class samples"),
        (lambda: _combine(_per_sample(prediction, noise, mask, outside_weight, weighted=False), is_prior, prior_weight),
         "your loss weights every latent cell alike; cells outside the mask should count `outside_weight` times"),
        (lambda: _combine(_per_sample(prediction, noise, mask, outside_weight, normalise=False), is_prior, prior_weight),
         "each sample's weighted error should be divided by that sample's total weight, so that a small mask "
         "counts as much as a large one"),
        (lambda: _combine(_per_sample(prediction, noise, mask, outside_weight, reduce=np.sum), is_prior, prior_weight),
         "you sum the squared error over the latent channels; average it instead, as the pipeline's MSE does"),
        (lambda: float((per_sample * pooled_weights).mean()),
         "you average all samples together; the instance samples and the class samples should each get their "
         "own mean before they are combined"),
        (lambda: float(per_sample.mean()),
         "your loss treats class samples like instance samples (one mean, no prior_weight)"),
        (lambda: _combine(per_sample, is_prior, 1.0), "your loss ignores prior_weight"),
        (lambda: float(prior_weight * per_sample[~is_prior].mean() + per_sample[is_prior].mean()),
         "prior_weight multiplies the instance loss; it belongs to the class (prior) samples"),
        (lambda: float(per_sample[~is_prior].mean()), "your loss leaves out the class (prior) samples"),
    ]
    found = []
    for compute, message in alternatives:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # the mean of no class samples is NaN: skipped
            value = compute()
        if np.isfinite(value):
            found.append((value, message))
    return found


def judge_dreambooth_loss(result, case: Case) -> str | None:
    """Return what is wrong with ``result`` as the loss of ``case``'s batch, or None."""
    if isinstance(result, torch.Tensor) and result.numel() == 1 and result.dim() > 0:
        return f"expected a 0-d tensor (one number for the batch), got shape {tuple(result.shape)}; reduce it"
    problem = tensor_problem(result, (), "a 0-d tensor (one number for the batch)")
    if problem:
        return problem
    expected = dreambooth_loss_reference(*case.args)
    got = float(result.detach().double())
    if np.isclose(got, expected, rtol=_RTOL, atol=1e-7):
        return None
    for wrong, message in _mistakes(*case.args):
        if not np.isclose(wrong, expected, rtol=_RTOL) and np.isclose(got, wrong, rtol=_RTOL, atol=1e-7):
            return message
    relative = abs(got - expected) / max(abs(expected), 1e-12)
    return f"your loss is {'too large' if got > expected else 'too small'} by {100 * relative:.1f}%"
