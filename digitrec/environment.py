"""The Python environment a run ran in: the lock file's digest and a `pip freeze`.

`make install` installs the lock for the venv's Python version (requirements/lock-linux-py3XX.txt,
refreshed by `make lock`) and then digitrec itself, so a run can record

- lock_digest(): the short sha256 of that lock file, the same for every run installed from the
  same lock (None when there is none: digitrec installed from a wheel, or a Python without a
  lock), and
- pip_freeze(): every installed distribution, one `name==version` a line, sorted, like
  `pip freeze --all` (editable installs as `-e <url>`, other direct-URL installs as
  `name @ <url>`) but read through importlib.metadata in a few milliseconds, without starting
  pip.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from importlib import metadata
from pathlib import Path

from digitrec.paths import ROOT  # the repository (an editable install's source)

DIGEST_CHARS = 12


def lock_file(root: Path = ROOT) -> Path:
    """The lock for this Python version (it may not exist)."""
    return root / "requirements" / f"lock-linux-py{sys.version_info[0]}{sys.version_info[1]}.txt"


def lock_digest(root: Path = ROOT) -> str | None:
    """The first 12 hex digits of the sha256 of the lock file in use; None when there is none."""
    path = lock_file(root)
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return hashlib.sha256(data).hexdigest()[:DIGEST_CHARS]


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _name_version(dist: metadata.Distribution) -> tuple[str | None, str | None]:
    """Name and Version from the metadata's header lines (Distribution.metadata parses the whole
    file with the email parser: ten times slower over a full environment)."""
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():  # the headers end at the first blank line
            break
        key, _, value = line.partition(":")
        if key in ("Name", "Version") and key not in found:
            found[key] = value.strip()
    return found.get("Name"), found.get("Version")


def _requirement(dist: metadata.Distribution, name: str, version: str | None) -> str:
    try:
        direct = json.loads(dist.read_text("direct_url.json") or "null")
    except (json.JSONDecodeError, OSError):
        direct = None
    if isinstance(direct, dict) and "url" in direct:
        if direct.get("dir_info", {}).get("editable"):
            return f"-e {direct['url']}  # {name}=={version}"
        return f"{name} @ {direct['url']}"
    return f"{name}=={version}"


def pip_freeze() -> str:
    """Every distribution installed for this interpreter, one a line, sorted by name; the first
    on sys.path wins when a name is installed twice (the one that imports)."""
    seen: dict[str, str] = {}
    for dist in metadata.distributions():
        name, version = _name_version(dist)
        if not name or _normalized(name) in seen:
            continue
        seen[_normalized(name)] = _requirement(dist, name, version)
    return "".join(f"{seen[k]}\n" for k in sorted(seen))
