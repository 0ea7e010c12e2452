"""The explanation lab page: labeled films -> methods measured against random -> table, chart, disagreements, CSV."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import CHEST_XRAY_TRAIN

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "explanation_lab.py")


def test_a_researcher_measures_two_methods_on_a_few_films(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    roots = tmp_path / "roots"
    data = roots / "films"
    for label in ("NORMAL", "PNEUMONIA"):
        (data / label).mkdir(parents=True)
        for film in sorted((CHEST_XRAY_TRAIN / label).iterdir())[-2:]:
            shutil.copy(film, data / label / film.name)
    monkeypatch.setenv("LUCIDDX_DATA_ROOTS", str(roots))
    at = AppTest.from_file(PAGE, default_timeout=300).run()
    assert not at.exception, at.exception
    at.multiselect(key="lab_methods").set_value(["gradcam", "gradcam++"]).run()
    at.number_input(key="lab_limit").set_value(4).run()
    at.text_input(key="lab_path").input(str(data)).run()
    at.button(key="lab_run_path").click().run()
    assert not at.exception, at.exception
    result = at.session_state["lab_result"]
    assert result["n"] == 4 and set(result["methods"]) == {"gradcam", "gradcam++"}
    table = at.dataframe[0].value
    assert list(table["Method"]) == ["Grad-CAM", "Grad-CAM++"]
    assert "Deletion AUC, random order" in table.columns and "Randomisation r" in table.columns
    assert any("4 films" in (c.proto.spec or "") for c in at.get("plotly_chart"))
    disagreement = at.dataframe[1].value
    assert len(disagreement) == 4 and disagreement.iloc[0, -1] <= disagreement.iloc[-1, -1]  # most disagreement first
    assert at.get("download_button")
