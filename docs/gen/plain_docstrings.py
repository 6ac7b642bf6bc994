"""A Griffe extension for the API reference: docstrings shown as written, not read as links.

digitrec's docstrings are prose with `code` spans, not Markdown written for a site: a usage line
such as `digitrec-train [-m] [overrides]` would be read as a Markdown reference link and, with no
such target, fail `mkdocs build --strict`. This escapes every `[` outside code (backtick spans,
fenced or indented blocks) so the page shows exactly what the source says. Loaded by
mkdocstrings (mkdocs.yml: handlers.python.options.extensions); never part of the package.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_CODE_SPAN = re.compile(r"(`+)(?:.*?)\1", re.DOTALL)


def escape(text: str) -> str:
    out, fence = [], None
    for line in text.split("\n"):
        stripped = line.lstrip()
        if stripped.startswith(("```", "~~~")):
            mark = stripped[:3]
            fence = None if fence == mark else (fence or mark)
            out.append(line)
            continue
        if fence or line.startswith("    "):
            out.append(line)
            continue
        pieces, last = [], 0
        for m in _CODE_SPAN.finditer(line):
            pieces.append(line[last : m.start()].replace("[", "\\["))
            pieces.append(m.group(0))
            last = m.end()
        pieces.append(line[last:].replace("[", "\\["))
        out.append("".join(pieces))
    return "\n".join(out)


class PlainDocstrings(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = escape(obj.docstring.value)
