"""SVHN format 1's `digitStruct.mat`: a checked reader (fast and slow) and the writer.

`digitStruct.mat` is MATLAB v7.3, i.e. HDF5 in which every name, box group and box value is a
separate object reached through object references. Opening ~600,000 objects one by one through
h5py takes minutes, so `read_digit_struct` lets the HDF5 library walk the reference group once
(names → object addresses) and reads the values straight from the objects' headers (MATLAB and
h5py store these tiny arrays inline, "compact" layout). The fast reader trusts no byte it reads:
every address and length must stay inside the file and inside its header, headers must hold
exactly the messages they count, datatypes must be exactly MATLAB's (little-endian doubles,
uint16 characters, object references), element counts must match the data, no object may be
reached twice, and the records must be plausible (`record_problem`). Whatever it cannot vouch
for (another layout, or bytes that contradict the format: damage) is read with the plain h5py
walk (`read_digit_struct_slow`, also the reference the tests compare against), whose records
pass the same checks. Every error is a `DigitStructError` (a ValueError): one line that starts
with the file's path and says what was expected.
"""

from __future__ import annotations

import logging
import os
import struct
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

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


# ------------------------------------------------------------------------------ readers
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
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DigitStructError(
            f"{path}: not a MATLAB v7.3 (HDF5) digitStruct file ({_one_line(e)})"
        ) from None
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


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


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


# ------------------------------------------------------------------------- the fast reader
class _Unsupported(Exception):
    """The file is not laid out the way the fast reader parses (v1 object headers, old-style
    groups, compact or contiguous data, MATLAB's datatypes)."""


class _Damaged(_Unsupported):
    """Bytes that contradict the format (an address outside the file, a header that does not
    hold what it counts, an object reached twice, implausible records)."""


# the datatype messages MATLAB (and h5py) write: IEEE little-endian doubles, uint16 LE
# characters, object references
_F64 = bytes.fromhex("11203f000800000000004000340b0034ff030000")
_U16 = bytes.fromhex("100000000200000000001000")
_REF = bytes.fromhex("1700000008000000")
_MAX_MESSAGES = 256  # per object header (MATLAB's have 6 to 10)
_CLIP = 2**56  # addresses and lengths are read as at most this


def _le(buf: np.ndarray, pos: np.ndarray, nbytes: int) -> np.ndarray:
    """Little-endian unsigned integers of `nbytes` at byte positions `pos` (vectorized), as int64
    (values of 2**56 and more read as 2**56: past any file, and sums of a few cannot overflow).
    Positions outside `buf` are damage."""
    pos = np.asarray(pos, np.int64)
    if len(pos) and (pos.min() < 0 or pos.max() > len(buf) - nbytes):
        raise _Damaged("an offset outside the file")
    out = np.zeros(len(pos), np.uint64)
    for i in range(nbytes):
        out |= buf[pos + i].astype(np.uint64) << np.uint64(8 * i)
    return np.minimum(out, np.uint64(_CLIP)).astype(np.int64)


def _matches(buf: np.ndarray, pos: np.ndarray, lengths: np.ndarray, pattern: bytes) -> np.ndarray:
    """Whether the `lengths`-byte messages at `pos` begin with `pattern`."""
    ok = lengths >= len(pattern)
    at = pos[ok, None] + np.arange(len(pattern))
    out = np.zeros(len(pos), bool)
    out[ok] = (buf[at] == np.frombuffer(pattern, np.uint8)).all(1)
    return out


