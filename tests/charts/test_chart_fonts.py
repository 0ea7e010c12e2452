"""Every plotly figure names a font family that can draw Chinese, set once in core.charts.theme."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from core.charts import cards as card_charts
from core.charts import risk as risk_charts
from core.charts import training as training_charts
from core.charts.diagnosis import probability_figure
from core.charts.theme import FONT_FAMILY, styled
from core.charts.viewer import film_figure
from core.imaging.classifier import Prediction
from core.models import cards
from core.tabular.predictor import load_risk_model

ROOT = Path(__file__).resolve().parents[2]
CHARTS = sorted(p for p in (ROOT / "core" / "charts").glob("*.py") if p.name != "theme.py")


def _names_cjk_font(figure) -> bool:
    return figure.layout.font.family == FONT_FAMILY and "Noto Sans CJK SC" in figure.layout.template.layout.font.family


def _figure_builders(path: Path) -> list[ast.FunctionDef]:
    tree = ast.parse(path.read_text())
    return [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.returns is not None
            and ast.unparse(node.returns).startswith("go.Figure")]


def test_the_font_family_starts_with_chinese_fonts_and_ends_generic() -> None:
    assert FONT_FAMILY.startswith('"Noto Sans CJK SC"') and FONT_FAMILY.endswith("sans-serif")


@pytest.mark.parametrize("path", CHARTS, ids=lambda p: p.name)
def test_every_figure_builder_returns_through_the_shared_style(path: Path) -> None:
    """Source check, so a new builder cannot forget the font: each `return` of a figure is `styled(...)` or None."""
    for builder in _figure_builders(path):
        for node in ast.walk(builder):
            if isinstance(node, ast.Return) and node.value is not None:
                value = node.value
                wrapped = isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "styled"
                assert wrapped or (isinstance(value, ast.Constant) and value.value is None), (
                    f"{path.name}:{node.lineno} {builder.name} returns a figure without styled()")


def test_the_source_check_sees_the_builders() -> None:
    names = {b.name for path in CHARTS for b in _figure_builders(path)}
    assert {"roc_figure", "probability_figure", "waterfall", "film_figure", "training_curves"} <= names


def test_built_figures_name_the_cjk_font() -> None:
    card = cards.load_card("diabetes_risk:1")
    figures = list(card_charts.all_figures(card).values())
    predictor = load_risk_model("diabetes_risk:1")
    result = predictor.predict_one(predictor.schema.example)
    figures += [risk_charts.waterfall(result), risk_charts.risk_gauge(0.4, 0.33, (0.3, 0.5)),
                risk_charts.importance_bar(np.array([[0.1, -0.2]]), ["a", "b"])]
    figures += [training_charts.class_counts_bar({"NORMAL": 3, "PNEUMONIA": 4}),
                training_charts.image_size_scatter([(10, 12), (10, 12)])]
    prediction = Prediction(model="chest_xray:1", label="NORMAL", probabilities={"NORMAL": 0.8, "PNEUMONIA": 0.2},
                            threshold=0.155, positive_class="PNEUMONIA", out_of_distribution=False, ood_score=1.0)
    figures += [probability_figure(prediction),
                film_figure(np.zeros((8, 6), np.uint8), np.zeros((8, 6, 3), np.uint8), (8, 6), ("a", "b"))]
    assert len(figures) >= 10 and all(_names_cjk_font(f) for f in figures)


def test_styled_overrides_a_builders_own_template() -> None:
    import plotly.graph_objects as go

    figure = styled(go.Figure(layout={"template": "plotly_dark", "font": {"family": "Arial"}}))
    assert _names_cjk_font(figure)
