"""The docs site: the API reference covers the package, the site builds with no warning, and every
page works in a real browser, offline.

* **Docstrings** (no extra needed): every public module of ``neural_networks`` (no ``_``-prefixed
  part in its name) has a ``::: module`` block on some page of ``docs/api/``; the module has a
  docstring, and so does every name it exports (its ``__all__``; without one, the public classes and
  functions it defines), every public method and property of those classes (an inherited
  docstring counts), and every exported constant (a string literal under its assignment, or
  Sphinx's ``#:`` comment above it, which the API pages show).
* **Build** (the docs extra: ``pip install -e ".[docs]"``; skipped without mkdocs):
  ``mkdocs build --strict`` into a temporary folder, once for the module, fails on any warning
  (a broken link or anchor, an unresolved cross-reference, a failing example on a page).
* **Browser** (Playwright driving Debian's Chromium, ``apt-get install chromium``; no browser is
  downloaded): the built site served on localhost, every page opened; fails on console errors,
  page errors, failed requests or HTTP errors, images that did not load, any request to another
  host (the site must work offline), and links within the site to a missing file or anchor.
  Screenshots of the home page and an API page go to ``build/docs-screenshots/`` (or
  ``$NEURAL_NETWORKS_ARTIFACTS``). Skipped where Playwright or Chromium is missing, unless
  ``NEURAL_NETWORKS_REQUIRE_BROWSER=1`` (``.ci/run`` sets it), which makes that a failure.
"""

from __future__ import annotations

import ast
import functools
import html.parser
import http.server
import importlib
import inspect
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import types
import unittest
import urllib.parse
from pathlib import Path

from .helpers import missing

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "neural_networks"
API_DOCS = ROOT / "docs" / "api"
CONFIG = ROOT / "mkdocs.yml"
CHROMIUM = os.environ.get("NEURAL_NETWORKS_CHROMIUM", "/usr/bin/chromium")
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
#: The API page whose screenshot is kept with the home page's.
API_SCREENSHOT = "api/losses.html"
BUILD_TIMEOUT = 600  # seconds
PAGE_TIMEOUT = 60_000  # milliseconds, per navigation


# ----------------------------------------------------------------------------- docstrings


