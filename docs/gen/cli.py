"""Reference: every console script's `--help`, run at build time (mkdocs-gen-files).

The scripts are read from pyproject.toml's [project.scripts] and run from the environment that
runs MkDocs (the folder of sys.executable: .venv/bin under `make docs`). A script that is missing,
fails, times out or prints nothing fails the build: the page never has silent gaps.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TIMEOUT = 120

scripts: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
if not scripts:
    raise RuntimeError("pyproject.toml has no [project.scripts]")

# no network: every proxy points at a closed local port, and the project's own downloads give
# up at once; a fixed width makes argparse wrap the same way on every machine
env = dict(os.environ)
for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
    env[key] = "http://127.0.0.1:9"
env.update(
    no_proxy="",
    NO_PROXY="",
    DIGITREC_NET_TIMEOUT="1",
    HF_HUB_OFFLINE="1",
    COLUMNS="100",
    LINES="50",
    NO_COLOR="1",
    TERM="dumb",
    PYTHONWARNINGS="ignore",
    HYDRA_FULL_ERROR="1",
)


def run(name: str) -> str:
    exe = BIN / name
    if not exe.exists():
        raise RuntimeError(
            f"{name}: not installed next to {sys.executable} ({exe}); run make install"
        )
    try:
        p = subprocess.run(
            [str(exe), "--help"],
            capture_output=True,
            text=True,
            env=env,
            timeout=TIMEOUT,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"{name} --help: no answer within {TIMEOUT} s") from e
    if p.returncode != 0 or not p.stdout.strip():
        raise RuntimeError(f"{name} --help: exit {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p.stdout.rstrip()


with ThreadPoolExecutor(max_workers=min(4, len(os.sched_getaffinity(0)))) as pool:
    helps = dict(zip(scripts, pool.map(run, scripts), strict=True))

lines = [
    "# Command-line tools",
    "",
    "Every console script that `pyproject.toml` installs, with its `--help` as printed by the",
    "installed script. This page is generated when the site is built (`docs/gen/cli.py`), so it",
    "is the help of the code the site was built from.",
    "",
    "| command | entry point |",
    "|---|---|",
    *(f"| [`{name}`](#{name}) | `{target}` |" for name, target in scripts.items()),
    "",
]
for name, target in scripts.items():
    fence = "```"
    while fence in helps[name]:
        fence += "`"
    lines += [
        f"## {name}",
        "",
        f"Entry point: `{target}`.",
        "",
        f"{fence}text",
        helps[name],
        fence,
        "",
    ]

with mkdocs_gen_files.open("reference/cli.md", "w") as f:
    f.write("\n".join(lines))
