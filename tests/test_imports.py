"""Every module of the package imports on its own, the module import graph has no cycle, and
the data flows one way.

Each module is imported first, alone, in a fresh interpreter (an import that only works because
another module happened to be imported before it fails here). The graphs are read statically
with ``ast``:

* what importing a module runs: its module-level ``import`` / ``from ... import`` statements
  (imports inside functions run later; ``if TYPE_CHECKING:`` blocks never run). A cycle here
  breaks an import outright.
* every dependency: all import statements at any depth (inside functions and classes, under
  ``if TYPE_CHECKING:``, relative or absolute) and ``importlib.import_module("...")`` calls with
  a literal name. A cycle here is one hidden by moving an import into a function; it must be
  broken by direction instead (docs/design/architecture.md: a lower module receives what it needs from above, or
  the shared part moves down). The same graph checks the direction rules (docs/design/architecture.md)
  (:data:`NEVER_REACHES`).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tempfile
import unittest
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PACKAGE = "neural_networks"
ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = ROOT / PACKAGE
# Importing these runs a program (``python -m neural_networks``): not imported, but still in the graph.
RUNS_ON_IMPORT = {f"{PACKAGE}.__main__"}


def module_files(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """``{dotted module name: file}`` for every module of ``package`` (a folder of ``root``),
    found by walking it."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if not all(part.isidentifier() for part in parts):
            continue  # not importable (e.g. a data folder with a dash)
        if any(not (root.joinpath(*parts[:i]) / "__init__.py").is_file() for i in range(1, len(parts))):
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


def _every_import(tree: ast.Module):
    """Every ``Import`` / ``ImportFrom`` node at any depth, and each ``importlib.import_module``
    (or ``__import__``) call whose name is a literal, as the ``Import`` / ``ImportFrom`` it amounts
    to: an import the module can run at some point, whether or not importing it runs it."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.Call) and node.args and _is_import_call(node.func):
            name = node.args[0]
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                continue  # a computed name: nothing to read statically
            level = len(name.value) - len(name.value.lstrip("."))
            module = name.value[level:]
            if not level:
                yield ast.Import(names=[ast.alias(name=module)])
                continue
            package = node.args[1] if len(node.args) > 1 else None
            if isinstance(package, ast.Constant) and isinstance(package.value, str):
                # relative to a named package: resolved here, as an absolute import
                base = ".".join(package.value.split(".")[: len(package.value.split(".")) - (level - 1)])
                yield ast.Import(names=[ast.alias(name=f"{base}.{module}" if module else base)])
                continue
            # relative to ``__package__`` (the usual call): a relative import of the whole module
            parent, _, last = module.rpartition(".")
            yield ast.ImportFrom(module=parent or None, names=[ast.alias(name=last)], level=level)


def _is_import_call(func: ast.expr) -> bool:
    """Whether ``func`` is ``importlib.import_module``, a bare ``import_module`` or ``__import__``."""
    if isinstance(func, ast.Attribute):
        return func.attr == "import_module"
    return isinstance(func, ast.Name) and func.id in ("import_module", "__import__")


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(modules: dict[str, Path], everywhere: bool = False) -> dict[str, set[str]]:
    """``{module: modules of the package that importing it imports first}``; with ``everywhere``,
    ``{module: modules of the package it imports anywhere}`` (:func:`_every_import`).

    ``from .x import y`` depends on ``x`` (it reads ``y`` from it), or only on ``x.y`` when
    that is a module (``from . import functional``); importing ``a.b.c`` also runs the packages
    ``a.b`` and ``a``, except those already being imported around the importer (its own
    parent packages)."""
    imports = _every_import if everywhere else _module_level_imports
    graph = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        own_package = name if is_package else name.rpartition(".")[0]
        targets = set()
        for node in imports(ast.parse(path.read_text(), str(path))):
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


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as :func:`find_cycle` gives it) for each group of modules that import one
    another (each strongly connected component with more than one module, or a self-import)."""
    cycles, left = [], {name: set(targets) for name, targets in graph.items()}
    while True:
        cycle = find_cycle(left)
        if cycle is None:
            return cycles
        cycles.append(cycle)
        # drop the whole group the cycle belongs to, so that each group is reported once
        group = reachable(left, cycle[0]) & {n for n in left if cycle[0] in reachable(left, n)}
        left = {name: targets - group for name, targets in left.items() if name not in group}


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """The modules ``start`` imports directly or through others (``start`` only if on a cycle)."""
    seen, pending = set(), [start]
    while pending:
        for child in graph.get(pending.pop(), ()):
            if child not in seen:
                seen.add(child)
                pending.append(child)
    return seen