def public_modules() -> list[str]:
    """Dotted names of the package's public modules, from the files (nothing imported)."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(part.startswith("_") for part in parts):
            continue
        names.append(".".join(parts))
    return names


def documented_modules() -> dict[str, list[str]]:
    """``{module: [pages]}`` for every ``::: identifier`` block of ``docs/api``."""
    found: dict[str, list[str]] = {}
    for page in sorted(API_DOCS.rglob("*.md")):
        for match in re.finditer(r"^:::\s*(\S+)", page.read_text(encoding="utf-8"), re.MULTILINE):
            found.setdefault(match.group(1), []).append(page.relative_to(ROOT).as_posix())
    return found


def _module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def _source(module: str):
    path = _module_file(module)
    if path is None:
        return None
    text = path.read_text(encoding="utf-8")
    return ast.parse(text), text.splitlines()


def _is_docstring(node) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def constant_docstring(module: str, name: str, seen=()) -> str | None:
    """The docstring of the module-level assignment of ``name`` in ``module`` (following
    ``from .x import name``): the string under it, or its ``#:`` comments; ``None`` when there is
    none, or when no assignment is found."""
    parsed = _source(module)
    if parsed is None or (module, name) in seen:
        return None
    tree, lines = parsed
    body = tree.body
    for index, node in enumerate(body):
        targets = []
        if isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
            targets = [node.target.id]
        if name in targets:
            after = body[index + 1] if index + 1 < len(body) else None
            if after is not None and _is_docstring(after) and after.value.value.strip():
                return after.value.value
            comment = re.search(r"#:\s?(.*)$", lines[node.lineno - 1])
            text = [comment.group(1)] if comment else []
            row = node.lineno - 2
            while not text and row >= 0 and lines[row].strip().startswith("#:"):
                row -= 1
            if not text:
                text = [line.strip()[2:].strip() for line in lines[row + 1 : node.lineno - 1]]
            return " ".join(text).strip() or None
        if isinstance(node, ast.ImportFrom) and any((alias.asname or alias.name) == name for alias in node.names):
            original = next(alias.name for alias in node.names if (alias.asname or alias.name) == name)
            package = module if _module_file(module).name == "__init__.py" else module.rpartition(".")[0]
            source = node.module or ""
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            return constant_docstring(source, original, (*seen, (module, name)))
    return None


def _own_doc(cls) -> str:
    """A class's own docstring; not one Python writes for it (a dataclass's or named tuple's
    ``Name(field, ...)``) nor one inherited."""
    doc = (cls.__dict__.get("__doc__") or "").strip()
    return "" if re.fullmatch(rf"{re.escape(cls.__name__)}\(.*\)", doc, re.DOTALL) else doc


def docstring_offenders() -> tuple[list[str], list[str]]:
    """``(offenders, notes)``: what lacks a docstring, and modules that could not be imported."""
    offenders, notes, classes = [], [], {}
    for name in public_modules():
        try:
            module = importlib.import_module(name)
        except ImportError as error:  # an optional package missing: say so, check the rest
            notes.append(f"{name} not imported ({error})")
            continue
        if not (module.__doc__ or "").strip():
            offenders.append(f"module {name}")
        exported = getattr(module, "__all__", None)
        if exported is None:
            exported = [
                key
                for key, value in vars(module).items()
                if not key.startswith("_")
                and (inspect.isclass(value) or inspect.isfunction(value))
                and getattr(value, "__module__", None) == name
            ]
        for key in exported:
            if not hasattr(module, key):
                offenders.append(f"{name}.{key} (in __all__, not defined)")
                continue
            value = getattr(module, key)
            if inspect.isclass(value):
                if not _own_doc(value):
                    offenders.append(f"class {name}.{key}")
                if getattr(value, "__module__", "").startswith("neural_networks"):
                    classes.setdefault(id(value), value)
            elif inspect.isfunction(value) or inspect.isbuiltin(value) or isinstance(value, functools.partial):
                if not (inspect.getdoc(value) or "").strip():
                    offenders.append(f"function {name}.{key}")
            elif isinstance(value, types.ModuleType):
                pass  # checked as a module
            elif not constant_docstring(name, key):
                offenders.append(f"constant {name}.{key} (a string under it, or #: comments above it)")
    for cls in classes.values():
        for key, attribute in vars(cls).items():
            if key.startswith("_"):
                continue
            if isinstance(attribute, (staticmethod, classmethod)):
                attribute = attribute.__func__
            if not (inspect.isfunction(attribute) or isinstance(attribute, (property, functools.cached_property))):
                continue
            if not (inspect.getdoc(getattr(cls, key, attribute)) or inspect.getdoc(attribute) or "").strip():
                kind = "method" if inspect.isfunction(attribute) else "property"
                offenders.append(f"{kind} {cls.__module__}.{cls.__qualname__}.{key}")
    return sorted(set(offenders)), notes


class TestApiCoverage(unittest.TestCase):
    def test_every_public_module_has_an_api_page(self):
        pages = documented_modules()
        absent = [name for name in public_modules() if name not in pages]
        self.assertEqual(absent, [], f"public modules with no ::: block in docs/api/: {absent}")
        unknown = [name for name in pages if name not in public_modules()]
        self.assertEqual(unknown, [], f"::: blocks naming no public module: {unknown}")
        twice = {name: where for name, where in pages.items() if len(where) > 1}
        self.assertEqual(twice, {}, f"modules documented more than once: {twice}")

    def test_every_public_object_has_a_docstring(self):
        offenders, notes = docstring_offenders()
        if notes:
            print("not checked:", *notes, sep="\n  ")
        if offenders:
            self.fail(f"{len(offenders)} public objects without a docstring:\n  " + "\n  ".join(offenders))


# ----------------------------------------------------------------------------- the build

_site: dict = {}


def tearDownModule():
    if "dir" in _site:
        shutil.rmtree(_site["dir"], ignore_errors=True)


def build_site():
    """``(site folder, result)`` of one strict build into a temporary folder, made once; skips the
    calling test without mkdocs and its plugins."""
    for name in ("mkdocs", "material", "mkdocstrings_handlers.python", "markdown_exec"):
        reason = missing(name, "docs")
        if reason is not None:
            raise unittest.SkipTest(reason)
    if "result" not in _site:
        _site["dir"] = Path(tempfile.mkdtemp(prefix="neural-networks-site-"))
        started = time.perf_counter()
        _site["result"] = subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(CONFIG), "-d", str(_site["dir"])],
            cwd=ROOT,
            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # no banner about Material's future
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
        )
        _site["seconds"] = time.perf_counter() - started
    return _site["dir"], _site["result"]


#: A Python warning as ``warnings`` prints it, from code outside the installed packages (an
#: example on a page, the library it calls); mkdocs' own log lines are the other kind.
PYTHON_WARNING = re.compile(r"^(?P<file>[^\s:][^:]*):\d+: \w*Warning: ")


def build_warnings(result) -> list[str]:
    """The warnings and errors in mkdocs' log, each with its continuation lines, and the Python
    warnings raised by the docs' own code (not by the installed build tools)."""
    found, current = [], None
    for line in (result.stderr + result.stdout).splitlines():
        python_warning = PYTHON_WARNING.match(line)
        if python_warning and re.search(r"site-packages|dist-packages|/usr/lib/python", python_warning["file"]):
            python_warning = None
        if re.match(r"^(WARNING|ERROR|CRITICAL)\b", line) or python_warning:
            current = [line]
            found.append(current)
        elif re.match(r"^(INFO|DEBUG)\b", line) or not line.strip():
            current = None
        elif current is not None:
            current.append(line)
    return ["\n".join(lines) for lines in found]


