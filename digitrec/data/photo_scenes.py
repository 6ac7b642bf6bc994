"""Photo scenes (SynthText-style, SYNTHETIC): numbers put into real photos, every digit boxed.

A scene is a background photo (a real street photo of curtin_numbers/train with its own numbers
kept and labelled, a real SVHN wall with its digits painted out, or generated clutter) with 1-3
numbers added, each either

- a **plaque**: a number drawn by the street renderer (digitrec.data.street: fonts, plates,
  brass, relief, shadows), pasted as a whole with its plate, or
- **mounted or painted** digits: the font's glyphs painted straight onto the photo in a color
  that contrasts with the wall there (sometimes with a cast shadow, sometimes backlit),

laid out as a row or a vertical stack (one number in five), rotated and put in perspective by one
homography; and 0-3 **words** (street words, random letters) as negatives, never over a number.
Labels: every digit's class and box (the axis-aligned box of its warped corners) and every number's
string and box. A scene is a pure function of its generator: `scene(rng, ...)` with
`np.random.default_rng([seed, index])` gives the same image and boxes on every call, so a stream of
scenes needs no files and resumes anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from digitrec.data.digitstruct import Record
from digitrec.data.street.glyphs import _glyphs
from digitrec.data.street.render import _real_walls, _text_mask, render
from digitrec.data.street.style import WORDS, Style

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
N_DIGITS = (1, 2, 3, 4, 5)
N_DIGITS_P = (0.08, 0.2, 0.4, 0.22, 0.1)


@dataclass(frozen=True)
class Labelled:
    """An image with its digits (n, 5): class, x0, y0, x1, y1 (class -1: a character that is not a
    digit or was not read — neither a digit nor background to a detector) and its numbers."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    digits: np.ndarray  # (n, 5) float32
    numbers: tuple[tuple[str, tuple[float, float, float, float]], ...]  # (string, box)


def split_number(number: str, box: Sequence[float]) -> np.ndarray:
    """Per-character boxes (n, 5) for a number whose characters are evenly spread over its box:
    along the width for a row, along the height for a taller-than-wide box of 2+ characters (a
    vertical stack). Non-digits get class -1. An approximation (a "1" is narrower): the real photos
    label whole numbers only."""
    x0, y0, x1, y1 = (float(v) for v in box)
    n = len(number)
    if n == 0:
        return np.zeros((0, 5), np.float32)
    out = np.zeros((n, 5), np.float32)
    vertical = n >= 2 and (y1 - y0) > (x1 - x0)
    for i, ch in enumerate(number):
        out[i, 0] = int(ch) if ch.isdigit() else -1
        if vertical:
            step = (y1 - y0) / n
            out[i, 1:] = (x0, y0 + i * step, x1, y0 + (i + 1) * step)
        else:
            step = (x1 - x0) / n
            out[i, 1:] = (x0 + i * step, y0, x0 + (i + 1) * step, y1)
    return out


def _layout(rng, digits: str, dh: float, vertical: bool) -> tuple[np.ndarray, int, int]:
    """Digit boxes (n, 5: label, left, top, w, h) in a crop of (width, height) with margins."""
    dw = dh * rng.uniform(0.45, 0.75)
    margin = dh * rng.uniform(0.15, 0.6)
    boxes, x, y = [], margin, margin
    for d in digits:
        w = dw * (rng.uniform(0.5, 0.7) if d == "1" else rng.uniform(0.92, 1.08))
        left = x + (dw - w) / 2 if vertical else x
        boxes.append((int(d) or 10, left, y, w, dh))
        if vertical:
            y += dh * (1 + rng.uniform(0.05, 0.3))
        else:
            x += w + dh * rng.uniform(0.05, 0.3)
    b = np.array(boxes, np.float64)
    width = (b[:, 1] + b[:, 3]).max() + margin
    height = (b[:, 2] + b[:, 4]).max() + margin
    return b, int(np.ceil(width)), int(np.ceil(height))


def _homography(rng, w: int, h: int, x: float, y: float, tilt: float) -> np.ndarray:
    """A crop (w, h) → scene map: rotation (up to `tilt` degrees), perspective jitter of the
    corners, its top-left corner near (x, y)."""
    import cv2

    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    a = np.radians(rng.uniform(-tilt, tilt))
    c, s = np.cos(a), np.sin(a)
    centered = src - [w / 2, h / 2]
    dst = centered @ np.float32([[c, -s], [s, c]]).T
    jitter = rng.uniform(0, 0.15)
    dst += rng.uniform(-jitter, jitter, (4, 2)) * [w, h]
    dst += [x + w / 2, y + h / 2]
    return cv2.getPerspectiveTransform(src, dst.astype(np.float32))


