"""The chunks check: how many pieces the chunked component is in, and the largest one's size on disk."""

from __future__ import annotations

from tryon_lab.export.bundle import folder_bytes
from tryon_lab.grading.checks.base import Context, Outcome, check, component_packages, verdict


@check("chunks", "The chunked component's pieces: how many, and the size of the largest on disk")
def check_chunks(context: Context) -> Outcome:
    """Count and measure the chunked component's packages on disk against the rubric and the manifest's claim."""
    settings = context.rubric.settings["chunks"]
    name = settings["component"]
    packages = component_packages(context.root / "coreml", name)
    if not packages:
        return Outcome(False, f"no {name} package to measure")
    sizes = {p.name: folder_bytes(p) for p in packages}
    problems = []
    if not settings["min_chunks"] <= len(packages) <= settings["max_chunks"]:
        pieces = "unchunked" if len(packages) == 1 else f"in {len(packages)} chunks"
        problems.append(f"{name} is {pieces}; the rubric wants {settings['min_chunks']} to {settings['max_chunks']} chunks")
    biggest = max(sizes, key=sizes.get)
    if sizes[biggest] > settings["max_chunk_bytes"]:
        problems.append(f"coreml/{biggest} is {sizes[biggest]} bytes; the rubric allows {settings['max_chunk_bytes']} "
                        "per chunk")
    entry = context.manifest.components.get(name) if context.manifest is not None else None
    if entry is not None:
        chunking = entry.coreml.chunking if entry.coreml is not None else None
        claimed = chunking.chunks if chunking is not None else 1
        if claimed != len(packages):
            problems.append(f"the manifest says {name} is in {claimed} chunks, the bundle has {len(packages)}")
    rows = [{"package": f"coreml/{n}", "bytes": b} for n, b in sizes.items()]
    return verdict(problems, f"{name}: {len(packages)} chunks, largest {sizes[biggest]} bytes", rows)
