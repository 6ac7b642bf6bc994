"""`digitrec-serve`: a local web page that reads numbers: in an uploaded photo, live from the
browser's camera, and drawn by hand.

digitrec-serve                                   # the pretrained models, http://127.0.0.1:8000
digitrec-serve DETECTOR.ckpt                     # a detector of your own (experiment=detector)
digitrec-serve READER.ckpt --localizer LOCALIZER.ckpt            # the older two-stage reader
digitrec-serve --drawing-reader outputs/runs/<time>/checkpoints/best.ckpt   # draw mode only
make demo                                   # whatever models exist (digitrec/serving/demo.py)

FastAPI served by uvicorn, bound to 127.0.0.1 unless --host says otherwise. GET / is the page
(digitrec/serving/web/index.html: upload, camera and draw modes), GET /health the server's
state, GET /api/modes which modes have a model, GET /docs the OpenAPI docs.
POST /api/read takes a photo's (or a camera frame's) bytes as the request body (JPEG or PNG, at
most --max-mb) and answers JSON {number, confidence, box, width, height, ms} (a detector adds
candidates: every candidate number found); POST /api/draw
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

import argparse
import logging
import sys

from digitrec.cli._common import cli_parser, port, positive_float, positive_int, readable_file
from digitrec.registry import open_reader
from digitrec.serving.app import (
    make_server,
    open_drawing_reader,
)


def parser() -> argparse.ArgumentParser:
    p = cli_parser("digitrec-serve", __doc__, reader_optional=True)
    p.add_argument(
        "--drawing-reader",
        default=None,
        metavar="CHECKPOINT",
        help="the draw mode's reader of MNIST numbers (make train's best.ckpt, or "
        "models:/..., runs:/...)",
    )
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (this machine only)")
    p.add_argument("--port", type=port, default=8000, help="0: any free port")
    p.add_argument("--max-mb", type=positive_float, default=10.0, help="largest upload, MB")
    p.add_argument(
        "--max-mpx",
        type=positive_float,
        default=None,
        help="largest image, megapixels (default 50; a larger JPEG is decoded "
        "smaller, other formats refused)",
    )
    p.add_argument("--workers", type=positive_int, default=1, help="readings at once (default 1)")
    p.add_argument(
        "--queue",
        type=positive_int,
        default=32,
        help="uploads waiting for a worker before the server answers 503",
    )
    p.add_argument(
        "--upload-timeout",
        type=positive_float,
        default=30.0,
        help="seconds an upload may take to arrive (default 30)",
    )
    p.add_argument("--verbose", action="store_true", help="log every request")
    p.add_argument(
        "--tls",
        nargs=2,
        type=readable_file,
        metavar=("CERT.pem", "KEY.pem"),
        default=None,
        help="serve HTTPS (a browser shows the camera to a page from another machine "
        "only over HTTPS; docs/how-to/serving.md)",
    )
    return p


def _pretrained() -> tuple[str, str | None]:
    """The pretrained detector and (when shipped) MNIST reader: what serves when none is given."""
    from digitrec import pretrained

    try:
        mnist = str(pretrained.path("mnist"))
    except FileNotFoundError:
        mnist = None
    return str(pretrained.path("detector")), mnist


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )
    try:
        if args.checkpoint is None and args.drawing_reader is None:
            args.checkpoint, args.drawing_reader = _pretrained()
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
