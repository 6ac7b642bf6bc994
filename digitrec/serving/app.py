"""The web page's server: a FastAPI app that reads numbers in uploaded photos, camera frames and
drawings (the page: serving/web/index.html), bounded uploads, a worker pool, and uvicorn around
it. digitrec-serve (digitrec.cli.serve) and make demo start it; the cli module's docstring lists
the endpoints and limits."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import resources

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse

from digitrec.inference.drawing import read_drawing
from digitrec.inference.images import (
    ImageError,
    decode_image,
    decode_image_scaled,
    max_pixels_default,
)
from digitrec.inference.pipeline import PhotoReader, WholeImageReader
from digitrec.registry import open_reader
from digitrec.serving.uploads import Refused, check_type, drain, read_body

log = logging.getLogger(__name__)


def page(max_bytes: int) -> str:
    html = resources.files("digitrec.serving").joinpath("web/index.html").read_text("utf-8")
    return html.replace("__MAX_BYTES__", str(max_bytes)).replace(
        "__MAX_MB__", f"{max_bytes / 1e6:g}"
    )


# the command that gives each mode its model, shown on the page when the model is missing
ENABLE = {
    "photo": "make train-photo-reader (then make demo, or digitrec-serve READER "
    "--localizer LOCALIZER)",
    "draw": "make train (then make demo, or digitrec-serve --drawing-reader BEST_CKPT)",
}


def make_app(
    reader: PhotoReader | None,
    max_mb: float = 10.0,
    workers: int = 1,
    queue: int = 32,
    max_pixels: int | None = None,
    upload_timeout: float = 30.0,
    drawing_reader: WholeImageReader | None = None,
):
    """The FastAPI app: the page, /health, /api/modes, /api/read (upload and camera: `reader`),
    /api/draw (`drawing_reader`); see the module's docstring. Either reader may be None: its
    modes answer 503 with the command that trains it."""
    if workers < 1 or queue < 0:
        raise ValueError(f"workers={workers}, queue={queue}: expected workers >= 1, queue >= 0")
    if reader is None and drawing_reader is None:
        raise ValueError("no reader: give a photo reader, a drawing reader or both")
    max_bytes = int(max_mb * 1e6)
    max_pixels = max_pixels_default() if max_pixels is None else max_pixels
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="digitrec-read")
    state = {"in_flight": 0}  # requests holding a place, running or waiting (event loop only)
    app = FastAPI(
        title="digitrec",
        summary="Read the house number in a photo.",
        description=__doc__,
        version="1",
    )
    app.state.pool = pool
    models = {"photo": reader, "draw": drawing_reader}

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
        return {
            "status": "ok",
            "in_flight": state["in_flight"],
            "workers": workers,
            "queue": queue,
            "max_bytes": max_bytes,
            "max_pixels": max_pixels,
        }

    @app.get("/api/modes")
    def modes():
        """Which of the page's modes have a model (upload and camera: the photo reader; draw:
        the reader of MNIST numbers), and for each one without, the command that trains it."""
        return {
            mode: {"ready": model is not None, "enable": None if model else ENABLE[mode]}
            for mode, model in models.items()
        }

    def read_photo(data: bytes, fallback: float | None) -> dict:
        start = time.perf_counter()
        image, factor = decode_image_scaled(data, "upload", max_pixels)
        reading = reader(image) if fallback is None else _with_fallback(reader, image, fallback)
        ms = 1000 * (time.perf_counter() - start)
        return {  # in the photo's pixels, also when the decoder reduced a very large JPEG
            **reading.scaled(factor).to_dict(),
            "width": round(image.shape[1] * factor),
            "height": round(image.shape[0] * factor),
            "ms": round(ms, 1),
        }

    def read_draw(data: bytes) -> dict:
        start = time.perf_counter()
        image = decode_image(data, "drawing", max_pixels)
        reading, seen = read_drawing(image, drawing_reader)
        ms = 1000 * (time.perf_counter() - start)
        return {**reading.to_dict(), "input": png_data_url(seen), "ms": round(ms, 1)}

    async def run(request: Request, mode: str, work, *args):
        """The body, checked, read in the pool: the bounded queue, then `work(data, *args)`."""
        if models[mode] is None:
            await drain(request, upload_timeout)
            raise Refused(503, f"no model for this mode: {ENABLE[mode]}")
        # the body first: a place in the queue is taken by a photo that has arrived, never by an
        # upload still on its way (a stalled one ends in 408 after upload_timeout)
        data = await read_body(request, max_bytes, upload_timeout)
        check_type(data, request.headers.get("content-type", ""))
        if state["in_flight"] >= workers + queue:
            running = min(state["in_flight"], workers)
            raise Refused(
                503,
                f"busy: {running} reading(s) running and {state['in_flight'] - running} "
                "waiting; try again in a moment",
                {"Retry-After": "1"},
            )
        state["in_flight"] += 1
        try:
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(pool, work, data, *args)
            except ImageError as e:
                raise Refused(400, str(e)) from None
        finally:
            state["in_flight"] -= 1

    @app.post("/api/read", responses={400: {}, 408: {}, 411: {}, 413: {}, 415: {}, 503: {}})
    async def read(
        request: Request,
        fallback: float | None = Query(
            None, ge=0, le=1, description=("below this confidence, search again from four tiles")
        ),
    ):
        """Read the number in the photo (or camera frame) sent as the body (JPEG or PNG bytes):
        {number, confidence, box, width, height, ms (decoding and reading, server-side)}."""
        return await run(request, "photo", read_photo, fallback)

    @app.post("/api/draw", responses={400: {}, 408: {}, 411: {}, 413: {}, 415: {}, 503: {}})
    async def draw(request: Request):
        """Read a number drawn by hand (a PNG of dark strokes on a light canvas): {number,
        confidence, input (what the reader saw, a PNG data URL; null when blank), ms}."""
        return await run(request, "draw", read_draw)

    return app


def png_data_url(image) -> str | None:
    """A grayscale uint8 image as a data:image/png;base64 URL (None for None)."""
    if image is None:
        return None
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _with_fallback(reader: PhotoReader, image, fallback: float):
    """The reading with a per-request fallback threshold (the reader itself is shared)."""
    import copy

    other = copy.copy(reader)
    other.fallback = fallback
    return other(image)


class Server:
    """uvicorn on a socket bound now (port 0 → a free port, known as `server_port` before it
    serves): `serve_forever()` in any thread, `shutdown()` from another, `server_close()`."""

    def __init__(
        self,
        app,
        host: str = "127.0.0.1",
        port: int = 8000,
        backlog: int = 128,
        verbose: bool = False,
        tls: tuple[str, str] | None = None,
        header_timeout: float = 10.0,
        max_connections: int | None = None,
    ):
        import uvicorn

        from digitrec.serving.connections import (
            accept_backlog,
            default_max_connections,
            guarded_protocol,
        )
        from digitrec.serving.log_limit import limit_logs

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
        backlog = accept_backlog(backlog)
        self.socket.listen(backlog)
        self.server_port = self.socket.getsockname()[1]
        self.app = app
        certfile, keyfile = tls or (None, None)  # HTTPS: (certificate, key) PEM files
        self.max_connections = max_connections or default_max_connections(backlog)
        config = uvicorn.Config(
            app,
            http=guarded_protocol(header_timeout, self.max_connections),
            backlog=backlog,
            log_level="info" if verbose else "warning",
            access_log=verbose,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=5,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )
        self.server = uvicorn.Server(config)
        limit_logs()  # after uvicorn's logging config: a flood of bad clients is a few lines
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


def make_server(
    reader: PhotoReader | None,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_mb: float = 10.0,
    verbose: bool = False,
    tls: tuple[str, str] | None = None,
    header_timeout: float = 10.0,
    max_connections: int | None = None,
    **app_kwargs,
) -> Server:
    """The page's server for `reader`, listening (not yet serving) on host:port; a connection
    has `header_timeout` seconds to send a request's headers, and at most `max_connections` are
    open at once (digitrec.serving.connections)."""
    return Server(
        make_app(reader, max_mb, **app_kwargs),
        host,
        port,
        verbose=verbose,
        tls=tls,
        header_timeout=header_timeout,
        max_connections=max_connections,
    )


def open_drawing_reader(ref: str) -> WholeImageReader:
    """The draw mode's reader: a reader of gray MNIST numbers (1 x 28 x 112), nothing else."""
    reader = open_reader(ref)
    if not isinstance(reader, WholeImageReader) or reader.input_shape[0] != 1:
        raise ValueError(
            f"--drawing-reader {ref}: expected a reader of MNIST numbers "
            "(1 x 28 x 112, make train's best.ckpt)"
        )
    return reader
