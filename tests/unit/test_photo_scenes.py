"""Photo scenes and the detector's training views: deterministic for a seed, every digit box on its
digit's ink, boxes moved with the pixels, number boxes split into digits."""

import numpy as np
import pytest

from digitrec.data.photo_augment import relight, view
from digitrec.data.photo_scenes import Labelled, scene, split_number
from digitrec.data.street.glyphs import find_fonts


@pytest.fixture(scope="module")
def fonts():
    return find_fonts()[:4]  # matplotlib's own fonts at least (find_fonts raises without any)


def _flat(h=320, w=480, value=128):
    return Labelled(np.full((h, w, 3), value, np.uint8), np.zeros((0, 5), np.float32), ())


def test_a_scene_is_a_pure_function_of_its_seed(fonts):
    a = scene(np.random.default_rng([7, 3]), _flat(), fonts)
    b = scene(np.random.default_rng([7, 3]), _flat(), fonts)
    c = scene(np.random.default_rng([7, 4]), _flat(), fonts)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.digits, b.digits)
    assert a.numbers == b.numbers
    assert not np.array_equal(a.image, c.image)


def test_every_digit_box_lies_on_its_digit_and_all_ink_is_in_a_box(fonts):
    checked = 0
    for seed in range(6):
        s = scene(np.random.default_rng(seed), _flat(), fonts, words=(0, 0), plaques=0.0)
        ink = np.abs(s.image.astype(int) - 128).max(2) > 12
        covered = np.zeros_like(ink)
        for c, x0, y0, x1, y1 in s.digits:
            assert 0 <= c <= 9
            xi0, yi0, xi1, yi1 = int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1))
            # the box holds ink, and most of its ink is well inside it
            assert ink[yi0:yi1, xi0:xi1].mean() > 0.1
            m = max(2, int(0.15 * (y1 - y0)))  # cast shadows reach a little further
            covered[max(0, yi0 - m) : yi1 + m, max(0, xi0 - m) : xi1 + m] = True
            checked += 1
        assert not (ink & ~covered).any()
        for number, box in s.numbers:  # a number's box is its digits' union
            assert len(number) >= 1 and box[2] > box[0] and box[3] > box[1]
    assert checked >= 6


def test_a_scene_keeps_the_backgrounds_numbers_and_puts_nothing_over_them(fonts):
    bg = _flat()
    bg.image[100:140, 200:260] = 20
    digits = split_number("42", (200, 100, 260, 140))
    labelled = Labelled(bg.image, digits, (("42", (200.0, 100.0, 260.0, 140.0)),))
    for seed in range(4):
        s = scene(np.random.default_rng(seed), labelled, fonts, numbers=(3, 3), words=(3, 3))
        assert np.array_equal(s.digits[:2], digits) and s.numbers[0][0] == "42"
        assert (s.image[100:140, 200:260] == 20).all()


def test_split_number_rows_stacks_and_letters():
    row = split_number("502B", (0, 0, 80, 20))
    assert row[:, 0].tolist() == [5, 0, 2, -1] and row[1, 1:].tolist() == [20, 0, 40, 20]
    stack = split_number("37", (10, 0, 30, 60))
    assert stack[:, 2].tolist() == [0, 30] and stack[:, 1].tolist() == [10, 10]
    assert split_number("", (0, 0, 1, 1)).shape == (0, 5)


def test_a_view_moves_boxes_with_the_pixels():
    image = np.zeros((400, 600, 3), np.uint8)
    image[100:160, 300:340] = 255  # one "digit": a white block
    item = Labelled(image, np.array([[4, 300, 100, 340, 160]], np.float32), ())
    rng = np.random.default_rng(0)
    for _ in range(10):
        out, digits = view(rng, item, 128, digit_px=(30, 90))
        assert out.shape == (128, 128, 3)
        for c, x0, y0, x1, y1 in digits:
            if c < 0:
                continue  # cut by the window's edge
            qx, qy = (x1 - x0) / 4, (y1 - y0) / 4  # the box's middle half: the block
            inside = out[int(y0 + qy) : int(y1 - qy), int(x0 + qx) : int(x1 - qx)]
            assert inside.size and inside.mean() > 200
    assert relight(rng, out).shape == out.shape
