"""The live page in headless Chromium: the draw mode read as digits are drawn with real pointer
events, the camera mode fed by Chromium's fake camera, and the modes a missing model disables.

The draw mode's reader is trained here on real MNIST (about a minute on 2 cores; the same run
asserts that it learns). The pointer traces MNIST *test* digits (never trained on) onto the
page's pad, row by row, as a pen would fill them in; the page must show the number they make.
The camera test's photo reader is untrained: it asserts the page shows what the reader reads in
the frames the server received from the fake camera (a .y4m video written here)."""

from __future__ import annotations

import base64
import io
import re
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from conftest import compose_cfg, small_overrides
from helpers import chromium, house_number_frame, trace_digits, write_y4m
from mlflow.tracking import MlflowClient
from PIL import Image

from digitrec.data.mnist import read_idx
from digitrec.inference.drawing import read_drawing
from digitrec.serving import app as serve
from digitrec.training.train import train

WINDOW = "--window-size=1280,1000"


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory, real_data_dir):
    """A reader of MNIST numbers trained for about a minute: (test metrics, best checkpoint)."""
    tmp = tmp_path_factory.mktemp("mnist")
    overrides = small_overrides(tmp, real_data_dir) + [
        "data.verify=true",
        "data.val_glyphs=5000",
        "data.train_size=12800",
        "data.val_size=1000",
        "data.test_size=2000",
        "data.batch_size=64",
        "trainer.max_epochs=2",
        "augmentation=none",
        "model.min_pool_size=3",
    ]
    cfg = compose_cfg(overrides, tmp)
    metrics = train(cfg)
    client = MlflowClient(str(cfg.tracking.uri))
    (run,) = client.search_runs([client.get_experiment_by_name("mnist_seq").experiment_id])
    return metrics, run.data.tags["best_checkpoint"]


