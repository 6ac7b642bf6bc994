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


NO_DIGIT = 10  # the crop classifier's 11th class: not a digit (background, letters, halves)


def digit_crops(image: np.ndarray, boxes: np.ndarray, size: int = 32, expand: float = 0.15):
    """Each box (n, 4+: x0, y0, x1, y1 in `image`'s pixels) grown by `expand` of its size each way,
    cut from `image` (outside it: black) and resized to `size` x `size`: (n, size, size, 3) uint8.
    The detector's digit classifier reads these, in training and at inference alike."""
    import cv2

    boxes = np.asarray(boxes, np.float64).reshape(-1, boxes.shape[-1] if len(boxes) else 4)
    out = np.zeros((len(boxes), size, size, 3), np.uint8)
    H, W = image.shape[:2]
    for i, (x0, y0, x1, y1) in enumerate(boxes[:, :4]):
        w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
        x0, x1 = x0 - expand * w, x1 + expand * w
        y0, y1 = y0 - expand * h, y1 + expand * h
        # the box → the crop, one affine map; INTER_AREA first when shrinking a lot
        ix0, iy0 = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
        ix1, iy1 = min(int(np.ceil(x1)), W), min(int(np.ceil(y1)), H)
        if ix1 - ix0 < 1 or iy1 - iy0 < 1:
            continue
        region = image[iy0:iy1, ix0:ix1]
        sx, sy = size / (x1 - x0), size / (y1 - y0)
        if sx < 0.5 or sy < 0.5:  # shrink the region first, with area averaging
            f = max(sx, sy) * 2
            rw, rh = max(1, round(region.shape[1] * f)), max(1, round(region.shape[0] * f))
            region = cv2.resize(region, (rw, rh), interpolation=cv2.INTER_AREA)
            fx, fy = rw / (ix1 - ix0), rh / (iy1 - iy0)
        else:
            fx = fy = 1.0
        m = np.array([[sx / fx, 0, (ix0 - x0) * sx], [0, sy / fy, (iy0 - y0) * sy]], np.float64)
        out[i] = cv2.warpAffine(region, m, (size, size), flags=cv2.INTER_LINEAR)
    return out


def crop_samples(
    rng: np.random.Generator,
    item: Labelled,
    positives: int = 6,
    negatives: int = 4,
    size: int = 32,
    expand: float = 0.15,
    jitter: float = 0.12,
) -> tuple[np.ndarray, np.ndarray]:
    """Training crops for the digit classifier from `item` at its full resolution: up to
    `positives` of its digits (boxes jittered by `jitter` of their size: the detector's boxes are
    not exact) and `negatives` boxes of digit shape that hold no digit (label NO_DIGIT): random
    places, and halves of digits. Returns (crops (n, size, size, 3) uint8, labels (n,) int64)."""
    digits = item.digits.reshape(-1, 5)
    real = digits[digits[:, 0] >= 0]
    H, W = item.image.shape[:2]
    boxes, labels = [], []
    for k in rng.permutation(len(real))[:positives]:
        c, x0, y0, x1, y1 = real[k]
        w, h = x1 - x0, y1 - y0
        dx, dy = rng.uniform(-jitter, jitter, 2) * (w, h)
        s = np.exp(rng.uniform(-jitter, jitter))
        cx, cy = (x0 + x1) / 2 + dx, (y0 + y1) / 2 + dy
        boxes.append((cx - w * s / 2, cy - h * s / 2, cx + w * s / 2, cy + h * s / 2))
        labels.append(int(c))
    heights = real[:, 4] - real[:, 2] if len(real) else np.array([min(H, W) * 0.1])
    tries, wanted = 0, len(labels) + negatives
    while len(labels) < wanted and tries < 4 * negatives:
        tries += 1
        h = float(rng.choice(heights)) * np.exp(rng.uniform(-0.5, 0.5))
        w = h * rng.uniform(0.4, 0.9)
        if len(real) and rng.random() < 0.3:  # half a digit: the box slid off it sideways
            c, x0, y0, x1, y1 = real[int(rng.integers(len(real)))]
            h, w = y1 - y0, x1 - x0
            side = rng.choice([-1.0, 1.0])
            cx, cy = (x0 + x1) / 2 + side * w * rng.uniform(0.6, 0.9), (y0 + y1) / 2
        else:
            cx, cy = rng.uniform(0, W), rng.uniform(0, H)
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        if len(real) and _max_iou(box, real[:, 1:]) > 0.25:
            continue
        boxes.append(box)
        labels.append(NO_DIGIT)
    boxes = np.array(boxes, np.float64).reshape(-1, 4)
    return digit_crops(item.image, boxes, size, expand), np.array(labels, np.int64)


def _max_iou(box, others: np.ndarray) -> float:
    x0, y0, x1, y1 = box
    ix = np.clip(np.minimum(x1, others[:, 2]) - np.maximum(x0, others[:, 0]), 0, None)
    iy = np.clip(np.minimum(y1, others[:, 3]) - np.maximum(y0, others[:, 1]), 0, None)
    inter = ix * iy
    area = (x1 - x0) * (y1 - y0) + (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return float((inter / np.maximum(area - inter, 1e-9)).max())
