"""Bad input against the reading side (issue 16): the web server under hostile uploads and
clients, and the one image loader under bombs and huge declared sizes. All traffic is on
127.0.0.1, every socket has a timeout, every loop is bounded."""

from __future__ import annotations

import io
import json
import select
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from photo_fixtures import _post, photo
from PIL import Image

from digitrec.cli import predict
from digitrec.inference.images import ImageError, decode_image, load_image
from digitrec.inference.pipeline import Reading
from digitrec.serving import app as serving_app


def png_declaring(width: int, height: int) -> bytes:
    """A small, valid-looking PNG whose header declares width x height grey pixels (its data
    is a few kB of zeros: a decompression bomb when decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\x00" * (width + 1) * 64, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


class Slow:
    """A stand-in reader that holds its worker until released (for the queue tests)."""

    fallback = 0.0

    def __init__(self):
        self.release, self.entered = threading.Event(), threading.Event()

    def __call__(self, image):
        self.entered.set()
        self.release.wait(20)
        return Reading("7", 0.5, [0.0, 0.0, 1.0, 1.0])


@pytest.fixture()
def serving():
    """serving(reader, **options) → base URL of a running server; all stopped at the end."""
    servers = []

    def start(reader, **options):
        server = serving_app.make_server(reader, port=0, **options)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        url = f"http://127.0.0.1:{server.server_port}"
        for _ in range(100):  # until uvicorn has started (bounded: 10 s)
            try:
                with urllib.request.urlopen(url + "/health", timeout=2):
                    return url
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        raise RuntimeError("the server did not start")

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def post(
    url: str, body: bytes, content_type: str = "image/png", query: str = "", timeout: float = 30
):
    return _post(url, body, content_type, query, timeout)


def raw(url: str, head: bytes, body_chunks=(), pause: float = 0.0, timeout: float = 10.0) -> bytes:
    """Send a hand-written request (head, then each body chunk after `pause` s) and return what
    the server answers before it closes the connection (or `timeout` s pass)."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head)
        try:
            for chunk in body_chunks:
                time.sleep(pause)
                s.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we were still sending
        answer = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                part = s.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not part:
                break
            answer += part
            if b"\r\n\r\n" in answer and _complete(answer):
                break
        return answer


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


# ------------------------------------------------------------------- the server's answers
def test_negative_content_length_is_refused_without_reading_the_body(serving, photo_reader):  # noqa: F811
    url = serving(photo_reader, max_mb=10)
    head = (
        b"POST /api/read HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
        b"Content-Length: -1\r\n\r\n"
    )
    start = time.monotonic()
    answer = raw(url, head, [b"\x89PNG\r\n\x1a\n" + b"0" * (1 << 20)] * 11)  # 11 MB
    assert status_of(answer) == 400 and time.monotonic() - start < 10
    answer = raw(url, head.replace(b"-1", b"lots"), [b"0" * 1000])
    assert status_of(answer) == 400


def test_lengths_and_types_get_their_status_and_one_line(serving, photo_reader):  # noqa: F811
    url = serving(photo_reader, max_mb=0.5)
    # no Content-Length, not chunked: 411
    answer = raw(url, b"POST /api/read HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n\r\n")
    assert status_of(answer) == 411 and b"Content-Length" in answer
    # a header that lies low: the body is counted as it streams (chunked, no length at all)
    big = b"\x89PNG\r\n\x1a\n" + b"0" * 700_000
    chunks = [
        b"%x\r\n" % len(big[i : i + 65536]) + big[i : i + 65536] + b"\r\n"
        for i in range(0, len(big), 65536)
    ] + [b"0\r\n\r\n"]
    head = (
        b"POST /api/read HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    answer = raw(url, head, chunks)
    assert status_of(answer) == 413 and b"at most 0.5 MB" in answer
    status, body = post(url, b"\x89PNG\r\n\x1a\n" + b"0" * 600_000)
    assert status == 413 and "at most 0.5 MB" in body["error"]
    status, body = post(url, b"hello", "text/plain")
    assert status == 415 and "JPEG or PNG" in body["error"]
    status, body = post(url, b"\x89PNG\r\n\x1a\n broken")
    assert status == 400 and body["error"].startswith("upload: not a readable image")
    assert "BytesIO" not in body["error"] and "\n" not in body["error"]
    status, body = post(url, png_bytes(photo(60, 80, 1)), query="?fallback=2")
    assert status == 422 and body["error"].startswith("query.fallback:")
    with urllib.request.urlopen(url + "/openapi.json", timeout=10) as r:
        assert "/api/read" in json.loads(r.read())["paths"]
    with urllib.request.urlopen(url + "/docs", timeout=10) as r:
        assert r.status == 200 and b"swagger" in r.read().lower()


def test_bombs_and_huge_declared_images_are_refused_before_decoding(serving, photo_reader):  # noqa: F811
    url = serving(photo_reader)
    for w, h in ((12000, 12000), (30000, 30000)):  # 144 Mpx in 140 kB; a 900 Mpx bomb
        status, body = post(url, png_declaring(w, h))
        assert status == 400 and body["error"].startswith("upload:"), body
        assert "Mpx" in body["error"] or "too large" in body["error"]
    status, body = post(url, png_bytes(photo(120, 160, 3)))  # the server is still fine
    assert status == 200 and body["width"] == 160


def test_twenty_concurrent_uploads_are_all_answered(serving, photo_reader):  # noqa: F811
    url = serving(photo_reader)
    body = png_bytes(photo(240, 320, 5))
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: post(url, body), range(20)))
    assert [status for status, _ in answers] == [200] * 20
    assert len({a["number"] for _, a in answers}) == 1


