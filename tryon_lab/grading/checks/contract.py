"""The contract check: component and tensor names, shapes and dtypes against the contract or the
reference bundle, and against what the programs themselves declare."""

from __future__ import annotations

import math
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from tryon_lab.export.conditioning import TEXT
from tryon_lab.export.contract import ComponentSpec, TensorSpec, pipeline_components
from tryon_lab.export.errors import BundleError
from tryon_lab.export.manifest import Manifest, Package
from tryon_lab.export.verify import manifest_scheduler
from tryon_lab.grading.checks.base import Context, Outcome, check, expected_components, verdict


def contract_specs(manifest: Manifest) -> dict[str, ComponentSpec]:
    """The specs ``tryon_lab.export.contract`` gives a text pipeline of the sizes ``manifest`` declares.

    The contract's builders read sizes from a pipeline; a stand-in carrying the manifest's runtime
    sizes (resolution, latent size, token length, U-Net channels) and the widths it declares lets
    them state exactly what such a bundle must look like. The text width and latent channels are
    taken once (from the TextEncoder and VAEEncoder) and imposed on the U-Net, so the components
    must agree with each other too. A reference-conditioned (DTC) bundle's specs depend on its
    networks (the hint maps are measured), so they are checked against a reference bundle only:
    ``BundleError`` here.
    """
    if manifest.conditioning is not TEXT:
        raise BundleError("a reference-conditioned (DTC) bundle's contract can only be checked against a "
                          "reference bundle (--reference)")
    runtime = manifest.runtime

    def width(component: str, side: str, tensor: str, axis: int) -> int:
        entry = manifest.components.get(component)
        shapes = [t.shape for t in getattr(entry.spec, side) if t.name == tensor] if entry else []
        return shapes[0][axis] if shapes and len(shapes[0]) > axis else 1  # missing or malformed: reported on its own

    hidden = width("TextEncoder", "outputs", "last_hidden_state", 2)
    latent_channels = width("VAEEncoder", "outputs", "latent", 1)
    ns = SimpleNamespace
    # the manifest's own scheduler: an LCM bundle's U-Net runs one row, a guided one two
    pipe = ns(scheduler=manifest_scheduler(manifest.scheduler),
              resolution=runtime.resolution, vae_scale_factor=runtime.vae_scale_factor,
              tokenizer=ns(model_max_length=runtime.token_length), text_encoder=ns(config=ns(hidden_size=hidden)),
              unet=ns(config=ns(sample_size=runtime.latent_size, in_channels=len(runtime.unet_channels),
                                out_channels=latent_channels, cross_attention_dim=hidden)),
              vae=ns(config=ns(latent_channels=latent_channels, scaling_factor=1.0)))
    return {name: component.spec for name, component in pipeline_components(pipe).items()}


def spec_differences(got: ComponentSpec, expected: ComponentSpec, against: str) -> list[str]:
    """How ``got`` differs from ``expected`` (names and order, shapes, dtypes), worded against ``against``."""
    problems = []
    for side in ("inputs", "outputs"):
        mine, theirs = getattr(got, side), getattr(expected, side)
        if [t.name for t in mine] != [t.name for t in theirs]:
            problems.append(f"{got.name} {side} are {[t.name for t in mine]}, {against} has {[t.name for t in theirs]}")
        named = {t.name: t for t in mine}
        for tensor in theirs:
            other = named.get(tensor.name)
            if other is not None and (other.shape, other.dtype) != (tensor.shape, tensor.dtype):
                problems.append(f"{got.name}.{tensor.name} is {list(other.shape)} {other.dtype}, {against} has "
                                f"{list(tensor.shape)} {tensor.dtype}")
    return problems


