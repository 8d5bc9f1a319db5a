"""The app in a real browser: Voila (through `tryon-lab app`) and JupyterLab on 127.0.0.1,
headless Chromium through Playwright. Each test paints on the canvas, checks the mask the
kernel received, tries the item on, waits for the result and keeps a screenshot and its
timings under build/test-artifacts/."""

import json

import nbformat
import pytest

from tryon_lab.app.browser import PHONE_VIEWPORT, TOKEN, AppPage, app_server, chromium, lab_server, launch
from tryon_lab.app.canvas import MaskCanvas
from tryon_lab.app.items import catalog_samples
from tryon_lab.app.page import free_port
from tryon_lab.paths import build_dir

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(chromium() is None, reason="needs Chromium: apt-get install chromium (.ci/run does)"),
]

DABS = [(60, 120), (110, 120), (160, 120), (210, 120), (260, 120)]  # canvas pixels, on the photo
STROKE = [(80, 200), (170, 260), (250, 330)]
# The bars (stroke to kernel <= 0.2 s, first preview <= 1 s on the shipped model) are measured
# in benchmarks/app.py on a quiet machine; here the timings are kept as artifacts and only a hang
# (ten times the bar) fails, so a busy CI machine cannot make the test flaky.
STROKE_LIMIT_S, PREVIEW_LIMIT_S = 2.0, 10.0
PAGE_TIMEOUT_MS = 180_000  # the page waits for its kernel to load the model


@pytest.fixture(scope="module")
def app_catalog(tmp_path_factory):
    """A small catalog: 2 garments, 1 product, 2 scenes (the first, a person, is painted on)."""
    from tryon_lab.data.catalog import write_catalog
    from tryon_lab.data.world import World

    return write_catalog(tmp_path_factory.mktemp("catalog"), World(0, 128), n_garments=2, n_products=1, n_scenes=2)


@pytest.fixture(scope="module")
def playwright_browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


def expected_percent(catalog, dabs, stroke) -> float:
    """The mask coverage (percent) the kernel must report for these canvas events."""
    canvas = MaskCanvas()
    canvas.set_photo(catalog_samples(catalog)[0].image)
    for dab in dabs:
        canvas.stroke([dab])
    canvas.stroke(stroke)
    return 100 * canvas.coverage


def paint_and_try_on(app: AppPage, catalog, name: str) -> dict:
    app.choose_first_item()
    dabs = [app.to_canvas(*app.canvas_point(*d)) for d in DABS]
    for x, y in DABS:
        app.dab(x, y)
    stroke = app.drag(STROKE)
    expected = expected_percent(catalog, dabs, stroke)
    assert app.mask_percent(expected, tolerance=0.15) == pytest.approx(expected, abs=0.15)
    app.page.screenshot(path=str(build_dir("test-artifacts") / f"{name}-mask.png"))
    app.try_on()
    app.page.screenshot(path=str(build_dir("test-artifacts") / f"{name}-result.png"))
    assert app.before_after_pixels() > 100  # the result differs from the photo it was made from
    timings = {"stroke_latencies_s": app.timings.stroke_latencies, "first_preview_s": app.timings.first_preview,
               "result_s": app.timings.result}
    (build_dir("test-artifacts") / f"{name}-timings.json").write_text(json.dumps(timings, indent=1))
    return timings


def check_bars(timings: dict) -> None:
    latencies = sorted(timings["stroke_latencies_s"])
    assert latencies and latencies[len(latencies) // 2] <= STROKE_LIMIT_S, f"stroke to kernel to canvas: {latencies}"
    assert timings["first_preview_s"] <= PREVIEW_LIMIT_S, f"click to first preview: {timings['first_preview_s']:.2f} s"


def test_phone_page_in_voila(tmp_path, tiny_pipeline_dir, app_catalog, playwright_browser):
    with app_server(tmp_path, tiny_pipeline_dir, app_catalog) as server:
        page = playwright_browser.new_page(viewport=PHONE_VIEWPORT)
        page.goto(server.url, timeout=PAGE_TIMEOUT_MS)
        timings = paint_and_try_on(AppPage(page), app_catalog, "voila-app")
        page.close()
    check_bars(timings)


def test_app_in_jupyterlab(tmp_path, tiny_pipeline_dir, app_catalog, playwright_browser):
    source = (f"from tryon_lab.app import FittingRoom\n"
              f"room = FittingRoom({str(tiny_pipeline_dir)!r}, {str(app_catalog)!r}, steps=4)\nroom")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(notebook, tmp_path / "app.ipynb")
    with lab_server(tmp_path, free_port()) as server:
        page = playwright_browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(f"{server.url}/lab/tree/app.ipynb?token={TOKEN}", timeout=PAGE_TIMEOUT_MS)
        page.wait_for_function("() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel"
                               "?.status === 'idle'", timeout=PAGE_TIMEOUT_MS)
        page.evaluate("async () => { await window.jupyterapp.commands.execute('notebook:run-all-cells') }")
        timings = paint_and_try_on(AppPage(page), app_catalog, "lab-app")
        page.close()
    check_bars(timings)
