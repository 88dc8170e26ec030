"""The package's layout holds: wings import only downward, modules stay short, notebooks use the public API.

docs/ARCHITECTURE.md describes the wings and the imports each may make; these tests keep it true.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ldl"

# The wings, lowest first, and the wings each may import (docs/ARCHITECTURE.md, "Who may import whom").
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "profiles": {"core"},
    "data": {"core", "profiles"},
    "augment": {"core", "data"},
    "models": {"core"},
    "nn": {"core"},
    "train": {"core"},
    "plots": {"core", "nn"},
    "measure": {"core", "models", "train"},
    "generalisation": {"core"},
    "optim": {"core"},
    "search": {"core", "train"},
    "recipes": {"core", "profiles", "data", "augment", "models", "train", "measure"},
    "widgets": {"core", "augment", "nn", "plots"},
    "course": {"core", "profiles", "data", "augment", "models", "nn", "train", "measure", "generalisation", "optim", "search", "recipes"},
    "site": {"core", "course"},
}
# Old module paths that forward to their new home for one release.
MOVED = {
    "ldl.layers": "ldl.nn.layers",
    "ldl.init": "ldl.nn.init",
    "ldl.vit": "ldl.nn.vit",
    "ldl.attention": "ldl.nn.attention",
    "ldl.bench": "ldl.measure.bench",
    "ldl.compare": "ldl.measure.compare",
    "ldl.inductive_bias": "ldl.measure.inductive_bias",
    "ldl.features": "ldl.measure.features",
    "ldl.export": "ldl.measure.export",
    "ldl.transfer": "ldl.recipes.transfer",
    "ldl.readiness": "ldl.course.readiness",
    "ldl.report": "ldl.course.report",
    "ldl.exercises": "ldl.course.exercises",
    "ldl.results": "ldl.core.tables",
    "ldl.memory": "ldl.core.memory",
    "ldl.viz": "ldl.plots",
    "ldl.train.tensorboard_view": "ldl.widgets.tensorboard",
}
LONG_MODULE_LINES = 450  # "about 400": a module longer than this says why in its docstring
LONG_MODULE_MARK = "Why one module:"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    """Every module of the package except the forwarding old paths, by dotted name."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: path for name, path in modules.items() if name not in MOVED and name != "ldl._moved"}