def test_a_full_queue_answers_503_and_the_server_recovers(serving):
    reader = Slow()
    url = serving(reader, workers=1, queue=0)
    body = png_bytes(photo(40, 60, 2))
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(post, url, body)
        assert reader.entered.wait(10)  # the only worker is busy
        status, answer = post(url, body)
        assert status == 503 and answer["error"].startswith("busy:")
        reader.release.set()
        assert first.result(timeout=20)[0] == 200
    assert post(url, body)[0] == 200


def test_slow_and_vanishing_clients_are_timed_out_quietly(serving, photo_reader, capfd):  # noqa: F811
    url = serving(photo_reader, upload_timeout=1.0)
    head = (
        b"POST /api/read HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
        b"Content-Length: 100000\r\n\r\n"
    )
    start = time.monotonic()
    answer = raw(url, head, [b"\x89PNG\r\n\x1a\n"], timeout=10)  # then nothing more
    assert status_of(answer) == 408 and time.monotonic() - start < 8
    port = int(url.rsplit(":", 1)[1])
    for _ in range(3):  # clients that leave halfway through their upload
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(head + b"\x89PNG\r\n\x1a\n" + b"0" * 1000)
    assert post(url, png_bytes(photo(60, 80, 4)))[0] == 200
    assert "Traceback" not in capfd.readouterr().err


def test_stalled_clients_never_lock_readers_out(serving, photo_reader):  # noqa: F811
    """Issue 30's acceptance load: while 300 connections that never finish their headers and 100
    uploads whose body never comes are open, /health and real uploads are answered within 1 s
    (the client gives up after 1 s); the stalled uploads hold no reading place; the header-stalled
    connections are closed after the header deadline; past the bound, connections are refused."""
    url = serving(photo_reader, workers=1, queue=2, header_timeout=4.0, max_connections=450)
    port = int(url.rsplit(":", 1)[1])
    stalled, bodies = [], []
    opened = time.monotonic()
    try:
        for _ in range(300):  # headers begun, never finished
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"POST /api/read HTTP/1.1\r\nHost: x\r\n")
            stalled.append(s)
        for _ in range(100):  # headers done, a body announced that never comes
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(
                b"POST /api/read HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                b"Content-Length: 1000000\r\n\r\n"
            )
            bodies.append(s)
        for _ in range(3):  # all 400 are open now (the header deadline is 4 s)
            with urllib.request.urlopen(url + "/health", timeout=1.0) as r:
                assert r.status == 200
            status, body = post(url, png_bytes(photo(60, 80, 4)), timeout=1.0)
            assert status == 200, body  # 100 bodies on their way hold no place in a queue of 3
        assert time.monotonic() - opened < 4.0, "the checks ran after the header deadline"
        extra = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(60)]
        time.sleep(0.5)
        readable, _, _ = select.select(extra, [], [], 0.5)  # 400 + 60 > 450: aborted at once
        for s in extra:
            s.close()
        assert len(readable) >= 10
        time.sleep(4.5)  # the header deadline passes: the header-stalled connections are closed
        closed = 0
        for s in stalled:
            try:
                closed += s.recv(1) == b""
            except (ConnectionResetError, TimeoutError):
                closed += 1
        assert closed == 300
    finally:
        for s in stalled + bodies:
            s.close()


