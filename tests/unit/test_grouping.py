"""Digits into numbers: a row read left to right, a vertical stack top to bottom, two numbers
apart stay apart, a lone digit is discounted."""

import numpy as np

from digitrec.models.grouping import group


def _digit(x, y, cls, score=0.9, w=20, h=30):
    return [x, y, x + w, y + h, score, cls]


def test_a_vertical_stack_is_one_candidate_read_top_to_bottom():
    stack = [_digit(100, 200, 3), _digit(101, 120, 9), _digit(99, 160, 1), _digit(100, 80, 5)]
    (c,) = group(np.array(stack))
    assert c.number == "5913" and c.orientation == "stack"
    assert c.box == (99.0, 80.0, 121.0, 230.0)


def test_rows_apart_are_two_candidates_best_first():
    row = [_digit(x, 50, d, 0.9) for x, d in ((60, 2), (20, 1), (40, 7))]
    far = [_digit(x, 400, d, 0.6) for x, d in ((300, 4), (322, 0))]
    a, b = group(np.array(row + far))
    assert (a.number, a.orientation, b.number) == ("172", "row", "40")
    assert a.score > b.score


def test_different_sizes_do_not_join_and_a_lone_digit_is_discounted():
    big, small = _digit(0, 0, 8, 0.9, 40, 60), _digit(45, 10, 1, 0.9, 10, 15)
    out = group(np.array([big, small]))
    assert sorted(c.number for c in out) == ["1", "8"]
    assert all(abs(c.score - 0.9 * 0.8) < 1e-9 for c in out)
    assert group(np.zeros((0, 6))) == []
