"""Small widget helpers shared by the screens: the status line and guarded callbacks."""

from __future__ import annotations

import functools
import html
import logging
from collections.abc import Callable

import ipywidgets as widgets

from tryon_lab.errors import TryOnInputError

log = logging.getLogger(__name__)
LABELS = {"description_width": "64px"}  # short labels leave the phone's width to the controls


class StatusLine:
    """One line of feedback under the app: progress, success, or what went wrong."""

    def __init__(self) -> None:
        self.widget = widgets.HTML()
        self.widget.add_class("tryon-status")
        self.text, self.kind = "", "info"

    def show(self, text: str, kind: str = "info") -> None:
        """Show ``text`` styled as ``kind``: "info", "ok" or "error" (kept in ``text``, ``kind``)."""
        self.text, self.kind = text, kind
        self.widget.value = f'<div class="tryon-msg tryon-{kind}">{html.escape(text)}</div>'

    def error(self, error: BaseException | str, context: str = "") -> None:
        """Show an error after ``context``: an input problem by its message, anything else with
        its type too."""
        if isinstance(error, BaseException):
            text = str(error) if isinstance(error, TryOnInputError) else f"{type(error).__name__}: {error}"
        else:
            text = error
        self.show(f"{context}: {text}" if context else text, "error")

    def guard(self, callback: Callable) -> Callable:
        """Wrap a widget callback so that any exception becomes a message here, not a traceback
        lost in the kernel log (and never an unusable app)."""

        @functools.wraps(callback)
        def guarded(*args, **kwargs):
            try:
                return callback(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - the app must survive any callback failure
                log.debug("app callback failed", exc_info=True)
                self.error(error)
                return None

        return guarded


def button(description: str, callback: Callable, status: StatusLine, style: str = "", css_class: str = "",
           tooltip: str = "") -> widgets.Button:
    """Return a Button whose click runs ``callback()`` guarded by ``status``."""
    widget = widgets.Button(description=description, button_style=style, tooltip=tooltip or description,
                            layout=widgets.Layout(width="auto"))
    widget.on_click(status.guard(lambda _: callback()))
    if css_class:
        widget.add_class(css_class)
    return widget


def section(title: str) -> widgets.HTML:
    """A small heading between groups of controls."""
    heading = widgets.HTML(html.escape(title))
    heading.add_class("tryon-section")
    return heading
