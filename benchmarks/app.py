"""Issue-7 bars, measured in a real browser on the phone page (`tryon-lab app` in Voila):
stroke-to-kernel latency (bar: 200 ms) and click-to-first-preview (bar: 1 s on the shipped model);
then the two back ends side by side, driven from Python: the PyTorch model and its exported
ExecuTorch programs (``tryon-lab app --bundle``), first preview and result of the same try-on.

Runs the shipped mini model when it is there, else a tiny random model (then the preview time
says nothing about the bar and the note says so). Needs Debian's chromium.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from tryon_lab.app.browser import PHONE_VIEWPORT, AppPage, app_server, chromium, launch
from tryon_lab.app.result import INSTANT
from tryon_lab.errors import ConfigError
from tryon_lab.paths import shipped_model
from tryon_lab.pipelines.samplers import LCM_FOLDER, SAMPLERS

MODELS = ("mini-sd-inpaint", "mini-sd-inpaint/lcm", "mini-sd-inpaint/fast_vae")  # the instant result runs lcm, with the fast VAE when there is one

DABS = [(40 + 12 * k, 110 + 9 * (k % 3)) for k in range(20)]  # canvas pixels, all on the photo
STROKE = [(80, 200), (170, 260), (250, 330)]
STEPS = 20  # the app's default for the full sampler (its first result is the instant one when the model has it)


def _model(folder: Path) -> tuple[Path, str]:
    try:
        return shipped_model("mini-sd-inpaint"), "shipped mini-sd-inpaint"
    except ConfigError:
        from tryon_lab.models.tiny import make_random_pipeline

        make_random_pipeline("tiny", folder / "tiny")
        return folder / "tiny", "tiny random model (shipped model missing): not the bar's model"


def run() -> list[tuple]:
    """Open the phone page in headless Chromium, dab 20 times, drag, try on; return the rows."""
    from playwright.sync_api import sync_playwright

    if chromium() is None:
        raise ConfigError("benchmarks/app.py needs Chromium: apt-get install chromium")
    with tempfile.TemporaryDirectory(prefix="bench-app-") as tmp:
        model, which = _model(Path(tmp))
        first_result = (f"the app's instant {INSTANT} try-on, {SAMPLERS[INSTANT].steps} steps"
                        if (model / LCM_FOLDER).is_dir() else f"the app's default {STEPS} steps")
        with app_server(Path(tmp) / "server", model) as server, sync_playwright() as playwright:
            browser = launch(playwright)
            page = browser.new_page(viewport=PHONE_VIEWPORT)
            page.goto(server.url)
            app = AppPage(page)
            app.choose_first_item()
            for x, y in DABS:
                app.dab(x, y)
            app.drag(STROKE)
            app.try_on()
            browser.close()
        backends = _backend_rows(model, which, Path(tmp))
    latencies_ms = sorted(1000 * t for t in app.timings.stroke_latencies)
    round_trip = f"mousedown to the dab drawn back by the kernel, {len(latencies_ms)} dabs"
    return [
        ("stroke latency median (ms)", statistics.median(latencies_ms), round_trip + "; bar 200 ms"),
        ("stroke latency max (ms)", latencies_ms[-1], round_trip),
        ("click to first preview (s)", app.timings.first_preview, f"{which}; bar 1 s"),
        ("click to result (s)", app.timings.result, f"{which}, {first_result}"),
        *backends,
    ]


def _backend_rows(model: Path, which: str, scratch: Path) -> list[tuple]:
    """Export ``model``'s ExecuTorch programs, then time one try-on (the second of two) on each
    back end from Python: start to first preview, start to result."""
    from tryon_lab.app import FittingRoom
    from tryon_lab.export.bundle import ExportOptions, export_bundle

    bundle = export_bundle(model, scratch / "bundle", ExportOptions(targets=("executorch",)), log=lambda _: None)
    rows = []
    for label, room in (("PyTorch", FittingRoom(model, steps=STEPS)),
                        ("ExecuTorch", FittingRoom(bundle=bundle, steps=STEPS))):
        room.garments.select(next(i.id for i in room.garments.items.values() if i.kind == "garment"))
        room.personalize.suggest()
        for _ in range(2):  # the first run pays for one-off set-up (XNNPACK packs its weights)
            room.try_on()
            room.wait()
        if room.jobs.error is not None:
            raise room.jobs.error
        note = f"{which}, {STEPS} steps, app driven from Python (no browser)"
        rows += [(f"{label} back end: first preview (s)", room.jobs.first_preview_seconds, note),
                 (f"{label} back end: result (s)", room.jobs.seconds, note)]
    return rows