def _dataset_headers(buf: np.ndarray, base: int, addrs: np.ndarray):
    """Datatype message (position, length), element count, data position and data length of the
    datasets whose v1 object headers are at `addrs`, all at once: a walk over every header
    message in lockstep that checks each header holds exactly the messages it counts."""
    n = len(addrs)
    if n == 0:
        return (np.zeros(0, np.int64),) * 5
    addrs = np.asarray(addrs, np.int64) + base
    head = _le(buf, addrs, 1)  # also checks the addresses
    if (head != 1).any():
        raise _Damaged("object header version other than 1")
    if (_le(buf, addrs + 1, 1) != 0).any() or (_le(buf, addrs + 12, 4) != 0).any():
        raise _Damaged("object header with non-zero reserved bytes")
    n_msgs = _le(buf, addrs + 2, 2)
    end = addrs + 16 + _le(buf, addrs + 8, 4)
    if (n_msgs < 1).any() or (n_msgs > _MAX_MESSAGES).any() or (end > len(buf)).any():
        raise _Damaged("object header with an implausible message count or size")
    pos, seen = addrs + 16, np.zeros(n, np.int64)
    pend_pos, pend_end = np.full(n, -1, np.int64), np.zeros(n, np.int64)  # continuation blocks
    found = {t: np.full(n, -1, np.int64) for t in (0x01, 0x03, 0x08)}  # message body positions
    dt_len = np.zeros(n, np.int64)
    for _ in range(int(n_msgs.max())):
        jump = (pos == end) & (pend_pos >= 0)  # this block is done: on to the continuation
        pos[jump], end[jump], pend_pos[jump] = pend_pos[jump], pend_end[jump], -1
        rows = np.flatnonzero(seen < n_msgs)
        if len(rows) == 0:
            break
        p = pos[rows]
        if (p + 8 > end[rows]).any():
            raise _Damaged("object header with fewer messages than it counts")
        mtype, msize, body = _le(buf, p, 2), _le(buf, p + 2, 2), p + 8
        if (msize % 8 != 0).any() or (body + msize > end[rows]).any():
            raise _Damaged("header message overrunning its block")
        for t, at in found.items():
            hit = mtype == t
            if (at[rows[hit]] >= 0).any():
                raise _Damaged(f"object header with two messages of type {t}")
            at[rows[hit]] = body[hit]
            if t == 0x03:
                dt_len[rows[hit]] = msize[hit]
        cont = mtype == 0x10
        if cont.any():
            c = rows[cont]
            if (pend_pos[c] >= 0).any():
                raise _Unsupported("dataset header with nested continuation blocks")
            if (msize[cont] < 16).any():
                raise _Damaged("short continuation message")
            pend_pos[c] = _le(buf, body[cont], 8) + base
            pend_end[c] = pend_pos[c] + _le(buf, body[cont] + 8, 8)
            if (pend_end[c] > len(buf)).any():
                raise _Damaged("continuation block outside the file")
        pos[rows] = body + msize
        seen[rows] += 1
    if (seen != n_msgs).any() or (pos != end).any() or (pend_pos >= 0).any():
        raise _Damaged("object header whose messages do not fill it exactly")
    if any((at < 0).any() for at in found.values()):
        raise _Unsupported("dataset header without a dataspace, a datatype or a layout")
    nelem = _dataspace_sizes(buf, found[0x01])
    dpos, dlen = _layouts(buf, base, found[0x08])
    esize = _le(buf, found[0x03] + 4, 4)
    if (esize < 1).any() or (esize > 2**16).any() or (dlen != nelem * esize).any():
        raise _Damaged("dataset whose data length is not its element count times element size")
    return found[0x03], dt_len, nelem, dpos, dlen


def _dataspace_sizes(buf: np.ndarray, body: np.ndarray) -> np.ndarray:
    """Element counts of version-1 dataspace messages of one or two dimensions."""
    version, ndims = _le(buf, body, 1), _le(buf, body + 1, 1)
    if (version != 1).any() or (ndims < 1).any() or (ndims > 2).any():
        raise _Unsupported("dataspace other than version 1 with one or two dimensions")
    d0 = _le(buf, body + 8, 8)
    d1 = np.where(ndims == 2, _le(buf, body + 8 + 8 * (ndims == 2), 8), 1)
    if (d0 > 2**20).any() or (d1 > 2**20).any():  # a name or a number's values: a few
        raise _Damaged("dataspace with an implausible size")
    return d0 * d1


