"""SVHN format 1 (full house-number images with per-digit boxes): download, labels, preprocessing
and the HDF5 cache the training loader reads.

Layout under `root` (default `<data_dir>/svhn`): `<split>/1.png, 2.png, ...` and
`<split>/digitStruct.mat` for split in train, test, extra, exactly as the official archives
extract; `cache/<split>-<key>.h5` holds the preprocessed images (see `build_cache`; a read-only
root caches under ~/.cache/digitrec instead). A split folder with PNGs but no digitStruct.mat
takes its labels from the JSON form (`split_records`): `<split>/labels.json[.gz]`,
`<root>/labels/<split>.json[.gz]` or `<root>/../labels/<split>.json[.gz]` — so a subset of real
SVHN images (e.g. `$DIGITREC_DATA_DIR/svhn/real`, labels in `svhn/labels/`) works as a root.

`digitStruct.mat` is MATLAB v7.3, i.e. HDF5 in which every name, box group and box value is a
separate object reached through object references. Opening ~600,000 objects one by one through
h5py takes minutes, so `read_digit_struct` lets the HDF5 library walk the reference group once
(names → object addresses) and reads the values straight from the objects' headers (MATLAB and
h5py store these tiny arrays inline, "compact" layout). Files it cannot read that way are read
with the plain h5py walk (`read_digit_struct_slow`, also the reference the tests compare against).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import shutil
import struct
import tarfile
import time
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np

from digitrec.data.download import DownloadError, download_first, user_cache, writable

log = logging.getLogger(__name__)

SPLITS = ("train", "test", "extra")
# the official archives (http://ufldl.stanford.edu/housenumbers/): bytes and md5
ARCHIVES = {
    "train": ("train.tar.gz", 404_141_560, "a649f4cb15c35520e8a8c342d4c0005a"),
    "test": ("test.tar.gz", 276_555_967, "790d9c8d42f1fcbd219b59956c853a81"),
    "extra": ("extra.tar.gz", 1_955_489_752, "606f41243d71ca4d5fe66dbaf1f02bee"),
}
BASE_URLS = ("http://ufldl.stanford.edu/housenumbers/",)
FIELDS = ("label", "left", "top", "width", "height")  # columns of Record.boxes
RENDERED_MARKER = "RENDERED.md"  # present in roots written by digitrec.data.street


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


# --------------------------------------------------------------------------------- download
def ensure_split(root: str | Path, split: str, download: bool = True) -> Path:
    """`<root>/<split>/` with its digitStruct.mat; downloads and extracts the archive if needed."""
    if split not in SPLITS:
        raise ValueError(f"SVHN split {split!r}: expected one of {SPLITS}")
    root = Path(root)
    folder = root / split
    if (folder / "digitStruct.mat").is_file():
        return folder
    if not download:
        raise FileNotFoundError(
            f"{folder}/digitStruct.mat not found (download disabled: data.download=false)"
        )
    name, size, md5 = ARCHIVES[split]
    archive = root / name
    if not archive.is_file():
        log.info("downloading SVHN %s (%.0f MB) into %s", name, size / 1e6, root)
        got, failures = download_first([u + name for u in BASE_URLS], archive, md5=md5, size=size)
        if got is None:
            raise DownloadError(
                f"could not download SVHN {name} ({'; '.join(failures)}); "
                f"put the official {name} in {root} or extract it to {folder}"
            )
    extract(archive, root, split)
    return folder


def extract(archive: Path, root: Path, split: str) -> Path:
    """Extract `<split>/...` from the archive into a temporary folder, then rename it into place."""
    tmp = root / f".{split}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(tmp, filter="data")  # no absolute paths, links or devices
        if not (tmp / split / "digitStruct.mat").is_file():
            raise ValueError(f"{archive}: no {split}/digitStruct.mat inside")
        os.replace(tmp / split, root / split)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise ValueError(
            f"{archive}: unreadable or truncated archive ({e}); delete it to download it again"
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root / split


# --------------------------------------------------------------------------- label readers
def read_json_labels(path: str | Path) -> list[Record]:
    """The JSON label form (`[{"name", "width", "height", "boxes": [{label, left, ...}]}]`,
    optionally gzipped)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt") as f:
            entries = json.load(f)
        return [
            Record(
                e["name"],
                np.array([[b[k] for k in FIELDS] for b in e["boxes"]], np.float64).reshape(-1, 5),
                (int(e["width"]), int(e["height"])) if "width" in e else None,
            )
            for e in entries
        ]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not an SVHN label file ({type(e).__name__}: {e})") from None


