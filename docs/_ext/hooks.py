"""mkdocs hooks (``hooks:`` in ``mkdocs.yml``).

``docs/results.md`` includes ``benchmarks/RESULTS.md`` with pymdownx.snippets, so the repository
keeps one copy of the measurements. That file's relative links are written for where it lies
(``[README.md](README.md)`` is ``benchmarks/README.md``), which in the site would point at pages
that do not exist. After the snippet is inserted, each such link is rewritten relative to the page:
to the site's page where the target is one of the docs (``../docs/performance.md``), else to the
file's repository path as inline code (the site holds no copy of it). Anchors within the page
(``#...``) and web addresses are left as they are. The included file's headings move one level
down, below the page's own title (their anchors, made from their text, stay the same).
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path

from markdown.extensions import Extension
from markdown.preprocessors import Preprocessor

#: Pages that include a file by snippet, and the folder that file's links are relative to.
INCLUDED_FROM = {"results.md": "benchmarks"}
LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)\)")

_state = {"page": None, "docs_dir": "docs"}


class _IncludedLinks(Preprocessor):
    def run(self, lines):
        folder = INCLUDED_FROM.get(_state["page"] or "")
        if folder is None:
            return lines
        out, fenced, titled = [], False, False
        for line in lines:
            if line.lstrip().startswith(("```", "~~~")):
                fenced = not fenced
            if not fenced:
                line = LINK.sub(lambda match: _rewrite(match, folder), line)
                if re.match(r"#{1,5} ", line):
                    if titled:  # the page's own title is its first heading
                        line = "#" + line
                    titled = True
            out.append(line)
        return out


def _rewrite(match, folder: str) -> str:
    text, target = match["text"], match["target"]
    if re.match(r"^[a-z][a-z0-9+.-]*:|^#", target, re.IGNORECASE):
        return match.group(0)
    path, _, anchor = target.partition("#")
    repo_path = posixpath.normpath(posixpath.join(folder, path))
    docs_dir = _state["docs_dir"].rstrip("/") + "/"
    if repo_path.startswith(docs_dir) and repo_path.endswith(".md"):
        page_dir = posixpath.dirname(_state["page"])
        relative = posixpath.relpath(repo_path[len(docs_dir) :], page_dir or ".")
        return f"[{text}]({relative}{'#' + anchor if anchor else ''})"
    code = f"`{repo_path}`"
    plain = text.strip("`")
    return code if plain in (repo_path, posixpath.basename(repo_path), path) else f"{text} ({code})"


class _Extension(Extension):
    def extendMarkdown(self, md):
        # after pymdownx.snippets (priority 32) has inserted the file
        md.preprocessors.register(_IncludedLinks(md), "included_links", 31)


def on_config(config, **kwargs):
    # relative to the working directory, which pymdownx.snippets' base_path (".") is too
    _state["docs_dir"] = Path(os.path.relpath(config["docs_dir"])).as_posix()
    config["markdown_extensions"].append(_Extension())
    return config


def on_page_markdown(markdown, page, **kwargs):
    _state["page"] = page.file.src_uri
    return markdown