@check("contract", "Component names, input and output names, shapes and dtypes: the contract, the reference, the programs")
def check_contract(context: Context) -> Outcome:
    """Compare the manifest's component specs with the expected ones, and the programs' own inputs and outputs with both."""
    manifest = context.need_manifest()
    components = manifest.components
    expected, against, notes = expected_specs(context, manifest)
    problems = [f"component {name} is missing from the manifest" for name in expected if name not in components]
    if context.reference:
        theirs = context.reference.manifest
        problems += [f"component {name} is not in the reference bundle" for name in components if name not in expected]
        problems += _section_differences("runtime", manifest.runtime.to_json(), theirs.runtime.to_json(), _prose)
        problems += _section_differences("scheduler", manifest.scheduler, theirs.scheduler,
                                         lambda key, value: key == "_diffusers_version")
    for name, spec in expected.items():
        if name not in components:
            continue
        declared = components[name].spec
        if spec is not None:
            problems += spec_differences(declared, spec, against)
        if components[name].coreml is not None:
            try:
                problems += _program_differences(context, declared, components[name].coreml.packages)
            except BundleError as err:  # a program declaring a tensor no contract allows
                problems.append(f"component {name}: {err}")
    outcome = verdict(problems, f"{len(expected)} components match {against} and their programs")
    outcome.details = outcome.details or notes
    outcome.unverified = any(spec is None for spec in expected.values())
    return outcome


def expected_specs(context: Context, manifest: Manifest) -> tuple[dict[str, ComponentSpec | None], str, list[str]]:
    """({component: the spec it must have, or None where only its programs can be compared}, what the
    specs come from, notes)."""
    if context.reference:
        return dict(context.reference.specs), "the reference bundle", []
    if manifest.conditioning is TEXT:
        return dict(contract_specs(manifest)), "the contract", []
    return ({name: None for name in expected_components(context)}, "the manifest",
            ["no reference bundle: a DTC bundle's programs are compared with its own manifest only"])


def _prose(key: str, value: Any) -> bool:
    return isinstance(value, str) and key != "conditioning"  # runtime notes for people, e.g. latent_mask


def _section_differences(section: str, mine: dict[str, Any], theirs: dict[str, Any],
                         ignore: Callable[[str, Any], bool]) -> list[str]:
    """Entries of manifest section ``section`` that differ from the reference's (floats to 1e-6; entries
    for which ``ignore(key, value)`` holds are not compared)."""
    problems = []
    for key, value in theirs.items():
        if ignore(key, value):
            continue
        other = mine.get(key)
        if isinstance(value, float) and not isinstance(other, bool) and isinstance(other, (int, float)):
            same = math.isclose(other, value, rel_tol=1e-6)
        else:
            same = other == value
        if not same:
            problems.append(f"{section}.{key} is {other!r:.60}, the reference bundle has {value!r:.60}")
    return problems


def _program_differences(context: Context, spec: ComponentSpec, packages: tuple[Package, ...]) -> list[str]:
    """What the programs themselves declare against the manifest's package entries and ``spec``."""
    problems, produced = [], {}
    inputs = {t.name: t for t in spec.inputs}
    for index, package in enumerate(packages):
        loaded = context.packages.get(package.path)
        if loaded is None:
            problems.append(f"{package.path}: no readable package at that path (see programs)")
            return problems
        for side, listed in package.io().items():
            if listed != loaded.io[side]:
                problems.append(f"{package.path}: the manifest lists {side} {_shapes(listed)}, the program declares "
                                f"{_shapes(loaded.io[side])}")
        for entry in loaded.io["inputs"]:
            tensor = TensorSpec.from_json(entry)
            known = produced.get(tensor.name) or inputs.get(tensor.name)
            if known is None or known.shape != tensor.shape:
                where = "the previous chunk" if index else "the component"
                problems.append(f"{package.path}: input {tensor.name} {list(tensor.shape)} is not an output of {where} "
                                "of that shape")
        produced = {t.name: t for t in map(TensorSpec.from_json, loaded.io["outputs"])}
    for tensor in spec.outputs:
        if tensor.name not in produced or (produced[tensor.name].shape, produced[tensor.name].dtype) != \
                (tensor.shape, tensor.dtype):
            problems.append(f"{spec.name}: its last program does not output {tensor.name} {list(tensor.shape)} {tensor.dtype}")
    return problems


def _shapes(entries: list[dict[str, Any]]) -> str:
    return ", ".join(f"{e['name']} {e['shape']} {e['dtype']}" for e in entries)
