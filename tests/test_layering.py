"""The house's rules, read from every file's imports (subpackages included): no cycles, one direction.

Layers, from the front to the floor:
    front ends   app.py, pages/, ui/, core.cli, core.api (REST), core.dicomnode (the DICOM node), core.services
    reports      core.reports (lays out computed results; PDF)
    views        core.charts (plotly figures of domain results)
    domains      core.imaging, core.tabular, core.jobs, core.access
    engine       core.engine (where work runs: embedded or clustered Ray)
    models       core.models (registry, cards, metrics, kinds, provenance)
    floor        core.errors, core.config, core.i18n
A module may import its own layer's siblings only inside its own package, and anything below it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = {"tensorflow", "keras", "shap", "pydicom", "tf_keras_vis", "sklearn"}
VIEW_FILES = [ROOT / "app.py", *sorted((ROOT / "pages").rglob("*.py")), *sorted((ROOT / "ui").rglob("*.py"))]
CORE_FILES = sorted((ROOT / "core").rglob("*.py"))
# Which core packages each core package may import (besides itself and the floor).
ALLOWED = {
    # Front ends reach the domain only through core.services (issue 26: one door). The one exception is
    # a front end launching another: `python -m core dicom-node` starts the node.
    "cli": {"services", "dicomnode"},
    "api": {"services"},
    "dicomnode": {"services"},
    "services": {"imaging", "tabular", "jobs", "models", "access", "reports", "engine"},
    "reports": {"imaging", "models"},
    "charts": {"imaging", "tabular", "models"},
    "imaging": {"models"},
    "tabular": {"models"},
    "jobs": {"models", "engine"},
    "access": {"models"},
    "models": set(),
    "engine": set(),
}
FLOOR = {"errors", "config", "i18n", "i18n_extract", "exports", "__init__", "__main__"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Absolute module names imported anywhere in ``path`` (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    inside = path.resolve().is_relative_to(ROOT)
    name = module_name(path).split(".") if inside else [path.stem]
    package = name if path.name == "__init__.py" else name[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return found


def imported_top_modules(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imports_of(path) if name}


def core_graph() -> dict[str, set[str]]:
    """core module -> the core modules it imports (names that are packages count as their __init__)."""
    modules = {module_name(p): p for p in CORE_FILES}
    return {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None (iterative depth-first search)."""
    state: dict[str, int] = {}
    for start in graph:
        if state.get(start):
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return path[path.index(child):] + [child]
            elif not state.get(child):
                state[child] = 1
                stack.append((child, iter(sorted(graph[child]))))
                path.append(child)
    return None


def test_core_has_no_import_cycle() -> None:
    cycle = find_cycle(core_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def _layer(module: str) -> str | None:
    if module == "core.__main__":  # `python -m core` is the command line's entry point
        return "cli"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] not in FLOOR else None


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_dependencies_point_one_way(path: Path) -> None:
    own = _layer(module_name(path))
    if own is None:  # the floor imports nothing of ours
        assert not {m for m in imports_of(path) if m.startswith("core.") and _layer(m)}, f"{path} must stay at the floor"
        return
    reached = {_layer(m) for m in imports_of(path) if m.startswith("core.")} - {None, own}
    assert reached <= ALLOWED[own], f"core.{own} may not import core.{sorted(reached - ALLOWED[own])}"


@pytest.mark.parametrize("path", VIEW_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_views_never_import_ml_or_dicom_libraries(path: Path) -> None:
    assert not imported_top_modules(path) & HEAVY, f"{path.name} must call core instead of importing these"


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_never_imports_streamlit(path: Path) -> None:
    assert "streamlit" not in imported_top_modules(path)


VIEW_ALLOWED = ("core.services", "core.charts", "core.errors", "core.config", "core.i18n", "core.exports")
FRONT_END_FILES = VIEW_FILES + [p for p in CORE_FILES if _layer(module_name(p)) in ("cli", "api", "dicomnode")]


def view_reaches_past_services(path: Path) -> set[str]:
    """Our modules a page, ui component or app.py imports that are not the services, charts or the floor."""
    names = {m for m in imports_of(path) if m == "core" or m.startswith("core.")}
    return {m for m in names if m != "core" and not m.startswith(VIEW_ALLOWED)}


@pytest.mark.parametrize("path", VIEW_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_and_ui_reach_the_domain_only_through_services(path: Path) -> None:
    assert not view_reaches_past_services(path), f"{path.name} goes around core.services: {view_reaches_past_services(path)}"


def audit_writes(path: Path) -> list[int]:
    """Lines where ``path`` writes an audit record itself: ``<x>.record(...)`` on an audit module, or a bare
    ``record(...)`` imported from one. Front ends act through ``core.services.audit.acting`` and its named
    verbs (downloaded, denied, refused, instance_received, command_finished) instead."""
    tree = ast.parse(path.read_text(), filename=str(path))
    imported = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and (node.module or "").endswith("audit") for alias in node.names if alias.name == "record"}
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr == "record" and isinstance(f.value, ast.Name) and "audit" in f.value.id:
                lines.append(node.lineno)
            elif isinstance(f, ast.Name) and f.id in imported:
                lines.append(node.lineno)
        elif isinstance(node, ast.keyword) and node.arg == "on_click" and isinstance(node.value, ast.Attribute) \
                and node.value.attr == "record":
            lines.append(node.lineno)
    return lines


@pytest.mark.parametrize("path", FRONT_END_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_front_end_writes_an_audit_record_itself(path: Path) -> None:
    assert not audit_writes(path), f"{path.name} lines {audit_writes(path)}: use core.services.audit.acting"


def test_the_front_end_rules_catch_violations(tmp_path: Path) -> None:
    page = tmp_path / "page.py"
    page.write_text("from core.access import roles\nfrom core.services import audit\nfrom core.charts import risk\n"
                    "audit.record(None, 'predict')\nst.button('x', on_click=audit.record)\n")
    assert view_reaches_past_services(page) == {"core.access", "core.access.roles"}
    assert audit_writes(page) == [4, 5]
    bare = tmp_path / "bare.py"
    bare.write_text("from core.services.audit import record as write\nwrite(None, 'x')\n")
    assert audit_writes(bare) == [2]
    clean = tmp_path / "clean.py"
    clean.write_text("from core.services import audit\nwith audit.acting(None, 'predict'):\n    pass\n")
    assert not view_reaches_past_services(clean) and not audit_writes(clean)


def test_the_rules_catch_violations(tmp_path: Path) -> None:
    offender = tmp_path / "page.py"
    offender.write_text("import numpy\nfrom tensorflow import keras\n")
    assert imported_top_modules(offender) & HEAVY == {"tensorflow"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_reads_subpackages_and_relative_imports() -> None:
    graph = core_graph()
    assert "core.models.cards.store" in graph and "core.imaging.classifier" in graph
    assert "core.models.cards.build" in graph["core.models.cards.store"]