def _warp_points(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.c_[pts, np.ones(len(pts))] @ m.T
    return p[:, :2] / p[:, 2:3]


def _warp_into(scene, crop, alpha, m) -> tuple[int, int, int, int] | None:
    """Blend `crop` (h, w, 3) through `alpha` (h, w) float 0..1 into `scene` by homography `m`,
    warping only the covered region; its bounds, or None when it falls outside."""
    import cv2

    H, W = scene.shape[:2]
    h, w = alpha.shape
    corners = _warp_points(m, np.float64([[0, 0], [w, 0], [w, h], [0, h]]))
    x0, y0 = np.floor(corners.min(0)).astype(int)
    x1, y1 = np.ceil(corners.max(0)).astype(int)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    local = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64) @ m
    size = (x1 - x0, y1 - y0)
    ink = cv2.warpPerspective(crop.astype(np.float32), local, size, flags=cv2.INTER_LINEAR)
    a = cv2.warpPerspective(alpha.astype(np.float32), local, size, flags=cv2.INTER_LINEAR)[
        ..., None
    ]
    region = scene[y0:y1, x0:x1].astype(np.float32)
    scene[y0:y1, x0:x1] = np.clip(region * (1 - a) + ink * a, 0, 255).astype(np.uint8)
    return x0, y0, x1, y1


def _contrasting(rng, patch: np.ndarray) -> np.ndarray:
    lum = float(patch.mean()) if patch.size else 128.0
    if rng.random() < 0.15:  # brass or steel
        base = np.array([205, 165, 70]) if rng.random() < 0.5 else np.array([190, 195, 200])
        return np.clip(base * rng.uniform(0.6, 1.2) + rng.normal(0, 10, 3), 0, 255)
    target = (
        rng.uniform(0, max(10, lum - 80)) if lum > 120 else rng.uniform(min(245, lum + 80), 255)
    )
    return np.clip(target + rng.normal(0, 20, 3), 0, 255)


