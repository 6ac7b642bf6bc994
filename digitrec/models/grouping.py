"""Digits into numbers: the detector's digits joined into candidate numbers, rows and vertical stacks.

Two digits belong to one number when their heights agree (ratio < `size_ratio`) and they are
neighbours in a row (centers level within `level` digit heights, at most `reach` heights apart) or
in a vertical stack (centers aligned within `level` digit widths... heights, at most `reach`
heights apart, one above the other). Joined digits are a candidate (connected components); it is a
row when its digits spread more along x (in digit widths) than along y (in digit heights), else a
stack, and it is read left to right or top to bottom. Its score is the mean of its digits' scores
(a single digit's is multiplied by `single`: a lone stroke is more often a false digit than a
number). Candidates come best first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Candidate:
    number: str  # the digits, in reading order
    box: tuple[float, float, float, float]  # x0, y0, x1, y1: the digits' union
    digits: np.ndarray  # (n, 6): x0, y0, x1, y1, score, class, in reading order
    orientation: str  # "row" or "stack"
    score: float  # mean digit score (x `single` for one digit)


def group(
    digits,
    size_ratio: float = 1.6,
    level: float = 0.5,
    reach: float = 1.5,
    single: float = 0.8,
) -> list[Candidate]:
    """Candidates from digits (n, 6+): x0, y0, x1, y1, score, class (a tensor or an array)."""
    d = np.asarray(digits.cpu() if hasattr(digits, "cpu") else digits, np.float64)
    d = d.reshape(-1, d.shape[-1] if d.size else 6)[:, :6]
    n = len(d)
    if n == 0:
        return []
    cx, cy = (d[:, 0] + d[:, 2]) / 2, (d[:, 1] + d[:, 3]) / 2
    w, h = np.maximum(d[:, 2] - d[:, 0], 1e-6), np.maximum(d[:, 3] - d[:, 1], 1e-6)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            if max(h[i], h[j]) / min(h[i], h[j]) >= size_ratio:
                continue
            hm = (h[i] + h[j]) / 2
            dx, dy = abs(cx[i] - cx[j]), abs(cy[i] - cy[j])
            row = dy < level * hm and dx < reach * hm
            stack = dx < level * hm and dy < reach * hm
            if row or stack:
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    out = []
    for members in groups.values():
        m = np.array(members)
        spread_x = (cx[m].max() - cx[m].min()) / w[m].mean()
        spread_y = (cy[m].max() - cy[m].min()) / h[m].mean()
        orientation = "row" if spread_x >= spread_y else "stack"
        m = m[np.argsort(cx[m] if orientation == "row" else cy[m], kind="stable")]
        score = float(d[m, 4].mean()) * (single if len(m) == 1 else 1.0)
        box = (d[m, 0].min(), d[m, 1].min(), d[m, 2].max(), d[m, 3].max())
        number = "".join(str(int(c)) for c in d[m, 5])
        out.append(Candidate(number, tuple(float(v) for v in box), d[m], orientation, score))
    out.sort(key=lambda c: (-c.score, -len(c.number)))
    return out
