"""The web page end to end in headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium): upload a photo, wait for the answer, assert the number and confidence shown are the
reader's, and that the box was drawn on the canvas. In CI a missing browser fails the test
(.ci/run installs it); elsewhere it skips with the reason."""

from __future__ import annotations

import threading

import pytest
from helpers import chromium
from photo_fixtures import photo
from PIL import Image

from digitrec.serving import app as serve


@pytest.fixture(scope="module")
def browser():
    driver = chromium()
    yield driver
    driver.quit()


def test_page_shows_the_number_read_from_an_uploaded_photo(browser, photo_reader, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server = serve.make_server(photo_reader, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        image = photo(300, 400, 11)
        path = tmp_path / "house.png"
        Image.fromarray(image).save(path)
        expected = photo_reader(image)
        browser.get(f"http://127.0.0.1:{server.server_port}/")
        browser.find_element(By.ID, "file").send_keys(str(path))
        shown = WebDriverWait(browser, 30).until(
            lambda d: d.find_element(By.ID, "number").text or d.find_element(By.ID, "error").text
        )
        assert shown == (expected.number or "(no digits)")
        assert browser.find_element(By.ID, "error").text == ""
        assert f"{100 * expected.confidence:.1f}%" in browser.find_element(By.ID, "confidence").text
        WebDriverWait(browser, 10).until(
            lambda d: d.execute_script("return document.getElementById('canvas').width") == 400
        )
        # the green box: the canvas holds the photo with the box's pixels painted over it
        x0, y0, x1, y1 = (int(round(v)) for v in expected.box)
        green = browser.execute_script(
            "const c = document.getElementById('canvas').getContext('2d');"
            f"return Array.from(c.getImageData({x0}, {(y0 + y1) // 2}, 1, 1).data);"
        )
        assert green[:3] == [40, 220, 60]
        # a file that is not an image: the page says so and shows no number
        text = tmp_path / "notes.txt"
        text.write_text("not a photo")
        browser.find_element(By.ID, "file").send_keys(str(text))
        error = WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "error").text)
        assert "not a JPEG or PNG" in error and browser.find_element(By.ID, "number").text == ""
    finally:
        server.shutdown()
        server.server_close()
