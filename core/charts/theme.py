"""The one look every plotly figure shares: a white template whose font can draw Chinese.

Plotly's default font stack (Open Sans, verdana, arial) has no CJK glyphs, so Chinese titles and axis
labels would fall back to whatever the browser picks, or to boxes in exported images. Every figure
builder in ``core/charts`` passes its figure through :func:`styled` before returning it.
"""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio

# First the CJK families a clinician's machine most likely has (Debian: fonts-noto-cjk; macOS/Windows
# ship the others), then plain sans-serif for Latin-only systems.
FONT_FAMILY = '"Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC", sans-serif'

TEMPLATE = go.layout.Template(pio.templates["plotly_white"])
TEMPLATE.layout.font.family = FONT_FAMILY


def styled(figure: go.Figure) -> go.Figure:
    """``figure`` with the shared template and the CJK-capable font family set in its own layout."""
    figure.update_layout(template=TEMPLATE, font_family=FONT_FAMILY)
    return figure