def wing_of(name: str) -> str | None:
    """``ldl.data.cache`` -> ``data``; ``ldl`` itself -> None."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


def imported_ldl_modules(path: Path) -> set[str]:
    """The ``ldl`` modules a file imports at run time (``if TYPE_CHECKING:`` blocks left out)."""
    tree = ast.parse(path.read_text())
    type_checking_nodes: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_checking_nodes.update(id(child) for child in ast.walk(node))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_checking_nodes:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("ldl"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ldl") and node.level == 0:
            found.add(node.module)
    return found


def test_every_folder_is_a_known_wing_and_nothing_else_lies_at_the_top() -> None:
    folders = {path.name for path in PACKAGE.iterdir() if path.is_dir() and (path / "__init__.py").exists()}
    assert folders == set(ALLOWED), "a new wing needs its place in ALLOWED and docs/ARCHITECTURE.md"
    top_modules = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__", "_moved"}
    assert {f"ldl.{name}" for name in top_modules} <= set(MOVED), "a module at the top that is not an old path"


def test_wings_import_only_the_wings_below_them() -> None:
    wrong = []
    for name, path in package_modules().items():
        wing = wing_of(name)
        if wing is None:
            continue
        for imported in imported_ldl_modules(path):
            target = wing_of(imported)
            if target is not None and target != wing and target not in ALLOWED[wing]:
                wrong.append(f"{name} imports {imported} ({wing} -> {target})")
    assert not wrong, "imports that run back up:\n" + "\n".join(wrong)


def test_allowed_imports_form_no_cycle() -> None:
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(wing: str, path: list[str]) -> None:
        assert wing not in visiting, f"import cycle between wings: {' -> '.join([*path, wing])}"
        if wing in done:
            return
        visiting.add(wing)
        for lower in ALLOWED[wing]:
            visit(lower, [*path, wing])
        visiting.discard(wing)
        done.add(wing)

    for wing in ALLOWED:
        visit(wing, [])


def test_no_import_cycle_between_modules() -> None:
    modules = package_modules()
    graph = {name: {m for m in imported_ldl_modules(path) if m in modules and m != name} for name, path in modules.items()}
    # A package's __init__ re-exports its modules: an import of ``ldl.data`` is an import of the package file only.
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        assert state.get(name) != "open", f"import cycle: {' -> '.join([*path, name])}"
        state[name] = "open"
        for target in graph[name]:
            if not target.startswith(name + "."):  # a package importing its own modules is not a cycle
                visit(target, [*path, name])
        state[name] = "done"

    for name in graph:
        visit(name, [])


def test_long_modules_say_why_they_are_one_module() -> None:
    too_long = []
    for name, path in package_modules().items():
        lines = len(path.read_text().splitlines())
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > LONG_MODULE_LINES and LONG_MODULE_MARK not in docstring:
            too_long.append(f"{name}: {lines} lines")
    assert not too_long, f"split these, or say '{LONG_MODULE_MARK} ...' in the docstring: {too_long}"


def notebook_imports() -> list[tuple[str, str, list[str]]]:
    """(notebook, module, names) for every ``from ldl... import ...`` in the lessons' code cells."""
    found = []
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for cell in json.loads(notebook.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            tree = ast.parse("".join(line for line in cell["source"] if not line.lstrip().startswith(("%", "!"))))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ldl"):
                    found.append((notebook.name, node.module, [alias.name for alias in node.names]))
                elif isinstance(node, ast.Import):
                    assert not any(a.name.startswith("ldl") for a in node.names), f"{notebook.name}: use `from ldl.<wing> import ...`"
    return found


def test_notebooks_import_only_the_public_api() -> None:
    imports = notebook_imports()
    assert imports, "the lessons import nothing from ldl?"
    wrong = []
    for notebook, module, names in imports:
        parts = module.split(".")
        if len(parts) == 1:  # from ldl import plots
            wrong += [f"{notebook}: from ldl import {n}" for n in names if n not in ALLOWED]
            continue
        wing = importlib.import_module(".".join(parts[:2]))
        if len(parts) == 3 and parts[2] not in getattr(wing, "__all__", []):
            wrong.append(f"{notebook}: {module} is not a public module of {wing.__name__}")
            continue
        if len(parts) > 3:
            wrong.append(f"{notebook}: {module} is too deep")
            continue
        public = getattr(importlib.import_module(module), "__all__", None)
        for name in names:
            if name.startswith("_") or (public is not None and name not in public):
                wrong.append(f"{notebook}: {name} is not exported by {module}")
    assert not wrong, "\n".join(wrong)


def test_every_wing_exports_what_it_lists() -> None:
    for wing in ALLOWED:
        package = importlib.import_module(f"ldl.{wing}")
        for name in getattr(package, "__all__", []):
            assert getattr(package, name, None) is not None or importlib.import_module(f"ldl.{wing}.{name}")


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_old_paths_still_work_with_a_warning_naming_the_new_one(old: str, new: str) -> None:
    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old_module = importlib.import_module(old)
    assert any(issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in caught)
    new_module = importlib.import_module(new)
    public = [name for name in getattr(new_module, "__all__", dir(new_module)) if not name.startswith("_")]
    assert public
    for name in public[:5]:
        assert getattr(old_module, name) is getattr(new_module, name)


def test_shared_helpers_are_written_once() -> None:
    sources = {name: path.read_text() for name, path in package_modules().items()}

    def holders(pattern: str) -> list[str]:
        return sorted(name for name, text in sources.items() if re.search(pattern, text))

    assert holders(r"0\.485,\s*0\.456,\s*0\.406") == ["ldl.core.constants"]
    assert holders(r"<table") == ["ldl.core.tables"]
    assert holders(r"tempfile\.mkstemp") == []  # atomic writes go through ldl.core.files
    assert holders(r"def resolve_device\b") == ["ldl.core.device"]
