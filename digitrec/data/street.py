"""Rendered street numbers: a SYNTHETIC offline stand-in for SVHN, written in SVHN's format 1.

`render_split` draws house-number images and writes them exactly as the official archives
extract (`<out>/<split>/1.png, ...` + a MATLAB v7.3 `digitStruct.mat`), so `data=svhn
data.root=<out>` runs the same reader, preprocessing and cache as real SVHN. Layouts come from a
real label file (each real image's size, digit boxes and labels: lengths, geometry and class
balance match SVHN exactly) or from `random_layouts`. Each image gets one font (those of
`digitrec-data fonts`, then the machine's and matplotlib's), a wall (a textured color or a patch
of a real image with its digits painted out), maybe a plate, ink, per-digit rotation, the
number's slant and a small perspective warp per glyph, relief and shadows, maybe a word beside
the number, low resolution, blur, noise and JPEG artifacts — each a knob of `Style` (measured:
experiments/photo_reader). Every glyph is stretched to fill its box, so the boxes are
tight like SVHN's. `<out>/RENDERED.md` marks the folder as synthetic, and caches and runs built
from it say so. Figures measured on it are not SVHN figures.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from digitrec.data.digitstruct import Record, write_digit_struct
from digitrec.data.svhn import RENDERED_MARKER
from digitrec.io import atomic_write_bytes

log = logging.getLogger(__name__)

FONT_DIRS = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.fonts",
    "~/.local/share/fonts",
    "/Library/Fonts",
    "C:/Windows/Fonts",
)
# symbol and size-variant fonts map '0'-'9' to other shapes
_NOT_DIGIT_FONTS = ("cmex", "cmsy", "STIXSize", "STIXNonUnicode", "Symbol", "Dingbat", "Emoji")
GLYPH = 64  # glyph masks are rendered once at this height, then resized into each box


def find_fonts(extra: Sequence[str | Path] = ()) -> list[str]:
    """Fonts that draw ten distinct digits: `extra` (e.g. what `digitrec-data fonts` fetched),
    then this machine's TrueType/OpenType fonts and matplotlib's."""
    import matplotlib

    from digitrec.data.fonts import SUFFIXES

    dirs = [Path(d).expanduser() for d in FONT_DIRS]
    dirs.append(Path(matplotlib.get_data_path()) / "fonts" / "ttf")
    system = sorted(
        {p for d in dirs if d.is_dir() for p in d.rglob("*") if p.suffix.lower() in SUFFIXES}
    )
    paths = [Path(p) for p in extra] + system
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
        raise RuntimeError(
            f"no TrueType font that draws digits was found (looked in {', '.join(map(str, dirs))})"
        )
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
        out.append(
            mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].copy()
            if len(ys)
            else np.zeros((1, 1), np.uint8)
        )
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


@dataclass(frozen=True)
class Style:
    """The renderer's knobs (`digitrec-data street --set KEY=VALUE`). Shares are probabilities
    per image. `Style.v1()` is the first renderer's look (saturated random colors, no relief,
    shadows, words, real backgrounds or low resolution)."""

    palette: str = "natural"  # natural: walls, plates and ink mostly desaturated (real SVHN's
    #                           colors: grays, browns, whites, dark blues); random: any RGB
    plate: float = 0.6  # a plate behind the number
    rounded: float = 0.5  # of the plates: rounded corners
    contrast: tuple[float, float] = (0.35, 1.0)  # ink strength: 1 full, lower fades into the wall
    relief: float = 0.3  # raised/engraved digits: a highlight on one side, a shadow on the other
    shadow: float = 0.25  # a soft shadow cast by the digits onto the wall or plate
    words: float = 0.2  # a word or letters beside the number ("No", "Suite", "Rd", ...; not read)
    backgrounds: str | None = None  # an SVHN format-1 split folder (real photos); walls cut from
    #                                 them, their digits painted out (e.g. svhn/real/train)
    real_background: float = 0.6  # of the images, when `backgrounds` is set
    lowres: float = 0.4  # shrunk 1.5-4x and enlarged back: the soft look of small SVHN numbers
    blur: float = 1.2  # the largest Gaussian blur sigma, per 60 px of the image's short side
    jpeg: float = 0.7  # JPEG artifacts (quality 30-95)

    @classmethod
    def v1(cls) -> Style:
        return cls(
            palette="random",
            rounded=0.0,
            contrast=(1.0, 1.0),
            relief=0.0,
            shadow=0.0,
            words=0.0,
            lowres=0.0,
        )

    def __post_init__(self):
        if self.palette not in ("natural", "random"):
            raise ValueError(f"palette={self.palette!r}: expected natural or random")
        for name in (
            "plate",
            "rounded",
            "relief",
            "shadow",
            "words",
            "real_background",
            "lowres",
            "jpeg",
        ):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name}={getattr(self, name)}: expected a share in [0, 1]")
        lo, hi = self.contrast
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"contrast={self.contrast}: expected 0 < low <= high <= 1")

    @classmethod
    def parse(cls, items: Sequence[str], base: Style | None = None) -> Style:
        """`KEY=VALUE` strings (contrast=LOW,HIGH) over `base` (default: the defaults)."""
        base = base or cls()
        names = {f.name for f in fields(cls)}
        changes = {}
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or key not in names:
                raise ValueError(
                    f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(names))}"
                )
            if key == "palette":
                changes[key] = value
            elif key == "backgrounds":
                changes[key] = value or None
            elif key == "contrast":
                changes[key] = tuple(float(v) for v in value.split(","))
            else:
                try:
                    changes[key] = float(value)
                except ValueError:
                    raise ValueError(f"--set {item!r}: expected a number") from None
        return replace(base, **changes)


WORDS = (
    "No",
    "No.",
    "N°",
    "Nr",
    "#",
    "Suite",
    "Apt",
    "Unit",
    "Rd",
    "St",
    "Ave",
    "Road",
    "Street",
    "Lane",
    "Drive",
    "Way",
    "Court",
    "House",
    "Block",
    "E",
    "W",
    "N",
    "S",
    "A",
    "B",
    "C",
    "Bldg",
    "Oak",
    "Elm",
    "Main",
    "Park",
    "Hill",
)


def _hsv_color(rng, s_max: float, v: tuple[float, float]) -> np.ndarray:
    import colorsys

    s = s_max * rng.beta(1.2, 4.0)
    r, g, b = colorsys.hsv_to_rgb(rng.random(), s, rng.uniform(*v))
    return np.array([r, g, b]) * 255


def _wall_color(rng, style: Style) -> np.ndarray:
    if style.palette == "random":
        return rng.uniform(20, 235, 3)
    return _hsv_color(rng, 0.6, (0.15, 0.95))


def _plate_color(rng, style: Style) -> np.ndarray:
    if style.palette == "random":
        return rng.uniform(0, 255, 3)
    if rng.random() < 0.5:  # light plates (white, cream, gray)
        return _hsv_color(rng, 0.25, (0.7, 1.0))
    return _hsv_color(rng, 0.9, (0.05, 0.5))  # dark plates (blue, green, black, brown)


def _contrast(rng, base: np.ndarray, style: Style) -> np.ndarray:
    """A color clearly lighter or darker than `base` (natural palette: sometimes brass)."""
    lum = base.mean()
    target = (
        rng.uniform(0, max(10, lum - 90)) if lum > 128 else rng.uniform(min(245, lum + 90), 255)
    )
    spread = 40 if style.palette == "random" else 18
    if style.palette == "natural" and rng.random() < 0.2:
        return np.array([200, 160, 60]) * (target / 255 + 0.3) + rng.normal(0, 15, 3)  # brass
    return np.clip(target + rng.normal(0, spread, 3), 0, 255)


@lru_cache(maxsize=4)
def _real_walls(folder: str) -> tuple[np.ndarray, ...]:
    """The images of an SVHN format-1 split with their digit boxes painted out (RGB uint8)."""
    import cv2

    from digitrec.data.svhn import split_records

    path = Path(folder)
    folder_path, records = split_records(path.parent, path.name, download=False)
    walls = []
    for r in records:
        image = cv2.imread(str(folder_path / r.name), cv2.IMREAD_COLOR)
        if image is None or min(image.shape[:2]) < 8:
            continue
        mask = np.zeros(image.shape[:2], np.uint8)
        for _, left, top, bw, bh in r.boxes:
            x0, y0 = max(0, int(left - 0.1 * bw)), max(0, int(top - 0.1 * bh))
            mask[y0 : int(top + 1.1 * bh) + 1, x0 : int(left + 1.1 * bw) + 1] = 255
        walls.append(cv2.inpaint(image, mask, 5, cv2.INPAINT_TELEA))
    if not walls:
        raise ValueError(f"{folder}: no readable images for backgrounds")
    return tuple(walls)


def _wall(rng, w: int, h: int, style: Style) -> tuple[np.ndarray, np.ndarray]:
    """The image's background (h, w, 3) float32 and its base color."""
    import cv2

    if style.backgrounds and rng.random() < style.real_background:
        walls = _real_walls(style.backgrounds)
        src = walls[int(rng.integers(len(walls)))]
        sh, sw = src.shape[:2]
        cw, ch = int(sw * rng.uniform(0.4, 1.0)), int(sh * rng.uniform(0.4, 1.0))
        x, y = int(rng.integers(0, sw - cw + 1)), int(rng.integers(0, sh - ch + 1))
        patch = src[y : y + ch, x : x + cw]
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        image = cv2.resize(patch, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        image = image * rng.uniform(0.8, 1.2) + rng.normal(0, 10, 3)  # a color shift
        return image, image.reshape(-1, 3).mean(0)
    # a wall: a base color, a gradient (light), texture (bricks, siding, noise)
    base = _wall_color(rng, style)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    grad = (np.cos(angle) * xx / max(w, 1) + np.sin(angle) * yy / max(h, 1)) * rng.uniform(-60, 60)
    image = base[None, None, :] + grad[..., None]
    if rng.random() < 0.5:  # siding or bricks: periodic lines
        period = rng.uniform(4, 20)
        lines = (np.sin(yy * 2 * np.pi / period) > rng.uniform(0.6, 0.95)).astype(np.float32)
        image -= lines[..., None] * rng.uniform(10, 50)
    image += rng.normal(0, rng.uniform(2, 12), (h, w, 1)) + rng.normal(0, 3, (h, w, 3))
    return image.astype(np.float32), base


def _rounded_mask(h: int, w: int, radius: float) -> np.ndarray:
    import cv2

    mask = np.zeros((h, w), np.uint8)
    r = int(max(1, min(radius, h / 2, w / 2)))
    cv2.rectangle(mask, (r, 0), (w - 1 - r, h - 1), 255, -1)
    cv2.rectangle(mask, (0, r), (w - 1, h - 1 - r), 255, -1)
    for cx, cy in ((r, r), (w - 1 - r, r), (r, h - 1 - r), (w - 1 - r, h - 1 - r)):
        cv2.circle(mask, (cx, cy), r, 255, -1)
    return mask.astype(np.float32)[..., None] / 255


def _text_mask(font_path: str, text: str, height: int) -> np.ndarray | None:
    """`text` in the font, cropped to its ink, about `height` px high (uint8), or None."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.truetype(font_path, max(6, height))
        x0, y0, x1, y1 = font.getbbox(text)
    except (OSError, ValueError):
        return None
    if x1 <= x0 or y1 <= y0:
        return None
    canvas = Image.new("L", (x1 - x0 + 4, y1 - y0 + 4), 0)
    ImageDraw.Draw(canvas).text((2 - x0, 2 - y0), text, fill=255, font=font)
    mask = np.asarray(canvas)
    ys, xs = np.nonzero(mask > 40)
    return mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] if len(ys) else None


def _paint(image, mask, color, x: int, y: int, strength: float = 1.0) -> None:
    """Blend `color` into `image` through `mask` (uint8 or float 0..1) at (x, y), clipped."""
    h, w = image.shape[:2]
    mh, mw = mask.shape[:2]
    ix0, iy0, ix1, iy1 = max(0, x), max(0, y), min(w, x + mw), min(h, y + mh)
    if ix0 >= ix1 or iy0 >= iy1:
        return
    a = mask[iy0 - y : iy1 - y, ix0 - x : ix1 - x].astype(np.float32)
    a = (a / 255 if mask.dtype == np.uint8 else a)[..., None] * strength
    image[iy0:iy1, ix0:ix1] = image[iy0:iy1, ix0:ix1] * (1 - a) + np.asarray(color) * a


def render(
    record: Record, fonts: Sequence[str], seed: int, style: Style | None = None
) -> np.ndarray:
    """One RGB image (H, W, 3) uint8 with the record's digits drawn in its boxes."""
    import cv2

    style = style or Style()
    rng = np.random.default_rng(seed)
    w, h = record.size
    image, base = _wall(rng, w, h, style)
    boxes = record.boxes
    x0, y0 = boxes[:, 1].min(), boxes[:, 2].min()
    x1, y1 = (boxes[:, 1] + boxes[:, 3]).max(), (boxes[:, 2] + boxes[:, 4]).max()
    dh = float(np.median(boxes[:, 4]))
    background = base
    if rng.random() < style.plate:  # a plate behind the number
        mx, my = (x1 - x0) * rng.uniform(0.05, 0.4), (y1 - y0) * rng.uniform(0.05, 0.4)
        px0, py0 = int(max(0, x0 - mx)), int(max(0, y0 - my))
        px1, py1 = int(min(w, x1 + mx)), int(min(h, y1 + my))
        if px1 > px0 and py1 > py0:
            background = _plate_color(rng, style)
            ph, pw = py1 - py0, px1 - px0
            plate = background + rng.normal(0, 4, (ph, pw, 3))
            if rng.random() < 0.3:  # a plate's own light: a gradient across it
                plate = (
                    plate + np.linspace(rng.uniform(-30, 0), rng.uniform(0, 30), ph)[:, None, None]
                )
            a = (
                _rounded_mask(ph, pw, min(ph, pw) * rng.uniform(0.1, 0.4))
                if rng.random() < style.rounded
                else np.ones((ph, pw, 1), np.float32)
            )
            if rng.random() < style.shadow:  # the plate's shadow on the wall
                dx, dy = int(rng.integers(1, 4)), int(rng.integers(1, 4))
                _paint(
                    image,
                    cv2.GaussianBlur(a[..., 0], (0, 0), 2),
                    base * 0.5,
                    px0 + dx,
                    py0 + dy,
                    0.6,
                )
            region = image[py0:py1, px0:px1]
            region[:] = region * (1 - a) + plate * a
            if rng.random() < 0.5:  # a border
                t = max(1, int((y1 - y0) * 0.05))
                edge = _contrast(rng, background, style)
                border = np.zeros((ph, pw), np.float32)
                border[:t], border[-t:], border[:, :t], border[:, -t:] = 1, 1, 1, 1
                inner = a[..., 0] - _inset(a[..., 0], t)
                _paint(region, np.maximum(border * a[..., 0], inner), edge, 0, 0)
    color = _contrast(rng, np.asarray(background), style)
    font = fonts[int(rng.integers(len(fonts)))]
    glyphs = _glyphs(font)
    strength = rng.uniform(*style.contrast)
    relief = rng.random() < style.relief
    shadow = rng.random() < style.shadow
    light = rng.uniform(0, 2 * np.pi)  # where the light comes from
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
        lx, ty = int(round(left)), int(round(top))
        off = max(1, int(round(bh * rng.uniform(0.02, 0.06))))
        ox, oy = int(round(np.cos(light) * off)), int(round(np.sin(light) * off))
        if shadow:  # cast onto the surface behind, away from the light
            soft = cv2.GaussianBlur(mask, (0, 0), max(0.5, off / 2))
            _paint(image, soft, np.asarray(background) * 0.35, lx + ox, ty + oy, 0.7)
        if relief:  # raised metal or engraving: a dark edge and a bright edge
            _paint(image, mask, np.asarray(color) * 0.4, lx + ox // 2 or 1, ty + oy // 2 or 1, 0.8)
            _paint(
                image,
                mask,
                np.minimum(255, np.asarray(color) * 1.4 + 40),
                lx - ox // 2,
                ty - oy // 2,
                0.6,
            )
        _paint(image, mask, color + rng.normal(0, 8, 3), lx, ty, strength)
    if rng.random() < style.words:  # a word beside the number, in the number's font
        _word(rng, image, font, color, strength, (x0, y0, x1, y1), dh)
    image = np.clip(image, 0, 255).astype(np.uint8)
    if rng.random() < style.lowres and min(w, h) >= 16:  # a small number, enlarged
        f = rng.uniform(1.5, 4.0)
        small = cv2.resize(
            image, (max(4, int(w / f)), max(4, int(h / f))), interpolation=cv2.INTER_AREA
        )
        image = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    sigma = rng.uniform(0, style.blur) * max(1.0, min(w, h) / 60)
    if sigma > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    if rng.random() < style.jpeg:  # JPEG artifacts, as in photos
        ok, enc = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 95))])
        image = cv2.imdecode(enc, cv2.IMREAD_COLOR) if ok else image
    return image  # channel order is irrelevant for random colors: written as is


