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


def test_chars74k_digits_become_padded_classifier_items(real_data_dir: Path):
    import numpy as np

    from digitrec.data.chars74k import chars74k_digits
    from digitrec.data.photo_augment import crop_samples

    root = real_data_dir / "chars74k_digits"
    if not (root / "labels.csv").is_file():
        unavailable(f"no chars74k_digits under {root}")
    items = chars74k_digits(root)
    labels = np.array([int(it.digits[0, 0]) for it in items])
    assert len(items) == 446  # the README's per-digit counts
    assert np.bincount(labels).tolist() == [78, 65, 59, 36, 37, 41, 42, 31, 21, 36]
    for it in items[:20]:
        _, x0, y0, x1, y1 = it.digits[0]
        h, w = it.image.shape[:2]
        assert 0 < x0 < x1 < w and 0 < y0 < y1 < h  # padded on every side
    crops, got = crop_samples(np.random.default_rng(0), items[0], positives=1, negatives=0)
    assert crops.shape == (1, 32, 32, 3) and got.tolist() == [labels[0]]
