"""labels.json of real street photos (curtin_numbers' form): read, checked, one-line errors."""

import json

import pytest

from digitrec.data.street_photos import LabelError, read_split


def _write(folder, entries):
    folder.mkdir(exist_ok=True)
    (folder / "labels.json").write_text(json.dumps(entries))
    return folder


def test_boxes_become_corners_and_negatives_have_none(tmp_path):
    folder = _write(
        tmp_path / "s",
        [
            {
                "file": "a.jpg",
                "width": 100,
                "height": 50,
                "numbers": [
                    {
                        "number": "205",
                        "confident": True,
                        "has_letter": False,
                        "box": [10, 5, 30, 20],
                    },
                    {
                        "number": "502A",
                        "confident": False,
                        "has_letter": True,
                        "box": [80, 40, 20.5, 10],
                    },
                ],
            },
            {"file": "b.jpg", "width": 100, "height": 50, "numbers": []},
        ],
    )
    a, b = read_split(folder)
    assert a.path == folder / "a.jpg" and (a.width, a.height) == (100, 50)
    assert a.numbers[0].box == (10.0, 5.0, 40.0, 25.0) and a.numbers[0].confident
    assert a.numbers[1].box == (80.0, 40.0, 100.0, 50.0)  # clipped to the photo (half a pixel)
    assert a.numbers[1].has_letter and not a.numbers[1].confident
    assert b.numbers == ()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"width": 10, "height": 10}, r"\[0\]: expected an object with a file name"),
        ({"file": "../x.jpg", "width": 10, "height": 10}, r"file='../x.jpg': expected a plain"),
        ({"file": "x.jpg", "width": 0, "height": 10}, r"width=0, height=10: expected pixels > 0"),
        (
            {
                "file": "x.jpg",
                "width": 10,
                "height": 10,
                "numbers": [{"number": "1", "box": [1, 1, 0, 3]}],
            },
            r"numbers\[0\].box=\[1, 1, 0, 3\]: expected \[left, top, width, height\]",
        ),
        (
            {
                "file": "x.jpg",
                "width": 10,
                "height": 10,
                "numbers": [{"number": "1", "box": [5, 5, 20, 3]}],
            },
            r"outside the 10x10 photo",
        ),
        (
            {
                "file": "x.jpg",
                "width": 10,
                "height": 10,
                "numbers": [{"number": 7, "box": [1, 1, 2, 2]}],
            },
            r"number=7: expected a string",
        ),
    ],
)
def test_a_bad_entry_is_one_line_naming_it(tmp_path, entry, message):
    folder = _write(tmp_path / "s", [entry])
    with pytest.raises(LabelError, match=message) as e:
        read_split(folder)
    assert "\n" not in str(e.value) and "labels.json[0]" in str(e.value)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="labels.json: no such file"):
        read_split(tmp_path)
    (tmp_path / "labels.json").write_text("{not json")
    with pytest.raises(LabelError, match="not readable JSON"):
        read_split(tmp_path)
