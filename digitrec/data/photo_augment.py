"""The detector's training views: a labelled photo zoomed, turned and cropped to a square, its digit
boxes moved with it, then relit (numpy and OpenCV; boxes move with the exact same affine map).

`view` picks a scale at which the photo's digits are `digit_px` high (log-uniform: small far-away
numbers to close-ups) or, for a photo without digits, a random zoom; a crop window that holds a
number most of the time; a small rotation. A digit cut by the window's edge (less than
`min_visible` of its box inside) becomes class -1 (ignored: neither digit nor background).
`relight` changes brightness, contrast, color balance, gray, blur, noise and JPEG quality.
"""

from __future__ import annotations

import numpy as np

from digitrec.data.photo_scenes import Labelled


def view(
    rng: np.random.Generator,
    item: Labelled,
    size: int,
    digit_px: tuple[float, float] = (8.0, 160.0),
    tilt: float = 6.0,
    min_visible: float = 0.6,
) -> tuple[np.ndarray, np.ndarray]:
    """A `size` x `size` view of `item`: (image uint8, digits (n, 5) class, x0, y0, x1, y1)."""
    import cv2

    image, digits = item.image, item.digits.reshape(-1, 5)
    H, W = image.shape[:2]
    real = digits[digits[:, 0] >= 0]
    if len(real) and rng.random() < 0.9:
        target = np.exp(rng.uniform(np.log(digit_px[0]), np.log(digit_px[1])))
        scale = target / float(np.median(real[:, 4] - real[:, 2]))
    else:
        scale = size / max(H, W) * np.exp(rng.uniform(np.log(0.5), np.log(3.0)))
    if len(digits) and rng.random() < 0.85:  # a window around a digit, anywhere in it
        k = int(rng.integers(len(digits)))
        fx = (digits[k, 1] + digits[k, 3]) / 2 * scale
        fy = (digits[k, 2] + digits[k, 4]) / 2 * scale
        cx = fx + rng.uniform(-0.4, 0.4) * size
        cy = fy + rng.uniform(-0.4, 0.4) * size
    else:
        cx = rng.uniform(0, max(W * scale, 1))
        cy = rng.uniform(0, max(H * scale, 1))
    angle = rng.uniform(-tilt, tilt)
    # the map: image point → scaled, rotated about (cx, cy), (cx, cy) to the view's center
    m = cv2.getRotationMatrix2D((float(cx), float(cy)), angle, 1.0) @ np.diag([scale, scale, 1.0])
    m[:, 2] += [size / 2 - cx, size / 2 - cy]
    interpolation = cv2.INTER_AREA if scale < 0.7 else cv2.INTER_LINEAR
    if scale < 0.7:  # shrink first (warpAffine does not filter), then turn
        small = cv2.resize(
            image, (max(1, round(W * scale)), max(1, round(H * scale))), interpolation=interpolation
        )
        m2 = m @ np.diag([1 / scale, 1 / scale, 1.0])
        out = cv2.warpAffine(small, m2[:2], (size, size), flags=cv2.INTER_LINEAR)
    else:
        out = cv2.warpAffine(image, m[:2], (size, size), flags=cv2.INTER_LINEAR)
    moved = np.zeros((len(digits), 5), np.float32)
    for i, (c, x0, y0, x1, y1) in enumerate(digits):
        pts = np.array([[x0, y0, 1], [x1, y0, 1], [x1, y1, 1], [x0, y1, 1]]) @ m[:2].T
        bx0, by0 = pts.min(0)
        bx1, by1 = pts.max(0)
        area = max((bx1 - bx0) * (by1 - by0), 1e-6)
        ix0, iy0, ix1, iy1 = max(bx0, 0), max(by0, 0), min(bx1, size), min(by1, size)
        inside = max(ix1 - ix0, 0) * max(iy1 - iy0, 0) / area
        moved[i] = (c if inside >= min_visible else -1, bx0, by0, bx1, by1)
    keep = [
        i
        for i, (c, x0, y0, x1, y1) in enumerate(moved)
        if x1 > 0 and y1 > 0 and x0 < size and y0 < size
    ]
    return out, moved[keep]


def relight(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Photometric changes (uint8 RGB in, uint8 RGB out)."""
    import cv2

    x = image.astype(np.float32)
    x = (x - x.mean()) * rng.uniform(0.6, 1.4) + x.mean() + rng.uniform(-40, 40)
    x *= rng.uniform(0.85, 1.15, 3)  # color balance
    if rng.random() < 0.2:
        x[:] = x.mean(2, keepdims=True)
    if rng.random() < 0.3:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 1.8))
    if rng.random() < 0.3:
        x += rng.normal(0, rng.uniform(2, 10), x.shape[:2] + (1,))
    out = np.clip(x, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        quality = int(rng.integers(30, 90))
        ok, enc = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
        out = cv2.imdecode(enc, cv2.IMREAD_UNCHANGED) if ok else out
    return out
