"""Models on disk: names, versions, the active version, atomic registration.

Layout (the same under the bundled ``models/`` and under ``$LUCIDDX_HOME/models``)::

    <root>/<name>/<version>/meta.json     what the model is: kind, classes, threshold, input, training
    <root>/<name>/<version>/card.json     its model card (computed, never hand-written)
    <root>/<name>/<version>/<model file>  weights (``model.keras`` or ``model.joblib``)
    $LUCIDDX_HOME/models/<name>/ACTIVE    the active version's name, written only when an administrator activates

Bundled versions are read-only. A version is registered by building it in a staging folder and
renaming that folder into place, so a crash never leaves a half-written version behind.

Why files and not the account database: a version is its weights plus the JSON that describes them, and
one atomic rename of the folder publishes all of it; a folder on a path every node mounts is also how a
cluster's workers share it (docs/deploy.md). Accounts, keys, audit and sessions are rows (SQLAlchemy) and
the DICOM node's queue is its own SQLite file (``core.services.dicom_store`` says why).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import config
from core.i18n import _
from core.errors import ModelNotApprovedError, ModelNotFoundError, RegistryError
from core.models import kinds

log = logging.getLogger(__name__)

META_FILE = "meta.json"
CARD_FILE = "card.json"
ACTIVE_FILE = "ACTIVE"
HIGHEST_FILE = "HIGHEST"
MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class ModelRef:
    """One registered model version: where it lives and what its ``meta.json`` says."""

    name: str
    version: str
    path: Path
    bundled: bool
    meta: dict[str, Any] = field(compare=False, repr=False)

    @property
    def spec(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def kind(self) -> str:
        return kinds.normalise(self.meta.get("kind"))

    def card(self) -> dict[str, Any] | None:
        card_path = self.path / CARD_FILE
        if not card_path.exists():
            return None
        return json.loads(card_path.read_text())


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON so that readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2, sort_keys=False, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; models and cards are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def version_key(version: str) -> tuple[int, str]:
    """Sort key: numbered versions in numeric order, any others after them."""
    return (int(version), "") if version.isdigit() else (10**9, version)


def _scan_root(root: Path, bundled: bool) -> list[ModelRef]:
    refs: list[ModelRef] = []
    if not root.is_dir():
        return refs
    for name_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for version_dir in name_dir.iterdir():
            meta_path = version_dir / META_FILE
            if not version_dir.is_dir() or version_dir.name.startswith(".") or not meta_path.exists():
                continue
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                # One damaged version must not hide every other model from every page and command.
                log.warning("skipping %s: its %s is unreadable", version_dir, META_FILE)
                continue
            refs.append(ModelRef(name_dir.name, version_dir.name, version_dir, bundled, meta))
    return refs


def list_versions(name: str) -> list[ModelRef]:
    """Every version of ``name``, bundled and user-trained, oldest first."""
    refs = [r for r in _all_refs() if r.name == name]
    return sorted(refs, key=lambda r: version_key(r.version))


def _all_refs() -> list[ModelRef]:
    # A user version never shadows a bundled one: numbering continues after the bundled versions.
    return _scan_root(config.BUNDLED_MODELS_DIR, bundled=True) + _scan_root(
        config.home_models_dir(), bundled=False
    )


def list_models(kind: str | None = None) -> dict[str, list[ModelRef]]:
    """Registered model names (optionally of one kind) mapped to their versions, oldest first."""
    names = sorted({r.name for r in _all_refs() if kind is None or r.kind == kind})
    return {name: list_versions(name) for name in names}


def approved_version(name: str) -> ModelRef | None:
    """The version an administrator activated, else the newest bundled one; None when neither exists.

    A trained version is never approved by being registered, not even the first of a new name: until an
    administrator activates one, the name has no version a clinician may use.
    """
    versions = list_versions(name)
    chosen_file = config.home_models_dir() / name / ACTIVE_FILE
    if chosen_file.exists():
        chosen = chosen_file.read_text().strip()
        for ref in versions:
            if ref.version == chosen:
                return ref
    bundled = [r for r in versions if r.bundled]
    return bundled[-1] if bundled else None


def is_approved(ref: ModelRef) -> bool:
    """Whether ``ref`` is its name's approved (active) version."""
    approved = approved_version(ref.name)
    return approved is not None and approved.version == ref.version


def active_version(name: str) -> ModelRef:
    """The version used when a model is named without one: the approved version (see ``approved_version``).

    Raises ModelNotFoundError for an unknown name, ModelNotApprovedError when no version is approved yet.
    """
    versions = list_versions(name)
    if not versions:
        raise ModelNotFoundError(_("No model named '{name}' is registered. Known models: {known}.").format(name=name, known=', '.join(list_models()) or _("none")))
    ref = approved_version(name)
    if ref is None:
        raise ModelNotApprovedError(_(
            "'{name}' has no approved version yet: {versions} wait for an administrator to activate one after "
            "reading its card. Researchers may name a version explicitly, e.g. {name}:{version}.").format(
                name=name, versions=", ".join(r.spec for r in versions), version=versions[-1].version))
    return ref


