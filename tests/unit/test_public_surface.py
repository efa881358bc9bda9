"""Each capability package's `__all__` is exactly what the rest of the code imports from it:
nothing outside reaches a name the package does not offer, and nothing offered goes unused
(HTTPX's test_exported_members, for our packages)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import quartermaster

ROOT = Path(quartermaster.__file__).parent
PACKAGES = [
    f"quartermaster.{path.parent.relative_to(ROOT).as_posix().replace('/', '.')}"
    for path in sorted(ROOT.glob("services/*/__init__.py"))
] + ["quartermaster.http"]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _names_used(package: str, tree: ast.Module) -> set[str]:
    """What one module takes from `package`: names imported from it or its submodules (a
    submodule counts by its own name), and attributes read on the package itself."""
    parent, _, leaf = package.rpartition(".")
    used: set[str] = set()
    bound_as: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == package:
                used.update(alias.name for alias in node.names)
            elif node.module.startswith(package + "."):
                used.add(node.module[len(package) + 1 :].split(".")[0])
            elif node.module == parent:
                bound_as.update(a.asname or a.name for a in node.names if a.name == leaf)
    for node in ast.walk(tree):
        is_read = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
        if is_read and node.value.id in bound_as:
            used.add(node.attr)
    return used


def _used_from_outside(package: str) -> set[str]:
    used: set[str] = set()
    for path in ROOT.rglob("*.py"):
        module = _module_name(path)
        if module == package or module.startswith(package + "."):
            continue
        used |= _names_used(package, ast.parse(path.read_text(), str(path)))
    return used


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_offers_exactly_what_the_rest_of_the_code_imports(package: str) -> None:
    offered = set(getattr(importlib.import_module(package), "__all__", []))
    used = _used_from_outside(package)
    assert sorted(used - offered) == [], f"{package} is used for names its __all__ omits"
    assert sorted(offered - used) == [], f"{package}.__all__ offers names nobody imports"