def _painted(rng, digits: str, font: str, dh: float, vertical: bool):
    """Glyphs laid out on a transparent crop: (alpha (h, w) 0..1, digit boxes (n, 5))."""
    import cv2

    boxes, w, h = _layout(rng, digits, dh, vertical)
    glyphs = _glyphs(font)
    alpha = np.zeros((h, w), np.float32)
    for label, left, top, bw, bh in boxes:
        g = glyphs[int(label) % 10]
        bw, bh = max(1, int(round(bw))), max(1, int(round(bh)))
        mask = cv2.resize(g, (bw, bh), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        lx, ty = int(round(left)), int(round(top))
        region = alpha[ty : ty + bh, lx : lx + bw]
        region[:] = np.maximum(region, mask[: region.shape[0], : region.shape[1]])
    return alpha, boxes


def _free(box, taken: list, pad: float) -> bool:
    x0, y0, x1, y1 = box
    for t in taken:
        if x0 < t[2] + pad and t[0] < x1 + pad and y0 < t[3] + pad and t[1] < y1 + pad:
            return False
    return True


def _add_number(rng, scene, fonts, style, taken, plaques: float) -> tuple[np.ndarray, tuple] | None:
    """One number into `scene` (in place): its digit boxes (n, 5) and (string, box), or None."""
    H, W = scene.shape[:2]
    n = int(rng.choice(N_DIGITS, p=N_DIGITS_P))
    digits = "".join(str(d) for d in rng.integers(0, 10, n))
    vertical = n >= 2 and rng.random() < 0.2
    dh = float(np.exp(rng.uniform(np.log(0.025), np.log(0.22))) * min(H, W))
    font = fonts[int(rng.integers(len(fonts)))]
    plaque = rng.random() < plaques
    if plaque:
        boxes, w, h = _layout(rng, digits, dh, vertical)
        record = Record("scene", boxes, (w, h))
        crop = render(record, [font], int(rng.integers(2**31)), style).astype(np.float32)
        alpha = np.ones((h, w), np.float32)
    else:
        alpha, boxes = _painted(rng, digits, font, dh, vertical)
        h, w = alpha.shape
    if w >= W or h >= H:
        return None
    for _ in range(10):  # a free place
        x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
        m = _homography(rng, w, h, x, y, tilt=25 if rng.random() < 0.3 else 6)
        corners = _warp_points(m, np.float64([[0, 0], [w, 0], [w, h], [0, h]]))
        bounds = (*corners.min(0), *corners.max(0))
        inside = bounds[0] >= 0 and bounds[1] >= 0 and bounds[2] <= W and bounds[3] <= H
        if inside and _free(bounds, taken, pad=dh * 0.3):
            break
    else:
        return None
    if not plaque:
        import cv2

        x0, y0, x1, y1 = (int(v) for v in bounds)
        color = _contrasting(rng, scene[y0:y1, x0:x1])
        if rng.random() < 0.3:  # a cast shadow under mounted digits
            off = max(1, int(dh * rng.uniform(0.03, 0.08)))
            shade = np.float32([[1, 0, off], [0, 1, off], [0, 0, 1]]) @ m
            dark = np.zeros((h, w, 3), np.float32)
            soft = cv2.GaussianBlur(alpha, (0, 0), max(0.5, off / 2)) * rng.uniform(0.3, 0.7)
            _warp_into(scene, dark, soft, shade)
        crop = np.broadcast_to(color + rng.normal(0, 6, 3), (h, w, 3)).astype(np.float32)
        alpha = alpha * rng.uniform(0.6, 1.0)
    _warp_into(scene, crop, alpha, m)
    out = np.zeros((len(boxes), 5), np.float32)
    for i, (label, left, top, bw, bh) in enumerate(boxes):
        pts = _warp_points(
            m, np.float64([[left, top], [left + bw, top], [left + bw, top + bh], [left, top + bh]])
        )
        out[i] = (int(label) % 10, *pts.min(0), *pts.max(0))
    number_box = (
        float(out[:, 1].min()),
        float(out[:, 2].min()),
        float(out[:, 3].max()),
        float(out[:, 4].max()),
    )
    taken.append(bounds)
    return out, (digits, number_box)


def _add_word(rng, scene, fonts, taken) -> None:
    """A word (a street word or random letters) painted where no number is: a negative."""
    H, W = scene.shape[:2]
    if rng.random() < 0.5:
        text = str(rng.choice(WORDS))
    else:
        k = int(rng.integers(2, 10))
        text = "".join(rng.choice(list(LETTERS), k))
    dh = float(np.exp(rng.uniform(np.log(0.02), np.log(0.12))) * min(H, W))
    mask = _text_mask(fonts[int(rng.integers(len(fonts)))], text, int(dh))
    if mask is None:
        return
    alpha = mask.astype(np.float32) / 255
    h, w = alpha.shape
    if w >= W or h >= H:
        return
    x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
    m = _homography(rng, w, h, x, y, tilt=8)
    corners = _warp_points(m, np.float64([[0, 0], [w, 0], [w, h], [0, h]]))
    bounds = (*corners.min(0), *corners.max(0))
    if not _free(bounds, taken, pad=dh * 0.5):
        return
    x0, y0, x1, y1 = (int(max(0, v)) for v in bounds)
    color = _contrasting(rng, scene[y0:y1, x0:x1])
    crop = np.broadcast_to(color, (h, w, 3)).astype(np.float32)
    _warp_into(scene, crop, alpha * rng.uniform(0.6, 1.0), m)


def scene(
    rng: np.random.Generator,
    background: Labelled,
    fonts: Sequence[str],
    style: Style | None = None,
    numbers: tuple[int, int] = (1, 3),
    words: tuple[int, int] = (0, 3),
    plaques: float = 0.5,
) -> Labelled:
    """`background` with 1-3 numbers and 0-3 words added (see the module's docstring; `plaques`:
    the share of numbers on a rendered plaque, the others painted); its own labelled digits and
    numbers are kept, and nothing is put over them."""
    style = replace(style or Style(), words=0.0, lowres=0.0, blur=0.3, jpeg=0.0)
    image = background.image.copy()
    taken = [tuple(b) for _, b in background.numbers]
    digits, found = [background.digits.reshape(-1, 5)], list(background.numbers)
    for _ in range(int(rng.integers(numbers[0], numbers[1] + 1))):
        added = _add_number(rng, image, fonts, style, taken, plaques)
        if added is not None:
            digits.append(added[0])
            found.append(added[1])
    for _ in range(int(rng.integers(words[0], words[1] + 1))):
        _add_word(rng, image, fonts, taken)
    return Labelled(image, np.concatenate(digits).astype(np.float32), tuple(found))


def svhn_wall(rng: np.random.Generator, folder: str, size: int) -> Labelled:
    """A real SVHN image with its digits painted out, scaled to `size` on its long side."""
    import cv2

    walls = _real_walls(folder)
    wall = walls[int(rng.integers(len(walls)))]
    h, w = wall.shape[:2]
    s = size / max(h, w)
    image = cv2.resize(
        wall, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_LINEAR
    )
    return Labelled(np.ascontiguousarray(image[..., ::-1]), np.zeros((0, 5), np.float32), ())
