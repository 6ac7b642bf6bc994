"""HTTP downloads with resume, size and md5 checks, a progress bar, atomic writes, bounded waits.

Every network wait is bounded (a stalled server costs seconds, not minutes):
- each connect and each read of the answer waits at most `timeout` seconds: the `timeout`
  parameter, else the environment variable DIGITREC_NET_TIMEOUT (seconds; raise it on a slow or
  flaky link, lower it in tests), else 20;
- a body trickling in at under STALL_RATE bytes/s over a whole `timeout` window counts as stalled;
- a whole transfer stops at a deadline (`transfer_deadline`: four timeouts plus the expected
  bytes at DEADLINE_RATE), the package-registry fallbacks' subprocesses too.
A stopped download keeps its `.part` file, so running the command again resumes it.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import math
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

log = logging.getLogger(__name__)

CHUNK = 1 << 20
NET_TIMEOUT_ENV = "DIGITREC_NET_TIMEOUT"
DEFAULT_TIMEOUT = 20.0  # seconds per connect or read
STALL_RATE = 1024  # bytes/s: a body slower than this over a whole timeout window is stalled
DEADLINE_RATE = 100_000  # bytes/s: the slowest average a whole transfer may have
UNKNOWN_SIZE_DEADLINE = 3600.0  # seconds, for a body of unknown length


class DownloadError(OSError):
    """A file could not be fetched from any source; the message lists what was tried. An OSError
    (the network, like the file system, is the machine's), so every command reports it in one line.

    `timed_out` is true when the failure was a wait running out (a longer timeout might help)."""

    def __init__(self, message: str, timed_out: bool = False):
        super().__init__(message)
        self.timed_out = timed_out


def net_timeout(timeout: float | None = None) -> float:
    """Seconds to wait on one connect or read: `timeout`, else $DIGITREC_NET_TIMEOUT, else 20."""
    if timeout is None:
        raw = os.environ.get(NET_TIMEOUT_ENV, "").strip()
        if not raw:
            return DEFAULT_TIMEOUT
        shown = f"{NET_TIMEOUT_ENV}={raw!r}"
    else:
        raw, shown = timeout, f"timeout={timeout!r}"
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{shown}: expected a number of seconds > 0, e.g. 30")
    return value


def transfer_deadline(nbytes: int | None, timeout: float | None = None) -> float:
    """Seconds a whole transfer of `nbytes` may take: four network waits plus the bytes at
    DEADLINE_RATE (100 kB/s; an hour when the size is unknown)."""
    body = nbytes / DEADLINE_RATE if nbytes else UNKNOWN_SIZE_DEADLINE
    return 4 * net_timeout(timeout) + body


def timeout_hint(timeout: float | None = None) -> str:
    """What a user on a slow link can do, for the end of a message."""
    return f"set {NET_TIMEOUT_ENV}=SECONDS to wait longer than {net_timeout(timeout):g} s"


def describe(error: BaseException, timeout: float) -> str:
    """A network error in words: refused, timed out after N s, HTTP 404, host not found..."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError):
        return f"timed out after {timeout:g} s"
    if isinstance(reason, ConnectionResetError):  # RemoteDisconnected too
        return "the server closed the connection"
    if isinstance(reason, socket.gaierror):
        return f"host not found ({reason.strerror})"
    return str(reason) or type(reason).__name__


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


def download(
    url: str,
    dest: str | Path,
    md5: str | None = None,
    size: int | None = None,
    timeout: float | None = None,
    progress: bool = True,
    deadline: float | None = None,
) -> Path:
    """Fetch `url` to `dest`, resuming a previous partial download (`dest.part`).

    The file appears at `dest` only once complete and verified (size and md5 when given).
    `timeout` bounds each connect and read (default $DIGITREC_NET_TIMEOUT, else 20 s),
    `deadline` the whole transfer (default `transfer_deadline` of the expected bytes). Every
    failure is a one-line DownloadError naming the URL and what happened.
    """
    dest = Path(dest)
    if dest.exists() and (md5 is None or md5sum(dest) == md5):
        return dest
    t = net_timeout(timeout)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    request = urllib.request.Request(url, headers={"User-Agent": "digitrec"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    start = time.monotonic()
    try:
        response = urllib.request.urlopen(request, timeout=t)
    except urllib.error.HTTPError as e:
        e.close()
        raise DownloadError(f"{url}: {describe(e, t)}") from None
    except urllib.error.URLError as e:  # connecting (or sending the request) failed
        slow = isinstance(e.reason, TimeoutError)
        what = f"no connection within {t:g} s (timed out)" if slow else describe(e, t)
        raise DownloadError(f"{url}: {what}", timed_out=slow) from None
    except TimeoutError:
        raise DownloadError(
            f"{url}: connected, but no answer within {t:g} s (stalled)", timed_out=True
        ) from None
    except (OSError, http.client.HTTPException, ValueError) as e:
        raise DownloadError(f"{url}: {describe(e, t)}") from None
    with response:
        if have and response.status != 206:  # server ignored the range: start over
            have = 0
        length = response.headers.get("Content-Length")
        coming = int(length) if length is not None and length.isdigit() else None
        total = size if size is not None else have + coming if coming is not None else None
        limit = (
            deadline
            if deadline is not None
            else transfer_deadline(total - have if total is not None else None, t)
        )
        got = have
        window, window_got = time.monotonic(), got
        mode = "ab" if have else "wb"
        try:
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
                while block := response.read1(CHUNK):  # one socket read: each bounded by t
                    f.write(block)
                    bar.update(len(block))
                    got += len(block)
                    now = time.monotonic()
                    if now - start > limit:
                        raise DownloadError(
                            f"{url}: not finished after {limit:.0f} s ({_of(got, total)}, under "
                            f"{DEADLINE_RATE // 1000} kB/s on average); run again to resume",
                            timed_out=True,
                        )
                    if now - window >= t:
                        if got - window_got < STALL_RATE * (now - window):
                            raise DownloadError(
                                f"{url}: stalled after {_of(got, total)}: under "
                                f"{STALL_RATE // 1024} KiB/s for {now - window:.0f} s; "
                                "run again to resume",
                                timed_out=True,
                            )
                        window, window_got = now, got
        except TimeoutError:
            raise DownloadError(
                f"{url}: stalled after {_of(got, total)}: nothing for {t:g} s; run again to resume",
                timed_out=True,
            ) from None
        except (OSError, http.client.HTTPException) as e:
            raise DownloadError(
                f"{url}: broken off after {_of(got, total)} ({describe(e, t)}); run again to resume"
            ) from None
    got = part.stat().st_size
    if total is not None and got != total:
        raise DownloadError(f"{url}: got {got} bytes, expected {total}; run again to resume")
    if md5 is not None and (actual := md5sum(part)) != md5:
        part.unlink()
        raise DownloadError(
            f"{url}: checksum mismatch: md5 {actual}, expected {md5}; the partial file was removed"
        )
    os.replace(part, dest)
    return dest


def _of(got: int, total: int | None) -> str:
    return f"{got:,} of {total:,} bytes" if total is not None else f"{got:,} bytes"


def download_first(
    urls: Iterable[str], dest: str | Path, md5: str | None = None, **kwargs
) -> tuple[Path | None, list[str]]:
    """Try each mirror in turn; return (path or None, one line per failed attempt).

    When a wait ran out, the last line ends with what to do about it ($DIGITREC_NET_TIMEOUT)."""
    t = net_timeout(kwargs.get("timeout"))  # a bad $DIGITREC_NET_TIMEOUT fails here, once
    failures = []
    slow = False
    for url in urls:
        try:
            return download(url, dest, md5=md5, **kwargs), failures
        except DownloadError as e:
            failures.append(str(e))
            slow = slow or e.timed_out
        except (OSError, ValueError) as e:  # e.g. the destination is not writable
            failures.append(f"{url}: {describe(e, t)}")
        log.warning("%s", failures[-1])
    if slow:
        failures[-1] += f" ({timeout_hint(t)})"
    return None, failures
