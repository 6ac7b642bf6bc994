"""Screenshots of the live page's three modes (the README's pictures), in headless Chromium.

    python experiments/live_app/screenshots.py [--mnist-reader BEST.ckpt] \
        [--reader READER.ckpt [--localizer LOCALIZER.ckpt]] [--photo PHOTO.jpg]

Without models: the shipped ones (digitrec/pretrained: the detector and the MNIST reader).

Starts digitrec-serve on 127.0.0.1 with the given models; Chromium's fake camera films a
rendered SYNTHETIC house number (a plate with "1729" in one of this machine's fonts, the frame
tests/e2e/test_live_app.py uses); the draw mode gets MNIST *test* digits traced with the mouse (the
test's tracing). Writes draw.png, camera.png and upload.png beside this file (each a temporary
file, then renamed) and prints what each mode read. Needs chromium + chromedriver and
DIGITREC_DATA_DIR with MNIST.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from helpers import (  # noqa: E402
    chromium,
    house_number_frame,
    save_screenshot,
    trace_digits,
    write_y4m,
)

from digitrec.data.mnist import read_idx  # noqa: E402
from digitrec.inference.pipeline import open_reader  # noqa: E402
from digitrec.serving import app as serve  # noqa: E402


def until(driver, condition, seconds: float = 60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds).until(condition)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--mnist-reader", default=None, help="make train's best.ckpt (default: the shipped one)"
    )
    p.add_argument("--reader", default=None, help="photo reader (default: the shipped detector)")
    p.add_argument("--localizer", default=None, help="the localizer's checkpoint (two-stage)")
    p.add_argument(
        "--photo",
        type=Path,
        default=None,
        help="the photo for the upload mode (default: a rendered SYNTHETIC '508')",
    )
    p.add_argument("--number", default="4072", help="the number drawn (MNIST test digits)")
    p.add_argument("--out", type=Path, default=HERE)
    args = p.parse_args(argv)
    data = Path(os.environ.get("DIGITREC_DATA_DIR", REPO / ".data")) / "mnist"
    images = read_idx(data / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(data / "t10k-labels-idx1-ubyte.gz")
    digits = [images[np.flatnonzero(labels == int(c))[0]] for c in args.number]
    from digitrec import pretrained

    reader = open_reader(str(args.reader or pretrained.path("detector")), args.localizer)
    drawing = serve.open_drawing_reader(str(args.mnist_reader or pretrained.path("mnist")))
    server = serve.make_server(reader, port=0, drawing_reader=drawing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    from selenium.webdriver.common.by import By

    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "house.y4m"
        write_y4m(video, house_number_frame("1729"), frames=10)
        if args.photo is None:
            from PIL import Image

            args.photo = Path(tmp) / "508.png"
            Image.fromarray(house_number_frame("508")).save(args.photo)
        driver = chromium(
            "--window-size=1100,900",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        )
        try:
            driver.get(f"http://127.0.0.1:{server.server_port}/")
            # draw
            driver.find_element(By.ID, "tab-draw").click()
            pad = driver.find_element(By.ID, "pad")
            trace_digits(driver, pad, digits)
            drawn = until(
                driver,
                lambda d: (
                    pad.get_attribute("data-pending") == "0"
                    and pad.get_attribute("data-read") == pad.get_attribute("data-asked")
                    and d.find_element(By.ID, "draw-number").text
                ),
            )
            save_screenshot(driver, args.out / "draw.png")
            # camera
            driver.find_element(By.ID, "tab-camera").click()
            driver.find_element(By.ID, "start-camera").click()
            until(driver, lambda d: d.find_element(By.ID, "cam-number").text)
            time.sleep(2)  # a few frames: the frame rate and the steady reading settle
            seen = driver.find_element(By.ID, "cam-number").text
            save_screenshot(driver, args.out / "camera.png")
            driver.find_element(By.ID, "stop-camera").click()
            # upload
            driver.find_element(By.ID, "tab-upload").click()
            driver.find_element(By.ID, "file").send_keys(str(args.photo.resolve()))
            read = until(
                driver,
                lambda d: (
                    d.find_element(By.ID, "number").text or d.find_element(By.ID, "error").text
                ),
            )
            time.sleep(0.5)
            save_screenshot(driver, args.out / "upload.png")
        finally:
            driver.quit()
            server.shutdown()
            server.server_close()
    print(
        f"draw: {args.number} drawn, read {drawn!r}; camera: 1729 filmed, read {seen!r}; "
        f"upload: {args.photo.name} read {read!r}; wrote {args.out}/{{draw,camera,upload}}.png"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
