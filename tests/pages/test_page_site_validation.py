"""Site validation in the dashboard: labeled films -> intervals, ROC, candidate thresholds -> record -> adopt."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.services import catalog, jobs, validation
from tests.conftest import CHEST_XRAY_TRAIN

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "site_validation.py")


def labeled_films(folder: Path, per_class: int = 8) -> Path:
    """Real films, one subfolder per class (the mechanics only: the bundled model has seen these)."""
    for label in ("NORMAL", "PNEUMONIA"):
        (folder / label).mkdir(parents=True)
        for film in sorted((CHEST_XRAY_TRAIN / label).iterdir())[-per_class:]:
            shutil.copy(film, folder / label / film.name)
    return folder


def test_a_site_measures_records_and_adopts_from_the_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    roots = tmp_path / "roots"
    data = labeled_films(roots / "site")
    monkeypatch.setenv("LUCIDDX_DATA_ROOTS", str(roots))
    at = AppTest.from_file(PAGE, default_timeout=300).run()
    assert not at.exception, at.exception
    at.text_input(key="site_path").input(str(data)).run()
    at.button(key="site_run_path").click().run()
    assert not at.exception, at.exception
    job_id = at.session_state["site_job"][0]  # scored on the engine, not in the page's process
    assert jobs.wait(job_id, timeout=300)["state"] == "succeeded", jobs.log_tail(job_id)
    at.run()
    assert not at.exception, at.exception
    assert at.metric[0].value == "50.0%"  # prevalence of 8 + 8 films
    rules = list(at.dataframe[0].value["rule"])
    assert rules == ["stored", "target sensitivity", "Youden"]
    assert any("ROC on 16 films" in (c.proto.spec or "") for c in at.get("plotly_chart"))
    at.button(key="site_record").click().run()
    assert not at.exception, at.exception
    spec = catalog.active_version("chest_xray").spec
    recorded = at.session_state["site_recorded"]
    assert recorded and any(recorded in s.value for s in at.success)
    card = catalog.display_card(catalog.resolve(spec), catalog.model_card(spec))
    assert [v["id"] for v in card["external_validations"]] == [recorded]  # the card lists it at once
    # Adopting needs its own confirmation, bound to this validation and rule.
    assert at.button(key="site_adopt").disabled
    at.selectbox(key="site_rule").select("youden").run()
    at.checkbox(key=f"site_confirm_{recorded}_youden").check().run()
    at.button(key="site_adopt").click().run()
    assert not at.exception, at.exception
    state = validation.threshold_in_force(spec)
    assert state["threshold_source"] == f"site:{recorded}"


def test_a_folder_of_one_class_is_refused_in_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    roots = tmp_path / "roots"
    data = labeled_films(roots / "site", per_class=2)
    shutil.rmtree(data / "NORMAL")
    monkeypatch.setenv("LUCIDDX_DATA_ROOTS", str(roots))
    at = AppTest.from_file(PAGE, default_timeout=300).run()
    at.text_input(key="site_path").input(str(data)).run()
    at.button(key="site_run_path").click().run()
    assert not at.exception, at.exception
    jobs.wait(at.session_state["site_job"][0], timeout=300)
    at.run()
    assert at.error and "site_evaluation" not in at.session_state
    assert any("NORMAL" in e.value or "class" in e.value for e in at.error), [e.value for e in at.error]
