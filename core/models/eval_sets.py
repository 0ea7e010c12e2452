"""Locked evaluation sets: per model name, the cases every new version is measured on before it goes live.

An administrator locks a set once (``python -m core eval-set lock``); it is stored as
``$LUCIDDX_HOME/eval_sets/<name>.json``: where the data lives, and for each case the SHA-256 of its
content with its label, never a file name. Before a gate runs, the cases found at that location now
are compared with the stored ones: a changed, missing or added case refuses the gate, because a set
that moved under the comparison is not the set the previous versions were measured on.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core import config
from core.errors import EvalSetError
from core.i18n import _
from core.models import registry


@dataclass(frozen=True)
class Item:
    """One case of a set: the SHA-256 (hex) of its content and its label as the data names it."""

    sha256: str
    label: str


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def sets_dir() -> Path:
    return config.luciddx_home() / "eval_sets"


def path_for(name: str) -> Path:
    registry.check_model_name(name)
    return sets_dir() / f"{name}.json"


def fingerprint(items: Iterable[Item]) -> str:
    """One SHA-256 for the whole set, independent of the order the cases were listed in."""
    lines = sorted(f"{i.sha256} {i.label}" for i in items)
    return digest("\n".join(lines).encode("utf-8"))


def build(name: str, kind: str, location: Path, items: Sequence[Item], positive_labels: Sequence[str],
          locked_by: str) -> dict[str, Any]:
    """The stored record of a set (see the module docstring); raises EvalSetError for a one-class set."""
    positives = sum(1 for i in items if i.label in positive_labels)
    if not items or positives in (0, len(items)):
        raise EvalSetError(_("{location}: an evaluation set needs cases of both outcomes (found {n} cases, "
                             "{positives} positive); add the missing ones and lock again.").format(
            location=location, n=len(items), positives=positives))
    ordered = sorted(items, key=lambda i: (i.label, i.sha256))
    return {
        "model": name, "kind": kind, "location": str(location), "n": len(items), "positives": positives,
        "prevalence": positives / len(items), "positive_labels": list(positive_labels),
        "labels": dict(sorted(Counter(i.label for i in items).items())),
        "fingerprint": fingerprint(items), "locked_by": locked_by,
        "locked_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "items": [{"sha256": i.sha256, "label": i.label} for i in ordered],
    }


def save(record: dict[str, Any]) -> Path:
    path = path_for(record["model"])
    registry.write_json_atomic(path, record)
    return path


def load(name: str) -> dict[str, Any] | None:
    """The locked set of ``name``, or None when none was locked."""
    path = path_for(name)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise EvalSetError(_("The locked evaluation set {path} is damaged; lock it again with "
                             "`python -m core eval-set lock`.").format(path=path)) from exc


def stored_items(record: dict[str, Any]) -> list[Item]:
    return [Item(str(i["sha256"]), str(i["label"])) for i in record["items"]]


def verify(record: dict[str, Any], current: Sequence[Item]) -> None:
    """Raise EvalSetError naming how many cases changed unless ``current`` is exactly the locked set."""
    locked, now = Counter(stored_items(record)), Counter(current)
    missing, added = sum((locked - now).values()), sum((now - locked).values())
    if missing or added:
        raise EvalSetError(_(
            "The evaluation set of {model} changed since {who} locked it on {when}: {missing} locked case(s) are "
            "missing or changed at {location} and {added} case(s) are new. The gate does not run on a changed set: "
            "restore the files, or lock the set again (its earlier results are then no longer comparable).").format(
            model=record["model"], who=record["locked_by"], when=record["locked_at"], missing=missing, added=added,
            location=record["location"]))


def public(record: dict[str, Any]) -> dict[str, Any]:
    """What ``eval-set show`` prints: everything but the per-case digests."""
    return {k: v for k, v in record.items() if k != "items"}
