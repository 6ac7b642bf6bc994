"""Rendered street numbers: a SYNTHETIC offline stand-in for SVHN, written in SVHN's format 1.

`render_split` draws house-number images and writes them exactly as the official archives
extract (`<out>/<split>/1.png, ...` + a MATLAB v7.3 `digitStruct.mat`), so `data=svhn
data.root=<out>` runs the same reader, preprocessing and cache as real SVHN. Layouts come from a
real label file (each real image's size, digit boxes and labels: lengths, geometry and class
balance match SVHN exactly) or from `random_layouts`. Each image gets one TrueType font (whatever
the machine has, plus matplotlib's), a wall, maybe a plate, digit colors, per-digit rotation and
shear, blur, noise and JPEG artifacts, and a small perspective warp per glyph; every glyph is stretched to fill its box, so the boxes are
tight like SVHN's. `<out>/RENDERED.md` marks the folder as synthetic, and caches and runs built
from it say so. Figures measured on it are not SVHN figures.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from digitrec.data.download import atomic_write_bytes
from digitrec.data.svhn import RENDERED_MARKER, Record, write_digit_struct

log = logging.getLogger(__name__)

FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.fonts", "~/.local/share/fonts",
             "/Library/Fonts", "C:/Windows/Fonts")  # fmt: skip
# symbol and size-variant fonts map '0'-'9' to other shapes
_NOT_DIGIT_FONTS = ("cmex", "cmsy", "STIXSize", "STIXNonUnicode", "Symbol", "Dingbat", "Emoji")
GLYPH = 64  # glyph masks are rendered once at this height, then resized into each box


def find_fonts() -> list[str]:
    """TrueType/OpenType fonts on this machine (and matplotlib's) that draw ten distinct digits."""
    import matplotlib

    dirs = [Path(d).expanduser() for d in FONT_DIRS]
    dirs.append(Path(matplotlib.get_data_path()) / "fonts" / "ttf")
    paths = sorted({p for d in dirs if d.is_dir() for p in d.rglob("*") if p.suffix.lower()
                    in (".ttf", ".otf")})  # fmt: skip
    fonts, seen = [], set()
    for p in paths:
        if p.name in seen:  # the same font in two places (system and matplotlib's copy)
            continue
        if any(bad.lower() in p.name.lower() for bad in _NOT_DIGIT_FONTS):
            continue
        try:
            masks = _glyphs(str(p))
        except OSError:
            continue
        if all(m.any() for m in masks) and len({m.tobytes() for m in masks}) == 10:
            fonts.append(str(p))
            seen.add(p.name)
    if not fonts:
        raise RuntimeError("no TrueType font that draws digits was found (looked in "
                           f"{', '.join(map(str, dirs))})")  # fmt: skip
    return fonts


@lru_cache(maxsize=256)
def _glyphs(font_path: str) -> tuple[np.ndarray, ...]:
    """The ten digit masks of a font, cropped to their ink, GLYPH px high (uint8 0..255)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(font_path, GLYPH)
    out = []
    for ch in "0123456789":
        canvas = Image.new("L", (GLYPH * 2, GLYPH * 2), 0)
        ImageDraw.Draw(canvas).text((GLYPH // 2, GLYPH // 4), ch, fill=255, font=font)
        mask = np.asarray(canvas)
        ys, xs = np.nonzero(mask > 40)
        out.append(mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].copy() if len(ys)
                   else np.zeros((1, 1), np.uint8))  # fmt: skip
    return tuple(out)


# SVHN train's length distribution (1..6 digits), for random layouts
_LENGTH_P = np.array([5137, 18130, 8691, 1434, 9, 1], float)


def random_layouts(n: int, seed: int = 0) -> list[Record]:
    """`n` layouts of SVHN-like geometry: image sizes, digit heights and spacing drawn at random."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.choice(6, p=_LENGTH_P / _LENGTH_P.sum())) + 1
        h = int(rng.integers(28, 160))
        dh = max(8, int(h * rng.uniform(0.35, 0.8)))
        widths = (dh * rng.uniform(0.35, 0.7, k)).astype(int) + 2
        gaps = rng.integers(-1, max(2, dh // 6), k)
        span = int(widths.sum() + gaps[1:].sum())
        w = int(max(span + 10, h * rng.uniform(1.2, 3.0)))
        x, y = int(rng.integers(2, max(3, w - span - 2))), int(rng.integers(1, max(2, h - dh - 1)))
        boxes = []
        for j in range(k):
            boxes.append([int(rng.integers(1, 11)), x, y + int(rng.integers(-2, 3)), widths[j], dh])
            x += widths[j] + (gaps[j + 1] if j + 1 < k else 0)
        out.append(Record(f"{i + 1}.png", np.array(boxes, np.float64), (w, h)))
    return out


def _contrast(rng, base: np.ndarray) -> np.ndarray:
    """A color clearly lighter or darker than `base`."""
    lum = base.mean()
    target = (
        rng.uniform(0, max(10, lum - 90)) if lum > 128 else rng.uniform(min(245, lum + 90), 255)
    )
    tint = rng.normal(0, 40, 3)
    return np.clip(target + tint, 0, 255)


def render(record: Record, fonts: Sequence[str], seed: int) -> np.ndarray:
    """One RGB image (H, W, 3) uint8 with the record's digits drawn in its boxes."""
    import cv2

    rng = np.random.default_rng(seed)
    w, h = record.size
    # a wall: a base color, a gradient (light), texture (bricks, siding, noise)
    base = rng.uniform(20, 235, 3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    grad = (np.cos(angle) * xx / max(w, 1) + np.sin(angle) * yy / max(h, 1)) * rng.uniform(-60, 60)
    image = base[None, None, :] + grad[..., None]
    if rng.random() < 0.5:  # siding or bricks: periodic lines
        period = rng.uniform(4, 20)
        lines = (np.sin(yy * 2 * np.pi / period) > rng.uniform(0.6, 0.95)).astype(np.float32)
        image -= lines[..., None] * rng.uniform(10, 50)
    image += rng.normal(0, rng.uniform(2, 12), (h, w, 1)) + rng.normal(0, 3, (h, w, 3))
    boxes = record.boxes
    x0, y0 = boxes[:, 1].min(), boxes[:, 2].min()
    x1, y1 = (boxes[:, 1] + boxes[:, 3]).max(), (boxes[:, 2] + boxes[:, 4]).max()
    background = base
    if rng.random() < 0.6:  # a plate behind the number
        mx, my = (x1 - x0) * rng.uniform(0.05, 0.4), (y1 - y0) * rng.uniform(0.05, 0.4)
        px0, py0 = int(max(0, x0 - mx)), int(max(0, y0 - my))
        px1, py1 = int(min(w, x1 + mx)), int(min(h, y1 + my))
        background = rng.uniform(0, 255, 3)
        image[py0:py1, px0:px1] = background + rng.normal(0, 4, (py1 - py0, px1 - px0, 3))
        if rng.random() < 0.5:  # a border
            t = max(1, int((y1 - y0) * 0.05))
            edge = _contrast(rng, background)
            image[py0 : py0 + t, px0:px1] = edge
            image[max(py0, py1 - t) : py1, px0:px1] = edge
            image[py0:py1, px0 : px0 + t] = edge
            image[py0:py1, max(px0, px1 - t) : px1] = edge
    color = _contrast(rng, np.asarray(background))
    glyphs = _glyphs(fonts[int(rng.integers(len(fonts)))])
    shear = rng.uniform(-0.25, 0.25)  # one slant for the whole number (a perspective cue)
    for label, left, top, bw, bh in boxes:
        bw, bh = max(1, int(round(bw))), max(1, int(round(bh)))
        mask = cv2.resize(glyphs[int(label) % 10], (bw, bh), interpolation=cv2.INTER_AREA)
        # a small perspective warp inside the box: rotation, the number's slant, corner jitter
        c, s_ = np.cos(np.radians(rng.uniform(-6, 6))), np.sin(np.radians(rng.uniform(-6, 6)))
        src = np.float32([[0, 0], [bw, 0], [bw, bh], [0, bh]])
        centered = src - [bw / 2, bh / 2]
        dst = centered @ np.float32([[c, s_], [-s_, c]]).T
        dst[:, 0] -= shear * 0.3 * centered[:, 1]
        dst += rng.uniform(-0.06, 0.06, (4, 2)) * [bw, bh] + [bw / 2, bh / 2]
        warp = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
        mask = cv2.warpPerspective(mask, warp, (bw, bh), flags=cv2.INTER_LINEAR)
        # paste the box, clipped to the image (real boxes can cross its border)
        lx, ty = int(round(left)), int(round(top))
        ix0, iy0, ix1, iy1 = max(0, lx), max(0, ty), min(w, lx + bw), min(h, ty + bh)
        if ix0 >= ix1 or iy0 >= iy1:
            continue
        a = mask[iy0 - ty : iy1 - ty, ix0 - lx : ix1 - lx, None].astype(np.float32) / 255
        c = color + rng.normal(0, 8, 3)
        image[iy0:iy1, ix0:ix1] = image[iy0:iy1, ix0:ix1] * (1 - a) + c * a
    image = np.clip(image, 0, 255).astype(np.uint8)
    sigma = rng.uniform(0, 1.2) * max(1.0, min(w, h) / 60)
    if sigma > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    if rng.random() < 0.7:  # JPEG artifacts, as in photos
        ok, enc = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 95))])
        image = cv2.imdecode(enc, cv2.IMREAD_COLOR) if ok else image
    return image  # channel order is irrelevant for random colors: written as is


