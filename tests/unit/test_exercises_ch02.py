"""Chapter 02 exercises: right answers pass (including the package's own code: peft's LoRA layers and
the DreamBooth objective), typical mistakes fail with a message that says what is wrong, and no
message quotes the expected values."""

from __future__ import annotations

import re

import pytest
import torch

from tryon_lab.course.exercises import ExerciseError
from tryon_lab.course.exercises.ch02 import (
    dreambooth_loss_cases,
    exercise_dreambooth_loss,
    exercise_lora_linear,
    exercise_lora_parameter_count,
    lora_count_cases,
    lora_linear_cases,
)
from tryon_lab.training.dreambooth.objective import masked_noise_loss, prior_preservation_loss


def not_written(*args):
    raise NotImplementedError


def _fails_saying(check, wrong, says):
    with pytest.raises(ExerciseError) as info:
        check(wrong)
    message = str(info.value)
    assert says in message, message
    assert not re.search(r"(-?\d+\.\d+,\s*){3,}", message), message
    assert "tensor(" not in message and "array(" not in message, message


# --- exercise 1 -----------------------------------------------------------------------------------


def lora_linear(x, weight, bias, lora_A, lora_B, scale):
    return x @ weight.T + bias + scale * (x @ lora_A.T) @ lora_B.T


def lora_linear_with_peft(x, weight, bias, lora_A, lora_B, scale):
    """The package's own LoRA: a peft adapter on a torch Linear, scale = alpha / rank."""
    from peft import LoraConfig, inject_adapter_in_model

    rank = lora_A.shape[0]
    model = torch.nn.Sequential(torch.nn.Linear(weight.shape[1], weight.shape[0]))
    model = inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=scale * rank, target_modules=["0"]), model)
    layer = model[0]
    with torch.no_grad():
        layer.base_layer.weight.copy_(weight)
        layer.base_layer.bias.copy_(bias)
        layer.lora_A["default"].weight.copy_(lora_A)
        layer.lora_B["default"].weight.copy_(lora_B)
    return model(x).detach()


def without_scale(x, weight, bias, lora_A, lora_B, scale):
    return lora_linear(x, weight, bias, lora_A, lora_B, 1.0)


def scales_everything(x, weight, bias, lora_A, lora_B, scale):
    return scale * lora_linear(x, weight, bias, lora_A, lora_B, 1.0)


def no_bias(x, weight, bias, lora_A, lora_B, scale):
    return lora_linear(x, weight, torch.zeros_like(bias), lora_A, lora_B, scale)


def frozen_only(x, weight, bias, lora_A, lora_B, scale):
    return x @ weight.T + bias


def adapter_only(x, weight, bias, lora_A, lora_B, scale):
    return scale * (x @ lora_A.T) @ lora_B.T


def flattened(x, weight, bias, lora_A, lora_B, scale):
    return lora_linear(x.reshape(-1, x.shape[-1]), weight, bias, lora_A, lora_B, scale)


def test_lora_linear_right_answers_pass(capsys):
    assert exercise_lora_linear(lora_linear)
    assert "✓ lora_linear passed" in capsys.readouterr().out
    assert exercise_lora_linear(lora_linear_with_peft)


@pytest.mark.parametrize("wrong, says", [
    (without_scale, "not multiplied by `scale`"),
    (scales_everything, "only the adapter's part is scaled"),
    (no_bias, "bias is missing"),
    (frozen_only, "adapter's contribution is missing"),
    (adapter_only, "frozen layer's output is missing"),
    (flattened, "of shape"),
    (not_written, "not written yet"),
])
def test_lora_linear_mistakes_fail_with_a_reason(wrong, says):
    _fails_saying(exercise_lora_linear, wrong, says)


def test_lora_linear_cases_include_a_fresh_adapter_and_a_scale_other_than_one():
    cases = lora_linear_cases()
    assert any(not c.args[4].any() for c in cases)
    assert {c.args[5] for c in cases} - {1.0}
    assert any(c.args[0].ndim == 3 for c in cases)


# --- exercise 2 -----------------------------------------------------------------------------------


def lora_parameter_count(layer, rank):
    if isinstance(layer, torch.nn.Conv2d):
        return rank * layer.in_channels * layer.kernel_size[0] * layer.kernel_size[1] + rank * layer.out_channels
    if isinstance(layer, torch.nn.Linear):
        return rank * (layer.in_features + layer.out_features)
    raise TypeError(f"LoRA adapts Linear and Conv2d layers, not {type(layer).__name__}")


def count_with_peft(layer, rank):
    """The package's own LoRA: count what peft adds to the layer."""
    from peft import LoraConfig, inject_adapter_in_model

    if not isinstance(layer, (torch.nn.Linear, torch.nn.Conv2d)):
        raise TypeError("not adapted")
    model = inject_adapter_in_model(LoraConfig(r=rank, target_modules=["0"]), torch.nn.Sequential(layer))
    return sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)


def full_layer(layer, rank):
    lora_parameter_count(layer, rank)
    return sum(p.numel() for p in layer.parameters())


def ignores_kernel(layer, rank):
    lora_parameter_count(layer, rank)
    if isinstance(layer, torch.nn.Conv2d):
        return rank * (layer.in_channels + layer.out_channels)
    return lora_parameter_count(layer, rank)


def kernel_on_both(layer, rank):
    lora_parameter_count(layer, rank)
    if isinstance(layer, torch.nn.Conv2d):
        return rank * (layer.in_channels + layer.out_channels) * layer.kernel_size[0] * layer.kernel_size[1]
    return lora_parameter_count(layer, rank)