def _inset(a: np.ndarray, t: int) -> np.ndarray:
    import cv2

    return cv2.erode(a, np.ones((2 * t + 1, 2 * t + 1), np.uint8))


def _word(rng, image, font, color, strength, union, dh) -> None:
    """A word left of, right of, above or below the number's box, never over it."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = union
    text = WORDS[int(rng.integers(len(WORDS)))]
    mask = _text_mask(font, text, int(dh * rng.uniform(0.35, 0.8)))
    if mask is None:
        return
    mh, mw = mask.shape
    gap = max(2, int(dh * rng.uniform(0.15, 0.5)))
    places = [
        (int(x0) - gap - mw, int(y0 + (y1 - y0 - mh) / 2)),  # left
        (int(x1) + gap, int(y0 + (y1 - y0 - mh) / 2)),  # right
        (int(x0), int(y0) - gap - mh),
        (int(x0), int(y1) + gap),
    ]  # above, below
    x, y = places[int(rng.integers(len(places)))]
    if x < 0 or y < 0 or x + mw > w or y + mh > h:
        return  # no room: better no word than one cut off or over the number
    _paint(image, mask, color, x, y, strength)


# ------------------------------------------------------------------------------ writing
_WORKER: dict = {}


def _init_worker(fonts, folder, seed, style):
    _WORKER.update(fonts=fonts, folder=Path(folder), seed=seed, style=style)


def _render_chunk(chunk: list[tuple[int, Record]]) -> int:
    import cv2

    for i, record in chunk:
        image = render(
            record, _WORKER["fonts"], seed=_WORKER["seed"] * 1_000_003 + i, style=_WORKER["style"]
        )
        ok, png = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise RuntimeError(f"could not encode {record.name}")
        atomic_write_bytes(_WORKER["folder"] / record.name, png.tobytes())
    return len(chunk)


def render_split(
    records: Sequence[Record],
    out: str | Path,
    split: str,
    seed: int = 0,
    workers: int = 2,
    fonts: Sequence[str] | None = None,
    progress: bool = True,
    style: Style | None = None,
) -> Path:
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
    style = style or Style()
    if style.backgrounds:
        _real_walls(style.backgrounds)  # a bad folder fails here, once, not in every worker
    atomic_write_bytes(out / RENDERED_MARKER, _marker(fonts, style).encode())
    start = time.perf_counter()
    items = list(enumerate(records))
    chunks = [items[i : i + 256] for i in range(0, len(items), 256)]
    bar = tqdm(total=len(items), desc=f"rendering {split}", unit="img", disable=not progress)
    if workers > 1:
        ctx = mp.get_context()  # the platform default (fork on Linux, spawn elsewhere)
        with ctx.Pool(workers, _init_worker, (fonts, folder, seed, style)) as pool:
            for n in pool.imap_unordered(_render_chunk, chunks):
                bar.update(n)
    else:
        _init_worker(fonts, folder, seed, style)
        for c in chunks:
            bar.update(_render_chunk(c))
    bar.close()
    rendered = time.perf_counter() - start
    write_digit_struct(folder / "digitStruct.mat", records)
    log.info(
        "%s: %d images rendered in %.0f s (%.0f img/s), digitStruct.mat in %.0f s",
        folder,
        len(records),
        rendered,
        len(records) / max(rendered, 1e-9),
        time.perf_counter() - start - rendered,
    )
    return folder


def _marker(fonts: Sequence[str], style: Style) -> str:
    names = ", ".join(sorted({Path(f).stem for f in fonts}))
    return (
        "# Rendered street numbers: SYNTHETIC, not SVHN\n\n"
        "Written by `digitrec-data street` (digitrec/data/street.py) in SVHN's format 1 as an "
        "offline stand-in for development and benchmarks. Accuracy measured on these images is "
        "not an SVHN result.\n\n"
        f"Fonts ({len(fonts)}): {names}\n\nStyle: {style}\n"
    )


SVHN_LAYOUTS = {"train": 33402, "test": 13068}  # SVHN format 1's train and test images


def street_command(
    out: Path,
    split: str,
    labels: Path | None = None,
    limit: int = 0,
    data_dir: Path | None = None,
    workers: int | None = None,
) -> list[str]:
    """The `digitrec-data street` command that renders one split into `out`: SVHN's real layouts
    when `labels`/<split>.json.gz is there (the first `limit`, 0: all), else `limit` random ones
    (0: as many as SVHN has)."""
    cmd = [sys.executable, "-m", "digitrec.cli.data", "street", "--out", str(out)]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    cmd += ["--splits", split]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    if labels is not None and (Path(labels) / f"{split}.json.gz").is_file():
        return cmd + ["--labels", str(labels)] + (["--limit", str(limit)] if limit else [])
    return cmd + ["--random", str(limit or SVHN_LAYOUTS[split])]
