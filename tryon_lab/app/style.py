"""The app's look: CSS scoped to ``.tryon-app`` (safe inside JupyterLab), and the phone page's."""

from __future__ import annotations

import ipywidgets as widgets

APP_WIDTH = 360  # CSS pixels: a phone held upright

APP_CSS = f"""
.tryon-app {{
  width: {APP_WIDTH}px; max-width: 100%; box-sizing: border-box; padding: 10px 12px 12px;
  background: #ffffff; border-radius: 20px; box-shadow: 0 6px 24px rgba(20, 20, 40, .14);
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d24;
}}
.tryon-app .widget-html-content, .tryon-app .widget-label {{ font-size: 13px; line-height: 1.35; }}
.tryon-app .tryon-title h2 {{ margin: 2px 0 0; font-size: 19px; font-weight: 650; }}
.tryon-app .tryon-title small {{ color: #6b6b78; }}
.tryon-app .tryon-nav {{ width: 100%; margin: 6px 0; }}
.tryon-app .tryon-nav > div {{ display: flex; width: 100%; }}
.tryon-app .tryon-nav .widget-toggle-button {{
  flex: 1 1 0; width: auto; margin: 0 2px; border-radius: 999px; font-size: 13px;
}}
.tryon-app .tryon-nav .widget-toggle-button.mod-active {{ background: #1d1d24; color: #fff; }}
.tryon-app .jupyter-button {{ border-radius: 10px; font-size: 13px; }}
.tryon-app .jupyter-button.mod-primary {{ background: #e0004d; }}
.tryon-app .tryon-wide {{ width: auto; align-self: stretch; }}
.tryon-app .widget-vbox > .widget-inline-hbox {{ width: auto; align-self: stretch; }}
.tryon-app canvas.tryon-canvas, .tryon-app canvas.tryon-result-canvas {{
  width: 100% !important; height: auto !important; border-radius: 14px; touch-action: none;
}}
.tryon-app .tryon-card {{ align-items: center; border: 2px solid transparent; border-radius: 12px; padding: 2px; }}
.tryon-app .tryon-card.tryon-selected {{ border-color: #e0004d; background: #fff0f5; }}
.tryon-app .tryon-card img {{ border-radius: 10px; background: #f4f4f7; }}
.tryon-app .tryon-card .jupyter-button {{
  width: 100%; height: auto; min-height: 28px; padding: 2px 4px; font-size: 11px;
  white-space: normal; line-height: 1.2; background: transparent;
}}
.tryon-app .tryon-card.tryon-finetuned img {{ outline: 2px dashed #7a4dd8; outline-offset: -2px; }}
.tryon-app .tryon-badge {{ align-self: flex-start; }}
.tryon-app .tryon-badge .widget-html-content {{
  font-size: 10px; line-height: 16px; padding: 0 6px; border-radius: 999px; background: #efe7ff; color: #4b2a99;
}}
.tryon-app .tryon-section {{ margin-top: 8px; font-weight: 600; }}
.tryon-app .tryon-msg {{ padding: 6px 10px; border-radius: 10px; background: #f1f2f6; }}
.tryon-app .tryon-ok {{ background: #e8f7ee; color: #145c32; }}
.tryon-app .tryon-error {{ background: #fdecec; color: #8a1020; }}
.tryon-app .widget-upload {{ width: auto; }}
.tryon-app textarea {{ font-family: inherit; font-size: 13px; }}
.tryon-app .progress-bar {{ background-color: #e0004d; }}
"""

PAGE_CSS = """
body, #rendered_cells { background: #e9eaef !important; }
#rendered_cells { padding: 16px 0 32px !important; box-sizing: border-box; }
.jp-OutputArea-prompt, .jp-OutputArea-child:not(:has(.tryon-app)) { display: none !important; }
.jp-Cell, .jp-Cell-outputWrapper, .jp-OutputArea, .jp-OutputArea-child, .jp-OutputArea-output {
  display: block !important; padding: 0 !important; margin: 0 !important; background: transparent !important;
}
.jp-OutputArea-output .tryon-app { margin: 0 auto !important; }
"""


def style_widget(css: str = APP_CSS) -> widgets.HTML:
    """An HTML widget holding a ``<style>`` element (the app carries its own CSS, so it looks
    the same in JupyterLab, in Voila and in an exported page)."""
    return widgets.HTML(f"<style>{css}</style>", layout=widgets.Layout(display="none"))
