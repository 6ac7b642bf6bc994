"""The web server's uploads: a body read within a size limit and a deadline, and checked to be a
JPEG or PNG; every refusal an HTTP status with one readable line (`Refused`)."""

from __future__ import annotations

import asyncio

from starlette.requests import ClientDisconnect

TYPES = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG\r\n\x1a\n"}
DISCARD_LIMIT = 100_000_000  # an oversized upload up to this size is read and dropped, so the
# client (still sending) gets the 413 instead of a reset connection


class Refused(Exception):
    """An upload answered with an HTTP error and a one-line message."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def declared_length(headers) -> int | None:
    """The Content-Length header as a number of bytes; None when the body is chunked."""
    value = headers.get("content-length")
    if value is None:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return None
        raise Refused(411, "upload without a Content-Length (send the photo as the body)")
    if not value.strip().isdigit():
        raise Refused(400, f"Content-Length {value!r}: expected a number of bytes")
    return int(value)


async def read_body(request, max_bytes: int, timeout: float) -> bytes:
    """The request body, refused with 413 as soon as it passes `max_bytes` (the rest, up to
    DISCARD_LIMIT, is read and dropped) and with 408 when it takes longer than `timeout`."""
    length = declared_length(request.headers)
    if length is not None and length > DISCARD_LIMIT:
        raise Refused(
            413,
            f"upload of {length / 1e6:.1f} MB: at most {max_bytes / 1e6:g} MB",
            {"Connection": "close"},
        )
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size <= max_bytes:
                    chunks.append(chunk)
                elif size > DISCARD_LIMIT:
                    break
    except TimeoutError:
        raise Refused(
            408, f"upload too slow: {size} bytes in {timeout:g} s", {"Connection": "close"}
        ) from None
    except ClientDisconnect:  # nobody is left to answer; no traceback for it
        raise Refused(400, f"the client left after {size} bytes") from None
    if size > max_bytes:
        raise Refused(413, f"upload of {size / 1e6:.1f} MB or more: at most {max_bytes / 1e6:g} MB")
    if size == 0:
        raise Refused(400, "empty upload: choose a photo")
    return b"".join(chunks)


async def drain(request, timeout: float) -> None:
    """Read and drop a body of at most DISCARD_LIMIT bytes within `timeout` seconds."""
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > DISCARD_LIMIT:
                    return
    except (TimeoutError, ClientDisconnect):
        return


def check_type(data: bytes, content_type: str) -> None:
    declared = content_type.split(";")[0].strip().lower()
    kind = next((t for t, magic in TYPES.items() if data.startswith(magic)), None)
    if kind is None or (
        declared and declared != "application/octet-stream" and declared not in TYPES
    ):
        raise Refused(415, f"upload of type {declared or 'unknown'}: expected a JPEG or PNG image")
