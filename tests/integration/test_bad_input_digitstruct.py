"""Damaged digitStruct.mat files (issue 16): a fixed-seed fuzz of single flipped bytes, and the
defect's examples. Every outcome must be the original records or a one-line error that starts
with the file's path — never another exception, never wrong records. The one exception no reader
can catch: a flip inside a stored number or name that turns it into another legal one (33 → 49,
"14.png" → "1H.png"); the fuzz checks that each wrong answer is exactly that, and counts them."""

from __future__ import annotations

import logging
import os
import struct
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import REPO, random_records
from helpers import unavailable

from digitrec.data import digitstruct, svhn
from digitrec.data.digitstruct import DigitStructError, Record


def _records(n: int = 16, seed: int = 0) -> list[Record]:
    return random_records(n, seed, max_digits=4)


def _same(a: list[Record], b: list[Record]) -> bool:
    return len(a) == len(b) and all(
        x.name == y.name and x.boxes.shape == y.boxes.shape and np.array_equal(x.boxes, y.boxes)
        for x, y in zip(a, b, strict=True)
    )


def _named(e: Exception, path: Path) -> bool:
    return str(e).startswith(str(path)) and "\n" not in str(e)


def _overwritten_datum(orig: bytes, flipped: bytes, pos: int, truth, got) -> bool:
    """Whether `got` differs from `truth` only in one name or one box value whose own stored
    bytes contain the flipped byte `pos` (a legal value turned into another legal value)."""
    if len(got) != len(truth):
        return False
    diff = [
        i
        for i, (a, b) in enumerate(zip(got, truth, strict=True))
        if a.name != b.name
        or a.boxes.shape != b.boxes.shape
        or not np.array_equal(a.boxes, b.boxes)
    ]
    if len(diff) != 1:
        return False
    new, old = got[diff[0]], truth[diff[0]]
    if new.name != old.name:
        pairs = [(old.name.encode("utf-16-le"), new.name.encode("utf-16-le"))]
        if new.boxes.shape != old.boxes.shape or not np.array_equal(new.boxes, old.boxes):
            return False
    else:
        if new.boxes.shape != old.boxes.shape:
            return False
        cells = np.argwhere(new.boxes != old.boxes)
        if len(cells) != 1:
            return False
        r, c = cells[0]
        pairs = [(struct.pack("<d", old.boxes[r, c]), struct.pack("<d", new.boxes[r, c]))]
    for before, after in pairs:
        for start in range(pos - len(before) + 1, pos + 1):
            if (
                orig[start : start + len(before)] == before
                and flipped[start : start + len(after)] == after
            ):
                return True
    return False


def _fuzz(orig_path: Path, work: Path, flips: int, seed: int) -> Counter:
    """Flip one random byte (random XOR mask) `flips` times; classify each outcome of the public
    reader and of the fast reader alone. Any other exception fails the test where it is raised."""
    orig = orig_path.read_bytes()
    truth = digitstruct.read_digit_struct_slow(orig_path)
    rng = np.random.default_rng(seed)
    seen: Counter = Counter()
    for i in range(flips):
        pos, mask = int(rng.integers(len(orig))), int(rng.integers(1, 256))
        data = bytearray(orig)
        data[pos] ^= mask
        path = work / f"flip{i}.mat"
        path.write_bytes(bytes(data))
        where = f"flip {i}: byte {pos} ^ {mask:#04x}"
        try:
            got = digitstruct.read_digit_struct(path)
        except DigitStructError as e:
            assert _named(e, path), f"{where}: {e!r}"
            seen["named error"] += 1
        else:
            if _same(got, truth):
                seen["correct"] += 1
            else:
                assert _overwritten_datum(orig, bytes(data), pos, truth, got), f"{where}: wrong"
                seen["a stored datum overwritten"] += 1
        try:  # the fast reader alone: right, wrong only as above, or it hands over
            fast = digitstruct._read_digit_struct_fast(path)
        except (digitstruct._Unsupported, DigitStructError):
            seen["fast: handed to the slow reader or refused"] += 1
        else:
            assert _same(fast, truth) or _overwritten_datum(orig, bytes(data), pos, truth, fast), (
                f"{where}: fast wrong"
            )
        path.unlink()
    return seen


@pytest.fixture(autouse=True)
def _quiet():
    """The fallback's log lines (one per damaged file) are expected here."""
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def test_flipped_bytes_give_the_records_or_a_one_line_error_naming_the_file(tmp_path):
    records = _records()
    path = digitstruct.write_digit_struct(tmp_path / "digitStruct.mat", records)
    assert _same(digitstruct.read_digit_struct(path), records)
    seen = _fuzz(path, tmp_path, flips=300, seed=0)
    print(dict(seen))
    assert seen["correct"] + seen["named error"] + seen["a stored datum overwritten"] == 300
    # not vacuous: the flips hit the structure often, and the damage is reported
    assert seen["named error"] >= 25 and seen["fast: handed to the slow reader or refused"] >= 40
    assert seen["a stored datum overwritten"] <= 3


