"""Imports go down the layers only: every import of every module under src/rnnlab (module-level
and inside functions) is checked against the tier order, parsed with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Bottom first, from ../shared/DESIGN.md ("Dependency order"); a package imports its own modules
# and those of lower tiers only. "rnnlab" is the package's own __init__ (the public facade).
TIERS: list[tuple[str, ...]] = [
    ("errors",),
    ("validation", "sequences", "jsonfile"),
    ("cells", "data"),
    ("fast",),
    ("regularize",),
    ("layers",),
    ("models", "analysis", "testing"),
    ("tasks",),
    ("training",),
    ("bench",),
    ("cli",),
    ("rnnlab", "__main__"),
]

# Upward imports that exist today, each (importer, imported) with the reason it is left; the test
# fails when one disappears, so this list only shrinks.
_DISPATCH = "the cell dispatches to its own fast path (issue 24: Recurrent asks fast instead)"
_TASK_OPTIONS = "a task-specific training option still in training (issue 24: typed task configs)"
ALLOWED: dict[tuple[str, str], str] = {
    ("rnnlab.analysis.runs", "rnnlab.tasks.base"): "rebuilds a run's model through its task",
    ("rnnlab.cells.gru", "rnnlab.fast.fused_gru"): _DISPATCH,
    ("rnnlab.cells.gru", "rnnlab.fast.loop"): "linear_steps: the oneDNN input projection",
    ("rnnlab.cells.lstm", "rnnlab.fast.fused_lstm"): _DISPATCH,
    ("rnnlab.cells.lstm", "rnnlab.fast.loop"): "linear_steps: the oneDNN input projection",
    ("rnnlab.cells.lstm", "rnnlab.fast.torch_kernels"): _DISPATCH,
    ("rnnlab.cells.scan", "rnnlab.fast.scan"): _DISPATCH,
    ("rnnlab.tasks.base", "rnnlab.training.curriculum"): _TASK_OPTIONS,
    ("rnnlab.tasks.charlm", "rnnlab.training.curriculum"): _TASK_OPTIONS,
    ("rnnlab.tasks.charlm", "rnnlab.training.regularization"): _TASK_OPTIONS,
    ("rnnlab.tasks.names_generate", "rnnlab.training.scheduled_sampling"): _TASK_OPTIONS,
    ("rnnlab.tasks.synthetic", "rnnlab.training.curriculum"): _TASK_OPTIONS,
    ("rnnlab.tasks.wordlm", "rnnlab.training.curriculum"): _TASK_OPTIONS,
}
# Modules of the tasks package that a higher layer may import: the registry and the Task
# interface (DESIGN.md: training "imports no task by name").
TASK_INTERFACE = {"rnnlab.tasks", "rnnlab.tasks.base"}


def tier_of(package: str) -> int:
    for level, packages in enumerate(TIERS):
        if package in packages:
            return level
    raise AssertionError(f"rnnlab.{package} is in no tier: add it to TIERS in {__file__}")


def package_of(module: str) -> str:
    """``rnnlab.cells.lstm`` -> ``cells``; ``rnnlab`` -> ``rnnlab``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "rnnlab"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = SRC.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports(here: str, is_package: bool, source: str) -> list[tuple[str, str]]:
    """``(module, name)`` of each rnnlab import in the source of module ``here`` (``name`` empty
    for ``import m``); ``from m import x`` where ``m.x`` is a module is an import of ``m.x``."""
    package = here if is_package else here.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source, here)):
        if isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.append((full, "") if is_module(full) else (base, alias.name))
    return [(module, name) for module, name in found if module.split(".")[0] == "rnnlab"]


def all_imports() -> list[tuple[str, str, str]]:
    """``(importer, imported module, imported name)`` over every module under src/rnnlab."""
    return [
        (module_name(path), module, name)
        for path in sorted((SRC / "rnnlab").rglob("*.py"))
        for module, name in imports(module_name(path), path.name == "__init__.py", path.read_text())
    ]


def upward_imports() -> set[tuple[str, str]]:
    return {
        (importer, module)
        for importer, module, _ in all_imports()
        if package_of(importer) != package_of(module)
        and tier_of(package_of(module)) >= tier_of(package_of(importer))
    }


def test_every_package_has_a_tier():
    for path in (SRC / "rnnlab").rglob("*.py"):
        tier_of(package_of(module_name(path)))


def test_no_layer_imports_a_higher_one():
    new = sorted(upward_imports() - ALLOWED.keys())
    assert not new, "imports up the layers (see TIERS in tests/test_layering.py):\n" + "\n".join(
        f"  {importer} imports {module}" for importer, module in new
    )


def test_allow_list_only_shrinks():
    gone = sorted(ALLOWED.keys() - upward_imports())
    assert not gone, "no longer imported: remove from ALLOWED:\n" + "\n".join(
        f"  {pair}" for pair in gone
    )


def private_imports() -> set[tuple[str, str]]:
    return {
        (importer, f"{module}.{name}")
        for importer, module, name in all_imports()
        if name.startswith("_") and package_of(importer) != package_of(module)
    }


def test_no_private_name_crosses_a_package():
    private = sorted(private_imports())
    assert not private, "private names imported from another package:\n" + "\n".join(
        f"  {importer} imports {name}" for importer, name in private
    )


def test_no_task_imported_by_name_from_above():
    by_name = sorted(
        f"  {importer} imports {module}"
        for importer, module, _ in all_imports()
        if package_of(module) == "tasks"
        and package_of(importer) != "tasks"
        and module not in TASK_INTERFACE
    )
    assert not by_name, "a task imported by name (use rnnlab.tasks.get):\n" + "\n".join(by_name)


@pytest.mark.parametrize(
    "source,expected",
    [
        ("from rnnlab.layers.unroll import unroll", ("layers.unroll", "unroll")),
        ("from rnnlab import cells", ("cells", "")),
        ("from ..errors import ConfigError", ("errors", "ConfigError")),
        ("def f():\n    import rnnlab.fast.onednn", ("fast.onednn", "")),
    ],
)
def test_imports_are_found_at_any_depth(source, expected):
    module, name = expected
    assert imports("rnnlab.cells.probe", False, source) == [(f"rnnlab.{module}", name)]
