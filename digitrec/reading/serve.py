"""`digitrec-serve`: a small local web page that reads the number in an uploaded photo.

digitrec-serve READER.ckpt --localizer LOCALIZER.ckpt            # http://127.0.0.1:8000
make serve READER=... LOCALIZER=...

GET / is the page; POST /api/read takes the photo's bytes as the request body (JPEG or PNG, at
most --max-mb) and answers JSON {number, confidence, box, width, height} or {error} with 400
(not a readable image), 413 (too large) or 415 (not JPEG/PNG). Python's standard library server,
bound to 127.0.0.1 unless --host says otherwise; one reading at a time.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from digitrec.reading.images import ImageError, decode_image
from digitrec.reading.pipeline import PhotoReader, cli_parser

log = logging.getLogger(__name__)

TYPES = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG\r\n\x1a\n"}

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>digitrec — read a house number</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body { font: 16px system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
 #result { font-size: 1.4rem; margin: 1rem 0; min-height: 2rem; }
 #number { font-weight: bold; font-size: 2rem; }
 #error { color: #b00020; }
 canvas { max-width: 100%; border: 1px solid #ccc; }
</style></head>
<body>
<h1>Read a house number</h1>
<p>Choose a photo (JPEG or PNG, at most __MAX_MB__ MB). It is read on this machine: the number is
localized, cropped and read; the box is drawn over the photo.</p>
<input type="file" id="file" accept="image/jpeg,image/png">
<div id="result"><span id="status"></span> <span id="number"></span>
 <span id="confidence"></span> <span id="error"></span></div>
<canvas id="canvas" width="0" height="0"></canvas>
<script>
const MAX = __MAX_BYTES__;
const $ = (id) => document.getElementById(id);
function show(fields) {
  for (const k of ["status", "number", "confidence", "error"]) $(k).textContent = fields[k] || "";
}
$("file").addEventListener("change", async () => {
  const file = $("file").files[0];
  if (!file) return;
  if (!["image/jpeg", "image/png"].includes(file.type)) {
    show({error: `${file.name}: not a JPEG or PNG image`}); return;
  }
  if (file.size > MAX) {
    show({error: `${file.name}: ${(file.size / 1e6).toFixed(1)} MB, more than __MAX_MB__ MB`}); return;
  }
  show({status: "reading…"});
  let answer;
  try {
    const response = await fetch("/api/read", {method: "POST", body: file,
                                               headers: {"Content-Type": file.type}});
    answer = await response.json();
  } catch (e) { show({error: `the server did not answer (${e})`}); return; }
  if (answer.error) { show({error: answer.error}); return; }
  const image = new Image();
  image.onload = () => {
    const c = $("canvas"), ctx = c.getContext("2d");
    c.width = answer.width; c.height = answer.height;
    ctx.drawImage(image, 0, 0, c.width, c.height);
    const [x0, y0, x1, y1] = answer.box;
    ctx.lineWidth = Math.max(2, c.width / 300); ctx.strokeStyle = "#28dc3c";
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    URL.revokeObjectURL(image.src);
  };
  image.src = URL.createObjectURL(file);
  show({number: answer.number || "(no digits)",
        confidence: `confidence ${(100 * answer.confidence).toFixed(1)}%`});
});
</script></body></html>
"""


DISCARD_LIMIT = 100_000_000  # an oversized upload up to this size is read and dropped


class ReadHandler(BaseHTTPRequestHandler):
    reader: PhotoReader
    max_bytes: int
    lock = threading.Lock()

    def log_message(self, fmt, *args):  # quiet by default; --verbose turns logging on
        log.info("%s - %s", self.address_string(), fmt % args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: dict) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _discard(self, length: int) -> None:
        """Read and drop an oversized body so the client gets the 413 instead of a reset
        connection (a client still sending when the socket closes sees a broken pipe); past
        DISCARD_LIMIT bytes the connection is closed unread."""
        if length > DISCARD_LIMIT:
            self.close_connection = True
            return
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 16))
            if not chunk:
                break
            length -= len(chunk)

    def do_GET(self):
        if self.path in ("/", "/index.html"):
            page = PAGE.replace("__MAX_BYTES__", str(self.max_bytes))
            page = page.replace("__MAX_MB__", f"{self.max_bytes / 1e6:g}")
            self._send(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8")
        elif self.path == "/health":
            self._json(HTTPStatus.OK, {"status": "ok"})
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"{self.path}: no such page"})

    def do_POST(self):
        if self.path != "/api/read":
            self._json(HTTPStatus.NOT_FOUND, {"error": f"{self.path}: no such endpoint"})
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._json(HTTPStatus.LENGTH_REQUIRED, {"error": "upload without a Content-Length"})
            return
        if length > self.max_bytes:
            self._discard(length)
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                       {"error": f"upload of {length / 1e6:.1f} MB: at most "
                                 f"{self.max_bytes / 1e6:g} MB"})  # fmt: skip
            return
        if length == 0:
            self._json(HTTPStatus.BAD_REQUEST, {"error": "empty upload: choose a photo"})
            return
        data = self.rfile.read(length)
        declared = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        kind = next((t for t, magic in TYPES.items() if data.startswith(magic)), None)
        if kind is None or (declared and declared != "application/octet-stream" and
                            declared not in TYPES):  # fmt: skip
            self._json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                       {"error": f"upload of type {declared or 'unknown'}: expected a JPEG or "
                                 "PNG image"})  # fmt: skip
            return
        try:
            image = decode_image(data, "upload")
        except ImageError as e:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(e)})
            return
        with self.lock:
            reading = self.reader(image)
        self._json(HTTPStatus.OK, {**reading.to_dict(), "width": image.shape[1],
                                   "height": image.shape[0]})  # fmt: skip


def make_server(reader: PhotoReader, host: str = "127.0.0.1", port: int = 8000,
                max_mb: float = 10.0) -> ThreadingHTTPServer:  # fmt: skip
    handler = type("Handler", (ReadHandler,), {"reader": reader, "max_bytes": int(max_mb * 1e6)})
    return ThreadingHTTPServer((host, port), handler)


def main(argv: list[str] | None = None) -> int:
    p = cli_parser("digitrec-serve", __doc__)
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-mb", type=float, default=10.0, help="largest upload, MB")
    p.add_argument("--verbose", action="store_true", help="log every request")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(message)s")  # fmt: skip
    try:
        reader = PhotoReader.from_checkpoints(args.checkpoint, args.localizer)
        server = make_server(reader, args.host, args.port, args.max_mb)
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
