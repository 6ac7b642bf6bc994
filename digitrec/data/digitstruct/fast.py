"""The fast digitStruct reader: the HDF5 object headers walked in bulk, every byte checked."""

from __future__ import annotations

import struct
from pathlib import Path

import h5py
import numpy as np

from digitrec.data.digitstruct.records import (
    FIELDS,
    DigitStructError,
    Record,
    _digit_struct_group,
    _one_line,
    open_digit_struct,
    record_problem,
)


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
    f = open_digit_struct(path)
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
