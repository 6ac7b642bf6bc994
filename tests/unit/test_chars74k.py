"""A Chars74K-style labels.csv (file,digit,...) read into padded digit items; bad rows are one
line naming the file and line."""

import numpy as np
import pytest
from PIL import Image

from digitrec.data.chars74k import chars74k_digits


def _folder(tmp_path, rows):
    (tmp_path / "native").mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((30, 20, 3), 200, np.uint8)).save(tmp_path / "native" / name)
    (tmp_path / "labels.csv").write_text("file,digit,quality\n" + "".join(r + "\n" for r in rows))
    return tmp_path


def test_digits_are_padded_with_their_box_and_label(tmp_path):
    items = chars74k_digits(_folder(tmp_path, ["native/a.png,7,good", "native/b.png,0,bad"]))
    assert [int(it.digits[0, 0]) for it in items] == [7, 0]
    assert items[0].image.shape == (2 * 10 + 30, 2 * 7 + 20, 3)  # 0.3 of each side, +1 px
    assert items[0].digits[0, 1:].tolist() == [7.0, 10.0, 27.0, 40.0]


@pytest.mark.parametrize(
    "row, expected",
    [
        ("native/a.png,12,good", r"line 2: digit '12', expected one of 0-9"),
        ("../outside.png,1,good", r"line 2: file '../outside.png', expected a path inside"),
        ("native/missing.png,1,good", r"line 2: .*missing.png is not a readable image"),
    ],
)
def test_bad_rows_are_one_line_naming_the_line(tmp_path, row, expected):
    with pytest.raises(ValueError, match=expected):
        chars74k_digits(_folder(tmp_path, [row]))
