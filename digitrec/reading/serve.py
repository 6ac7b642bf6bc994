"""`digitrec-serve`: a local web page that reads the number in an uploaded photo.

digitrec-serve READER.ckpt --localizer LOCALIZER.ckpt            # http://127.0.0.1:8000
make serve READER=... LOCALIZER=...

FastAPI served by uvicorn, bound to 127.0.0.1 unless --host says otherwise. GET / is the page
(digitrec/reading/web/index.html), GET /health the server's state, GET /docs the OpenAPI docs.
POST /api/read takes the photo's bytes as the request body (JPEG or PNG, at most --max-mb) and
answers JSON {number, confidence, box, width, height}, or {error} with one readable line:
400 (not a readable image, a bad Content-Length, too many pixels), 408 (the upload took longer
than --upload-timeout), 411 (no Content-Length and not chunked), 413 (too large: counted while
the body streams in, whatever the header says), 415 (not JPEG/PNG), 422 (a bad query value),
503 (--workers readings running and --queue waiting: try again).

Decoding and reading run in a pool of --workers threads; at most --queue more requests wait
for it, so memory is bounded by (workers + queue) x the largest image (--max-mpx).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from importlib import resources

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.requests import ClientDisconnect

from digitrec.reading.images import ImageError, decode_image, max_pixels_default
from digitrec.reading.pipeline import PhotoReader, cli_parser, open_reader

log = logging.getLogger(__name__)

TYPES = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG\r\n\x1a\n"}
DISCARD_LIMIT = 100_000_000  # an oversized upload up to this size is read and dropped, so the
# client (still sending) gets the 413 instead of a reset connection


class Refused(Exception):
    """An upload answered with an HTTP error and a one-line message."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def page(max_bytes: int) -> str:
    html = resources.files("digitrec.reading").joinpath("web/index.html").read_text("utf-8")
    return html.replace("__MAX_BYTES__", str(max_bytes)).replace(
        "__MAX_MB__", f"{max_bytes / 1e6:g}"
    )


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
        raise Refused(413, f"upload of {length / 1e6:.1f} MB: at most {max_bytes / 1e6:g} MB",
                      {"Connection": "close"})  # fmt: skip
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
        raise Refused(408, f"upload too slow: {size} bytes in {timeout:g} s",
                      {"Connection": "close"}) from None  # fmt: skip
    except ClientDisconnect:  # nobody is left to answer; no traceback for it
        raise Refused(400, f"the client left after {size} bytes") from None
    if size > max_bytes:
        raise Refused(413, f"upload of {size / 1e6:.1f} MB or more: at most "
                           f"{max_bytes / 1e6:g} MB")  # fmt: skip
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
    if kind is None or (declared and declared != "application/octet-stream" and
                        declared not in TYPES):  # fmt: skip
        raise Refused(415, f"upload of type {declared or 'unknown'}: expected a JPEG or PNG image")


def make_app(reader: PhotoReader, max_mb: float = 10.0, workers: int = 1, queue: int = 32,
             max_pixels: int | None = None, upload_timeout: float = 30.0):  # fmt: skip
    """The FastAPI app: the page, /health, /api/read (see the module's docstring)."""
    if workers < 1 or queue < 0:
        raise ValueError(f"workers={workers}, queue={queue}: expected workers >= 1, queue >= 0")
    max_bytes = int(max_mb * 1e6)
    max_pixels = max_pixels_default() if max_pixels is None else max_pixels
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="digitrec-read")
    state = {"in_flight": 0}  # requests holding a place, running or waiting (event loop only)
    app = FastAPI(title="digitrec", summary="Read the house number in a photo.",
                  description=__doc__, version="1")  # fmt: skip
    app.state.pool = pool

    def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(Refused)
    async def _refused(request, e: Refused):
        return error(e.status, e.message, e.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, e: RequestValidationError):
        first = e.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error(422, f"{where}: {first.get('msg', 'invalid value')}")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index():
        return page(max_bytes)

    @app.get("/health")
    def health():
        """The server is up: readings running or waiting, and the limits."""
        return {"status": "ok", "in_flight": state["in_flight"], "workers": workers,
                "queue": queue, "max_bytes": max_bytes, "max_pixels": max_pixels}  # fmt: skip

    def work(data: bytes, fallback: float | None) -> dict:
        image = decode_image(data, "upload", max_pixels)
        reading = reader(image) if fallback is None else _with_fallback(reader, image, fallback)
        return {**reading.to_dict(), "width": image.shape[1], "height": image.shape[0]}

    @app.post("/api/read", responses={400: {}, 408: {}, 411: {}, 413: {}, 415: {}, 503: {}})
    async def read(request: Request,
                   fallback: float | None = Query(None, ge=0, le=1, description=(
                       "below this confidence, search again from four tiles"))):  # fmt: skip
        """Read the number in the photo sent as the body (JPEG or PNG bytes)."""
        if state["in_flight"] >= workers + queue:
            await drain(request, upload_timeout)  # so the client, still sending, reads the 503
            raise Refused(503, f"busy: {workers} reading(s) running and {queue} waiting; try "
                               "again in a moment", {"Retry-After": "1"})  # fmt: skip
        state["in_flight"] += 1
        try:
            data = await read_body(request, max_bytes, upload_timeout)
            check_type(data, request.headers.get("content-type", ""))
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(pool, work, data, fallback)
            except ImageError as e:
                raise Refused(400, str(e)) from None
        finally:
            state["in_flight"] -= 1

    return app