# ------------------------------------------------------------------------ the image loader
def test_loader_bounds_pixels_and_shrinks_large_jpegs_in_the_decoder(tmp_path, monkeypatch):
    with pytest.raises(ImageError, match=r"^bomb.png: 30000x30000 pixels|^bomb.png: too large"):
        decode_image(png_declaring(30000, 30000), "bomb.png")
    with pytest.raises(ImageError, match=r"^big.png: 12000x12000 pixels \(144 Mpx\), more than"):
        decode_image(png_declaring(12000, 12000), "big.png")
    path = tmp_path / "wide.jpg"
    Image.fromarray(photo(800, 1200, 6)).save(path, quality=90)
    assert load_image(path).shape == (800, 1200, 3)
    assert load_image(path, max_pixels=300_000).shape == (400, 600, 3)  # decoded at 1/2
    assert load_image(path, max_pixels=20_000).shape == (100, 150, 3)  # at 1/8
    with pytest.raises(ImageError, match=r"wide.jpg: 1200x800 pixels"):
        load_image(path, max_pixels=10_000)  # even 1/8 is too large
    monkeypatch.setenv("DIGITREC_MAX_PIXELS", "300000")
    assert load_image(path).shape == (400, 600, 3)
    monkeypatch.setenv("DIGITREC_MAX_PIXELS", "lots")
    with pytest.raises(ValueError, match="DIGITREC_MAX_PIXELS='lots'"):
        load_image(path)


def test_predict_reports_a_bomb_and_reads_the_rest(checkpoints, tmp_path, capsys):  # noqa: F811
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(photo(120, 160, 1)).save(folder / "a.png")
    (folder / "b.png").write_bytes(png_declaring(30000, 30000))
    (folder / "c.png").write_bytes(png_declaring(12000, 12000))
    Image.fromarray(photo(100, 100, 2)).save(folder / "d.png")
    (tmp_path / "empty").mkdir()
    code = predict.main(
        [
            str(checkpoints[0]),
            str(folder),
            str(tmp_path / "empty"),
            "--localizer",
            str(checkpoints[1]),
        ]
    )
    out = capsys.readouterr()
    lines = [json.loads(line) for line in out.out.splitlines()]
    assert code == 1 and [line["file"].rsplit("/", 1)[-1] for line in lines] == [
        "a.png",
        "b.png",
        "c.png",
        "d.png",
        "empty",
    ]
    assert "number" in lines[0] and "number" in lines[3]
    assert all("error" in line for line in lines[1:3]) and "no images" in lines[4]["error"]
    assert "Traceback" not in out.err


def test_a_small_descriptor_limit_refuses_connections_without_tracebacks(tmp_path):
    """Issue 30 case 2: with a descriptor limit of 256, 300 connections that never finish their
    headers: those past the bound are refused at once, the rest closed at the header deadline
    (here 2 s), then /health is answered; stderr holds no accept traceback."""
    script = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))\n"
        "from digitrec import pretrained\n"
        "from digitrec.inference.pipeline import open_reader\n"
        "from digitrec.serving import app\n"
        "reader = open_reader(str(pretrained.path('detector')))\n"
        "server = app.make_server(reader, port=0, header_timeout=2.0)\n"
        "print(server.server_port, flush=True)\n"
        "server.serve_forever()\n"
    )
    err = tmp_path / "stderr.txt"
    with open(err, "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=stderr, text=True
        )
    stalled = []
    try:
        port = int(proc.stdout.readline())
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):  # until uvicorn has started (bounded: 10 s)
            try:
                urllib.request.urlopen(url + "/health", timeout=2).close()
                break
            except OSError:
                time.sleep(0.1)
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            stalled.append(s)
        answered, deadline = False, time.monotonic() + 6.0
        while not answered and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url + "/health", timeout=1.0) as r:
                    answered = r.status == 200
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.25)  # refused while the bound is full: until the header deadline
        assert answered
    finally:
        for s in stalled:
            s.close()
        proc.terminate()
        proc.wait(10)
    assert "Too many open files" not in err.read_text()
