"""The phone-shaped page: the app as a Voila page on 127.0.0.1 (``tryon-lab app``).

The page is a one-cell notebook that shows ``FittingRoom``; Voila runs it in a fresh kernel
for each visitor and shows only the widget. Its kernel is started ahead of the first visit
(Voila's preheated kernel), so the page opens without waiting for the model to load; the
next one is started two minutes after a visit.
"""

from __future__ import annotations

import secrets
import socket
import tempfile
from pathlib import Path

import ipywidgets as widgets
import nbformat

from tryon_lab.app.style import PAGE_CSS, style_widget

PAGE_NAME = "Fitting Room.ipynb"  # Voila titles the page after the notebook
REFILL_DELAY_S = 120


def page_style() -> widgets.HTML:
    """The page-wide CSS: a grey backdrop with the app centred like a phone."""
    return style_widget(PAGE_CSS)


def page_notebook(model: str | Path | None = None, catalog: str | Path | None = None,
                  bundle: str | Path | None = None, garments: str | Path | None = None) -> nbformat.NotebookNode:
    """The page's notebook: the app on ``model`` (or a phone ``bundle``), ``catalog`` and the
    fine-tuned ``garments`` folder (None: the defaults, no fine-tuned garments)."""
    model, catalog, bundle, garments = (str(Path(p).resolve()) if p is not None else None
                                        for p in (model, catalog, bundle, garments))
    arguments = f"pipeline={model!r}, catalog={catalog!r}"
    arguments += "".join(f", {name}={value!r}" for name, value in (("bundle", bundle), ("garments_dir", garments))
                         if value is not None)
    source = ("from tryon_lab.app import FittingRoom\n"
              "from tryon_lab.app.page import page_style\n\n"
              "display(page_style())\n"
              f"room = FittingRoom({arguments})\n"
              "room")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    return notebook


def write_page(folder: str | Path, model: str | Path | None = None, catalog: str | Path | None = None,
               bundle: str | Path | None = None, garments: str | Path | None = None) -> Path:
    """Write the page's notebook (see ``page_notebook``) into ``folder`` and return its path."""
    path = Path(folder) / PAGE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(page_notebook(model, catalog, bundle, garments), path)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def voila_arguments(notebook: Path, port: int, token: str, preheat: bool = True) -> list[str]:
    """Command-line arguments for Voila serving ``notebook`` on 127.0.0.1:``port`` only."""
    arguments = [str(notebook), "--no-browser", "--Voila.ip=127.0.0.1", f"--port={port}",
                 "--Voila.port_retries=0", f"--token={token}", "--theme=light"]
    if preheat:
        # Refilling the pool starts another kernel that loads the model: not while the first
        # visitor is painting.
        arguments += ["--preheat_kernel=True", "--pool_size=1", f"--VoilaKernelManager.fill_delay={REFILL_DELAY_S}"]
    return arguments


def check_inputs(model: str | Path | None = None, catalog: str | Path | None = None,
                 bundle: str | Path | None = None, garments: str | Path | None = None) -> None:
    """``TryOnInputError`` naming the first of the app's inputs that cannot be used (see ``serve``)."""
    from tryon_lab.data.catalog import load_catalog
    from tryon_lab.errors import ConfigError

    if garments and bundle:
        raise ConfigError("--garments are LoRA adapters on the PyTorch model; a bundle cannot switch them "
                          "(leave out --bundle, or export a fine-tuned model as its own bundle)")
    # Refused here, not in a page that then shows an error to whoever opens it.
    if model and not Path(model, "model_index.json").is_file():
        raise ConfigError(f"--model {model} is not a pipeline folder (no model_index.json)")
    if bundle:
        from tryon_lab.app.executorch_backend import check_bundle

        check_bundle(bundle)
    if catalog:
        load_catalog(catalog)
    if garments:
        from tryon_lab.training.adapters import finetuned_catalog

        if not any(g.mode == "lora" for g in finetuned_catalog(garments)):
            raise ConfigError(f"--garments {garments} holds no LoRA garment "
                              "(folders written by `tryon-lab dreambooth --lora-rank N`)")


def serve(port: int = 0, model: str | Path | None = None, catalog: str | Path | None = None,
          preheat: bool = True, bundle: str | Path | None = None, garments: str | Path | None = None) -> None:
    """Serve the app (see ``page_notebook``) on 127.0.0.1:``port`` (0: a free port), print its
    address, run until interrupted (Ctrl-C). Bad inputs are refused first (``check_inputs``)."""
    check_inputs(model, catalog, bundle, garments)
    from voila.app import Voila

    port = port or free_port()
    token = secrets.token_urlsafe(12)
    with tempfile.TemporaryDirectory(prefix="tryon-app-") as folder:
        notebook = write_page(folder, model, catalog, bundle, garments)
        print(f"Fitting Room: http://127.0.0.1:{port}/?token={token}", flush=True)
        Voila.launch_instance(argv=voila_arguments(notebook, port, token, preheat))