def json_labels_for(root: str | Path, split: str) -> Path | None:
    """The JSON label file for a split folder without digitStruct.mat, if there is one."""
    root = Path(root)
    for folder, stem in ((root / split, "labels"), (root / "labels", split),
                         (root.parent / "labels", split)):  # fmt: skip
        for suffix in (".json.gz", ".json"):
            if (folder / f"{stem}{suffix}").is_file():
                return folder / f"{stem}{suffix}"
    return None


def split_records(root: str | Path, split: str, download: bool = True) -> tuple[Path, list[Record]]:
    """The split's folder and its records: from `<split>/digitStruct.mat`; else, for a folder of
    PNGs, from the JSON labels (`json_labels_for`), keeping the images present in the folder;
    else the official split, downloaded when missing."""
    root = Path(root)
    folder = root / split
    labels = None if (folder / "digitStruct.mat").is_file() else json_labels_for(root, split)
    if labels is not None and folder.is_dir():
        present = {p.name for p in folder.glob("*.png")}
        if present:
            records = [r for r in read_json_labels(labels) if r.name in present]
            if not records:
                raise ValueError(f"{folder}: none of its {len(present)} PNGs is labelled in "
                                 f"{labels}")  # fmt: skip
            unlabelled = len(present) - len(records)
            if unlabelled:
                log.warning("%s: %d PNGs have no entry in %s and are skipped", folder,
                            unlabelled, labels)  # fmt: skip
            log.info("%s: %d images labelled by %s", folder, len(records), labels)
            return folder, records
    folder = ensure_split(root, split, download)
    return folder, read_digit_struct(folder / "digitStruct.mat")


def read_digit_struct(path: str | Path) -> list[Record]:
    """Records of a format-1 `digitStruct.mat` (fast path; falls back to the h5py walk)."""
    path = Path(path)
    try:
        return _read_digit_struct_fast(path)
    except _Unsupported as e:
        log.info("%s: %s; reading it object by object (slow)", path, e)
        return read_digit_struct_slow(path)
    except OSError as e:
        raise ValueError(f"{path}: not a MATLAB v7.3 (HDF5) digitStruct file ({e})") from None


def read_digit_struct_slow(path: str | Path) -> list[Record]:
    """The plain h5py walk: one dereference per name, box group and box value."""
    with h5py.File(path, "r") as f:
        ds = _digit_struct_group(f, path)
        records = []
        for name_ref, bbox_ref in zip(ds["name"][:, 0], ds["bbox"][:, 0], strict=True):
            name = f[name_ref][()].ravel().astype(np.uint16).tobytes().decode("utf-16-le")
            group = f[bbox_ref]
            cols = []
            for field in FIELDS:
                v = group[field]
                if v.dtype == object:
                    cols.append([float(f[r][()].ravel()[0]) for r in v[()].ravel()])
                else:
                    cols.append([float(x) for x in v[()].ravel()])
            records.append(Record(name, np.array(cols, np.float64).T.reshape(-1, 5)))
        return records


def _digit_struct_group(f: h5py.File, path) -> h5py.Group:
    ds = f.get("digitStruct")
    if not isinstance(ds, h5py.Group) or "name" not in ds or "bbox" not in ds:
        raise ValueError(f"{path}: no digitStruct/name and digitStruct/bbox (not SVHN format 1)")
    if ds["name"].shape != ds["bbox"].shape:
        raise ValueError(f"{path}: digitStruct/name and /bbox differ in length")
    return ds


class _Unsupported(Exception):
    """The file is not laid out the way the fast reader parses (v1 object headers, old-style
    groups, compact or contiguous data)."""


def _le(buf: np.ndarray, pos: np.ndarray, nbytes: int) -> np.ndarray:
    """Little-endian unsigned integers of `nbytes` at byte positions `pos` (vectorized)."""
    out = np.zeros(len(pos), np.uint64)
    for i in range(nbytes):
        out |= buf[pos + i].astype(np.uint64) << np.uint64(8 * i)
    return out


