"""Registry: numbering, activation, roll-back, deletion rules, atomic registration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import config
from core.models import registry
from core.errors import ModelNotApprovedError, ModelNotFoundError, RegistryError


def _stage(meta: dict) -> Path:
    staging = registry.new_staging_dir()
    registry.write_json_atomic(staging / registry.META_FILE, meta)
    return staging


def test_bundled_models_are_listed_with_their_kind() -> None:
    models = registry.list_models()
    assert "chest_xray" in models
    assert registry.resolve("chest_xray").kind == "image-classifier"
    assert all(ref.bundled for ref in models["chest_xray"])


def test_user_versions_number_after_bundled_ones_and_never_go_live_by_themselves() -> None:
    bundled_max = max(int(r.version) for r in registry.list_versions("chest_xray"))
    in_use = registry.resolve("chest_xray").version
    meta = dict(registry.resolve("chest_xray").meta)
    ref = registry.commit_version(_stage(meta), "chest_xray")
    assert ref.version == str(bundled_max + 1)
    assert not ref.bundled
    assert ref.path.parent.parent == config.home_models_dir()
    assert registry.resolve("chest_xray").version == in_use  # the newest is not the one in use
    assert json.loads((ref.path / "meta.json").read_text())["version"] == ref.version
    chosen = registry.commit_version(_stage(meta), "chest_xray", activate_it=True)
    assert registry.resolve("chest_xray").version == chosen.version


def test_the_first_version_of_a_new_name_waits_for_an_administrator() -> None:
    meta = dict(registry.resolve("chest_xray").meta)
    ref = registry.commit_version(_stage(meta), "knee")
    assert registry.approved_version("knee") is None and not registry.is_approved(ref)
    with pytest.raises(ModelNotApprovedError, match="no approved version yet"):
        registry.resolve("knee")
    assert registry.resolve("knee:1") == ref  # named explicitly it exists (for researchers)
    registry.activate("knee", ref.version)
    assert registry.resolve("knee").spec == ref.spec and registry.is_approved(ref)


def test_activate_rolls_back_and_delete_refuses_bundled() -> None:
    meta = dict(registry.resolve("chest_xray").meta)
    new = registry.commit_version(_stage(meta), "chest_xray")
    bundled_versions = [r.version for r in registry.list_versions("chest_xray") if r.bundled]
    bundled = registry.list_versions("chest_xray")[0]
    registry.activate("chest_xray", bundled.version)
    assert registry.resolve("chest_xray").version == bundled.version
    with pytest.raises(RegistryError, match="bundled"):
        registry.delete_version("chest_xray", bundled.version)
    registry.delete_version("chest_xray", new.version)
    assert [r.version for r in registry.list_versions("chest_xray")] == bundled_versions


def test_unknown_names_and_versions_say_what_exists() -> None:
    with pytest.raises(ModelNotFoundError, match="Known models"):
        registry.resolve("no_such_model")
    with pytest.raises(ModelNotFoundError, match="Its versions"):
        registry.resolve("chest_xray:999")


def test_wrong_kind_is_refused() -> None:
    with pytest.raises(ModelNotFoundError, match="image-classifier model is needed"):
        registry.resolve("diabetes_risk", kind="image-classifier")


def test_staging_without_meta_registers_nothing() -> None:
    staging = registry.new_staging_dir()
    (staging / "model.keras").write_bytes(b"partial")
    with pytest.raises(RegistryError):
        registry.commit_version(staging, "half_written")
    assert registry.list_versions("half_written") == []


def test_a_deleted_version_number_is_never_reused() -> None:
    meta = dict(registry.resolve("chest_xray").meta)
    first = registry.commit_version(_stage(meta), "chest_xray")
    registry.delete_version("chest_xray", first.version)
    second = registry.commit_version(_stage(meta), "chest_xray")
    assert int(second.version) == int(first.version) + 1


def test_names_that_escape_the_home_are_refused_at_registration() -> None:
    with pytest.raises(RegistryError, match="not allowed"):
        registry.commit_version(_stage({"kind": "tabular-risk"}), "../../outside")


def test_a_damaged_meta_file_hides_only_its_own_version() -> None:
    meta = dict(registry.resolve("chest_xray").meta)
    good = registry.commit_version(_stage(meta), "chest_xray")
    broken = registry.commit_version(_stage(meta), "chest_xray")
    (broken.path / "meta.json").write_text("{ not json")
    versions = [r.version for r in registry.list_versions("chest_xray")]
    assert good.version in versions and broken.version not in versions
    assert "diabetes_risk" in registry.list_models()
