"""The try-on check: a whole try-on with the submission's Core ML components on the reference's golden inputs."""

from __future__ import annotations

from tryon_lab.grading.checks.base import (
    CORE_COMPONENTS,
    Context,
    Outcome,
    check,
    submission_conditioning,
    unread_packages,
)


@check("tryon", "A whole try-on on the reference's golden inputs: PSNR of the generated region", needs=("contract",))
def check_tryon(context: Context) -> Outcome:
    """Run a whole try-on with the submission's Core ML components on the reference's golden inputs; fail below the PSNR bar."""
    from tryon_lab.export.verify import coreml_runner, tryon_row

    if context.reference is None:
        return Outcome(True, "not run: no reference bundle (--reference) to compare a try-on with", unverified=True)
    needed = [name for name in context.reference.specs if name in (*submission_conditioning(context).components,
                                                                   *CORE_COMPONENTS, "HintEncoder")]
    manifest = context.need_manifest()
    runners = {}
    for name in needed:
        if name in context.runners:
            runners[name] = context.runners[name]
            continue
        entry = manifest.components.get(name)
        if entry is None or entry.coreml is None:
            return Outcome(False, f"{name}: the manifest lists no Core ML packages for it")
        unread = unread_packages(context, entry.coreml.packages)
        if unread:
            return Outcome(False, f"{name}: {unread}")
        try:
            runners[name] = coreml_runner(context.root, entry.coreml.packages, "mil")
        except Exception as err:
            return Outcome(False, f"{name}: cannot be loaded ({type(err).__name__}: {context.relative(str(err))[:200]})")
    bar = context.rubric.get("tryon", "min_psnr")
    try:
        row = tryon_row(context.reference.path, context.reference.manifest, "coreml", runners)
    except Exception as err:
        return Outcome(False, f"the try-on could not run ({type(err).__name__}: {context.relative(str(err))[:200]})")
    rows = [{"target": "coreml", "psnr": row.psnr, "max_abs_error": row.max_abs_error, "bar": f">= {bar:g} dB",
             "note": row.note}]
    if not row.psnr >= bar:
        return Outcome(False, f"the try-on's generated region is {row.psnr:.1f} dB from the reference's; the rubric "
                              f"wants >= {bar:g} dB", rows=rows)
    return Outcome(True, f"the try-on's generated region is {row.psnr:.1f} dB from the reference's (bar {bar:g} dB)",
                   rows=rows)