def with_bias(layer, rank):
    count = lora_parameter_count(layer, rank)
    return count + (layer.out_channels if isinstance(layer, torch.nn.Conv2d) else layer.out_features)


def returns_float(layer, rank):
    return float(lora_parameter_count(layer, rank))


def never_raises(layer, rank):
    if isinstance(layer, (torch.nn.Linear, torch.nn.Conv2d)):
        return lora_parameter_count(layer, rank)
    return 0


def test_lora_count_right_answers_pass():
    assert exercise_lora_parameter_count(lora_parameter_count)
    assert exercise_lora_parameter_count(count_with_peft)


@pytest.mark.parametrize("wrong, says", [
    (full_layer, "the layer's own weight"),
    (ignores_kernel, "too small"),
    (kernel_on_both, "too large"),
    (with_bias, "carry no bias"),
    (returns_float, "expected an int"),
    (never_raises, "should raise TypeError"),
    (not_written, "not written yet"),
    (42, "expected a function"),
])
def test_lora_count_mistakes_fail_with_a_reason(wrong, says):
    _fails_saying(exercise_lora_parameter_count, wrong, says)


def test_lora_count_cases_cover_linear_and_both_kernel_sizes():
    specs = [c.args[0] for c in lora_count_cases()]
    assert {s.kind for s in specs} == {"Linear", "Conv2d", "LayerNorm"}
    assert {s.kernel for s in specs if s.kind == "Conv2d"} == {1, 3}


# --- exercise 3 -----------------------------------------------------------------------------------


def dreambooth_loss(prediction, noise, mask, is_prior, prior_weight, outside_weight):
    error = ((prediction - noise) ** 2).mean(dim=1, keepdim=True)
    weight = mask + outside_weight * (1 - mask)
    per_sample = (error * weight).sum(dim=(1, 2, 3)) / weight.sum(dim=(1, 2, 3))
    loss = per_sample[~is_prior].mean()
    if is_prior.any():
        loss = loss + prior_weight * per_sample[is_prior].mean()
    return loss


def dreambooth_loss_package(prediction, noise, mask, is_prior, prior_weight, outside_weight):
    return prior_preservation_loss(masked_noise_loss(prediction, noise, mask, outside_weight), is_prior, prior_weight)[0]


def plain_mse(prediction, noise, mask, is_prior, prior_weight, outside_weight):
    return ((prediction - noise) ** 2).mean()


def unweighted(prediction, noise, mask, is_prior, prior_weight, outside_weight):
    return dreambooth_loss(prediction, noise, torch.ones_like(mask), is_prior, prior_weight, outside_weight)


def not_normalised(prediction, noise, mask, is_prior, prior_weight, outside_weight):
    error = ((prediction - noise) ** 2).mean(dim=1, keepdim=True)
    per_sample = (error * (mask + outside_weight * (1 - mask))).mean(dim=(1, 2, 3))
    return per_sample[~is_prior].mean() + (prior_weight * per_sample[is_prior].mean() if is_prior.any() else 0)


def pooled(prediction, noise, mask, is_prior, prior_weight, outside_weight):
    error = ((prediction - noise) ** 2).mean(dim=1, keepdim=True)
    weight = mask + outside_weight * (1 - mask)
    per_sample = (error * weight).sum(dim=(1, 2, 3)) / weight.sum(dim=(1, 2, 3))
    return (per_sample * torch.where(is_prior, prior_weight, 1.0)).mean()


def weight_ignored(prediction, noise, mask, is_prior, prior_weight, outside_weight):
    return dreambooth_loss(prediction, noise, mask, is_prior, 1.0, outside_weight)


def weight_on_instance(prediction, noise, mask, is_prior, prior_weight, outside_weight):
    per_sample = masked_noise_loss(prediction, noise, mask, outside_weight)
    prior = per_sample[is_prior].mean() if is_prior.any() else 0.0
    return prior_weight * per_sample[~is_prior].mean() + prior


def per_sample_vector(prediction, noise, mask, is_prior, prior_weight, outside_weight):
    return dreambooth_loss(prediction, noise, mask, is_prior, prior_weight, outside_weight).reshape(1)


def test_dreambooth_loss_right_answers_pass():
    assert exercise_dreambooth_loss(dreambooth_loss)
    assert exercise_dreambooth_loss(dreambooth_loss_package)


@pytest.mark.parametrize("wrong, says", [
    (plain_mse, "plain mean squared error"),
    (unweighted, "weights every latent cell alike"),
    (not_normalised, "divided by that sample's total weight"),
    (pooled, "each get their own mean"),
    (weight_ignored, "ignores prior_weight"),
    (weight_on_instance, "prior_weight multiplies the instance loss"),
    (per_sample_vector, "0-d tensor"),
    (not_written, "not written yet"),
])
def test_dreambooth_loss_mistakes_fail_with_a_reason(wrong, says):
    _fails_saying(exercise_dreambooth_loss, wrong, says)


def test_dreambooth_loss_cases_separate_pooled_from_separate_means():
    cases = dreambooth_loss_cases()
    counts = [(int((~c.args[3]).sum()), int(c.args[3].sum())) for c in cases]
    assert (2, 0) in counts and any(i != p and p > 0 for i, p in counts)
    assert any(not m.any() for c in cases for m in c.args[2])
    assert any(c.args[5] == 0.0 for c in cases)
