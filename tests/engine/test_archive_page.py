"""The researchers' archive page drives the same engine run as ``score-folder`` and keeps its table."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.models import registry
from tests.engine.conftest import sample_archive

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "archive_scoring.py")


def test_a_server_folder_is_scored_into_a_table_with_exports(embedded_engine, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    roots = tmp_path / "roots"
    data = sample_archive(roots / "archive", per_class=3)
    monkeypatch.setenv("LUCIDDX_DATA_ROOTS", str(roots))
    at = AppTest.from_file(PAGE, default_timeout=300).run()
    assert not at.exception, at.exception
    at.text_input(key="archive_path").input(str(data)).run()
    at.button(key="archive_run_path").click().run()
    assert not at.exception, at.exception
    assert [m.value for m in at.metric][:3] == ["7", "6", "1"]
    table = at.dataframe[0].value
    assert len(table) == 7 and list(table.loc[~table["ok"], "file"]) == ["ward/notes.png"]
    assert set(table.loc[table["ok"], "model"]) == {registry.approved_version("chest_xray").spec}
    assert set(table.loc[table["ok"], "label"]) <= {"NORMAL", "PNEUMONIA"}
    at.run()  # a rerun (any click elsewhere) keeps the result
    assert len(at.dataframe[0].value) == 7


def test_a_folder_outside_the_data_roots_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "roots").mkdir()
    monkeypatch.setenv("LUCIDDX_DATA_ROOTS", str(tmp_path / "roots"))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.text_input(key="archive_path").input("/etc").run()
    at.button(key="archive_run_path").click().run()
    assert not at.exception, at.exception
    assert at.error and "archive_result" not in at.session_state
