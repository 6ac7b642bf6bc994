"""Shared test helpers: `digitrec-train` in a subprocess, callbacks the sweep tests load into
it (`+callbacks.x._target_=...`), and checkpoints for the reading and evaluation commands."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytorch_lightning as pl
import torch


def train_cli(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m digitrec.train ARGS` in cwd, with this folder importable (for the callbacks)."""
    tests = str(Path(__file__).resolve().parent)
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "digitrec.train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(ready, what: str, process: subprocess.Popen, seconds: float = 120) -> None:
    """Poll ready() (OSError counts as not yet) until it is true; fail if process exits first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited {process.returncode}: "
                                 f"{process.stderr.read()[-2000:] if process.stderr else ''}")  # fmt: skip
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
    process = subprocess.Popen([str(mlflow), "server", "--backend-store-uri", backend,
                                "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                                *extra], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return r.status == 200

    try:
        wait_until(healthy, "mlflow server", process)
        yield url
    finally:
        stop(process)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def chromium(*flags: str):
    """Debian's headless Chromium under Selenium (`.quit()` it). In CI a missing browser fails
    the test (.ci/run installs it); elsewhere the test skips with the reason."""
    import pytest

    if not (CHROMIUM and CHROMEDRIVER):
        message = "no chromium/chromedriver (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(f"CI runs the browser tests: {message}")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 *flags):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


class KillAtStep(pl.Callback):
    """SIGKILL the training process once it reaches `step`: no cleanup, no final checkpoint."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def save_checkpoint(module, path):
    """What a Lightning checkpoint holds for loading: the weights and the hyperparameters."""
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    return path