@pytest.mark.slow
@pytest.mark.realdata
def test_learns_real_mnist_sequences_in_about_a_minute(mnist_run):
    metrics, _ = mnist_run
    assert metrics["test/sequence_accuracy"] > 0.5, metrics


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Chromium with a fake camera that films a house number (a 640 x 480 .y4m video)."""
    video = tmp_path_factory.mktemp("camera") / "house.y4m"
    write_y4m(video, house_number_frame("1729"), frames=10)
    driver = chromium(
        WINDOW,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    )
    yield driver
    driver.quit()


class Recording:
    """The photo reader, keeping every image it was given (what the server received)."""

    def __init__(self, reader):
        self.reader, self.images = reader, []
        self.fallback = reader.fallback

    def __call__(self, image):
        self.images.append(image)
        return self.reader(image)


def _serve(reader, drawing_reader=None):
    server = serve.make_server(reader, port=0, drawing_reader=drawing_reader)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_camera_mode_reads_the_frames_of_the_fake_camera(browser, photo_reader):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    recording = Recording(photo_reader)
    server = _serve(recording)
    try:
        browser.get(f"http://127.0.0.1:{server.server_port}/")
        browser.find_element(By.ID, "tab-camera").click()
        browser.find_element(By.ID, "start-camera").click()
        # the same frame, again and again: once 5 are read, the page shows the reader's answer
        # and calls it steady (3 of the last 5 the same) unless it is "no digits"
        WebDriverWait(browser, 60).until(
            lambda d: (
                (len(recording.images) >= 6 and d.find_element(By.ID, "cam-number").text)
                or d.find_element(By.ID, "cam-error").text
            )
        )
        assert browser.find_element(By.ID, "cam-error").text == ""
        shown = browser.find_element(By.ID, "cam-number")
        frame = recording.images[-1]
        assert frame.shape == (480, 640, 3)  # the camera's frames, at their size
        expected = photo_reader(frame).number
        assert shown.text == (expected or "(no digits)")
        assert shown.get_attribute("data-steady") == ("1" if expected else "0")
        assert re.fullmatch(r"\d+\.\d frames/s", browser.find_element(By.ID, "fps").text)
        assert "median" in browser.find_element(By.ID, "latency").text
        browser.find_element(By.ID, "stop-camera").click()
        seen = len(recording.images)
        time.sleep(1)  # 5 frame intervals
        assert len(recording.images) <= seen + 1  # no more frames once stopped (1 in flight)
    finally:
        server.shutdown()
        server.server_close()


def _mnist_test_digits(data_dir) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(data_dir / "mnist" / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz")
    return images, labels


CANDIDATES = ("27", "90", "15", "31", "46", "58", "72", "83", "64", "19")


def _confident_numbers(reader, images, labels, n: int = 2) -> list[tuple[str, list]]:
    """The n numbers (of CANDIDATES, made of each digit's first test image) this reader reads
    right and most confidently when composed directly (28-pixel pitch, dark ink on white): the
    minute-trained reader's own mistakes are not what the browser test is about."""
    scored = []
    for number in CANDIDATES:
        digits = [images[np.flatnonzero(labels == int(c))[0]] for c in number]
        composed = 255 - np.concatenate(digits, axis=1)
        reading, _ = read_drawing(np.repeat(composed[..., None], 3, axis=2), reader)
        if reading.number == number:
            scored.append((reading.confidence, number, digits))
    scored.sort(key=lambda t: -t[0])
    return [(number, digits) for _, number, digits in scored[:n]]


def _pad_pixels(browser, pad) -> np.ndarray:
    """What the pad shows, as the RGB image the page sends (a PNG of the canvas)."""
    url = browser.execute_script("return arguments[0].toDataURL('image/png')", pad)
    data = base64.b64decode(url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_draw_mode_reads_numbers_drawn_with_the_mouse(browser, mnist_run, real_data_dir):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _, checkpoint = mnist_run
    reader = serve.open_drawing_reader(checkpoint)
    server = _serve(None, reader)
    images, labels = _mnist_test_digits(real_data_dir)
    numbers = _confident_numbers(reader, images, labels)
    assert len(numbers) == 2, "the minute-trained reader reads fewer than 2 of the candidates"
    try:
        browser.get(f"http://127.0.0.1:{server.server_port}/")
        WebDriverWait(browser, 10).until(
            lambda d: d.find_element(By.ID, "draw").is_displayed()  # the only mode with a model
        )
        pad = browser.find_element(By.ID, "pad")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", pad)
        for number, digits in numbers:
            browser.find_element(By.ID, "clear").click()
            trace_digits(browser, pad, digits)
            shown = WebDriverWait(browser, 30).until(  # the answer to the last strokes
                lambda d: (
                    pad.get_attribute("data-pending") == "0"
                    and pad.get_attribute("data-read") == pad.get_attribute("data-asked")
                    and d.find_element(By.ID, "draw-number").text
                )
            )
            # the page shows what the reader reads in the drawing, and that is the number
            assert shown == read_drawing(_pad_pixels(browser, pad), reader)[0].number
            assert shown == number
            assert (
                browser.find_element(By.ID, "seen")
                .get_attribute("src")
                .startswith("data:image/png;base64,")
            )
            assert "confidence" in browser.find_element(By.ID, "draw-confidence").text
    finally:
        server.shutdown()
        server.server_close()


def test_a_mode_without_a_model_is_disabled_and_names_the_command(browser, mnist_run, checkpoints):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _, checkpoint = mnist_run
    server = _serve(None, serve.open_drawing_reader(checkpoint))
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        browser.get(f"{base}/")
        tab = browser.find_element(By.ID, "tab-camera")
        WebDriverWait(browser, 10).until(lambda d: not tab.is_enabled())
        assert not browser.find_element(By.ID, "tab-upload").is_enabled()
        assert "make train-photo-reader" in tab.get_attribute("title")
        assert "make train-photo-reader" in browser.find_element(By.ID, "missing").text
        request = urllib.request.Request(
            f"{base}/api/read",
            data=b"\xff\xd8\xff" + b"0" * 64,
            headers={"Content-Type": "image/jpeg"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 503
        assert "make train-photo-reader" in refused.value.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    # an SVHN crop reader is not a reader of drawn MNIST numbers
    with pytest.raises(ValueError, match="expected a reader of MNIST numbers"):
        serve.open_drawing_reader(str(checkpoints[0]))