# ------------------------------------------------------------------------------ writing
_WORKER: dict = {}


def _init_worker(fonts, folder, seed):
    _WORKER.update(fonts=fonts, folder=Path(folder), seed=seed)


def _render_chunk(chunk: list[tuple[int, Record]]) -> int:
    import cv2

    for i, record in chunk:
        image = render(record, _WORKER["fonts"], seed=_WORKER["seed"] * 1_000_003 + i)
        ok, png = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise RuntimeError(f"could not encode {record.name}")
        atomic_write_bytes(_WORKER["folder"] / record.name, png.tobytes())
    return len(chunk)


def render_split(records: Sequence[Record], out: str | Path, split: str, seed: int = 0,
                 workers: int = 2, fonts: Sequence[str] | None = None,
                 progress: bool = True) -> Path:  # fmt: skip
    """Render `records` (each with a size) into `<out>/<split>/` as SVHN format 1. The
    digitStruct.mat is written last, so a split without it is unfinished."""
    from tqdm import tqdm

    out = Path(out)
    folder = out / split
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "digitStruct.mat").unlink(missing_ok=True)
    missing = [r.name for r in records if r.size is None]
    if missing:
        raise ValueError(f"layout {missing[0]} has no image size (width, height)")
    fonts = list(fonts or find_fonts())
    atomic_write_bytes(out / RENDERED_MARKER, _marker(fonts).encode())
    start = time.perf_counter()
    items = list(enumerate(records))
    chunks = [items[i : i + 256] for i in range(0, len(items), 256)]
    bar = tqdm(total=len(items), desc=f"rendering {split}", unit="img", disable=not progress)
    if workers > 1:
        ctx = mp.get_context()  # the platform default (fork on Linux, spawn elsewhere)
        with ctx.Pool(workers, _init_worker, (fonts, folder, seed)) as pool:
            for n in pool.imap_unordered(_render_chunk, chunks):
                bar.update(n)
    else:
        _init_worker(fonts, folder, seed)
        for c in chunks:
            bar.update(_render_chunk(c))
    bar.close()
    rendered = time.perf_counter() - start
    write_digit_struct(folder / "digitStruct.mat", records)
    log.info("%s: %d images rendered in %.0f s (%.0f img/s), digitStruct.mat in %.0f s",
             folder, len(records), rendered, len(records) / max(rendered, 1e-9),
             time.perf_counter() - start - rendered)  # fmt: skip
    return folder


def _marker(fonts: Sequence[str]) -> str:
    names = ", ".join(sorted({Path(f).stem for f in fonts}))
    return (
        "# Rendered street numbers: SYNTHETIC, not SVHN\n\n"
        "Written by `digitrec-data street` (digitrec/data/street.py) in SVHN's format 1 as an "
        "offline stand-in for development and benchmarks. Accuracy measured on these images is "
        "not an SVHN result.\n\n"
        f"Fonts ({len(fonts)}): {names}\n"
    )