def test_flipped_bytes_in_a_real_digit_struct(tmp_path):
    data = Path(os.environ.get("DIGITREC_DATA_DIR", str(REPO.parent / "shared" / "data")))
    real = data / "svhn" / "fixtures" / "test" / "digitStruct.mat"
    if not real.is_file():
        message = f"no SVHN fixtures under {real.parent.parent}"
        unavailable(message)
    seen = _fuzz(real, tmp_path, flips=100, seed=1)
    print(dict(seen))
    assert seen["named error"] >= 5


# ------------------------------------------------------------------ the defect's examples
def _value_at(path: Path, value: float) -> int:
    """The position of the only stored copy of `value` in the file."""
    raw = path.read_bytes()
    packed = struct.pack("<d", value)
    assert raw.count(packed) == 1
    return raw.index(packed)


def _patched(path: Path, out: Path, at: int, new: bytes) -> Path:
    raw = bytearray(path.read_bytes())
    raw[at : at + len(new)] = new
    out.write_bytes(bytes(raw))
    return out


@pytest.mark.parametrize("digits", [1, 3])  # an inline (1, 1) value; referenced (1, 1) values
@pytest.mark.parametrize(
    "bad", [-0.0005, 1e-300, float("nan"), float("inf"), 33.5, 0.0, -33.0, 2.0**40]
)
def test_a_corrupted_height_is_an_error_naming_the_file_and_record(tmp_path, digits, bad):
    records = _records(3)
    records[1].boxes = np.array(
        [[1, 10 + j, 5, 12, 33 if j == 0 else 20] for j in range(digits)], np.float64
    )
    path = digitstruct.write_digit_struct(tmp_path / "digitStruct.mat", records)
    damaged = _patched(
        path, tmp_path / "damaged.mat", _value_at(path, 33.0), struct.pack("<d", bad)
    )
    for read in (digitstruct.read_digit_struct, digitstruct.read_digit_struct_slow):
        with pytest.raises(DigitStructError, match=r"damaged.mat: record 2 \(2.png\): box") as e:
            read(damaged)
        assert _named(e.value, damaged) and "expected whole pixels" in str(e.value)


@pytest.mark.parametrize("bad", [0.0, 11.0, 2.5])
def test_a_label_outside_1_to_10_is_an_error(tmp_path, bad):
    records = _records(3)
    records[2].boxes[:, 0] = [7, 3, 3]
    path = digitstruct.write_digit_struct(tmp_path / "digitStruct.mat", records)
    damaged = _patched(path, tmp_path / "d.mat", _value_at(path, 7.0), struct.pack("<d", bad))
    with pytest.raises(DigitStructError, match=r"d.mat: record 3 \(3.png\): box"):
        svhn.read_digit_struct(damaged)


def test_a_corrupted_name_is_an_error_naming_the_file(tmp_path):
    path = digitstruct.write_digit_struct(tmp_path / "digitStruct.mat", _records(12))
    raw = path.read_bytes()
    at = raw.index("11.png".encode("utf-16-le"))
    for new, expected in (
        ("11.pn\u00e9", "expected an ASCII file name ending in .png"),
        ("11\u0000png", "expected an ASCII file name"),
        ("12.png", "appears twice"),
    ):
        damaged = _patched(path, tmp_path / "n.mat", at, new.encode("utf-16-le"))
        with pytest.raises(DigitStructError, match=expected) as e:
            digitstruct.read_digit_struct(damaged)
        assert _named(e.value, damaged)


def test_a_reference_to_another_object_or_outside_the_file_is_an_error(tmp_path):
    path = digitstruct.write_digit_struct(tmp_path / "digitStruct.mat", _records(5))
    with h5py.File(path) as f:
        names = digitstruct._ref_addresses(f["digitStruct/name"].id)
    raw = path.read_bytes()
    at = raw.index(b"".join(struct.pack("<Q", int(a)) for a in names)) + 8  # the (5, 1) data
    # record 2's name reference points at record 1's name: both would read "1.png"
    twice = _patched(path, tmp_path / "twice.mat", at, struct.pack("<Q", int(names[0])))
    with pytest.raises(DigitStructError, match="twice.mat: .*(reached twice|appears twice)"):
        digitstruct.read_digit_struct(twice)
    outside = _patched(path, tmp_path / "outside.mat", at, struct.pack("<Q", len(raw) * 8))
    with pytest.raises(DigitStructError) as e:
        digitstruct.read_digit_struct(outside)
    assert _named(e.value, outside)
    truncated = tmp_path / "truncated.mat"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DigitStructError) as e:
        digitstruct.read_digit_struct(truncated)
    assert _named(e.value, truncated)


def test_the_writer_refuses_records_the_reader_would_reject(tmp_path):
    records = _records(3)
    records[1].boxes[0, 4] = float("nan")
    with pytest.raises(DigitStructError, match=r"out.mat: not written: record 2 \(2.png\)"):
        digitstruct.write_digit_struct(tmp_path / "out.mat", records)
    assert list(tmp_path.iterdir()) == []


def test_real_svhn_labels_are_all_plausible():
    data = Path(os.environ.get("DIGITREC_DATA_DIR", str(REPO.parent / "shared" / "data")))
    labels = data / "svhn" / "labels"
    if not labels.is_dir():
        message = f"no SVHN labels under {labels}"
        unavailable(message)
    for split in ("train", "test"):
        records = svhn.read_json_labels(labels / f"{split}.json.gz")
        assert digitstruct.record_problem(records) is None
