"""Writing a digitStruct.mat in the official layout (MATLAB v7.3: HDF5 with object references)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import h5py
import numpy as np

from digitrec.data.digitstruct.records import (
    FIELDS,
    DigitStructError,
    Record,
    record_problem,
)
from digitrec.io import atomic_path

_MAT_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by: digitrec, HDF5 schema 1.00 ."


def write_digit_struct(path: str | Path, records: Sequence[Record]) -> Path:
    """Write `records` as the official format-1 `digitStruct.mat` (MATLAB v7.3): a 512-byte MATLAB
    header, `digitStruct/name` and `/bbox` (N, 1) references into `#refs#`, one struct group per
    image whose fields are (1, 1) doubles for one digit and (n, 1) references to (1, 1) doubles
    for more, MATLAB_class attributes throughout. Records the reader would reject are refused
    (`record_problem`). Written to a temporary file, then renamed."""
    path = Path(path)
    problem = record_problem(records)
    if problem:
        raise DigitStructError(f"{path}: not written: {problem}")
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", userblock_size=512, libver="earliest") as f:
            _MatWriter(f).write(records)
        with open(tmp, "r+b") as fh:  # the MATLAB header in the user block
            fh.write(_MAT_HEADER.ljust(116) + b"\x00" * 8 + b"\x00\x02IM")
    return path


class _MatWriter:
    """MATLAB v7.3 objects through h5py's low-level API (the high-level one is ~10x slower per
    object, and a train-sized file has ~600,000 of them)."""

    ORDER = ("height", "left", "top", "width", "label")  # MATLAB's field order

    def __init__(self, f: h5py.File):
        self.f, self.refs = f, f.create_group("#refs#")
        self.count = 0
        self.compact = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        self.compact.set_layout(h5py.h5d.COMPACT)
        self.scalar_space = h5py.h5s.create(h5py.h5s.SCALAR)
        self.one = h5py.h5s.create_simple((1, 1))
        self.f64 = h5py.h5t.IEEE_F64LE
        self._str_types: dict[int, h5py.h5t.TypeID] = {}
        self.int_decode = np.array(2, np.int32)
        self.fields = _matlab_fields(self.ORDER)

    def _key(self) -> str:
        self.count += 1
        return _ref_name(self.count - 1)

    def _str_attr(self, oid, name: bytes, value: bytes) -> None:
        t = self._str_types.get(len(value))
        if t is None:
            t = self._str_types[len(value)] = h5py.h5t.C_S1.copy()
            t.set_size(len(value))
        attr = h5py.h5a.create(oid, name, t, self.scalar_space)
        attr.write(np.array(value, f"S{len(value)}"), mtype=t)  # MATLAB: size = length

    def _dataset(self, parent, key: str, value: np.ndarray, cls: bytes, in_refs: bool):
        space = self.one if value.shape == (1, 1) else h5py.h5s.create_simple(value.shape)
        tid = self.f64 if value.dtype == np.float64 else h5py.h5t.STD_U16LE
        dsid = h5py.h5d.create(parent, key.encode(), tid, space, dcpl=self.compact)
        dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(value))
        self._str_attr(dsid, b"MATLAB_class", cls)
        if in_refs:
            self._str_attr(dsid, b"H5PATH", f"/#refs#/{key}".encode())
        if cls == b"char":
            attr = h5py.h5a.create(
                dsid, b"MATLAB_int_decode", h5py.h5t.STD_I32LE, self.scalar_space
            )
            attr.write(self.int_decode)
        return dsid

    def _refs(self, parent, name: str, objs) -> None:
        value = np.array(
            [[h5py.h5r.create(o, b".", h5py.h5r.OBJECT)] for o in objs], dtype=h5py.ref_dtype
        )
        small = value.size * 8 < 60_000  # compact data must fit in an object header
        dsid = h5py.h5d.create(
            parent,
            name.encode(),
            h5py.h5t.STD_REF_OBJ,
            h5py.h5s.create_simple(value.shape),
            dcpl=self.compact if small else None,
        )
        dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, value)

    def write(self, records: Sequence[Record]) -> None:
        refs = self.refs.id
        names, groups = [], []
        for r in records:
            chars = np.frombuffer(r.name.encode("utf-16-le"), "<u2").reshape(-1, 1)
            names.append(self._dataset(refs, self._key(), chars, b"char", True))
            key = self._key()
            g = h5py.h5g.create(refs, key.encode())
            self._str_attr(g, b"H5PATH", f"/#refs#/{key}".encode())
            self._str_attr(g, b"MATLAB_class", b"struct")
            h5py.AttributeManager(h5py.Group(g)).create(
                "MATLAB_fields", self.fields, dtype=h5py.vlen_dtype("S1")
            )
            b = np.asarray(r.boxes, np.float64).reshape(-1, 5)
            for field in self.ORDER:
                col = b[:, FIELDS.index(field)]
                if len(col) == 1:
                    self._dataset(g, field, col.reshape(1, 1), b"double", False)
                else:
                    objs = [
                        self._dataset(refs, self._key(), v.reshape(1, 1), b"double", True)
                        for v in col
                    ]
                    self._refs(g, field, objs)
            groups.append(g)
        top = self.f.create_group("digitStruct")
        top.attrs["MATLAB_class"] = np.bytes_(b"struct")
        top.attrs.create(
            "MATLAB_fields", _matlab_fields(("name", "bbox")), dtype=h5py.vlen_dtype("S1")
        )
        self._refs(top.id, "name", names)
        self._refs(top.id, "bbox", groups)


def _matlab_fields(names: Iterable[str]) -> np.ndarray:
    out = np.empty(len(tuple(names)), dtype=object)
    for i, n in enumerate(names):
        out[i] = np.array(list(n), "S1")
    return out


_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _ref_name(i: int) -> str:
    s = ""
    while True:
        i, r = divmod(i, len(_ALPHABET))
        s = _ALPHABET[r] + s
        if i == 0:
            return s
