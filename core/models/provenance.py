"""Dataset descriptions: what LucidDx knows about a documented dataset, kept as data in ``assets/datasets``.

A description holds the data's provenance (``dataset``), the prose of a model card (``card_text``),
labels for its subgroups (``subgroup_labels``) and, for a table, its feature schema (``tabular``).
Training copies the matching description into the new version's ``meta.json``; cards, forms and
checks then read only the version's own metadata.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core import config
from core.i18n import _
from core.errors import InvalidDatasetError

DESCRIPTIONS_DIR = config.ASSETS_DIR / "datasets"
CARRIED_KEYS = ("dataset", "card_text", "subgroup_labels")


def load_description(path: Path) -> dict[str, Any]:
    """Read one description file. Raises InvalidDatasetError naming the file when it is not a JSON object."""
    try:
        description = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InvalidDatasetError(_("{path}: is not a readable dataset description ({error_type}).").format(path=path, error_type=type(exc).__name__)) from exc
    if not isinstance(description, dict):
        raise InvalidDatasetError(_("{path}: a dataset description must be a JSON object.").format(path=path))
    return description


def find_description(data_path: str | Path) -> dict[str, Any] | None:
    """The description whose ``matches`` ends the path of the training data, or None (a user's own data)."""
    parts = [p.lower() for p in Path(str(data_path)).parts]
    for file in sorted(DESCRIPTIONS_DIR.glob("*.json")):
        description = load_description(file)
        for suffix in description.get("matches", []):
            wanted = [p.lower() for p in Path(suffix).parts]
            if wanted and parts[-len(wanted):] == wanted:
                return description
    return None


def carried_metadata(description: dict[str, Any] | None) -> dict[str, Any]:
    """The parts of a description that a model version stores in its ``meta.json``."""
    if not description:
        return {}
    return {key: description[key] for key in CARRIED_KEYS if key in description}