class TestBuild(unittest.TestCase):
    def test_strict_build_has_no_warning(self):
        site, result = build_site()
        print(f"mkdocs build --strict: {_site['seconds']:.1f} s, exit status {result.returncode}")
        warnings = build_warnings(result)
        if warnings:
            self.fail(f"{len(warnings)} warnings:\n" + "\n".join(warnings))
        self.assertEqual(result.returncode, 0, f"mkdocs build failed:\n{result.stderr[-5000:]}")
        self.assertTrue((site / "index.html").is_file())


# ----------------------------------------------------------------------------- the browser


class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key == "id" or (key == "name" and tag == "a"):
                self.ids.add(value)


@functools.cache
def _anchors(path: Path) -> frozenset:
    parser = _Ids()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return frozenset(parser.ids)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def _require_browser():
    """The Playwright module, or a skip (a failure with NEURAL_NETWORKS_REQUIRE_BROWSER=1)."""
    reason = missing("playwright", "docs")
    if reason is None and not os.access(CHROMIUM, os.X_OK):
        reason = f"no Chromium at {CHROMIUM}: apt-get install chromium (or set NEURAL_NETWORKS_CHROMIUM)"
    if reason is not None:
        if os.environ.get("NEURAL_NETWORKS_REQUIRE_BROWSER") == "1":
            raise AssertionError(f"NEURAL_NETWORKS_REQUIRE_BROWSER=1 but {reason}")
        raise unittest.SkipTest(reason)
    return importlib.import_module("playwright.sync_api")


# Every <img> loaded eagerly, then the ones that did not load (naturalWidth 0).
BROKEN_IMAGES = """async () => {
  const images = Array.from(document.images);
  images.forEach(img => { img.loading = "eager"; });
  await Promise.all(images.map(img => img.complete ? null
    : new Promise(done => { img.addEventListener("load", done); img.addEventListener("error", done); })));
  return images.filter(img => img.naturalWidth === 0).map(img => img.currentSrc || img.src);
}"""
LINKS = "() => Array.from(document.querySelectorAll('a[href]')).map(a => [a.getAttribute('href'), a.href])"