def _dataset_headers(buf: np.ndarray, base: int, addrs: np.ndarray):
    """Datatype class, element size, data position and data length of the datasets whose v1
    object headers are at `addrs`, all at once: a walk over the header messages in lockstep."""
    addrs = np.asarray(addrs, np.int64) + base
    n = len(addrs)
    if n == 0:
        return (np.zeros(0, np.int64),) * 4
    if (buf[addrs] != 1).any():
        raise _Unsupported("object header version other than 1")
    n_msgs = _le(buf, addrs + 2, 2).astype(np.int64)
    end = addrs + 16 + _le(buf, addrs + 8, 4).astype(np.int64)
    pos = addrs + 16
    dclass, esize = np.full(n, -1, np.int64), np.zeros(n, np.int64)
    dpos, dlen = np.full(n, -1, np.int64), np.zeros(n, np.int64)
    pend_pos, pend_end = np.full(n, -1, np.int64), np.zeros(n, np.int64)  # continuation blocks
    for k in range(int(n_msgs.max())):
        jump = (pos + 8 > end) & (pend_pos >= 0)  # this block is done: on to the continuation
        pos[jump], end[jump], pend_pos[jump] = pend_pos[jump], pend_end[jump], -1
        live = (k < n_msgs) & (pos + 8 <= end) & ((dclass < 0) | (dpos < 0))
        if not live.any():
            break
        p = np.where(live, pos, addrs)  # dead rows read harmless bytes
        mtype, msize, body = _le(buf, p, 2), _le(buf, p + 2, 2).astype(np.int64), p + 8
        cont = live & (mtype == 0x10)  # more messages elsewhere, after this block
        dt = live & (mtype == 0x03)
        dclass[dt] = buf[body[dt]] & 0x0F
        esize[dt] = _le(buf, body[dt] + 4, 4).astype(np.int64)
        lay = live & (mtype == 0x08)
        if (buf[body[lay]] != 3).any():
            raise _Unsupported("data layout message other than version 3")
        lclass = buf[body[lay] + 1]
        if (lclass > 1).any():
            raise _Unsupported("chunked dataset")
        idx = np.flatnonzero(lay)
        compact, contiguous = idx[lclass == 0], idx[lclass == 1]
        dlen[compact] = _le(buf, body[compact] + 2, 2).astype(np.int64)
        dpos[compact] = body[compact] + 4
        dpos[contiguous] = _le(buf, body[contiguous] + 2, 8).astype(np.int64) + base
        dlen[contiguous] = _le(buf, body[contiguous] + 10, 8).astype(np.int64)
        if (cont & (pend_pos >= 0)).any():
            raise _Unsupported("dataset header with nested continuation blocks")
        pend_pos[cont] = _le(buf, body[cont], 8).astype(np.int64) + base
        pend_end[cont] = pend_pos[cont] + _le(buf, body[cont] + 8, 8).astype(np.int64)
        pos = body + msize
    if (dclass < 0).any() or (dpos < 0).any():
        raise _Unsupported("dataset header without a datatype or a layout")
    return dclass, esize, dpos, dlen


