"""Shared test helpers: `digitrec-train` in a subprocess, callbacks the sweep tests load into
it (`+callbacks.x._target_=...`), and checkpoints for the reading and evaluation commands."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image, ImageDraw, ImageFont

from digitrec.data import street


def unavailable(message: str) -> NoReturn:
    """Something a test needs is missing (real data, a browser, PostgreSQL): in CI (CI set, as
    .ci/run sets it) the test fails, so nothing is silently skipped there; elsewhere it skips."""
    import pytest

    if os.environ.get("CI"):
        pytest.fail(f"CI needs it: {message}")
    pytest.skip(message)


def train_cli(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m digitrec.cli.train ARGS` in cwd, with this folder importable (for the callbacks)."""
    tests = str(Path(__file__).resolve().parent)
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "digitrec.cli.train", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(ready, what: str, process: subprocess.Popen, seconds: float = 120) -> None:
    """Poll ready() (OSError counts as not yet) until it is true; fail if process exits first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"{what} exited {process.returncode}: "
                f"{process.stderr.read()[-2000:] if process.stderr else ''}"
            )
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{what} did not answer within {seconds:.0f} s")


def stop(process: subprocess.Popen) -> None:
    """Stop a process started with start_new_session=True, and every process it started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


@contextlib.contextmanager
def mlflow_server(backend: str, cwd: Path, *extra: str) -> Iterator[str]:
    """A real `mlflow server` over `backend` on 127.0.0.1 (one worker, without the GenAI job
    runner); yields its URL once /health answers, and stops it with all its processes."""
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    mlflow = Path(sys.executable).with_name("mlflow")
    process = subprocess.Popen(
        [
            str(mlflow),
            "server",
            "--backend-store-uri",
            backend,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            *extra,
        ],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return r.status == 200

    try:
        wait_until(healthy, "mlflow server", process)
        yield url
    finally:
        stop(process)


TRACE_INK = 150  # a digit pixel the mouse fills in (0-255)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def chromium(*flags: str):
    """Debian's headless Chromium under Selenium (`.quit()` it). In CI a missing browser fails
    the test (.ci/run installs it); elsewhere the test skips with the reason; outside pytest
    (the screenshot scripts) it is a one-line exit."""

    if not (CHROMIUM and CHROMEDRIVER):
        message = "no chromium/chromedriver (apt-get install chromium chromium-driver)"
        if "PYTEST_CURRENT_TEST" not in os.environ:
            raise SystemExit(message)
        unavailable(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        *flags,
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


# ------------------------------------------------ the live page's inputs (tests, screenshots)
def house_number_frame(number: str, w: int = 640, h: int = 480) -> np.ndarray:
    """A wall with a plate and a number in one of this machine's fonts (RGB uint8)."""
    image = Image.new("RGB", (w, h), (176, 160, 140))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(street.find_fonts()[0], 100)
    x0, y0, x1, y1 = draw.textbbox((w // 2, h // 2), number, font=font, anchor="mm")
    draw.rectangle((x0 - 40, y0 - 30, x1 + 40, y1 + 30), fill=(40, 60, 110))  # the plate
    draw.text((w // 2, h // 2), number, fill=(245, 245, 240), font=font, anchor="mm")
    return np.asarray(image)


def write_y4m(path, rgb: np.ndarray, frames: int, fps: int = 10) -> None:
    """A YUV4MPEG2 (4:2:0) video of `frames` copies of one RGB frame: what Chromium's fake
    camera plays (--use-file-for-fake-video-capture)."""
    rgb = rgb.astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = (b - y) * 0.564 + 128
    v = (r - y) * 0.713 + 128

    def half(c):  # 2 x 2 means: 4:2:0 chroma
        return c.reshape(c.shape[0] // 2, 2, c.shape[1] // 2, 2).mean(axis=(1, 3))

    planes = [np.clip(p, 0, 255).round().astype(np.uint8) for p in (y, half(u), half(v))]
    h, w = y.shape
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n")
            for plane in planes:
                f.write(plane.tobytes())


def trace_digits(
    browser, pad, digits: list[np.ndarray], scale: int = 5, left: int = 40, top: int = 10
):
    """Fill each 28 x 28 digit's ink in with the mouse, row by row (pointer down at a run's
    first ink pixel, moved to its last, up), digits side by side at `scale` pixels per pixel."""
    from selenium.webdriver.common.action_chains import ActionChains

    width, height = pad.size["width"], pad.size["height"]
    actions = ActionChains(browser, duration=0)

    def to(x: float, y: float):  # offsets are from the element's center
        return actions.move_to_element_with_offset(pad, int(x - width / 2), int(y - height / 2))

    for k, digit in enumerate(digits):
        for row in range(0, 28):
            ink = np.flatnonzero(digit[row] > TRACE_INK)
            if not len(ink):
                continue
            runs = np.split(ink, np.flatnonzero(np.diff(ink) > 1) + 1)
            for run in runs:  # the brush is about 2 digit pixels wide: a run drawn 1 shorter
                x0 = left + (28 * k + run[0] + 0.5 * (len(run) > 2)) * scale
                x1 = left + (28 * k + run[-1] - 0.5 * (len(run) > 2)) * scale
                y = top + row * scale
                to(x0, y).click_and_hold()
                to(x1, y).release()
    actions.perform()


def save_screenshot(driver, path: Path) -> None:
    """The browser's window as a PNG at `path`: a temporary file beside it, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".png", delete=False) as f:
        temporary = Path(f.name)
    try:
        if not driver.save_screenshot(str(temporary)):
            raise SystemExit(f"the browser saved no image for {path.name}")
        temporary.chmod(0o644)  # (a temporary file is private)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


class KillAtStep(pl.Callback):
    """SIGKILL the training process once it reaches `step`: no cleanup, no final checkpoint."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def save_checkpoint(module, path):
    """What a Lightning checkpoint holds for loading: the weights, the hyperparameters and what
    the checkpoint is (digitrec.checkpoints: its task and preprocessing)."""
    from digitrec import checkpoints

    meta = checkpoints.meta(module.task, module.preprocessing or module.default_preprocessing())
    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": dict(module.hparams),
            checkpoints.META_KEY: meta,
        },
        path,
    )
    return path


def bar_glyphs(n_labels: int = 10, base: int = 100):
    """Glyph d: a 6-px bar of intensity base + 10*d, so a canvas column tells which glyph is there."""
    images = np.zeros((n_labels, 28, 28), np.uint8)
    for d in range(n_labels):
        images[d, 4:24, 11:17] = base + 10 * d
    return images, np.arange(n_labels, dtype=np.uint8)