class TestBrowser(unittest.TestCase):
    def test_every_page_loads_offline_with_no_error(self):
        sync_api = _require_browser()
        site, result = build_site()
        if result.returncode != 0:
            self.fail("the site did not build (see test_strict_build_has_no_warning)")
        pages = sorted(path.relative_to(site).as_posix() for path in site.rglob("*.html"))
        self.assertIn("index.html", pages)
        self.assertIn(API_SCREENSHOT, pages)
        artefacts = Path(os.environ.get("NEURAL_NETWORKS_ARTIFACTS") or ROOT / "build" / "docs-screenshots")
        artefacts.mkdir(parents=True, exist_ok=True)

        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site))
        )
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        origin = f"http://127.0.0.1:{server.server_address[1]}"
        problems: list[str] = []
        current = {"page": None}
        started = time.perf_counter()

        def note(what: str):
            problems.append(f"{current['page']}: {what}")

        def route(route_):
            host = urllib.parse.urlsplit(route_.request.url).hostname
            if route_.request.url.startswith(("http:", "https:", "ws:", "wss:")) and host not in LOCAL_HOSTS:
                note(f"request to another host: {route_.request.url}")
                route_.abort()
            else:
                route_.continue_()

        try:
            with sync_api.sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.route("**/*", route)
                page = context.new_page()
                page.on("console", lambda message: message.type == "error" and note(f"console error: {message.text}"))
                page.on("pageerror", lambda error: note(f"page error: {error}"))
                # ERR_ABORTED: cancelled by the next navigation (the search index of a page left at
                # once), or by route() above, which notes why
                page.on(
                    "requestfailed",
                    lambda request: (
                        "ERR_ABORTED" not in (request.failure or "")
                        and note(f"request failed: {request.url} ({request.failure})")
                    ),
                )
                page.on(
                    "response",
                    lambda response: response.status >= 400 and note(f"HTTP {response.status}: {response.url}"),
                )
                for name in pages:
                    current["page"] = name
                    response = page.goto(f"{origin}/{name}", wait_until="load", timeout=PAGE_TIMEOUT)
                    if response is None or not response.ok:
                        note(f"not loaded ({response.status if response else 'no response'})")
                        continue
                    for src in page.evaluate(BROKEN_IMAGES):
                        note(f"image not loaded: {src}")
                    for raw, absolute in page.evaluate(LINKS):
                        problem = self._link_problem(site, origin, absolute)
                        if problem:
                            note(f"link {raw!r}: {problem}")
                    if name in ("index.html", API_SCREENSHOT, pages[-1]):
                        page.wait_for_load_state("networkidle", timeout=PAGE_TIMEOUT)
                    if name in ("index.html", API_SCREENSHOT):
                        shot = artefacts / ("home.png" if name == "index.html" else Path(name).stem + ".png")
                        page.screenshot(path=str(shot), full_page=True)
                browser.close()
        finally:
            server.shutdown()
            server.server_close()
        print(f"{len(pages)} pages checked in {time.perf_counter() - started:.1f} s; screenshots in {artefacts}")
        if problems:
            self.fail(f"{len(problems)} problems:\n  " + "\n  ".join(problems))

    @staticmethod
    def _link_problem(site: Path, origin: str, url: str) -> str | None:
        if not url.startswith(origin + "/"):
            return None  # another site (a link, not a request), mailto:, ...
        parts = urllib.parse.urlsplit(url)
        path = urllib.parse.unquote(parts.path).lstrip("/")
        if path == "" or path.endswith("/"):
            path += "index.html"
        target = site / path
        if not target.is_file():
            return f"no file {path}"
        fragment = urllib.parse.unquote(parts.fragment)
        if fragment and target.suffix == ".html" and fragment not in _anchors(target):
            return f"no anchor #{fragment} in {path}"
        return None


if __name__ == "__main__":
    unittest.main()
