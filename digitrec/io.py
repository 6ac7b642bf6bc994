"""Writing files whole or not at all, and errors in one line: the two habits every command shares."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary name beside `path` to write to; renamed to `path` when the block succeeds,
    removed when it fails: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: never a half-written file."""
    with atomic_path(path) as tmp:
        # a plain exclusive open (not mkstemp's 0600) so the file gets the usual umask permissions
        with open(tmp, "xb") as f:
            f.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def one_line(e: BaseException | str, limit: int | None = None) -> str:
    """An error's message on one line (whitespace runs collapsed), its type when it has none;
    cut to `limit` characters."""
    text = " ".join(str(e).split())
    if not text and isinstance(e, BaseException):
        text = type(e).__name__
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def first_line(e: BaseException | str) -> str:
    """An error's first non-empty line (its type when it has none)."""
    text = str(e).strip()
    if not text:
        return type(e).__name__ if isinstance(e, BaseException) else ""
    return text.splitlines()[0]
