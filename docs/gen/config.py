"""Reference: the Hydra config groups in conf/, walked at build time (mkdocs-gen-files).

Every folder under conf/ is a group (nested ones such as data/layouts included) and every .yaml
in it an option; conf/train.yaml (the primary config) comes first. Each option's leading comment
is its summary, and its whole file is shown as it is.
"""

from __future__ import annotations

from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"

# folders under conf/ that are not composed by digitrec-train but read by a command
NOTES = {
    "reproduce": "Profiles of `digitrec-reproduce --profile NAME` (`make reproduce-paper "
    "PROFILE=NAME`): plain YAML read by that command, not composed into a training config.",
}


def summary(text: str) -> str:
    """The file's first comment paragraph, on one line (no `# @package` line)."""
    out: list[str] = []
    for line in text.splitlines():
        s = line.strip()
        if not s.startswith("#"):
            break
        s = s.lstrip("#").strip()
        if s.startswith("@package"):
            continue
        if not s:
            if out:
                break
            continue
        out.append(s)
    return " ".join(out).replace("|", "\\|")


def block(text: str) -> list[str]:
    fence = "```"
    while fence in text:
        fence += "`"
    return [f"{fence}yaml", text.rstrip("\n"), fence, ""]


if not (CONF / "train.yaml").is_file():
    raise RuntimeError(f"{CONF / 'train.yaml'} is missing")

groups = sorted(
    (d for d in CONF.rglob("*") if d.is_dir() and any(d.glob("*.yaml"))),
    key=lambda d: d.relative_to(CONF).as_posix(),
)
lines = [
    "# Config groups",
    "",
    "Everything `digitrec-train` runs is composed by Hydra from `conf/`: `conf/train.yaml` and",
    "one option of each group it lists (`group=option` on the command line; nested groups such as",
    "`data/layouts` the same way). This page is generated from `conf/` when the site is built",
    "(`docs/gen/config.py`): the files below are the files in the repository.",
    "",
    "| group | options |",
    "|---|---|",
]
for d in groups:
    name = d.relative_to(CONF).as_posix()
    options = ", ".join(f"`{p.stem}`" for p in sorted(d.glob("*.yaml")))
    lines.append(f"| [`{name}`](#{name.replace('/', '')}) | {options} |")
lines += [
    "",
    "## train.yaml",
    "",
    "The primary config: its `defaults` list picks one option of each "
    "group, and its own keys (`study`, `seed`, `paths`, `tracking`, ...) are set here.",
    "",
]
lines += block((CONF / "train.yaml").read_text())
for extra in sorted(p for p in CONF.glob("*.yaml") if p.name != "train.yaml"):
    lines += [f"## {extra.name}", "", summary(extra.read_text()) or "–", ""]
    lines += block(extra.read_text())

for d in groups:
    name = d.relative_to(CONF).as_posix()
    lines += [f"## {name}", ""]
    if name in NOTES:
        lines += [NOTES[name], ""]
    files = sorted(d.glob("*.yaml"))
    lines += ["| option | summary |", "|---|---|"]
    lines += [f"| `{name}={p.stem}` | {summary(p.read_text()) or '–'} |" for p in files]
    lines.append("")
    for p in files:
        lines += [f"### {name}={p.stem}", "", f"`conf/{name}/{p.name}`", ""]
        lines += block(p.read_text())

with mkdocs_gen_files.open("reference/config.md", "w") as f:
    f.write("\n".join(lines))
