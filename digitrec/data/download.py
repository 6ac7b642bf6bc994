"""HTTP downloads with resume, size and md5 checks, a progress bar, and atomic writes."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A file could not be fetched from any source; the message lists what was tried."""


def file_digest(path: str | Path, algorithm: str = "md5", chunk: int = CHUNK) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def md5sum(path: str | Path) -> str:
    return file_digest(path, "md5")


def sha256sum(path: str | Path) -> str:
    return file_digest(path, "sha256")


def writable(path: str | Path) -> bool:
    """Whether files may be written under `path` (its nearest existing folder): permission and
    the mode bits too (a superuser's access() ignores a read-only mode, e.g. a shared copy)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return os.access(path, os.W_OK) and bool(path.stat().st_mode & 0o222)


def user_cache(*parts: str) -> Path:
    """`$XDG_CACHE_HOME/digitrec/...` (default ~/.cache/digitrec/...)."""
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return home.joinpath("digitrec", *parts)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # a plain exclusive open (not mkstemp's 0600) so the file gets the usual umask permissions
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def download(
    url: str,
    dest: str | Path,
    md5: str | None = None,
    size: int | None = None,
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """Fetch `url` to `dest`, resuming a previous partial download (`dest.part`).

    The file appears at `dest` only once complete and verified (size and md5 when given).
    """
    dest = Path(dest)
    if dest.exists() and (md5 is None or md5sum(dest) == md5):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    request = urllib.request.Request(url, headers={"User-Agent": "digitrec"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if have and response.status != 206:  # server ignored the range: start over
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else size
        mode = "ab" if have else "wb"
        with (
            open(part, mode) as f,
            tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                desc=dest.name,
                disable=not progress,
            ) as bar,
        ):
            while block := response.read(CHUNK):
                f.write(block)
                bar.update(len(block))
    got = part.stat().st_size
    if size is not None and got != size:
        raise DownloadError(f"{url}: got {got} bytes, expected {size}; run again to resume")
    if md5 is not None and (actual := md5sum(part)) != md5:
        part.unlink()
        raise DownloadError(f"{url}: md5 {actual}, expected {md5}; the partial file was removed")
    os.replace(part, dest)
    return dest


def download_first(
    urls: Iterable[str], dest: str | Path, md5: str | None = None, **kwargs
) -> tuple[Path | None, list[str]]:
    """Try each mirror in turn; return (path or None, one line per failed attempt)."""
    failures = []
    for url in urls:
        try:
            return download(url, dest, md5=md5, **kwargs), failures
        except (urllib.error.URLError, OSError, DownloadError, ValueError) as e:
            reason = getattr(e, "reason", None) or e
            failures.append(f"{url}: {reason}")
    return None, failures
