"""Reference: one page per module of the digitrec package, found at build time (mkdocs-gen-files).

The package is walked on disk, never listed by hand, so a module added, moved or removed shows
up at the next build. Skipped: `__main__`, the `hydra_plugins` folder (Hydra's plugin shim) and
private modules and packages (a name starting with `_`, except `__init__`). mkdocstrings renders
each page from the source by static analysis (griffe): nothing is imported.
"""

from __future__ import annotations

from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "digitrec"


def public(path: Path) -> bool:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if "hydra_plugins" in parts or "__pycache__" in parts or parts[-1] == "__main__":
        return False
    if any(part.startswith("_") and part != "__init__" for part in parts):
        return False
    # a module belongs to the package only when every folder above it is a package
    return all((ROOT.joinpath(*parts[:i]) / "__init__.py").is_file() for i in range(1, len(parts)))


modules = sorted(p for p in PACKAGE.rglob("*.py") if public(p))
if not any(p == PACKAGE / "__init__.py" for p in modules):
    raise RuntimeError(f"{PACKAGE / '__init__.py'} is missing")

nav = mkdocs_gen_files.Nav()
for path in modules:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
        doc = Path(*parts, "index.md")
    else:
        doc = Path(*parts).with_suffix(".md")
    ident = ".".join(parts)
    nav[parts] = doc.as_posix()
    with mkdocs_gen_files.open(Path("reference/api", doc), "w") as f:
        f.write(f"# `{ident}`\n\n::: {ident}\n")

with mkdocs_gen_files.open("reference/api/SUMMARY.md", "w") as f:
    f.writelines(nav.build_literate_nav())