def import_path(graph: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    """A shortest chain of imports ``[start, ..., goal]``, or ``None``."""
    came_from, frontier = {start: None}, [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph.get(node, ())):
                if child in came_from:
                    continue
                came_from[child] = node
                if child == goal:
                    path = [child]
                    while came_from[path[-1]] is not None:
                        path.append(came_from[path[-1]])
                    return path[::-1]
                following.append(child)
        frontier = following
    return None


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    """Whether module ``name`` is one of ``prefixes`` or inside one of those packages."""
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def _p(*names: str) -> tuple[str, ...]:
    return tuple(f"{PACKAGE}.{name}" for name in names)


#: The direction of the data (docs/design/architecture.md) (dataset -> model.forward -> loss -> backward -> optimizer ->
#: callbacks) as ``(lower modules, upper modules)`` pairs: no module of the first group imports one
#: of the second, directly or through others, anywhere in its code. The loop and the package's
#: top (``neural_networks/__init__.py``, the CLI, experiments) may import everything.
NEVER_REACHES = (
    # a layer never imports the model (nor anything that drives it)
    (_p("layers"), _p("models", "training", "callbacks", "tensorboard", "logs", "experiments", "cli")),
    # the model never imports the loop or the callbacks
    (_p("models"), _p("training", "callbacks", "tensorboard", "logs", "experiments", "cli")),
    # serialization receives the class it builds
    (_p("serialization"), _p("models", "training", "callbacks")),
    # the loop drives the callbacks
    (_p("callbacks"), _p("training", "experiments", "cli")),
    # the runner drives the loop
    (_p("training"), _p("experiments", "cli")),
    # the optimizer never imports a data set
    (_p("optimizers"), _p("datasets", "models", "training")),
    # kernels import nothing of the library above them
    (_p("functional"), _p("layers", "models", "activations", "losses", "optimizers", "training", "callbacks")),
)


def direction_violations(graph: dict[str, set[str]]) -> list[str]:
    """One line per module of a lower group of :data:`NEVER_REACHES` that reaches an upper one,
    naming the chain of imports."""
    found = []
    for lower, upper in NEVER_REACHES:
        for name in sorted(n for n in graph if _within(n, lower)):
            for target in sorted(t for t in reachable(graph, name) if _within(t, upper)):
                found.append(" -> ".join(import_path(graph, name, target)))
    return found


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
            f"{PACKAGE}.functional.reference",
            f"{PACKAGE}.callbacks.base",
            f"{PACKAGE}.tune.study",
            f"{PACKAGE}.training.loop",
            f"{PACKAGE}.experiments.runner",
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

    def test_no_cycle_through_imports_anywhere(self):
        """No cycle even through imports inside functions (which only hide one from the import system)."""
        graph = import_graph(module_files(), everywhere=True)
        self.assertIn(f"{PACKAGE}.layers.base", graph[f"{PACKAGE}.layers.dense"])
        cycles = find_cycles(graph)
        self.assertEqual(
            cycles, [], "import cycles through imports anywhere:\n" + "\n".join(" -> ".join(c) for c in cycles)
        )

    def test_data_flows_one_way(self):
        violations = direction_violations(import_graph(module_files(), everywhere=True))
        self.assertEqual(
            violations,
            [],
            "imports against the direction of the data (docs/design/architecture.md):\n" + "\n".join(violations),
        )


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

    def test_every_import(self):
        tree = ast.parse(
            "import os\n"
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from .models import NeuralNetwork\n"
            "def f():\n    from .late import thing\n    from . import sibling\n    import pkg.deep\n"
            "class C:\n    def g(self):\n        from ..up import x\n"
            "def h():\n    return importlib.import_module('.tensorboard', __package__)\n"
            "def k(name):\n    return importlib.import_module(name)\n"  # computed: not readable
            "importlib.import_module('pkg.other')\n"
            "importlib.import_module('.named', 'pkg.sub')\n"
        )
        found = sorted(ast.unparse(node) for node in _every_import(tree))
        self.assertEqual(
            found,
            [
                "from . import sibling",
                "from . import tensorboard",
                "from ..up import x",
                "from .late import thing",
                "from .models import NeuralNetwork",
                "from typing import TYPE_CHECKING",
                "import os",
                "import pkg.deep",
                "import pkg.other",
                "import pkg.sub.named",
            ],
        )

    def test_a_cycle_through_a_function_level_import_is_found(self):
        """The circles this test was written for, rebuilt in a small package: the model importing
        the loop, the loop the callbacks, the callbacks serialization, and serialization the
        model class inside a function; two study modules importing each other, one in a function;
        and a registry entry importing its class by name. Only the graph of every import sees them."""
        files = {
            "__init__.py": "from .models import Net\n",
            "models.py": "from . import serialization\nfrom .training import fit\nclass Net: ...\n",
            "training.py": "from .callbacks import Callback\ndef fit(): ...\n",
            "callbacks.py": (
                "import importlib\nfrom . import serialization\nclass Callback: ...\n"
                "def deferred():\n    return importlib.import_module('.board', __package__)\n"
            ),
            "board.py": "from .callbacks import Callback\n",
            "serialization.py": "def load(cls=None):\n    if cls is None:\n        from .models import Net as cls\n",
            "tune/__init__.py": "",
            "tune/study.py": "from ..io import write\ndef run():\n    from .report import write_report\n",
            "tune/report.py": "from .study import ATTR\n",
            "io.py": "",
        }
        with tempfile.TemporaryDirectory() as tmp:
            for name, text in files.items():
                path = Path(tmp, "pkg", name)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            modules = module_files(Path(tmp), "pkg")
            self.assertIsNone(find_cycle(import_graph(modules)))  # what the module-level graph sees
            graph = import_graph(modules, everywhere=True)
        self.assertEqual(
            find_cycles(graph),
            [
                ["pkg.models", "pkg.serialization", "pkg.models"],
                ["pkg.tune.report", "pkg.tune.study", "pkg.tune.report"],
            ],
        )
        # one group each: the first holds the loop, the callbacks and the registry's deferred import
        self.assertEqual(
            {name for name in graph if "pkg.models" in reachable(graph, name)},
            {"pkg", "pkg.models", "pkg.serialization", "pkg.training", "pkg.callbacks", "pkg.board"},
        )
        self.assertEqual(graph["pkg.callbacks"], {"pkg.serialization", "pkg.board"})

    def test_direction_violations_name_the_chain(self):
        graph = {
            f"{PACKAGE}.models": {f"{PACKAGE}.layers"},
            f"{PACKAGE}.layers": {f"{PACKAGE}.layers.base"},
            f"{PACKAGE}.layers.base": {f"{PACKAGE}.callbacks.base"},
            f"{PACKAGE}.callbacks.base": set(),
        }
        self.assertEqual(
            direction_violations(graph),
            [
                f"{PACKAGE}.layers -> {PACKAGE}.layers.base -> {PACKAGE}.callbacks.base",
                f"{PACKAGE}.layers.base -> {PACKAGE}.callbacks.base",
                f"{PACKAGE}.models -> {PACKAGE}.layers -> {PACKAGE}.layers.base -> {PACKAGE}.callbacks.base",
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
