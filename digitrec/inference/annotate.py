"""Drawing a reading on its photo: the box and the number with its confidence."""

from __future__ import annotations

import numpy as np

from digitrec.inference.pipeline import Reading

GREEN, AMBER = (40, 220, 60), (255, 170, 0)  # RGB; amber for low confidence


def draw(image: np.ndarray, reading: Reading, low: float = 0.5) -> np.ndarray:
    """A copy of the RGB image with the box and a label "number (confidence)" above it (below
    when there is no room); amber when the confidence is under `low`."""
    import cv2

    out = np.ascontiguousarray(image.copy())
    h, w = out.shape[:2]
    t = max(1, round(min(h, w) / 250))
    color = GREEN if reading.confidence >= low else AMBER
    x0, y0, x1, y1 = (round(v) for v in reading.box)
    cv2.rectangle(out, (x0, y0), (x1, y1), color, t)
    label = f"{reading.number or '?'} ({reading.confidence:.2f})"
    scale = max(0.5, min(h, w) / 600)
    (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, t)
    ty = y0 - t if y0 - th - base - t >= 0 else min(h - base, y1 + th + t)
    tx = min(max(0, x0), max(0, w - tw))
    cv2.rectangle(out, (tx, ty - th - base), (tx + tw, ty + base // 2), color, -1)
    cv2.putText(
        out, label, (tx, ty - base // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), t, cv2.LINE_AA
    )
    return out


def encode(image: np.ndarray, suffix: str = ".png") -> bytes:
    """RGB image → encoded bytes in the format of `suffix` (.png, .jpg, ...)."""
    import cv2

    ok, data = cv2.imencode(suffix, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"could not encode an image as {suffix}")
    return data.tobytes()