def resolve(spec: str | None, kind: str | None = None) -> ModelRef:
    """Turn ``NAME`` or ``NAME:VERSION`` (or None: the default model of ``kind``) into a ModelRef."""
    if not spec:
        if kind is None:
            raise ModelNotFoundError(_("Name a model: NAME or NAME:VERSION."))
        spec = config.default_model(kind)
    name, _sep, version = spec.partition(":")
    if not version:
        ref = active_version(name)
    else:
        matches = [r for r in list_versions(name) if r.version == version]
        if not matches:
            known = ", ".join(r.version for r in list_versions(name)) or "none"
            raise ModelNotFoundError(_("Model '{name}' has no version '{version}'. Its versions: {known}.").format(name=name, version=version, known=known))
        ref = matches[0]
    if kind is not None and ref.kind != kind:
        raise ModelNotFoundError(
            _("Model '{spec}' is a {actual} model, but a {kind} model is needed here.").format(spec=ref.spec, actual=ref.kind or _("unknown"), kind=kind)
        )
    return ref


def activate(name: str, version: str) -> ModelRef:
    """Make ``version`` the one used when ``name`` is given without a version (also a roll-back)."""
    ref = resolve(f"{name}:{version}")
    write_text_atomic(config.home_models_dir() / name / ACTIVE_FILE, ref.version)
    return ref


def delete_version(name: str, version: str) -> None:
    """Remove a user-trained version. Bundled versions are read-only and refuse."""
    ref = resolve(f"{name}:{version}")
    if ref.bundled:
        raise RegistryError(_("'{spec}' is a bundled model and cannot be deleted.").format(spec=ref.spec))
    active_file = config.home_models_dir() / name / ACTIVE_FILE
    if active_file.exists() and active_file.read_text().strip() == version:
        active_file.unlink()
    trash = ref.path.parent / f".deleted-{version}-{uuid.uuid4().hex[:8]}"
    os.replace(ref.path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def check_model_name(name: str) -> None:
    """Refuse names that could escape ``$LUCIDDX_HOME/models`` or that the registry cannot list."""
    if not MODEL_NAME_PATTERN.match(name or "") or ".." in name:
        raise RegistryError(
            _("Model name '{name}' is not allowed: use 1-64 letters, digits, '_', '-' or '.', starting with a "
                "letter or digit (e.g. knee_mri).").format(name=name)
        )


def next_version(name: str) -> str:
    """One above every version ever registered under ``name``, deleted ones included.

    Reusing a deleted version's number would let caches keyed by NAME:VERSION serve its old weights.
    """
    numbers = [int(r.version) for r in list_versions(name) if r.version.isdigit()]
    highest_file = config.home_models_dir() / name / HIGHEST_FILE
    if highest_file.exists() and highest_file.read_text().strip().isdigit():
        numbers.append(int(highest_file.read_text().strip()))
    return str(max(numbers, default=0) + 1)


def staging_root() -> Path:
    """Where versions are built before registration (``$LUCIDDX_HOME/models/.staging``)."""
    return config.home_models_dir() / ".staging"


def new_staging_dir() -> Path:
    """A private folder inside ``$LUCIDDX_HOME`` to build a version in before it is registered."""
    root = staging_root()
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=root, prefix="build-"))


def commit_version(staging: Path, name: str, activate_it: bool = False) -> ModelRef:
    """Register a fully written staging folder as the next version of ``name`` (atomic rename).

    The staging folder must hold ``meta.json``; its ``name`` and ``version`` fields are set here.
    A new version never goes live by itself: unless ``activate_it``, the version in use before stays
    in use (pinned here). The first version of a new name is not approved either: the name has no
    active version until an administrator activates one (``core.services.activation``).
    """
    check_model_name(name)
    meta_path = staging / META_FILE
    if not meta_path.exists():
        raise RegistryError(_("Cannot register '{name}': the build folder has no {file}.").format(name=name, file=META_FILE))
    name_dir = config.home_models_dir() / name
    name_dir.mkdir(parents=True, exist_ok=True)
    approved = approved_version(name)
    if not activate_it and approved is not None and not (name_dir / ACTIVE_FILE).exists():
        write_text_atomic(name_dir / ACTIVE_FILE, approved.version)
    for _attempt in range(20):
        version = next_version(name)
        meta = json.loads(meta_path.read_text())
        meta.update({"name": name, "version": version})
        write_json_atomic(meta_path, meta)
        target = name_dir / version
        os.chmod(staging, 0o755)  # mkdtemp's 0700 would hide the version from other users of the server
        try:
            # os.rename onto a missing path is atomic; losing a race to another job just retries.
            os.rename(staging, target)
        except OSError:
            if target.exists():
                continue
            raise
        write_text_atomic(name_dir / HIGHEST_FILE, version)
        if activate_it:
            write_text_atomic(name_dir / ACTIVE_FILE, version)
        return resolve(f"{name}:{version}")
    raise RegistryError(_("Could not find a free version number for '{name}'.").format(name=name))
