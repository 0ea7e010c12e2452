"""The film viewer: the film and its heatmap overlay side by side, zoom and pan LOCKED together.

One plotly figure, two image subplots whose x and y axes ``match``: zooming or panning either film
moves both. Axes count the film's own pixels, so a downsampled display and the full-resolution one
share coordinates. Images travel as PNG data URIs (``go.Image(source=...)``), far smaller than
nested lists of pixel values; no hand-written JavaScript.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.subplots import make_subplots

from core.charts.theme import styled
from core.i18n import _

VIEWER_CONFIG = {"scrollZoom": True, "displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}
"""Pass as ``config`` where the figure is drawn: wheel zoom, and no selection tools on a film."""


def png_data_uri(image: np.ndarray) -> str:
    """(h, w) or (h, w, 3) uint8 -> "data:image/png;base64,..."."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def film_figure(
    original: np.ndarray,
    overlay: np.ndarray,
    shape: tuple[int, int],
    titles: tuple[str, str],
    height: int = 560,
    revision: str = "film",
) -> go.Figure:
    """The film beside its overlay with matched axes (in the film's pixels, ``shape`` = (H, W)).

    Args:
        original: (h, w) uint8 greyscale as displayed (h <= H).
        overlay: (h, w, 3) uint8 with the heatmap blended in.
        titles: (left, right) subplot titles.
        revision: the film's identity; the reader's zoom survives redraws (window, opacity, resolution)
            until it changes (another film or frame).
    """
    full_h, full_w = shape
    shown_h, shown_w = original.shape[:2]
    dx, dy = full_w / shown_w, full_h / shown_h
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.02, subplot_titles=list(titles))
    for col, image in ((1, original), (2, overlay)):
        figure.add_trace(
            go.Image(
                source=png_data_uri(image), x0=dx / 2, y0=dy / 2, dx=dx, dy=dy, hoverinfo="x+y", name=titles[col - 1]
            ),
            row=1,
            col=col,
        )
    figure.update_xaxes(matches="x", showticklabels=False, ticks="", showgrid=False, zeroline=False, constrain="domain")
    figure.update_yaxes(
        matches="y",
        showticklabels=False,
        ticks="",
        showgrid=False,
        zeroline=False,
        constrain="domain",
        autorange="reversed",
    )
    figure.update_layout(height=height, margin={"l": 0, "r": 0, "t": 50, "b": 0}, dragmode="pan", uirevision=revision)
    return styled(figure)


def window_text(window: tuple[float, float] | None) -> str:
    """The window as words (the viewer's text alternative), or "" when the film was not re-windowed."""
    if window is None:
        return ""
    return _("Window centre {centre}, width {width}").format(centre=f"{window[0]:g}", width=f"{window[1]:g}")