def _with_fallback(reader: PhotoReader, image, fallback: float):
    """The reading with a per-request fallback threshold (the reader itself is shared)."""
    import copy

    other = copy.copy(reader)
    other.fallback = fallback
    return other(image)


class Server:
    """uvicorn on a socket bound now (port 0 → a free port, known as `server_port` before it
    serves): `serve_forever()` in any thread, `shutdown()` from another, `server_close()`."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 8000, backlog: int = 2048,
                 verbose: bool = False):  # fmt: skip
        import uvicorn

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host, port))
        except OSError as e:
            self.socket.close()
            raise OSError(
                f"--host {host} --port {port}: cannot listen there ({e.strerror})"
            ) from None
        self.socket.listen(backlog)
        self.server_port = self.socket.getsockname()[1]
        self.app = app
        config = uvicorn.Config(app, backlog=backlog, log_level="info" if verbose else "warning",
                                access_log=verbose, timeout_keep_alive=5,
                                timeout_graceful_shutdown=5)  # fmt: skip
        self.server = uvicorn.Server(config)
        self._done = threading.Event()

    def serve_forever(self) -> None:
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self._done.set()

    def shutdown(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self._done.wait(timeout)

    def server_close(self) -> None:
        self.socket.close()
        pool = getattr(self.app.state, "pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def make_server(reader: PhotoReader, host: str = "127.0.0.1", port: int = 8000,
                max_mb: float = 10.0, verbose: bool = False, **app_kwargs) -> Server:  # fmt: skip
    """The page's server for `reader`, listening (not yet serving) on host:port."""
    return Server(make_app(reader, max_mb, **app_kwargs), host, port, verbose=verbose)


def main(argv: list[str] | None = None) -> int:
    p = cli_parser("digitrec-serve", __doc__)
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-mb", type=float, default=10.0, help="largest upload, MB")
    p.add_argument("--max-mpx", type=float, default=None,
                   help="largest image, megapixels (default 50; a larger JPEG is decoded "
                        "smaller, other formats refused)")  # fmt: skip
    p.add_argument("--workers", type=int, default=1, help="readings at once (default 1)")
    p.add_argument("--queue", type=int, default=32,
                   help="uploads waiting for a worker before the server answers 503")  # fmt: skip
    p.add_argument("--upload-timeout", type=float, default=30.0,
                   help="seconds an upload may take to arrive (default 30)")  # fmt: skip
    p.add_argument("--verbose", action="store_true", help="log every request")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(message)s")  # fmt: skip
    try:
        reader = open_reader(args.checkpoint, args.localizer)
        max_pixels = None if args.max_mpx is None else int(args.max_mpx * 1e6)
        server = make_server(reader, args.host, args.port, args.max_mb, args.verbose,
                             workers=args.workers, queue=args.queue, max_pixels=max_pixels,
                             upload_timeout=args.upload_timeout)  # fmt: skip
    except (FileNotFoundError, ValueError, OSError) as e:
        print(f"digitrec-serve: {e}", file=sys.stderr)
        return 2
    print(f"digitrec-serve: http://{args.host}:{server.server_port}/  (Ctrl-C stops it)",
          flush=True)  # fmt: skip
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
