"""One street-number image drawn: wall, plate, ink, relief, shadow, words, blur, noise, JPEG."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from digitrec.data.digitstruct import Record
from digitrec.data.street.glyphs import _glyphs
from digitrec.data.street.style import WORDS, Style


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
