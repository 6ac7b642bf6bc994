"""Results: the study pages of experiments/, included at build time (mkdocs-gen-files).

Each experiments/**/README.md (and any other .md there, such as NOTES.md) becomes a page under
results/ (README.md as the folder's index.md), so the site shows the committed write-ups as they
are, never a copy that can go stale. Links are rewritten for the site: to another study page, to
the page; to an image beside a page, to a copy of it; anything else outside the pages (a script,
a JSON file, the package) becomes plain text naming its path in the repository.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "experiments"
OUT = Path("results")
IMAGES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}

if not (EXPERIMENTS / "README.md").is_file():
    raise RuntimeError(f"{EXPERIMENTS / 'README.md'} is missing")

pages = {
    p: p.relative_to(EXPERIMENTS)
    for p in sorted(EXPERIMENTS.rglob("*.md"))
    if ".ipynb_checkpoints" not in p.parts
}


def site_path(rel: Path) -> Path:
    """experiments/<rel> → results/<rel>, README.md as index.md."""
    return OUT / (rel.parent / "index.md" if rel.name == "README.md" else rel)


LINK = re.compile(r"(!?)\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^()\s]*(?:\([^()]*\))?[^()\s]*)\)")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})")


def rewrite(source: Path, text: str) -> tuple[str, set[Path]]:
    """The page's text with its links made right for the site, and the images it needs."""
    here = site_path(pages[source]).parent
    copies: set[Path] = set()

    def target_for(m: re.Match) -> str:
        bang, label, target = m.groups()
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^#", target) or not target:
            return m.group(0)  # a URL, mailto: or an anchor on the same page
        path, _, anchor = target.partition("#")
        resolved = Path(os.path.normpath(source.parent / path))
        anchor = f"#{anchor}" if anchor else ""
        try:
            rel = resolved.relative_to(EXPERIMENTS)
        except ValueError:
            rel = None
        dest = None
        if rel is not None:
            if resolved.is_dir() and (resolved / "README.md").is_file():
                dest = site_path(rel / "README.md")
            elif resolved in pages:
                dest = site_path(rel)
            elif resolved.is_file() and resolved.suffix.lower() in IMAGES:
                dest = OUT / rel
                copies.add(resolved)
        if dest is not None:
            link = posixpath.relpath(dest.as_posix(), here.as_posix())
            return f"{bang}[{label}]({link}{anchor})"
        # outside the site: say where it is, as text
        where = resolved.relative_to(ROOT).as_posix() if resolved.is_relative_to(ROOT) else path
        if resolved.is_dir():
            where += "/"
        plain = label.strip("`").rstrip("/")
        if plain in {where.rstrip("/"), path.rstrip("/"), Path(where).name}:
            return f"`{where}`"
        return f"{label} (`{where}` in the repository)"

    out, in_fence = [], None
    for line in text.splitlines(keepends=True):
        m = FENCE.match(line)
        if m:
            mark = m.group(1)
            if in_fence is None:
                in_fence = mark[0] * len(mark)
            elif mark.startswith(in_fence):
                in_fence = None
            out.append(line)
            continue
        if in_fence is not None:
            out.append(line)
            continue
        # leave inline code alone: rewrite only the parts between backtick spans
        pieces = re.split(r"(`+[^`]*`+)", line)
        out.append("".join(p if p.startswith("`") else LINK.sub(target_for, p) for p in pieces))
    return "".join(out), copies


nav = mkdocs_gen_files.Nav()
images: set[Path] = set()
for source, rel in pages.items():
    text, copies = rewrite(source, source.read_text())
    images |= copies
    dest = site_path(rel)
    origin = f"`experiments/{rel.as_posix()}`"
    note = (
        f'\n\n!!! note "From the repository"\n    This page is {origin}, included as it is '
        "when the site is built; links to files outside the study pages are shown as paths.\n"
    )
    # the note goes after the page's first heading
    head, sep, rest = text.partition("\n")
    body = head + note + sep + rest if head.startswith("# ") else note.lstrip() + "\n" + text
    with mkdocs_gen_files.open(dest, "w") as f:
        f.write(body)
    key = rel.parent.parts if rel.name == "README.md" else (*rel.parent.parts, rel.stem)
    nav[key or ("Overview",)] = dest.relative_to(OUT).as_posix()

for image in sorted(images):
    with mkdocs_gen_files.open(OUT / image.relative_to(EXPERIMENTS), "wb") as f:
        f.write(image.read_bytes())

with mkdocs_gen_files.open(OUT / "SUMMARY.md", "w") as f:
    f.writelines(nav.build_literate_nav())
