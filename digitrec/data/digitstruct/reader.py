"""Reading a digitStruct.mat: the fast reader, and the plain h5py walk it falls back to."""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np

from digitrec.data.digitstruct.fast import (
    _Damaged,
    _read_digit_struct_fast,
    _ref_addresses,
    _Unsupported,
)
from digitrec.data.digitstruct.records import (
    _CHARS,
    _FLOATS,
    FIELDS,
    DigitStructError,
    Record,
    _digit_struct_group,
    _one_line,
    _read,
    open_digit_struct,
    record_problem,
)

log = logging.getLogger(__name__)


def read_digit_struct(path: str | Path) -> list[Record]:
    """Records of a format-1 `digitStruct.mat` (fast path; falls back to the h5py walk)."""
    path = Path(path)
    try:
        return _read_digit_struct_fast(path)
    except _Damaged as e:
        log.warning("%s: %s; reading it object by object (slow)", path, e)
    except _Unsupported as e:
        log.info("%s: %s; reading it object by object (slow)", path, e)
    except DigitStructError:
        raise
    except Exception as e:  # a fast-reader bug must not cost the answer: the slow reader decides
        log.warning(
            "%s: fast reader failed (%s: %s); reading it object by object (slow)",
            path,
            type(e).__name__,
            e,
        )
    return read_digit_struct_slow(path)


def read_digit_struct_slow(path: str | Path) -> list[Record]:
    """The plain h5py walk: one dereference per name, box group and box value; its records are
    checked like the fast reader's (`record_problem`, no object reached twice)."""
    path = Path(path)
    f = open_digit_struct(path)
    try:
        with f:
            records, addresses = _walk(f, path)
    except DigitStructError:
        raise
    except Exception as e:  # h5py raises KeyError, OSError, ValueError, ... on damaged objects
        raise DigitStructError(
            f"{path}: damaged digitStruct ({type(e).__name__}: "
            f"{_one_line(e)}); expected SVHN format 1"
        ) from None
    if len(np.unique(addresses)) != len(addresses):
        raise DigitStructError(
            f"{path}: an object is reached twice (damaged references); "
            "expected each name, box group and value once"
        )
    problem = record_problem(records)
    if problem:
        raise DigitStructError(f"{path}: {problem}")
    return records


def _walk(f: h5py.File, path: Path) -> tuple[list[Record], np.ndarray]:
    """Records, and the addresses of every object they came from (h5py's low-level API: half
    the time of the high-level one)."""
    ds = _digit_struct_group(f, path)
    fid = f.id
    addresses = [_ref_addresses(ds["name"].id), _ref_addresses(ds["bbox"].id)]
    records = []
    for i, (name_ref, bbox_ref) in enumerate(zip(ds["name"][:, 0], ds["bbox"][:, 0], strict=True)):
        where = f"{path}: record {i + 1}"
        chars = _read(h5py.h5r.dereference(name_ref, fid), _CHARS, np.uint16, f"{where}: name")
        name = chars.tobytes().decode("utf-16-le", "replace")
        where = f"{where} ({name})"
        group = h5py.h5r.dereference(bbox_ref, fid)
        if not isinstance(group, h5py.h5g.GroupID):
            raise DigitStructError(f"{where}: its boxes are not a group")
        cols = []
        for field in FIELDS:
            v = h5py.h5o.open(group, field.encode())
            addresses.append(np.array([h5py.h5o.get_info(v).addr], np.uint64))
            if isinstance(v, h5py.h5d.DatasetID) and v.get_type() == h5py.h5t.STD_REF_OBJ:
                refs = _read(v, (h5py.h5t.STD_REF_OBJ,), h5py.ref_dtype, f"{where}: {field}")
                addresses.append(_ref_addresses(v))
                values = [
                    _read(h5py.h5r.dereference(r, fid), _FLOATS, np.float64, f"{where}: {field}")
                    for r in refs
                ]
                if any(len(x) != 1 for x in values):
                    raise DigitStructError(f"{where}: a {field} value is not one number")
                cols.append([float(x[0]) for x in values])
            else:
                cols.append(_read(v, _FLOATS, np.float64, f"{where}: {field}").tolist())
        if len({len(c) for c in cols}) != 1:
            raise DigitStructError(
                f"{where}: the fields differ in length; expected one value per digit in each"
            )
        records.append(Record(name, np.array(cols, np.float64).T.reshape(-1, 5)))
    return records, np.concatenate(addresses)


# the slow reader's datatypes: standard ones only (a damaged float description, e.g. another
# exponent bias, would have HDF5 convert 36 into 288)
