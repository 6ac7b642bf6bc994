"""digitStruct records, their checks, and the h5py helpers both readers share."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import h5py
import numpy as np

from digitrec.io import one_line

log = logging.getLogger(__name__)

FIELDS = ("label", "left", "top", "width", "height")  # columns of Record.boxes
MAX_PIXELS = 16_384  # plausible box coordinates and sizes: |value| at most this (SVHN: under 1,100)


@dataclass
class Record:
    """One image: its file name and its digit boxes in reading order.

    `boxes` is float64 (n, 5) with columns FIELDS; label 10 means the digit 0 (SVHN convention).
    `size` is (width, height) when the label source knows it (the JSON form does, the .mat not).
    """

    name: str
    boxes: np.ndarray
    size: tuple[int, int] | None = None

    @property
    def digits(self) -> list[int]:
        return [int(v) % 10 for v in self.boxes[:, 0]]

    @property
    def number(self) -> str:
        return "".join(map(str, self.digits))


class DigitStructError(ValueError):
    """A digitStruct.mat that cannot be read or holds implausible records; the message is one
    line starting with the file's path."""


def record_problem(records: Sequence[Record]) -> str | None:
    """What makes `records` implausible as SVHN labels (None if nothing): names must be distinct
    printable ASCII file names ending in .png; boxes whole pixels, labels 1..10, width and height
    1..MAX_PIXELS, left and top within ±MAX_PIXELS (real SVHN has boxes sticking out of the image
    by a few pixels)."""
    seen: set[str] = set()
    for i, r in enumerate(records):
        n = r.name
        if not (
            isinstance(n, str)
            and n.isascii()
            and n.isprintable()
            and len(n) > 4
            and n.endswith(".png")
            and "/" not in n
            and "\\" not in n
        ):
            return f"record {i + 1}: name {n!r}: expected an ASCII file name ending in .png"
        if n in seen:
            return f"record {i + 1}: name {n!r} appears twice: expected each image once"
        seen.add(n)
    if not records:
        return None
    boxes = [np.asarray(r.boxes) for r in records]
    shapes = [b.shape for b in boxes]
    if any(len(s) != 2 or s[1] != len(FIELDS) for s in shapes):
        i = next(i for i, s in enumerate(shapes) if len(s) != 2 or s[1] != len(FIELDS))
        return f"record {i + 1} ({records[i].name}): boxes of shape {shapes[i]}: expected (n, 5)"
    b = np.concatenate(boxes).astype(np.float64)
    with np.errstate(invalid="ignore"):
        label, pos, size = b[:, 0], b[:, 1:3], b[:, 3:5]
        bad = (
            ~np.isfinite(b).all(1)
            | (b != np.round(b)).any(1)
            | (label < 1)
            | (label > 10)
            | (size < 1).any(1)
            | (size > MAX_PIXELS).any(1)
            | (np.abs(pos) > MAX_PIXELS).any(1)
        )
    if not bad.any():
        return None
    row = int(np.flatnonzero(bad)[0])
    i = int(np.searchsorted(np.cumsum([s[0] for s in shapes]), row, side="right"))
    box = dict(zip(FIELDS, b[row].tolist(), strict=True))
    return (
        f"record {i + 1} ({records[i].name}): box {box}: expected whole pixels, label 1..10, "
        f"width and height 1..{MAX_PIXELS}, left and top within ±{MAX_PIXELS}"
    )


_FLOATS = (h5py.h5t.IEEE_F64LE, h5py.h5t.IEEE_F64BE, h5py.h5t.IEEE_F32LE, h5py.h5t.IEEE_F32BE)
_CHARS = (h5py.h5t.STD_U16LE, h5py.h5t.STD_U16BE)
_MAX_ELEMENTS = 1 << 20  # per name or value dataset (SVHN: a few)


def _read(oid, types, dtype, what: str) -> np.ndarray:
    """All elements of the dataset `oid`, flattened, if its datatype is one of `types`."""
    if not isinstance(oid, h5py.h5d.DatasetID):
        raise DigitStructError(f"{what}: expected a dataset")
    tid = oid.get_type()
    if not any(tid == t for t in types):
        expected = {np.uint16: "uint16 characters", np.float64: "IEEE floating point numbers"}
        raise DigitStructError(f"{what}: expected {expected.get(dtype, 'object references')}")
    n = oid.get_space().get_simple_extent_npoints()
    if n > _MAX_ELEMENTS:
        raise DigitStructError(f"{what}: {n} elements; expected a few")
    out = np.empty(n, dtype)
    oid.read(h5py.h5s.ALL, h5py.h5s.ALL, out)
    return out


_one_line = one_line  # the readers' name for it


def open_digit_struct(path) -> h5py.File:
    """The file opened read-only; DigitStructError (one line) when it is not HDF5."""
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise DigitStructError(
            f"{path}: not a MATLAB v7.3 (HDF5) digitStruct file ({_one_line(e)})"
        ) from None


def _digit_struct_group(f: h5py.File, path) -> h5py.Group:
    ds = f.get("digitStruct")
    if not isinstance(ds, h5py.Group) or "name" not in ds or "bbox" not in ds:
        raise DigitStructError(
            f"{path}: no digitStruct/name and digitStruct/bbox (not SVHN format 1)"
        )
    name, bbox = ds["name"], ds["bbox"]
    for k, d in (("name", name), ("bbox", bbox)):
        if (
            not isinstance(d, h5py.Dataset)
            or h5py.check_ref_dtype(d.dtype) is not h5py.Reference
            or d.ndim != 2
            or d.shape[1] != 1
        ):
            raise DigitStructError(
                f"{path}: digitStruct/{k}: expected an (N, 1) array of object references"
            )
    if name.shape != bbox.shape:
        raise DigitStructError(f"{path}: digitStruct/name and /bbox differ in length")
    return ds