def _gather(buf: np.ndarray, pos: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The bytes buf[pos[i] : pos[i] + lengths[i]] for all i, concatenated."""
    return buf[np.repeat(pos, lengths) + _ranges(lengths)]


def _messages(buf: np.ndarray, base: int, addr: int):
    """(type, body position) of the messages of the v1 object header at `addr`."""
    pos = base + addr
    if buf[pos] != 1:
        raise _Unsupported(f"object header version {buf[pos]}")
    n = int(_le(buf, np.array([pos + 2]), 2)[0])
    blocks = [(pos + 16, pos + 16 + int(_le(buf, np.array([pos + 8]), 4)[0]))]
    while blocks and n > 0:
        p, end = blocks.pop(0)
        while p + 8 <= end and n > 0:
            head = buf[p : p + 4].tobytes()
            mtype, msize = struct.unpack("<HH", head)
            n -= 1
            if mtype == 0x10:
                a, length = struct.unpack("<QQ", buf[p + 8 : p + 24].tobytes())
                blocks.append((base + a, base + a + length))
            yield mtype, p + 8
            p += 8 + msize


def _group_children(buf: np.ndarray, base: int, addr: int) -> dict[str, int]:
    """Name → object address of an old-style (symbol table) group's members."""
    raw = buf.data
    for mtype, body in _messages(buf, base, addr):
        if mtype == 0x11:
            btree, heap = struct.unpack_from("<QQ", raw, body)
            break
    else:
        raise _Unsupported("group without a symbol table (new-style links)")
    if bytes(raw[base + heap : base + heap + 4]) != b"HEAP":
        raise _Unsupported("symbol table without a local heap")
    (names_at,) = struct.unpack_from("<Q", raw, base + heap + 24)
    names_at += base
    out: dict[str, int] = {}
    nodes = [btree]
    while nodes:
        node = base + nodes.pop()
        sig = bytes(raw[node : node + 4])
        if sig == b"SNOD":
            (count,) = struct.unpack_from("<H", raw, node + 6)
            for e in range(count):
                name_off, obj = struct.unpack_from("<QQ", raw, node + 8 + 40 * e)
                name = bytes(raw[names_at + name_off : names_at + name_off + 64])
                out[name.split(b"\0", 1)[0].decode()] = obj
        elif sig == b"TREE":
            _, _, used = struct.unpack_from("<BBH", raw, node + 4)
            nodes += [struct.unpack_from("<Q", raw, node + 32 + 16 * i)[0] for i in range(used)]
        else:
            raise _Unsupported("unknown group node")
    return out


def _read_digit_struct_fast(path: Path) -> list[Record]:
    with h5py.File(path, "r") as f:
        ds = _digit_struct_group(f, path)
        base = f.id.get_create_plist().get_userblock()
        name_addr = _ref_addresses(ds["name"]).astype(np.int64)
        bbox_addr = _ref_addresses(ds["bbox"]).astype(np.int64)
    buf = np.fromfile(path, np.uint8)
    n = len(name_addr)
    # each box group's five field datasets
    field_addr = np.zeros((n, len(FIELDS)), np.int64)
    for i, a in enumerate(bbox_addr):
        children = _group_children(buf, base, int(a))
        try:
            field_addr[i] = [children[k] for k in FIELDS]
        except KeyError:
            raise ValueError(f"{path}: box group {i} lacks one of the fields {FIELDS}") from None
    # field datasets: (1, 1) doubles inline, or (n, 1) references to (1, 1) doubles
    dclass, esize, dpos, dlen = _dataset_headers(buf, base, field_addr.ravel())
    is_ref = dclass == 7
    count = np.where(is_ref, dlen // 8, dlen // np.maximum(esize, 1))
    scalars = _gather(buf, dpos[is_ref], dlen[is_ref]).view("<u8").astype(np.int64)
    s_class, s_size, s_pos, s_len = _dataset_headers(buf, base, scalars)
    direct = ~is_ref
    if (
        not ((s_class == 1) & (s_size == 8)).all()
        or not ((dclass[direct] == 1) & (esize[direct] == 8)).all()
    ):
        raise _Unsupported("box values other than doubles")
    values = np.zeros(int(count.sum()), np.float64)
    at = np.cumsum(count) - count
    ref_slots = np.repeat(at[is_ref], count[is_ref]) + _ranges(count[is_ref])
    values[ref_slots] = _gather(buf, s_pos, np.full(len(s_pos), 8)).view("<f8")
    dir_slots = np.repeat(at[direct], count[direct]) + _ranges(count[direct])
    values[dir_slots] = _gather(buf, dpos[direct], dlen[direct]).view("<f8")
    per_image = count.reshape(n, len(FIELDS))
    if (per_image != per_image[:, :1]).any():
        bad = int(np.flatnonzero((per_image != per_image[:, :1]).any(1))[0])
        raise ValueError(f"{path}: box group {bad}: the fields differ in length")
    # names: uint16 characters
    c_class, c_size, c_pos, c_len = _dataset_headers(buf, base, name_addr)
    if not ((c_class == 0) & (c_size == 2)).all():
        raise _Unsupported("names other than uint16 characters")
    chars = _gather(buf, c_pos, c_len).tobytes()
    ends = np.cumsum(c_len)
    records = []
    offsets = at.reshape(n, len(FIELDS))[:, 0]
    for i in range(n):
        k = int(per_image[i, 0])
        cols = values[offsets[i] : offsets[i] + k * len(FIELDS)].reshape(len(FIELDS), k)
        name = chars[ends[i] - c_len[i] : ends[i]].decode("utf-16-le")
        records.append(Record(name, np.ascontiguousarray(cols.T)))
    return records


def _ranges(counts: np.ndarray) -> np.ndarray:
    """concatenate(arange(c) for c in counts)."""
    total = int(counts.sum())
    return np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)


def _ref_addresses(dataset: h5py.Dataset) -> np.ndarray:
    """The object addresses an (N, 1) reference dataset points to, in one read."""
    out = np.zeros(dataset.shape, np.uint64)
    dataset.id.read(h5py.h5s.ALL, h5py.h5s.ALL, out, mtype=h5py.h5t.STD_REF_OBJ)
    return out.ravel()


# -------------------------------------------------------------------------------- writer
_MAT_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by: digitrec, HDF5 schema 1.00 ."


def write_digit_struct(path: str | Path, records: Sequence[Record]) -> Path:
    """Write `records` as the official format-1 `digitStruct.mat` (MATLAB v7.3): a 512-byte MATLAB
    header, `digitStruct/name` and `/bbox` (N, 1) references into `#refs#`, one struct group per
    image whose fields are (1, 1) doubles for one digit and (n, 1) references to (1, 1) doubles
    for more, MATLAB_class attributes throughout. Written to a temporary file, then renamed."""
    path = Path(path)
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
            attr = h5py.h5a.create(dsid, b"MATLAB_int_decode", h5py.h5t.STD_I32LE,
                                   self.scalar_space)  # fmt: skip
            attr.write(self.int_decode)
        return dsid

    def _refs(self, parent, name: str, objs) -> None:
        value = np.array([[h5py.h5r.create(o, b".", h5py.h5r.OBJECT)] for o in objs],
                         dtype=h5py.ref_dtype)  # fmt: skip
        small = value.size * 8 < 60_000  # compact data must fit in an object header
        dsid = h5py.h5d.create(parent, name.encode(), h5py.h5t.STD_REF_OBJ,
                               h5py.h5s.create_simple(value.shape),
                               dcpl=self.compact if small else None)  # fmt: skip
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
                    objs = [self._dataset(refs, self._key(), v.reshape(1, 1), b"double", True)
                            for v in col]  # fmt: skip
                    self._refs(g, field, objs)
            groups.append(g)
        top = self.f.create_group("digitStruct")
        top.attrs["MATLAB_class"] = np.bytes_(b"struct")
        top.attrs.create("MATLAB_fields", _matlab_fields(("name", "bbox")),
                         dtype=h5py.vlen_dtype("S1"))  # fmt: skip
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


# --------------------------------------------------------------------------- preprocessing
@dataclass(frozen=True)
class Preprocessing:
    """The paper's crop: the union of the digit boxes, enlarged by `expand` in x and y (about its
    center, clipped to the image), resized to `size` x `size`. Numbers longer than `max_len`:
    `long_numbers="class"` keeps them with the length class max_len + 1 (">max_len", the paper's
    seventh length class) and their first max_len digits; "drop" leaves them out."""

    size: int = 64
    expand: float = 0.3
    max_len: int = 5
    long_numbers: str = "class"
    whole_image: bool = False  # True: the whole image resized to size x size (the localizer's)
    version: int = 1  # bump when the conversion code changes what it writes

    def __post_init__(self):
        if self.long_numbers not in ("class", "drop"):
            raise ValueError(f"data.long_numbers={self.long_numbers!r}: expected 'class' or 'drop'")
        if self.size < 8 or self.expand < 0:
            raise ValueError(f"data.image_size={self.size}, data.expand={self.expand}: "
                             "expected a size >= 8 and a non-negative expansion")  # fmt: skip

    @property
    def key(self) -> str:
        fields = asdict(self)
        if not self.whole_image:  # keeps the keys of caches written before the field existed
            del fields["whole_image"]
        blob = json.dumps(fields, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def union_box(boxes: np.ndarray) -> np.ndarray:
    """x0, y0, x1, y1 (x1, y1 exclusive) of the union of (n, 5) digit boxes."""
    left, top = boxes[:, 1], boxes[:, 2]
    return np.array([left.min(), top.min(), (left + boxes[:, 3]).max(),
                     (top + boxes[:, 4]).max()])  # fmt: skip


def crop_box(boxes: np.ndarray, width: int, height: int, expand: float) -> np.ndarray:
    """The union box of (n, 5) digit boxes enlarged by `expand` (see `expand_box`)."""
    return expand_box(union_box(boxes), width, height, expand)


def expand_box(box: Sequence[float], width: int, height: int, expand: float) -> np.ndarray:
    """A box x0, y0, x1, y1 enlarged by `expand` about its center, clipped to the image, whole
    pixels (x0, y0 rounded down, x1, y1 rounded up), at least one pixel wide and high."""
    x0, y0, x1, y1 = box
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * (1 + expand), (y1 - y0) * (1 + expand)
    out = np.array([np.floor(cx - w / 2), np.floor(cy - h / 2),
                    np.ceil(cx + w / 2), np.ceil(cy + h / 2)])  # fmt: skip
    out = np.clip(out, 0, [width, height, width, height])
    out[2] = max(out[2], min(out[0] + 1, width))
    out[3] = max(out[3], min(out[1] + 1, height))
    out[:2] = np.minimum(out[:2], out[2:] - 1)
    return out.astype(np.int64)


def preprocess(image: np.ndarray, record: Record, p: Preprocessing):
    """(size x size x 3 uint8 crop, crop box in the image, union box in crop pixels). With
    `p.whole_image` the crop is the whole image (squashed to a square)."""
    h, w = image.shape[:2]
    box = np.array([0, 0, w, h]) if p.whole_image else crop_box(record.boxes, w, h, p.expand)
    x0, y0, x1, y1 = box
    out = crop_resize(image, box, p.size)
    sx, sy = p.size / (x1 - x0), p.size / (y1 - y0)
    u = union_box(record.boxes)
    inner = np.clip([(u[0] - x0) * sx, (u[1] - y0) * sy, (u[2] - x0) * sx, (u[3] - y0) * sy],
                    0, p.size)  # fmt: skip
    return out, box, inner.astype(np.float32)


def crop_resize(image: np.ndarray, box: Sequence[int], size: int) -> np.ndarray:
    """image[y0:y1, x0:x1] resized to size x size (area averaging when shrinking; a large patch
    loses at most k - 1 pixels of its right and bottom edges to the block average)."""
    import cv2

    x0, y0, x1, y1 = (int(v) for v in box)
    patch = image[y0:y1, x0:x1]
    k = min(patch.shape[:2]) // (2 * size)
    if k >= 2:  # first an exact k x k block average (OpenCV's fast integer path: a 12 MP photo
        # to 128 px in 10 ms instead of 48), then area averaging the rest of the way
        h, w = patch.shape[0] // k, patch.shape[1] // k
        patch = cv2.resize(patch[: h * k, : w * k], (w, h), interpolation=cv2.INTER_AREA)
    shrink = patch.shape[0] > size or patch.shape[1] > size
    return cv2.resize(patch, (size, size),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)  # fmt: skip


def encode_labels(boxes: np.ndarray, max_len: int) -> tuple[int, np.ndarray]:
    """(length class, digits (max_len,) with -1 past the length); label 10 → 0."""
    digits = np.full(max_len, -1, np.int64)
    n = len(boxes)
    d = boxes[:max_len, 0].astype(np.int64) % 10
    digits[: len(d)] = d
    return min(n, max_len + 1), digits


# -------------------------------------------------------------------------------- the cache
CACHE_ARRAYS = ("images", "length", "digits", "box", "crop", "size")


def cache_dir(root: str | Path) -> Path:
    """Where a root's caches go: `<root>/cache`, or, when the root cannot be written (a shared,
    read-only copy), `$XDG_CACHE_HOME/digitrec/svhn-<name>-<hash of the root's path>`."""
    root = Path(root)
    if writable(root):
        return root / "cache"
    tag = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
    return user_cache(f"svhn-{root.name}-{tag}")


def cache_path(root: Path, split: str, p: Preprocessing) -> Path:
    return cache_dir(root) / f"{split}-{p.key}.h5"


def build_cache(root: str | Path, split: str, p: Preprocessing, download: bool = True,
                workers: int = 2, progress: bool = True) -> Path:  # fmt: skip
    """Convert `<root>/<split>` (PNGs + labels, `split_records`) into `cache/<split>-<key>.h5`, where key
    hashes the preprocessing config: images uint8 (N, size, size, 3), length (N,), digits
    (N, max_len), box (N, 4) union box in crop pixels, crop (N, 4) crop box in the image,
    size (N, 2) the image's width, height, names (N,). Written to a temporary file and renamed
    when complete, so a reader never sees half a cache; an existing cache is reused."""
    root = Path(root)
    out = cache_path(root, split, p)
    if out.is_file():
        return out
    start = time.perf_counter()
    folder, records = split_records(root, split, download)
    log.info("%s: %d records in %.1f s", folder, len(records), time.perf_counter() - start)
    empty = [r.name for r in records if len(r.boxes) == 0]
    long = [r for r in records if len(r.boxes) > p.max_len]
    keep = [r for r in records if len(r.boxes) and (p.long_numbers == "class" or
                                                    len(r.boxes) <= p.max_len)]  # fmt: skip
    if long:
        log.info("%s: %d numbers longer than %d digits %s", split, len(long), p.max_len,
                 f"kept as the length class '>{p.max_len}'" if p.long_numbers == "class"
                 else "dropped (data.long_numbers=drop)")  # fmt: skip
    if empty:
        log.info("%s: %d images without boxes skipped", split, len(empty))
    n = len(keep)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with h5py.File(tmp, "w") as f:
            images = f.create_dataset("images", (n, p.size, p.size, 3), np.uint8,
                                      chunks=(min(n, 256), p.size, p.size, 3))  # fmt: skip
            length = np.zeros(n, np.int64)
            digits = np.zeros((n, p.max_len), np.int64)
            box, crop, size = (np.zeros((n, 4), np.float32), np.zeros((n, 4), np.int32),
                               np.zeros((n, 2), np.int32))  # fmt: skip

            def one(i: int):
                r = keep[i]
                image = _read_image(folder / r.name)
                return i, *preprocess(image, r, p), image.shape

            block = 1024
            with ThreadPoolExecutor(max(1, workers)) as pool, _progress(n, split, progress) as bar:
                for s in range(0, n, block):
                    chunk = np.zeros((min(block, n - s), p.size, p.size, 3), np.uint8)
                    for i, img, cb, ub, shape in pool.map(one, range(s, s + len(chunk))):
                        chunk[i - s] = img
                        crop[i], box[i], size[i] = cb, ub, (shape[1], shape[0])
                        length[i], digits[i] = encode_labels(keep[i].boxes, p.max_len)
                    images[s : s + len(chunk)] = chunk
                    bar.update(len(chunk))
            for k, v in (("length", length), ("digits", digits), ("box", box), ("crop", crop),
                         ("size", size)):  # fmt: skip
                f.create_dataset(k, data=v)
            f.create_dataset("names", data=np.array([r.name for r in keep], dtype="S"))
            f.attrs["preprocessing"] = json.dumps(asdict(p), sort_keys=True)
            f.attrs["source"] = str(folder.resolve())
            f.attrs["rendered"] = (root / RENDERED_MARKER).is_file()
            f.attrs["complete"] = True  # written last: a cache without it is not read
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("%s: cached %d images as %dx%d in %.0f s → %s", split, n, p.size, p.size,
             time.perf_counter() - start, out)  # fmt: skip
    return out


def load_cache(path: str | Path) -> dict[str, np.ndarray]:
    """All arrays of a cache file, in memory (a few hundred MB for train + test)."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if not f.attrs.get("complete", False):
                raise ValueError(f"{path}: incomplete cache (no 'complete' mark); delete it")
            out = {k: f[k][()] for k in CACHE_ARRAYS}
            out["names"] = f["names"][()].astype(str)
            out["rendered"] = bool(f.attrs.get("rendered", False))
            return out
    except (OSError, KeyError) as e:
        raise ValueError(f"{path}: unreadable SVHN cache ({e}); delete it to rebuild") from None


def _read_image(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: missing or not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"caching {desc}", unit="img", disable=not enabled)
