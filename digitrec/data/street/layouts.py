"""Random SVHN-like layouts: image sizes, digit boxes and labels drawn with SVHN train's lengths."""

from __future__ import annotations

import numpy as np

from digitrec.data.digitstruct import Record

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
