"""The Retrain page, driven headless through the real app: dataset report, a job from the form, registry controls."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.jobs import runner as jobs
from core.models import registry
from tests.imaging.test_training import real_subset

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = real_subset(tmp_path_factory.mktemp("page") / "wrist_films", per_class=8, seed=3)
    (folder / "NORMAL" / "scanner_notes.txt").write_text("not an image")
    first_normal = sorted((folder / "NORMAL").glob("*.jpeg"))[0]
    shutil.copy(first_normal, folder / "PNEUMONIA" / "misfiled.jpeg")  # same film in both classes
    return folder


pytestmark = pytest.mark.usefixtures("no_stray_jobs")


def open_page() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    at.switch_page("pages/retrain.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Retrain"
    return at


@pytest.fixture()
def page(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    # The test folders live under pytest's temporary root: that is this server's data root.
    monkeypatch.setenv("LUCIDDX_DATA_ROOTS", str(tmp_path_factory.getbasetemp()))
    return open_page()


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "warning", "error", "success", "info", "subheader")
             for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def check_server_folder(at: AppTest, path: Path) -> AppTest:
    at.radio(key="dataset_source").set_value("server").run()
    at.text_input(key="dataset_path").input(str(path)).run()
    at.button(key="check_path").click().run()
    assert not at.exception, at.exception
    return at


def test_a_server_folder_gets_a_report_before_training(page: AppTest, films: Path) -> None:
    at = check_server_folder(page, films)

    assert "2. Dataset report" in [s.value for s in at.subheader]
    assert "**NORMAL** · 8 images" in texts(at) and "**PNEUMONIA** · 9 images" in texts(at)
    assert any("more than one class" in w.value for w in at.warning)
    assert any("Unreadable or ignored files (1)" in e.label for e in at.expander)
    assert len(at.image) == 2 and len(at.image[0].value) == 4  # a row of thumbnails per class
    assert at.text_input(key="train_name").value == "wrist_films"
    assert not at.button(key="train_start_button").disabled


def test_hostile_or_thin_datasets_are_refused_with_a_message(page: AppTest, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data/NORMAL/a.jpeg", b"x")
        archive.writestr("../../escape.jpeg", b"x")
    page.radio(key="dataset_source").set_value("upload").run()
    page.file_uploader(key="dataset_zip").set_value([("scans.zip", buffer.getvalue(), "application/zip")]).run()
    page.button(key="check_upload").click().run()
    assert not page.exception
    assert any("outside the dataset folder" in e.value for e in page.error)

    thin = tmp_path / "thin"
    real_subset(thin, per_class=3)
    at = check_server_folder(page, thin)
    assert any("Too few readable images" in e.value for e in at.error)
    assert at.button(key="train_start_button").disabled


def test_enter_in_the_name_or_epochs_field_never_starts_a_job(page: AppTest, films: Path) -> None:
    at = check_server_folder(page, films)
    # Enter commits a field's value and reruns the page (what AppTest's input/set_value + run do); in a form
    # it would have submitted the form, which started a job. The page has no form left to submit.
    at.text_input(key="train_name").input("enter_test").run()
    at.number_input(key="train_epochs").set_value(3).run()
    assert not at.exception, at.exception
    assert not any(str(b.key).startswith("FormSubmitter:") for b in at.button)
    assert jobs.list_jobs() == []
    assert at.text_input(key="train_name").value == "enter_test" and not at.button(key="train_start_button").disabled


def test_training_starts_as_a_background_job_that_the_page_follows_and_cancels(page: AppTest, films: Path) -> None:
    at = check_server_folder(page, films)
    at.text_input(key="train_name").input("wrist_test")
    at.number_input(key="train_epochs").set_value(200)
    at.selectbox(key="train_size").set_value(32)
    at.number_input(key="train_batch").set_value(4)
    at.radio(key="train_start").set_value("scratch")
    at.button(key="train_start_button").click().run()
    assert not at.exception, at.exception

    listed = jobs.list_jobs()
    assert len(listed) == 1 and listed[0]["request"]["name"] == "wrist_test"
    job_id = listed[0]["id"]
    at.button(key="train_start_button").click().run()  # a second click on the same settings while it runs
    assert len(jobs.list_jobs()) == 1 and any("already running" in w.value for w in at.warning)
    assert job_id in str(at.query_params["job"])  # a reload or a shared link reopens this job
    assert at.selectbox(key="job_pick").value == job_id
    at.button(key=f"cancel_{job_id}").click().run()
    assert not at.exception, at.exception
    assert jobs.read_progress(job_id).cancel_requested
    assert jobs.wait(job_id, timeout=90)["state"] == "cancelled", jobs.log_tail(job_id)

    at.run()
    assert any("nothing was registered" in w.value.lower() for w in at.warning)
    assert registry.list_versions("wrist_test") == []


def test_registry_controls_activate_roll_back_and_refuse_deleting_bundled() -> None:
    bundled = registry.resolve("chest_xray")
    staging = registry.new_staging_dir()
    shutil.copytree(bundled.path, staging, dirs_exist_ok=True)
    trained = registry.commit_version(staging, "chest_xray", activate_it=True)
    at = open_page()
    at.selectbox(key="registry_model").set_value("chest_xray").run()
    version_box = "registry_version_chest_xray"
    assert at.selectbox(key=version_box).value == trained.version

    at.selectbox(key=version_box).set_value(bundled.version).run()
    # No locked evaluation set: the gate cannot run, and rolling back needs an override with a reason.
    assert any("No evaluation set is locked" in w.value for w in at.warning)
    assert at.button(key="registry_activate").disabled and at.button(key="registry_activate").label == "Override and activate"
    # The override shows the evidence it sets aside, and needs a reason of substance AND its own confirmation.
    assert any(f"chest_xray:{bundled.version} was validated on" in e.value and "No evaluation set is locked" in e.value
               for e in at.error)
    at.text_input(key=f"registry_override_reason_chest_xray_{bundled.version}").input("drill").run()
    at.checkbox(key=f"registry_confirm_override_chest_xray_{bundled.version}").check().run()
    assert at.button(key="registry_activate").disabled  # one word is not a reason
    at.text_input(key=f"registry_override_reason_chest_xray_{bundled.version}").input("roll back after the drill").run()
    assert not at.button(key="registry_activate").disabled
    at.button(key="registry_activate").click().run()
    assert registry.resolve("chest_xray").version == bundled.version
    assert any("is now the active version" in s.value and "overridden" in s.value for s in at.success)

    # A bundled version cannot be deleted: neither its confirmation nor its button is offered.
    assert at.checkbox(key=f"registry_confirm_delete_chest_xray_{bundled.version}").disabled
    assert at.button(key="registry_delete").disabled
    assert registry.resolve(bundled.spec).path.exists()

    at.selectbox(key=version_box).set_value(trained.version).run()
    assert at.button(key="registry_delete").disabled  # not confirmed for this version yet
    at.checkbox(key=f"registry_confirm_delete_chest_xray_{trained.version}").check().run()
    at.button(key="registry_delete").click().run()
    assert not at.exception, at.exception
    assert [r.version for r in registry.list_versions("chest_xray")] == [r.version for r in registry.list_versions("chest_xray") if r.bundled]
    assert any(f"chest_xray:{trained.version} was deleted" in s.value for s in at.success)


def test_server_folders_outside_the_data_roots_are_refused(page: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    at = check_server_folder(page, Path("/etc"))
    assert any("outside the folders this server may read" in e.value for e in at.error)
    assert "2. Dataset report" not in [s.value for s in at.subheader]
    monkeypatch.delenv("LUCIDDX_DATA_ROOTS")
    at = check_server_folder(open_page(), Path("/etc"))
    assert any("LUCIDDX_DATA_ROOTS" in e.value for e in at.error)


def test_the_gate_table_comes_before_the_button(films: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.services import audit, eval_sets

    data = tmp_path / "site"
    for label in ("NORMAL", "PNEUMONIA"):
        shutil.copytree(films / label, data / label, ignore=shutil.ignore_patterns("*.txt", "misfiled*"))
    monkeypatch.setenv("LUCIDDX_DATA_ROOTS", str(tmp_path))
    eval_sets.lock(audit.Actor("ada", "admin"), "chest_xray", data)
    bundled = registry.resolve("chest_xray")
    staging = registry.new_staging_dir()
    shutil.copytree(bundled.path, staging, dirs_exist_ok=True)
    copy = registry.commit_version(staging, "chest_xray")
    at = open_page()
    at.selectbox(key="registry_model").set_value("chest_xray").run()
    at.selectbox(key="registry_version_chest_xray").set_value(copy.version).run()
    assert not at.exception, at.exception
    table = at.dataframe[-1].value
    assert list(table.iloc[:, 0]) == [f"candidate: {copy.spec}", f"active: {bundled.spec}", "difference (candidate - active)"]
    assert "95% CI" in table.iloc[0]["AUC"] and "95% CI" in table.iloc[0]["sensitivity"]
    assert at.button(key="registry_activate").label == "Make active (roll back or forward)"
    at.button(key="registry_activate").click().run()
    assert registry.resolve("chest_xray").spec == copy.spec


def test_a_confirmation_arms_one_action_on_one_version() -> None:
    """One tick never arms two actions, and a tick for one version is no tick for another."""
    bundled = registry.resolve("chest_xray")
    copies = []
    for _i in range(2):
        staging = registry.new_staging_dir()
        shutil.copytree(bundled.path, staging, dirs_exist_ok=True)
        copies.append(registry.commit_version(staging, "chest_xray"))
    first, second = copies
    at = open_page()
    at.selectbox(key="registry_model").set_value("chest_xray").run()
    box = "registry_version_chest_xray"
    at.selectbox(key=box).set_value(first.version).run()
    at.checkbox(key=f"registry_confirm_delete_chest_xray_{first.version}").check().run()
    assert not at.button(key="registry_delete").disabled
    # The delete tick does not arm the override (no reason, no override tick).
    at.text_input(key=f"registry_override_reason_chest_xray_{first.version}").input("site pilot reviewed by the lead").run()
    assert at.button(key="registry_activate").disabled

    at.selectbox(key=box).set_value(second.version).run()  # the selection changes: nothing stays armed
    assert not at.checkbox(key=f"registry_confirm_delete_chest_xray_{second.version}").value
    assert at.button(key="registry_delete").disabled and at.button(key="registry_activate").disabled
    at.checkbox(key=f"registry_confirm_override_chest_xray_{second.version}").check().run()
    assert at.button(key="registry_delete").disabled  # the override tick does not arm Delete
    assert {r.version for r in registry.list_versions("chest_xray")} >= {first.version, second.version}
    assert registry.resolve("chest_xray") == bundled


def test_a_nul_byte_a_huge_path_or_an_escaping_link_is_refused_with_a_message(page: AppTest, tmp_path: Path) -> None:
    """Issue 22 items 16 and 17: each was an uncaught exception or a read outside the data root."""
    at = check_server_folder(page, Path(str(tmp_path) + "/x\x00y"))
    assert any("control character" in e.value for e in at.error)
    at = check_server_folder(at, Path(str(tmp_path) + "/" + "/".join(["a" * 200] * 25)))
    assert any("characters long" in e.value and "4,096" in e.value for e in at.error)
    at = check_server_folder(at, tmp_path / ("b" * 300))
    assert any("longer than 255 bytes" in e.value for e in at.error)
    linked = tmp_path / "linked"
    real_subset(linked, per_class=3)
    (linked / "NORMAL" / "host.jpeg").symlink_to("/etc/hostname")
    at = check_server_folder(at, linked)
    assert any("NORMAL/host.jpeg: is a link that leads outside the dataset folder" in e.value for e in at.error)
    assert not any("/etc/hostname" in e.value for e in at.error)
    assert "2. Dataset report" not in [s.value for s in at.subheader]


def test_pretraining_on_the_films_is_a_start_the_plan_explains_and_the_job_carries(page: AppTest, films: Path) -> None:
    at = check_server_folder(page, films)
    assert "train_pretrain_epochs" not in [n.key for n in at.number_input]  # only with that start
    at.radio(key="train_start").set_value("pretrain").run()
    at.number_input(key="train_pretrain_epochs").set_value(3).run()
    assert not at.exception, at.exception
    changed = [c.value for c in at.caption if "With your changes" in c.value]
    assert changed and "3 self-supervised epochs" in changed[0] and "3 epochs of self-supervised" in changed[0]
    at.text_input(key="train_name").input("pretrained_wrist")
    at.selectbox(key="train_size").set_value(32)
    at.number_input(key="train_batch").set_value(4)
    at.button(key="train_start_button").click().run()
    assert not at.exception, at.exception
    (listed,) = jobs.list_jobs()
    assert listed["request"]["pretrain_epochs"] == 3 and listed["request"]["init_from"] is None
    job_id = listed["id"]
    assert "3 epochs of self-supervised pretraining" in texts(at)  # the job's line names its start
    at.button(key=f"cancel_{job_id}").click().run()
    assert jobs.wait(job_id, timeout=90)["state"] == "cancelled", jobs.log_tail(job_id)
