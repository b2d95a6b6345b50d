"""Every module of the package imports on its own, and the module import graph has no cycle.

Each module is imported first, alone, in a fresh interpreter (an import that only works because
another module happened to be imported before it fails here). The graph is read statically
with ``ast`` from the module-level ``import`` / ``from ... import`` statements (imports inside
functions run later and do not count; ``if TYPE_CHECKING:`` blocks never run).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import unittest
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PACKAGE = "neural_networks"
ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = ROOT / PACKAGE
# Importing these runs a program (``python -m neural_networks``): not imported, but still in the graph.
RUNS_ON_IMPORT = {f"{PACKAGE}.__main__"}


def module_files() -> dict[str, Path]:
    """``{dotted module name: file}`` for every module of the package, found by walking it."""
    modules = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if not all(part.isidentifier() for part in parts):
            continue  # not importable (e.g. a data folder with a dash)
        if any(not (ROOT.joinpath(*parts[:i]) / "__init__.py").is_file() for i in range(1, len(parts))):
            continue  # a folder that is not a package
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _module_level_imports(tree: ast.Module):
    """The ``Import`` / ``ImportFrom`` nodes that run when the module is imported."""
    pending = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending.extend(node.orelse)
        else:
            pending.extend(child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt))
            for handler in getattr(node, "handlers", ()):  # try/except bodies
                pending.extend(handler.body)


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """``{module: modules of the package that importing it imports first}``.

    ``from .x import y`` depends on ``x`` (it reads ``y`` from it), or only on ``x.y`` when
    that is a module (``from . import functional``); importing ``a.b.c`` also runs the packages
    ``a.b`` and ``a``, except those already being imported around the importer (its own
    parent packages)."""
    graph = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        own_package = name if is_package else name.rpartition(".")[0]
        targets = set()
        for node in _module_level_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            else:
                if node.level:
                    base_parts = own_package.split(".")
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                # A submodule named in the list is imported itself; any other name is read from ``base``.
                found = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            for target in found:
                if target not in modules:
                    continue
                targets.add(target)
                targets.update(a for a in _ancestors(target) if a in modules and a not in _ancestors(name) + [name])
        targets.discard(name)
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle ``[m0, m1, ..., m0]`` of the graph, or ``None``."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    for start in sorted(graph):
        if colour[start] != WHITE:
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        colour[start] = GREY
        while stack:
            node, children = stack[-1]
            for child in children:
                if colour.get(child, BLACK) == GREY:
                    return path[path.index(child) :] + [child]
                if colour.get(child) == WHITE:
                    colour[child] = GREY
                    path.append(child)
                    stack.append((child, iter(sorted(graph[child]))))
                    break
            else:
                colour[node] = BLACK
                path.pop()
                stack.pop()
    return None


def _import_alone(name: str) -> tuple[str, int, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    result = subprocess.run(
        [sys.executable, "-c", f"import {name}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    return name, result.returncode, result.stderr


class TestImports(unittest.TestCase):
    def test_walk_finds_the_package(self):
        modules = module_files()
        for name in (
            PACKAGE,
            f"{PACKAGE}.layers",
            f"{PACKAGE}.layers.base",
            f"{PACKAGE}.functional",
            f"{PACKAGE}.regularization",
            f"{PACKAGE}.datasets.base",
        ):
            self.assertIn(name, modules)

    def test_every_module_imports_alone_in_a_fresh_interpreter(self):
        names = sorted(set(module_files()) - RUNS_ON_IMPORT)
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            results = list(pool.map(_import_alone, names))
        failures = [f"import {name} failed (exit {rc}):\n{err.strip()}" for name, rc, err in results if rc != 0]
        self.assertEqual(failures, [], "\n\n".join(failures))

    def test_module_import_graph_has_no_cycle(self):
        graph = import_graph(module_files())
        self.assertIn(f"{PACKAGE}.layers.base", graph[f"{PACKAGE}.layers.dense"])
        self.assertIn(f"{PACKAGE}.functional", graph[f"{PACKAGE}.layers.normalization"])
        cycle = find_cycle(graph)
        self.assertIsNone(cycle, f"import cycle: {' -> '.join(cycle or [])}")


class TestGraphHelpers(unittest.TestCase):
    """The cycle finder and the import parser on small inputs."""

    def test_find_cycle(self):
        self.assertIsNone(find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}))
        self.assertEqual(find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}), ["a", "b", "c", "a"])
        self.assertEqual(find_cycle({"a": set(), "b": {"b2"}, "b2": {"b"}}), ["b", "b2", "b"])

    def test_only_module_level_imports(self):
        tree = ast.parse(
            "import os\n"
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from .models import NeuralNetwork\n"
            "try:\n    import torch\nexcept ImportError:\n    from . import fallback\n"
            "def f():\n    from .late import thing\n"
            "class C:\n    from . import in_class\n"
        )
        found = sorted(ast.unparse(node) for node in _module_level_imports(tree))
        self.assertEqual(
            found,
            [
                "from . import fallback",
                "from . import in_class",
                "from typing import TYPE_CHECKING",
                "import os",
                "import torch",
            ],
        )

    def test_the_old_cycle_would_be_found(self):
        graph = {
            "neural_networks.layers": {"neural_networks.regularization"},
            "neural_networks.regularization": {"neural_networks.layers"},
        }
        self.assertEqual(
            find_cycle(graph), ["neural_networks.layers", "neural_networks.regularization", "neural_networks.layers"]
        )


if __name__ == "__main__":
    unittest.main()
