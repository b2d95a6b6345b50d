"""A griffe extension that lets mkdocstrings render the library's reST-flavoured docstrings as
Markdown, without changing them in the code (configured in ``mkdocs.yml``, handler option
``extensions``).

The docstrings are written for Sphinx habits; this rewrites, in every docstring of the package:

* **roles** (``:class:`BatchNorm```, ``:func:`~neural_networks.functional.dense```,
  ``:meth:`Layer.freeze```, ``:mod:`.reference```, ``:data:``, ``:attr:``, ``:exc:``, ``:obj:``)
  into mkdocstrings cross-references (``[`BatchNorm`][neural_networks.layers.normalization.BatchNorm]``)
  when the name resolves, as Python would from where the docstring is (the object, its class,
  its module and the packages above it, imports included, inherited members too), or else to
  the one object of the package with that name and kind; and only when the target is rendered
  on an API page. Anything else (NumPy, the standard library, a private helper) becomes inline
  code, so that the strict build has no unresolved reference;
* **literal blocks** (a paragraph ending in ``::`` and the indented block after it) and
  **doctests** (``>>>`` lines and their output) into fenced code blocks, and **section titles** underlined with ``----`` into bold paragraphs (their
  ``name: text`` lines into a list), where Markdown would make a heading of them;
* **``#:`` comments** above an assignment (Sphinx's attribute docstrings) into the attribute's
  docstring, which griffe does not read;
* an **undocumented override** takes the docstring of the method it overrides (as
  ``inspect.getdoc`` does), and a **re-export** (``neural_networks.layers.Conv2D``, imported from
  ``.convolution``) is left out of its package's page when its definition has a page of its own,
  so that each object is documented once.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import griffe

ROLE = re.compile(r":(?:py:)?(?P<role>class|func|meth|mod|data|attr|exc|obj|const):`(?P<text>[^`]+)`")
#: The kinds of object each role may name, to pick the one object of a short name.
ROLE_KINDS = {
    "class": {"class"},
    "exc": {"class"},
    "func": {"function"},
    "meth": {"function"},
    "mod": {"module"},
    "data": {"attribute"},
    "const": {"attribute"},
    "attr": {"attribute"},
    "obj": {"class", "function", "attribute", "module"},
}
LITERAL = re.compile(r"^(?P<indent>\s*)(?P<text>.*?)(?P<space>\s?)::\s*$")
UNDERLINE = re.compile(r"^\s*([-=~^\"'`#*+])\1{2,}\s*$")
ITEM = re.compile(r"^(?P<names>[A-Za-z_*][\w*]*(?:\s*,\s*[A-Za-z_*][\w*]*)*)\s*:\s+(?P<text>.*)$")


def _final(obj):
    """The object an alias ends at, or ``None`` outside what griffe loaded (NumPy, ...)."""
    if obj is None or not obj.is_alias:
        return obj
    try:
        return obj.final_target
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None


def _members(obj) -> dict:
    obj = _final(obj)
    if obj is None:
        return {}
    if obj.is_class:
        try:
            return obj.all_members  # inherited members too
        except Exception:  # unresolvable bases
            return obj.members
    return obj.members


def _walk(obj, parts):
    for part in parts:
        obj = _members(obj).get(part)
        if obj is None:
            return None
    return obj


class ReSTDocstrings(griffe.Extension):
    """See the module's docstring."""

    def on_package(self, *, pkg, loader=None, **kwargs) -> None:
        """Once a package is loaded, every module of it: see the module's docstring."""
        if getattr(pkg, "_rest_docstrings", False) or pkg.filepath is None:
            return
        filepath = pkg.filepath[0] if isinstance(pkg.filepath, list) else pkg.filepath
        if not Path(filepath).resolve().is_relative_to(Path.cwd().resolve()):
            return  # an installed package (NumPy, ...), not this repository's
        pkg._rest_docstrings = True
        self._convert_package(pkg, loader)

    on_package_loaded = on_package  # the same hook under its older name

    def _convert_package(self, pkg, loader) -> None:
        self.pkg = pkg
        self.loader = loader
        objects = list(self._objects(pkg))
        for obj in objects:
            if obj.is_attribute and not obj.docstring:
                self._comment_docstring(obj)
        for obj in objects:
            if obj.is_function and not obj.docstring and obj.parent is not None and obj.parent.is_class:
                self._inherit_docstring(obj)
        for obj in objects:
            # special members (__init_subclass__, __repr__, ...) only where they say something
            if obj.name.startswith("__") and obj.name.endswith("__") and not obj.docstring:
                obj.public = False
        self._hide_reexports(objects)
        self.by_name: dict[str, list] = {}
        for obj in objects:
            if self._rendered(obj):
                self.by_name.setdefault(obj.name, []).append(obj)
        for obj in objects:
            if obj.docstring:
                obj.docstring.value = self.convert(obj.docstring.value, obj)

    # ------------------------------------------------------------------ what is rendered where

    def _objects(self, obj):
        yield obj
        for member in list(obj.members.values()):
            if not member.is_alias:
                yield from self._objects(member)

    def _lineage_public(self, obj) -> bool:
        while obj is not None and obj.parent is not None:
            if obj.name.startswith("_"):
                return False
            obj = obj.parent
        return True

    def _rendered(self, obj) -> bool:
        """Whether ``obj`` (object or alias) has an anchor of its own on an API page: every public
        module has a ``:::`` block (``tests/test_docs.py`` checks it), and in one, what the
        handler's ``filters: public`` keeps (``__all__`` where there is one, else the names without
        a leading underscore; class members by name), if it has a docstring; nothing inside a
        function."""
        try:
            return self._is_rendered(obj)
        except (griffe.AliasResolutionError, griffe.CyclicAliasError):  # an import from outside
            return False

    def _is_rendered(self, obj) -> bool:
        if not self._lineage_public(obj):
            return False
        if obj.is_module:
            return True
        parent = obj.parent
        if parent is None or not obj.has_docstrings:  # the handler's show_if_no_docstring: false
            return False
        if parent.is_module:
            return bool(obj.is_public)
        if parent.is_class:
            return self._rendered(parent)
        return False

    def _hide_reexports(self, objects) -> None:
        for module in objects:
            if not module.is_module or not self._lineage_public(module):
                continue
            for alias in list(module.members.values()):
                if not alias.is_alias:
                    continue
                target = _final(alias)
                if target is None or not alias.is_public:
                    continue
                if target is not None and not target.is_alias and target.path.startswith(self.pkg.path + "."):
                    if target is not alias and self._rendered(target):
                        alias.public = False

    # ------------------------------------------------------------------ docstrings griffe misses

    def _new_docstring(self, text: str, obj, lineno=None):
        options = {}
        if self.loader is not None:
            options = {
                "parser": getattr(self.loader, "docstring_parser", None),
                "parser_options": getattr(self.loader, "docstring_options", None),
            }
        return griffe.Docstring(text, lineno=lineno, parent=obj, **options)

    def _comment_docstring(self, attr) -> None:
        """Sphinx's ``#:`` comments on the lines above the assignment, or after it on its line."""
        if attr.lineno is None or attr.filepath is None or self.loader is None:
            return
        try:
            lines = self.loader.lines_collection[attr.filepath]
        except KeyError:
            return
        index = attr.lineno - 1
        if not 0 <= index < len(lines):
            return
        comment = []
        same_line = re.search(r"#:\s?(.*)$", lines[index])
        if same_line:
            comment = [same_line.group(1)]
        else:
            i = index - 1
            while i >= 0 and lines[i].strip().startswith("#:"):
                comment.insert(0, re.sub(r"^\s*#:\s?", "", lines[i]))
                i -= 1
        text = "\n".join(comment).strip()
        if text:
            attr.docstring = self._new_docstring(text, attr, lineno=attr.lineno)

    def _inherit_docstring(self, method) -> None:
        cls = method.parent
        try:
            bases = cls.mro()
        except Exception:
            return
        for base in bases:
            inherited = base.members.get(method.name)
            inherited = _final(inherited)
            if inherited is not None and inherited.docstring:
                method.docstring = self._new_docstring(inherited.docstring.value, method)
                return

    # ------------------------------------------------------------------ reST to Markdown

    def convert(self, text: str, obj) -> str:
        lines = text.split("\n")
        lines = self._sections(lines)
        lines = self._literal_blocks(lines)
        lines = self._doctests(lines)
        out, fenced = [], False
        for line in lines:
            if line.lstrip().startswith("```"):
                fenced = not fenced
            out.append(line if fenced else ROLE.sub(lambda match: self._role(match, obj), line))
        return "\n".join(out)

    def _sections(self, lines):
        """``Title`` over ``-----`` into ``**Title**``; its ``name: text`` lines into a list."""
        out, in_section, i = [], False, 0
        while i < len(lines):
            line = lines[i]
            if (
                i + 1 < len(lines)
                and line.strip()
                and not line.startswith(" ")
                and UNDERLINE.match(lines[i + 1])
                and len(lines[i + 1].strip()) >= len(line.strip())
            ):
                out += [f"**{line.strip()}**", ""]
                in_section, i = True, i + 2
                while i < len(lines) and not lines[i].strip():
                    i += 1
                continue
            if in_section:
                item = ITEM.match(line)
                if item:
                    names = ", ".join(f"`{name.strip()}`" for name in item["names"].split(","))
                    line = f"- {names}: {item['text']}"
                elif not line.strip():
                    in_section = False
            out.append(line)
            i += 1
        return out

    def _literal_blocks(self, lines):
        out, i = [], 0
        while i < len(lines):
            match = LITERAL.match(lines[i])
            if match is None or "```" in lines[i]:
                out.append(lines[i])
                i += 1
                continue
            indent = len(match["indent"])
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            if j == len(lines) or len(lines[j]) - len(lines[j].lstrip()) <= indent:
                out.append(lines[i])  # not a literal block: leave the text as it is
                i += 1
                continue
            block = []
            while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent):
                block.append(lines[j])
                j += 1
            while block and not block[-1].strip():
                block.pop()
            text = match["text"]
            if text:
                out.append(match["indent"] + text + ("" if match["space"] else ":"))
            pad = match["indent"]
            out += [
                "",
                pad + "```text",
                *(pad + line for line in textwrap.dedent("\n".join(block)).split("\n")),
                pad + "```",
                "",
            ]
            i = j
        return out

    def _doctests(self, lines):
        """A doctest (``>>>`` lines and their output, up to a blank line) into a fenced block."""
        out, fenced, i = [], False, 0
        while i < len(lines):
            line = lines[i]
            if line.lstrip().startswith("```"):
                fenced = not fenced
            if fenced or not line.lstrip().startswith(">>>"):
                out.append(line)
                i += 1
                continue
            pad = line[: len(line) - len(line.lstrip())]
            block = []
            while i < len(lines) and lines[i].strip() and lines[i].startswith(pad):
                block.append(lines[i][len(pad) :])
                i += 1
            if out and out[-1].strip() and len(out[-1]) - len(out[-1].lstrip()) >= len(pad):
                out.append("")  # after a paragraph (not after a section title such as Example:)
            out += [pad + "```pycon", *(pad + line for line in block), pad + "```", ""]
        return out

    def _role(self, match, obj) -> str:
        role, text = match["role"], match["text"].strip()
        explicit = re.fullmatch(r"(?P<title>.+?)\s*<(?P<target>[^>]+)>", text)
        title, target = (explicit["title"], explicit["target"]) if explicit else (None, text)
        no_link = target.startswith("!")
        target = target.lstrip("!")
        short = target.startswith("~")
        target = target.lstrip("~")
        name = target[:-2] if target.endswith("()") else target
        if title is None:
            title = target.split(".")[-1] if short else target.lstrip(".")
        path = None if no_link else self._resolve(name, role, obj)
        if path is None:
            return f"`{title}`"
        return f"[`{title}`][{path}]"

    def _resolve(self, name: str, role: str, obj) -> str | None:
        parts = [part for part in name.lstrip(".").split(".") if part]
        if not parts:
            return None
        candidates = []
        if parts[0] == self.pkg.name:
            candidates.append(_walk(self.pkg, parts[1:]))
        scope = obj
        while scope is not None:
            candidates.append(_walk(scope, parts))
            scope = scope.parent
        kinds = ROLE_KINDS.get(role, ROLE_KINDS["obj"])
        named = [o for o in self.by_name.get(parts[0], []) if len(parts) > 1 or o.kind.value in kinds]
        if role == "meth" and len(parts) == 1:
            named = [o for o in named if o.parent is not None and o.parent.is_class]
        if len(named) == 1:
            candidates.append(_walk(named[0], parts[1:]) if len(parts) > 1 else named[0])
        for found in candidates:
            path = self._anchor(found)
            if path is not None:
                return path
        return None

    def _anchor(self, found) -> str | None:
        """The identifier of the API page's anchor for ``found``, if it has one."""
        if found is None:
            return None
        target = _final(found)
        if target is not None and self._rendered(target):
            return target.path
        if found.is_alias and not getattr(found, "inherited", False) and self._rendered(found):
            return found.path
        return None
