"""Printable reports of computed results (no model runs here): the PDF case report.

``pdf.render`` takes what ``core.services.reports`` computed (films, overlays, predictions, the card's
key numbers) and lays it out, one page per film, in the reader's language.
"""

from core.reports.pdf import FilmPage, render

__all__ = ["FilmPage", "render"]