def _layouts(buf: np.ndarray, base: int, body: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Data position and length from version-3 layout messages (compact or contiguous)."""
    if (_le(buf, body, 1) != 3).any():
        raise _Unsupported("data layout message other than version 3")
    lclass = _le(buf, body + 1, 1)
    if (lclass > 1).any():
        raise _Unsupported("chunked dataset")
    dpos, dlen = np.zeros(len(body), np.int64), np.zeros(len(body), np.int64)
    compact, contiguous = lclass == 0, lclass == 1
    dlen[compact] = _le(buf, body[compact] + 2, 2)
    dpos[compact] = body[compact] + 4
    dpos[contiguous] = _le(buf, body[contiguous] + 2, 8) + base
    dlen[contiguous] = _le(buf, body[contiguous] + 10, 8)
    if (dpos + dlen > len(buf)).any():
        raise _Damaged("dataset data outside the file")
    return dpos, dlen


def _gather(buf: np.ndarray, pos: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The bytes buf[pos[i] : pos[i] + lengths[i]] for all i, concatenated."""
    at = np.repeat(pos, lengths) + _ranges(lengths)
    if len(at) and (at.min() < 0 or at.max() >= len(buf)):
        raise _Damaged("data outside the file")
    return buf[at]


def _u(raw, fmt: str, at: int) -> tuple:
    """struct.unpack_from that calls reading past the file damage."""
    if at < 0 or at + struct.calcsize(fmt) > len(raw):
        raise _Damaged("an offset outside the file")
    return struct.unpack_from(fmt, raw, at)


def _messages(raw, base: int, addr: int):
    """(type, body position) of the messages of the v1 object header at `addr`, checking that
    they fill the header exactly as counted."""
    pos = base + addr
    version, reserved, n, _, size, pad = _u(raw, "<BBHIII", pos)
    if version != 1:
        raise _Damaged(f"object header version {version}")
    if reserved or pad or not 1 <= n <= _MAX_MESSAGES:
        raise _Damaged("object header with an implausible message count or reserved bytes")
    blocks = [(pos + 16, pos + 16 + size)]
    out = []
    while blocks:
        p, end = blocks.pop(0)
        if end > len(raw):
            raise _Damaged("object header block outside the file")
        while p < end:
            mtype, msize = _u(raw, "<HH", p)
            if len(out) == n or msize % 8 or p + 8 + msize > end:
                raise _Damaged("object header whose messages do not fill it exactly")
            if mtype == 0x10:
                if msize < 16:
                    raise _Damaged("short continuation message")
                a, length = _u(raw, "<QQ", p + 8)
                blocks.append((base + a, base + a + length))
            out.append((mtype, p + 8))
            p += 8 + msize
        if p != end:
            raise _Damaged("object header whose messages do not fill it exactly")
    if len(out) != n:
        raise _Damaged("object header with fewer messages than it counts")
    return out


def _group_children(raw, base: int, addr: int) -> dict[str, int]:
    """Name → object address of an old-style (symbol table) group's members."""
    for mtype, body in _messages(raw, base, addr):
        if mtype == 0x11:
            btree, heap = _u(raw, "<QQ", body)
            break
    else:
        raise _Unsupported("group without a symbol table (new-style links)")
    if bytes(raw[base + heap : base + heap + 5]) != b"HEAP\0":
        raise _Damaged("symbol table without a local heap")
    seg_size, _, names_at = _u(raw, "<QQQ", base + heap + 8)
    names_at += base
    if names_at + seg_size > len(raw):
        raise _Damaged("local heap outside the file")
    out: dict[str, int] = {}
    nodes, visited = [btree], set()
    while nodes:
        node = base + nodes.pop()
        if node in visited or len(visited) > 64:
            raise _Damaged("group B-tree that loops")
        visited.add(node)
        sig = bytes(raw[node : node + 4])
        if sig == b"SNOD":
            version, _, count = _u(raw, "<BBH", node + 4)
            if version != 1:
                raise _Damaged("symbol table node version other than 1")
            for e in range(count):
                name_off, obj = _u(raw, "<QQ", node + 8 + 40 * e)
                if name_off >= seg_size:
                    raise _Damaged("member name outside the local heap")
                start = names_at + name_off
                stop = bytes(raw[start : names_at + seg_size]).find(b"\0")
                name = bytes(raw[start : start + stop]) if stop > 0 else b""
                if not name or not name.isascii() or name.decode() in out:
                    raise _Damaged("group member without a distinct ASCII name")
                if obj >= len(raw) - base:
                    raise _Damaged("group member outside the file")
                out[name.decode()] = obj
        elif sig == b"TREE":
            ntype, _, used = _u(raw, "<BBH", node + 4)
            if ntype != 0 or not 1 <= used <= 64:
                raise _Damaged("group B-tree node with an implausible type or size")
            nodes += [_u(raw, "<Q", node + 32 + 16 * i)[0] for i in range(used)]
        else:
            raise _Damaged("unknown group node")
    return out


def _read_digit_struct_fast(path: Path) -> list[Record]:
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DigitStructError(
            f"{path}: not a MATLAB v7.3 (HDF5) digitStruct file ({_one_line(e)})"
        ) from None
    with f:
        try:
            ds = _digit_struct_group(f, path)
            base = f.id.get_create_plist().get_userblock()
            name_addr = _ref_addresses(ds["name"].id)
            bbox_addr = _ref_addresses(ds["bbox"].id)
        except DigitStructError:
            raise
        except Exception as e:  # h5py's errors on damaged objects: the slow reader words them
            raise _Damaged(f"h5py: {type(e).__name__}: {_one_line(e)}") from None
    buf = np.fromfile(path, np.uint8)
    if not 0 <= base < len(buf):
        raise _Damaged("user block past the end of the file")
    name_addr, bbox_addr = (
        np.minimum(a, np.uint64(_CLIP)).astype(np.int64) for a in (name_addr, bbox_addr)
    )
    raw = buf.data
    n = len(name_addr)
    # each box group's five field datasets
    field_addr = np.zeros((n, len(FIELDS)), np.int64)
    for i, a in enumerate(bbox_addr):
        children = _group_children(raw, base, int(a))
        if set(children) != set(FIELDS):
            raise _Damaged(f"box group {i + 1} has members {sorted(children)}, not {FIELDS}")
        field_addr[i] = [children[k] for k in FIELDS]
    # field datasets: (1, 1) doubles inline, or (n, 1) references to (1, 1) doubles
    dt_pos, dt_len, count, dpos, dlen = _dataset_headers(buf, base, field_addr.ravel())
    is_ref = _matches(buf, dt_pos, dt_len, _REF)
    direct = ~is_ref
    if not _matches(buf, dt_pos[direct], dt_len[direct], _F64).all():
        raise _Unsupported("box values other than little-endian doubles")
    scalars = _gather(buf, dpos[is_ref], dlen[is_ref]).view("<u8")
    scalars = np.minimum(scalars, np.uint64(_CLIP)).astype(np.int64)
    s_dt, s_dt_len, s_count, s_pos, _ = _dataset_headers(buf, base, scalars)
    if not _matches(buf, s_dt, s_dt_len, _F64).all() or (s_count != 1).any():
        raise _Unsupported("box values other than single little-endian doubles")
    values = np.zeros(int(count.sum()), np.float64)
    at = np.cumsum(count) - count
    ref_slots = np.repeat(at[is_ref], count[is_ref]) + _ranges(count[is_ref])
    values[ref_slots] = _gather(buf, s_pos, np.full(len(s_pos), 8)).view("<f8")
    dir_slots = np.repeat(at[direct], count[direct]) + _ranges(count[direct])
    values[dir_slots] = _gather(buf, dpos[direct], dlen[direct]).view("<f8")
    per_image = count.reshape(n, len(FIELDS))
    if (per_image != per_image[:, :1]).any():
        bad = int(np.flatnonzero((per_image != per_image[:, :1]).any(1))[0])
        raise _Damaged(f"box group {bad + 1}: the fields differ in length")
    # names: uint16 characters
    c_dt, c_dt_len, _, c_pos, c_len = _dataset_headers(buf, base, name_addr)
    if not _matches(buf, c_dt, c_dt_len, _U16).all():
        raise _Unsupported("names other than uint16 characters")
    everything = np.concatenate([name_addr, bbox_addr, field_addr.ravel(), scalars])
    if len(np.unique(everything)) != len(everything):
        raise _Damaged("an object reached twice")
    chars = _gather(buf, c_pos, c_len).tobytes()
    ends = np.cumsum(c_len)
    records = []
    offsets = at.reshape(n, len(FIELDS))[:, 0]
    for i in range(n):
        k = int(per_image[i, 0])
        cols = values[offsets[i] : offsets[i] + k * len(FIELDS)].reshape(len(FIELDS), k)
        name = chars[ends[i] - c_len[i] : ends[i]].decode("utf-16-le", "replace")
        records.append(Record(name, np.ascontiguousarray(cols.T)))
    problem = record_problem(records)
    if problem:
        raise _Damaged(problem)
    return records


def _ranges(counts: np.ndarray) -> np.ndarray:
    """concatenate(arange(c) for c in counts)."""
    total = int(counts.sum())
    return np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)


def _ref_addresses(dsid: h5py.h5d.DatasetID) -> np.ndarray:
    """The object addresses a reference dataset points to, in one read."""
    out = np.zeros(dsid.shape, np.uint64)
    dsid.read(h5py.h5s.ALL, h5py.h5s.ALL, out, mtype=h5py.h5t.STD_REF_OBJ)
    return out.ravel()


# -------------------------------------------------------------------------------- writer
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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with h5py.File(tmp, "w", userblock_size=512, libver="earliest") as f:
            _MatWriter(f).write(records)
        with open(tmp, "r+b") as fh:  # the MATLAB header in the user block
            fh.write(_MAT_HEADER.ljust(116) + b"\x00" * 8 + b"\x00\x02IM")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
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
