"""The real street photos of ../shared/data/curtin_numbers read as documented: counts, boxes
inside the photos, the files there, and no number of test/ in train/ (split by number)."""

from pathlib import Path

from helpers import unavailable

from digitrec.data.street_photos import read_split


def test_curtin_numbers_splits_read_whole(real_data_dir: Path):
    root = real_data_dir / "curtin_numbers"
    if not (root / "train" / "labels.json").is_file():
        unavailable(f"no curtin_numbers under {root}")
    train, test = read_split(root / "train"), read_split(root / "test")
    assert (len(train), len(test)) == (775, 221)
    assert sum(len(p.numbers) for p in train) == 656 and sum(not p.numbers for p in train) == 136
    assert sum(len(p.numbers) for p in test) == 200 and sum(not p.numbers for p in test) == 25
    for p in train + test:
        assert p.path.is_file() and (p.width, p.height) == (1024, 1024)
        for n in p.numbers:
            x0, y0, x1, y1 = n.box
            assert 0 <= x0 < x1 <= p.width and 0 <= y0 < y1 <= p.height
    numbers = lambda photos: {n.number for p in photos for n in p.numbers if n.confident}  # noqa: E731
    assert not numbers(train) & numbers(test)
