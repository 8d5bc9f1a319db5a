"""The numerics check: every component on the golden inputs against the PyTorch outputs, on every
graded target (Core ML through the MIL executor, ExecuTorch through its runtime)."""

from __future__ import annotations

from typing import Any

from tryon_lab.export.contract import ComponentSpec
from tryon_lab.export.manifest import ComponentEntry
from tryon_lab.grading.checks.base import Context, Outcome, check, unread_packages, verdict
from tryon_lab.grading.checks.contract import expected_specs


@check("numerics", "Every component on the golden inputs against the PyTorch outputs (MIL executor, ExecuTorch)",
       needs=("contract",))
def check_numerics(context: Context) -> Outcome:
    """Run every component on every graded target on the golden inputs; fail where the outputs miss the bars."""
    manifest = context.need_manifest()
    settings = context.rubric.settings["numerics"]
    targets = [t for t in settings["targets"] if t in manifest.targets]
    if not targets:
        return Outcome(False, f"the manifest lists none of the targets {settings['targets']}")
    expected, _, _ = expected_specs(context, manifest)
    problems, rows = [], []
    for name, spec in expected.items():
        entry = manifest.components[name]  # the contract check passed, so every expected component is there
        try:
            inputs, outputs = context.reference.golden(name) if context.reference else _own_golden(context, entry)
        except Exception as err:  # a damaged golden file: safetensors and numpy raise many types
            problems.append(f"{name}: golden data unreadable ({type(err).__name__}: {context.relative(str(err))[:200]})")
            continue
        for target in targets:
            if target in entry.targets:
                row = _run_component(context, entry, spec or entry.spec, target, inputs, outputs)
                rows.append(row)
                if row["result"] != "ok":
                    problems.append(f"{name} ({target}): {row['result']}")
    if context.reference:
        return verdict(problems, f"{len(rows)} component runs agree with PyTorch on the reference bundle's golden data",
                       rows)
    outcome = verdict(problems, f"{len(rows)} component runs match the submission's own golden outputs (no reference "
                                "bundle to hold them against)", rows)
    outcome.unverified = True
    return outcome


def _own_golden(context: Context, entry: ComponentEntry):
    from tryon_lab.export.golden import load_arrays, split_component_arrays

    return split_component_arrays(load_arrays(context.root / entry.golden))


def _run_component(context: Context, entry: ComponentEntry, spec: ComponentSpec, target: str,
                   inputs: dict, outputs: dict) -> dict[str, Any]:
    """Run one component on one target; a row with its numbers, bar and ``result`` ("ok" or why not)."""
    from tryon_lab.export.verify import compare_outputs, coreml_runner

    settings = context.rubric.settings["numerics"]
    name = entry.spec.name
    row: dict[str, Any] = {"component": name, "target": target}
    try:
        if target == "coreml":
            packages = entry.coreml.packages
            unread = unread_packages(context, packages)
            if unread:
                return {**row, "result": f"not run: {unread}"}
            palettized = any(context.packages[p.path].palettized for p in packages)
            runner = coreml_runner(context.root, packages, "mil")
            context.runners[name] = runner
            psnr, error, relative = compare_outputs(runner, inputs, outputs)
            bar = settings["min_psnr_palettized"] if palettized else settings["min_psnr"]
            row.update(psnr=psnr, max_abs_error=error, relative_error=relative, bar=f">= {bar:g} dB")
            passed = psnr >= bar
        else:
            from tryon_lab.export.executorch import PteRunner

            runner = PteRunner(context.root / entry.executorch.path, spec)
            psnr, error, relative = compare_outputs(runner, inputs, outputs)
            if entry.executorch.quantization != "none":
                bar = settings["min_psnr_palettized"]
                row.update(psnr=psnr, max_abs_error=error, relative_error=relative, bar=f">= {bar:g} dB")
                passed = psnr >= bar
            else:
                bar = settings["executorch_max_relative_error"]
                row.update(psnr=psnr, max_abs_error=error, relative_error=relative, bar=f"rel <= {bar:g}")
                passed = relative <= bar
    except Exception as err:  # whatever a hostile program makes a kernel or runtime raise
        return {**row, "result": f"could not run ({type(err).__name__}: {context.relative(str(err))[:200]})"}
    return {**row, "result": "ok" if passed else f"misses the bar {row['bar']} (PSNR {psnr:.1f} dB, "
                                                  f"relative error {relative:.3g})"}
