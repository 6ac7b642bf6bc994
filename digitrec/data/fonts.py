"""Font families for the rendered stand-in, fetched once: `digitrec-data fonts`.

A reader trained on two or three font families reads those families; real house numbers come in
hundreds. `ensure_fonts` fetches the pinned `@fontsource/*` packages (open-licensed Google Fonts
families, mostly SIL OFL 1.1) from the npm registry — each tarball checked against the registry's
sha512 `integrity`, resumable, every network wait bounded (DIGITREC_NET_TIMEOUT, see
digitrec/data/download.py) — and extracts the Latin, normal-style WOFF files of the listed weights
into `<data_dir>/fonts/<family>-<weight>.woff` (~/.cache/digitrec/fonts when the data folder is
read-only). Nothing is committed; the renderer (digitrec/data/street/) reads these beside the
machine's own fonts. The tarballs are deleted once their fonts are out (about 90 MB fetched, 4 MB
kept).
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import tarfile
from pathlib import Path

from digitrec.data.download import (
    DownloadError,
    download,
    net_timeout,
    timeout_hint,
    user_cache,
    writable,
)
from digitrec.io import atomic_write_bytes

log = logging.getLogger(__name__)

REGISTRY = "https://registry.npmjs.org/"
GIVE_UP = 3  # failed downloads in a row after which the registry counts as unreachable
SUFFIXES = (".ttf", ".otf", ".woff", ".woff2")  # what the renderer loads (FreeType reads all four)


def _families() -> tuple[tuple[str, str, str, int, tuple[str, ...]], ...]:
    """The pinned families (fonts.tsv beside this file): (family, version, the registry's
    integrity of the tarball, its size in bytes, weights)."""
    rows = []
    for line in (Path(__file__).with_name("fonts.tsv")).read_text().splitlines():
        if line and not line.startswith("#"):
            family, version, integrity, size, weights = line.split("\t")
            rows.append((family, version, integrity, int(size), tuple(weights.split(","))))
    return tuple(rows)


FAMILIES = _families()


def tarball_url(family: str, version: str) -> str:
    return f"{REGISTRY}@fontsource/{family}/-/{family}-{version}.tgz"


def font_dir(data_dir: str | Path) -> Path:
    """`<data_dir>/fonts`, or `~/.cache/digitrec/fonts` when the data folder is read-only."""
    return Path(data_dir) / "fonts" if writable(data_dir) else user_cache("fonts")


def integrity(data: bytes) -> str:
    """The npm registry's integrity string (sha512, base64) of `data`."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def ensure_fonts(
    data_dir: str | Path, families=FAMILIES, timeout: float | None = None, progress: bool = True
) -> list[Path]:
    """Fetch and extract every family not yet in `<data_dir>/fonts`; the font files there.

    `timeout` bounds each connect and read (default $DIGITREC_NET_TIMEOUT, else 20 s); after
    GIVE_UP failed downloads in a row the registry counts as unreachable: the rest is skipped.
    Raises DownloadError naming the families that could not be fetched (the others are kept)."""
    t = net_timeout(timeout)
    out = font_dir(data_dir)
    failures = []
    in_a_row, slow, skipped = 0, False, 0
    for family, version, want, size, weights in families:
        targets = {w: out / f"{family}-{w}.woff" for w in weights}
        if all(p.is_file() for p in targets.values()):
            continue
        if in_a_row >= GIVE_UP:  # not tried: the registry looks unreachable
            skipped += 1
            continue
        tgz = out / "npm" / f"{family}-{version}.tgz"
        try:
            download(tarball_url(family, version), tgz, size=size, timeout=t, progress=progress)
        except OSError as e:  # DownloadError is one
            failures.append(f"@fontsource/{family}@{version}: {getattr(e, 'reason', None) or e}")
            in_a_row += 1
            slow = slow or getattr(e, "timed_out", False)
            log.warning("%s", failures[-1])
            continue
        in_a_row = 0
        try:
            data = tgz.read_bytes()
            if (got := integrity(data)) != want:
                tgz.unlink()
                raise DownloadError(f"{tgz.name}: integrity {got[:24]}…, expected {want[:24]}…")
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                for weight, target in targets.items():
                    member = f"package/files/{family}-latin-{weight}-normal.woff"
                    try:
                        blob = tar.extractfile(member)
                    except KeyError:
                        blob = None
                    if blob is None:
                        raise DownloadError(f"{tgz.name}: no {member} inside")
                    atomic_write_bytes(target, blob.read())
            tgz.unlink()
        except (OSError, tarfile.TarError) as e:  # DownloadError is an OSError
            failures.append(f"@fontsource/{family}@{version}: {getattr(e, 'reason', None) or e}")
    if failures:
        gave_up = (
            f"; stopped after {GIVE_UP} failed downloads in a row (is {REGISTRY} "
            f"reachable?), {skipped} more not tried"
            if skipped
            else ""
        )
        hint = f"; {timeout_hint(t)}" if slow else ""
        raise DownloadError(
            f"{len(failures) + skipped} of {len(families)} font packages could not "
            f"be fetched ({'; '.join(failures[:3])}{'; …' if len(failures) > 3 else ''})"
            f"{gave_up}; run digitrec-data fonts again to resume{hint}"
        )
    return font_files(data_dir)


def font_files(data_dir: str | Path) -> list[Path]:
    """The fonts `digitrec-data fonts` put in `<data_dir>/fonts` (none when it never ran)."""
    folder = font_dir(data_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*") if p.suffix.lower() in SUFFIXES)
