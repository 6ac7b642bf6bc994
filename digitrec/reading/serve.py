"""`digitrec-serve`: a local web page that reads numbers: in an uploaded photo, live from the
browser's camera, and drawn by hand.

digitrec-serve READER.ckpt --localizer LOCALIZER.ckpt            # http://127.0.0.1:8000
digitrec-serve --drawing-reader outputs/runs/<time>/checkpoints/best.ckpt   # draw mode only
make demo                                   # whatever models exist (digitrec/reading/demo.py)

FastAPI served by uvicorn, bound to 127.0.0.1 unless --host says otherwise. GET / is the page
(digitrec/reading/web/index.html: upload, camera and draw modes), GET /health the server's
state, GET /api/modes which modes have a model, GET /docs the OpenAPI docs.
POST /api/read takes a photo's (or a camera frame's) bytes as the request body (JPEG or PNG, at
most --max-mb) and answers JSON {number, confidence, box, width, height, ms}; POST /api/draw
takes a PNG of a drawing and answers {number, confidence, input, ms} (input: the 28 x 112 image
the reader saw). An error is {error} with one readable line:
400 (not a readable image, a bad Content-Length, too many pixels), 408 (the upload took longer
than --upload-timeout), 411 (no Content-Length and not chunked), 413 (too large: counted while
the body streams in, whatever the header says), 415 (not JPEG/PNG), 422 (a bad query value),
503 (--workers readings running and --queue waiting: try again; or no model for that mode, with
the command that trains it).

Decoding and reading run in a pool of --workers threads; at most --queue more requests wait
for it, so memory is bounded by (workers + queue) x the largest image (--max-mpx). `ms` is the
server's time for one request (decoding and reading), which the page's footer shows.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import resources

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse

from digitrec.reading.drawing import read_drawing
from digitrec.reading.images import ImageError, decode_image, max_pixels_default
from digitrec.reading.pipeline import PhotoReader, WholeImageReader, cli_parser, open_reader
from digitrec.reading.uploads import Refused, check_type, drain, read_body

log = logging.getLogger(__name__)


def page(max_bytes: int) -> str:
    html = resources.files("digitrec.reading").joinpath("web/index.html").read_text("utf-8")
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
        image = decode_image(data, "upload", max_pixels)
        reading = reader(image) if fallback is None else _with_fallback(reader, image, fallback)
        ms = 1000 * (time.perf_counter() - start)
        return {
            **reading.to_dict(),
            "width": image.shape[1],
            "height": image.shape[0],
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
        if state["in_flight"] >= workers + queue:
            await drain(request, upload_timeout)  # so the client, still sending, reads the 503
            raise Refused(
                503,
                f"busy: {workers} reading(s) running and {queue} waiting; try again in a moment",
                {"Retry-After": "1"},
            )
        state["in_flight"] += 1
        try:
            data = await read_body(request, max_bytes, upload_timeout)
            check_type(data, request.headers.get("content-type", ""))
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
        backlog: int = 2048,
        verbose: bool = False,
        tls: tuple[str, str] | None = None,
    ):
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
        certfile, keyfile = tls or (None, None)  # HTTPS: (certificate, key) PEM files
        config = uvicorn.Config(
            app,
            backlog=backlog,
            log_level="info" if verbose else "warning",
            access_log=verbose,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=5,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )
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


def make_server(
    reader: PhotoReader | None,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_mb: float = 10.0,
    verbose: bool = False,
    tls: tuple[str, str] | None = None,
    **app_kwargs,
) -> Server:
    """The page's server for `reader`, listening (not yet serving) on host:port."""
    return Server(make_app(reader, max_mb, **app_kwargs), host, port, verbose=verbose, tls=tls)


def open_drawing_reader(ref: str) -> WholeImageReader:
    """The draw mode's reader: a reader of gray MNIST numbers (1 x 28 x 112), nothing else."""
    reader = open_reader(ref)
    if not isinstance(reader, WholeImageReader) or reader.input_shape[0] != 1:
        raise ValueError(
            f"--drawing-reader {ref}: expected a reader of MNIST numbers "
            "(1 x 28 x 112, make train's best.ckpt)"
        )
    return reader


def main(argv: list[str] | None = None) -> int:
    p = cli_parser("digitrec-serve", __doc__, reader_optional=True)
    p.add_argument(
        "--drawing-reader",
        default=None,
        metavar="CHECKPOINT",
        help="the draw mode's reader of MNIST numbers (make train's best.ckpt, or "
        "models:/..., runs:/...)",
    )
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-mb", type=float, default=10.0, help="largest upload, MB")
    p.add_argument(
        "--max-mpx",
        type=float,
        default=None,
        help="largest image, megapixels (default 50; a larger JPEG is decoded "
        "smaller, other formats refused)",
    )
    p.add_argument("--workers", type=int, default=1, help="readings at once (default 1)")
    p.add_argument(
        "--queue",
        type=int,
        default=32,
        help="uploads waiting for a worker before the server answers 503",
    )
    p.add_argument(
        "--upload-timeout",
        type=float,
        default=30.0,
        help="seconds an upload may take to arrive (default 30)",
    )
    p.add_argument("--verbose", action="store_true", help="log every request")
    p.add_argument(
        "--tls",
        nargs=2,
        metavar=("CERT.pem", "KEY.pem"),
        default=None,
        help="serve HTTPS (a browser shows the camera to a page from another machine "
        "only over HTTPS; README 'Reading live')",
    )
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )
    try:
        if args.checkpoint is None and args.drawing_reader is None:
            raise ValueError(
                "give a reader (READER.ckpt --localizer LOCALIZER.ckpt), "
                "--drawing-reader CKPT, or both"
            )
        reader = open_reader(args.checkpoint, args.localizer) if args.checkpoint else None
        drawing = open_drawing_reader(args.drawing_reader) if args.drawing_reader else None
        max_pixels = None if args.max_mpx is None else int(args.max_mpx * 1e6)
        server = make_server(
            reader,
            args.host,
            args.port,
            args.max_mb,
            args.verbose,
            workers=args.workers,
            queue=args.queue,
            max_pixels=max_pixels,
            upload_timeout=args.upload_timeout,
            drawing_reader=drawing,
            tls=tuple(args.tls) if args.tls else None,
        )
    except (FileNotFoundError, ValueError, OSError) as e:
        print(f"digitrec-serve: {e}", file=sys.stderr)
        return 2
    scheme = "https" if args.tls else "http"
    print(
        f"digitrec-serve: {scheme}://{args.host}:{server.server_port}/  (Ctrl-C stops it)",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
