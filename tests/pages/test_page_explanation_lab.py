"""The explanation lab page: "Measure" starts a background job; the finished job's result is drawn from disk.

Labeled films -> a job (``python -m core explain-eval`` in its own process) -> table with ROAD, charts,
disagreement films, CSV. A fresh page (a reload, a second tab) finds the same job.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.jobs import runner
from tests.conftest import CHEST_XRAY_TRAIN

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "explanation_lab.py")

pytestmark = pytest.mark.usefixtures("no_stray_jobs")


def labelled_films(folder: Path, per_class: int) -> Path:
    for label in ("NORMAL", "PNEUMONIA"):
        (folder / label).mkdir(parents=True)
        for film in sorted((CHEST_XRAY_TRAIN / label).iterdir())[-per_class:]:
            shutil.copy(film, folder / label / film.name)
    return folder


def test_measure_starts_a_job_and_its_result_renders_on_a_fresh_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = labelled_films(tmp_path / "roots" / "films", per_class=1)
    monkeypatch.setenv("LUCIDDX_DATA_ROOTS", str(tmp_path / "roots"))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, at.exception
    assert any("Nothing measured yet" in i.value for i in at.info)
    at.multiselect(key="lab_methods").set_value(["gradcam", "gradcam++"]).run()
    at.number_input(key="lab_limit").set_value(2).run()
    at.multiselect(key="lab_road").set_value([30]).run()  # one removal percentage: one sparse solve per curve
    at.text_input(key="lab_path").input(str(data)).run()
    at.button(key="lab_run_path").click().run()
    assert not at.exception, at.exception
    [job] = runner.list_jobs()
    assert job["request"]["kind"] == "explain" and job["request"]["data"] == str(data.resolve())
    assert job["request"]["model"].startswith("chest_xray:")  # the version is pinned when the job starts
    assert job["request"]["road"] == [30]
    status = runner.wait(job["id"], timeout=240)
    assert status["state"] == "succeeded", runner.log_tail(job["id"])
    progress = runner.read_progress(job["id"])
    assert progress.fraction == 1.0 and progress.steps == 2 and progress.step == 2

    fresh = AppTest.from_file(PAGE, default_timeout=60).run()  # a reload: everything comes from the job folder
    assert not fresh.exception, fresh.exception
    assert fresh.selectbox(key="lab_job").value == job["id"]
    table = fresh.dataframe[0].value
    assert list(table["Method"]) == ["Grad-CAM", "Grad-CAM++"]
    for column in ("Deletion AUC, random order", "Randomisation r", "ROAD MoRF", "ROAD LeRF", "ROAD, random order"):
        assert column in table.columns
    assert all(0.0 <= v <= 1.0 for v in table["ROAD MoRF"])
    charts = [c.proto.spec or "" for c in fresh.get("plotly_chart")]
    assert any("2 films" in c for c in charts) and any("ROAD" in c for c in charts)
    disagreement = fresh.dataframe[1].value
    assert len(disagreement) == 2
    assert fresh.get("download_button")


def test_a_running_job_shows_its_progress_and_the_page_cancels_it(tmp_path: Path) -> None:
    import io
    import zipfile

    from core.services import explanations

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label in ("NORMAL", "PNEUMONIA"):
            for film in sorted((CHEST_XRAY_TRAIN / label).glob("*.jpeg"))[:10]:
                archive.write(film, f"{label}/{film.name}")
    job_id = explanations.start_job(None, "chest_xray", ["gradcam"], 20, upload=(buffer.getvalue(), "ward.zip"))
    at = AppTest.from_file(PAGE, default_timeout=60).run()  # a second tab: it finds the job on disk
    assert not at.exception, at.exception
    assert at.selectbox(key="lab_job").value == job_id
    assert any("ward.zip" in m.value for m in at.markdown)
    assert at.get("progress")  # TensorFlow is still loading, or film n of 20 is being measured
    at.button(key=f"lab_cancel_{job_id}").click().run()
    assert runner.read_progress(job_id).cancel_requested
    assert runner.wait(job_id, timeout=120)["state"] == "cancelled", runner.log_tail(job_id)
    ended = AppTest.from_file(PAGE, default_timeout=60).run()
    assert any("Measuring was cancelled" in w.value for w in ended.warning)
