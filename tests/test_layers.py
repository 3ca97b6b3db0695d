"""The layer rule: ``spaces`` <- ``trainables`` <- ``analysis`` <- ``search``.

A package imports only the packages to its left, at module level and inside functions; only
``search`` imports Ray. ``spaces``, ``trainables`` and ``analysis`` import (and so can work)
with Ray and the packages to their right unimportable.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import robnas

LAYERS = ("spaces", "trainables", "analysis", "search")
CHECKED = LAYERS[:-1]
ROOT = Path(robnas.__file__).resolve().parent
#: ``spaces`` builds Ray Tune domains: these functions (only) import ``ray.tune`` when called.
#: They run in the search's process, which has Ray; importing ``robnas.spaces`` does not need it.
SPACE_DOMAIN_BUILDERS = {
    "_attack.py": {"attack_space"},
    "_cell.py": {"cell_space"},
    "_macro.py": {"macro_space"},
    "_resnet_space.py": {"resnet_space"},
    "_robust_training.py": {"robust_training_space"},
    "_sparsity.py": {"sparsity_space"},
}


def _forbidden(layer: str) -> tuple[str, ...]:
    """Top-level modules ``layer`` may not import: the layers to its right, and Ray."""
    right = LAYERS[LAYERS.index(layer) + 1:]
    return (*(f"robnas.{name}" for name in right), "ray")


def _package_dir(layer: str) -> Path:
    return Path(__import__(f"robnas.{layer}", fromlist=["_"]).__file__).resolve().parent


def _imports(tree: ast.Module, module: str) -> list[tuple[str, int, str | None, bool]]:
    """``(imported name, line, enclosing function or None, at module level)`` of every import."""
    package = module.rsplit(".", 1)[0]
    found = []

    def visit(node: ast.AST, function: str | None, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, function, top) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: resolve against the module's package
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - child.level + 1] + ([base] if base else []))
                found.append((base, child.lineno, function, top))
                found.extend((f"{base}.{alias.name}", child.lineno, function, top) for alias in child.names)
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, getattr(child, "name", "<lambda>") if function is None else function, False)
            elif isinstance(child, ast.ClassDef):
                visit(child, function, False)
            else:
                visit(child, function, top)

    visit(tree, None, True)
    return found


def _names(imported: str, forbidden: tuple[str, ...]) -> bool:
    return any(imported == name or imported.startswith(name + ".") for name in forbidden)


@pytest.mark.parametrize("layer", CHECKED)
def test_no_import_names_a_layer_to_the_right_or_ray(layer):
    forbidden = _forbidden(layer)
    package = _package_dir(layer)
    files = sorted(package.rglob("*.py"))
    assert files, package
    problems = []
    for file in files:
        relative = file.relative_to(package)
        module = "robnas." + ".".join((layer, *relative.with_suffix("").parts)).removesuffix(".__init__")
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        allowed = SPACE_DOMAIN_BUILDERS.get(str(relative), set()) if layer == "spaces" else set()
        for name, line, function, top in _imports(tree, module):
            if layer == "spaces" and top and (name == "torch" or name.startswith("torch.")):
                problems.append(f"{layer}/{relative}:{line} imports {name} at module level")
            if not _names(name, forbidden):
                continue
            if name.split(".")[0] == "ray" and function in allowed and not top:
                continue
            problems.append(f"{layer}/{relative}:{line} imports {name}" + (f" in {function}()" if function else ""))
    assert not problems, "\n".join(problems)


_CHILD = textwrap.dedent("""
    import importlib, pkgutil, sys

    BLOCKED = {blocked!r}

    class Block:
        def find_spec(self, name, path=None, target=None):
            if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                raise ImportError(f"{{name}} is blocked by test_layers")
            return None

    sys.meta_path.insert(0, Block())
    package = importlib.import_module({package!r})
    names = [package.__name__]
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)
        names.append(info.name)
    leaked = sorted(m for m in sys.modules if any(m == b or m.startswith(b + ".") for b in BLOCKED))
    assert not leaked, leaked
    print(len(names))
""")


@pytest.mark.parametrize("layer", CHECKED)
def test_every_module_imports_without_the_layers_to_its_right_and_ray(layer):
    blocked = _forbidden(layer)
    code = _CHILD.format(blocked=blocked, package=f"robnas.{layer}")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    modules = sum(1 for _ in _package_dir(layer).rglob("*.py"))
    assert int(done.stdout.split()[-1]) == modules
