"""Synthetic multi-digit numbers composed from single-glyph images (MNIST digits, notMNIST letters).

The generator is vectorized numpy: a batch of n sequences costs a handful of array operations
per digit position, not a Python loop per sequence. Labels follow the project's one contract:
`length` (n,), `digits` (n, max_len) with -1 past the length, `box` (n, 4) = x0, y0, x1, y1 of the
union of the drawn glyphs' ink, in canvas pixels (x1, y1 exclusive).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

PAD = -1  # digit label of an absent position


@dataclass(frozen=True)
class SequenceSpec:
    """How numbers are laid out on the canvas."""

    max_len: int = 5
    height: int = 28
    width: int = 112
    min_len: int = 1
    length_probs: Sequence[float] | None = None  # over min_len..max_len; None: uniform
    gap: tuple[int, int] = (0, 3)  # ink-to-ink spacing in px, inclusive; negative: overlap
    jitter: int = 2  # per-glyph vertical offset, ±px

    def __post_init__(self):
        if not 0 <= self.min_len <= self.max_len:
            raise ValueError(f"min_len={self.min_len} must be within 0..max_len={self.max_len}")
        if self.length_probs is not None:
            p = np.asarray(self.length_probs, float)
            if len(p) != self.max_len - self.min_len + 1 or (p < 0).any() or p.sum() <= 0:
                raise ValueError(
                    f"length_probs needs {self.max_len - self.min_len + 1} non-negative weights "
                    f"for lengths {self.min_len}..{self.max_len}, got {list(self.length_probs)}"
                )
        if self.gap[0] > self.gap[1]:
            raise ValueError(f"gap=({self.gap[0]}, {self.gap[1]}): low must not exceed high")

    @property
    def lengths(self) -> np.ndarray:
        return np.arange(self.min_len, self.max_len + 1)

    @property
    def probs(self) -> np.ndarray:
        if self.length_probs is None:
            return np.full(len(self.lengths), 1 / len(self.lengths))
        p = np.asarray(self.length_probs, float)
        return p / p.sum()


@dataclass
class Sequences:
    """Numbers with their labels: uint8 images (n, H, W), or (n, H, W, C) for color (SVHN)."""

    images: np.ndarray
    length: np.ndarray
    digits: np.ndarray
    box: np.ndarray

    def __len__(self) -> int:
        return len(self.images)

    def numbers(self) -> list[str]:
        return [labels_to_string(d, n) for d, n in zip(self.digits, self.length, strict=True)]


def labels_to_string(digits: np.ndarray, length: int, alphabet: str = "0123456789") -> str:
    return "".join(alphabet[int(d)] for d in digits[:length])


def _ink_extent(mask: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last index (inclusive) with ink along `axis`; whole range when empty."""
    any_ink = mask.any(axis=axis)
    size = any_ink.shape[-1]
    first = any_ink.argmax(-1)
    last = size - 1 - any_ink[..., ::-1].argmax(-1)
    empty = ~any_ink.any(-1)
    first[empty], last[empty] = 0, size - 1
    return first, last


def compose(
    glyphs: np.ndarray,
    labels: np.ndarray,
    spec: SequenceSpec,
    n: int,
    rng: np.random.Generator,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    transform_group: int = 1,
) -> Sequences:
    """Draw `n` numbers from a pool of glyph images (N, g, g) uint8 with labels (N,).

    Each number: a length from `spec`, that many random glyphs, each with a random gap to the
    previous one and a vertical jitter, the whole number placed at a random x on the canvas.
    `transform` maps a stack of glyphs (k, g, g) to a stack of the same shape (e.g. an
    albumentations pipeline called with `images=`); it is applied to the drawn glyphs before
    layout, `transform_group` glyphs per call sharing one draw of its random parameters.
    """
    H, W, M = spec.height, spec.width, spec.max_len
    g = glyphs.shape[1]
    length = rng.choice(spec.lengths, size=n, p=spec.probs)
    idx = rng.integers(0, len(glyphs), size=(n, M))
    valid = np.arange(M) < length[:, None]
    tiles = glyphs[idx]  # (n, M, g, g)
    if transform is not None:
        drawn = tiles[valid]  # (k, g, g), in sequence order
        for start in range(0, len(drawn), transform_group):
            drawn[start : start + transform_group] = transform(
                drawn[start : start + transform_group]
            )
        tiles[valid] = drawn

    ink = tiles > 32
    left, right = _ink_extent(ink, axis=-2)  # columns: reduce over rows
    top, bottom = _ink_extent(ink, axis=-1)  # rows: reduce over columns
    ink_w = np.where(valid, right - left + 1, 0)

    gaps = rng.integers(spec.gap[0], spec.gap[1] + 1, size=(n, M))
    gaps[:, 0] = 0
    gaps = np.where(valid, gaps, 0)
    total = ink_w.sum(1) + gaps.sum(1)
    # Numbers wider than the canvas: tighten their gaps (may touch) rather than clip a glyph.
    over = np.maximum(total - W, 0)
    n_gaps = np.maximum(length - 1, 1)
    shrink = -(-over // n_gaps)  # ceil
    gaps[:, 1:] -= np.where(valid[:, 1:], shrink[:, None], 0)
    total = ink_w.sum(1) + gaps.sum(1)
    slack = np.maximum(W - total, 0)
    x0 = (rng.random(n) * (slack + 1)).astype(np.int64)
    ink_x = x0[:, None] + np.cumsum(gaps, 1) + np.cumsum(ink_w, 1) - ink_w  # left edge of ink
    tile_x = ink_x - left
    tile_y = (H - g) // 2 + rng.integers(-spec.jitter, spec.jitter + 1, size=(n, M))

    # Paste into a canvas padded by one glyph on each side, so offsets never index out of range;
    # a sliding-window view turns each paste into one gather and one scatter of whole tiles.
    canvas = np.zeros((n, H + 2 * g, W + 2 * g), np.uint8)
    windows = sliding_window_view(canvas, (g, g), axis=(1, 2), writeable=True)
    for i in range(M):
        b = np.nonzero(valid[:, i])[0]
        y, x = tile_y[b, i] + g, tile_x[b, i] + g
        windows[b, y, x] = np.maximum(windows[b, y, x], tiles[b, i])
    images = canvas[:, g : g + H, g : g + W]

    digits = np.where(valid, labels[idx].astype(np.int64), PAD)
    last = np.maximum(length - 1, 0)
    rows_ = np.arange(n)
    y_top = np.where(valid, tile_y + top, H).min(1)
    y_bot = np.where(valid, tile_y + bottom + 1, 0).max(1)
    box = np.stack(
        [ink_x[:, 0], y_top, ink_x[rows_, last] + ink_w[rows_, last], y_bot], axis=1
    ).astype(np.int64)
    box[:, [0, 2]] = box[:, [0, 2]].clip(0, W)
    box[:, [1, 3]] = box[:, [1, 3]].clip(0, H)
    box[length == 0] = 0
    return Sequences(np.ascontiguousarray(images), length.astype(np.int64), digits, box)


def split_pool(
    images: np.ndarray, labels: np.ndarray, n_val: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """A fixed train/validation split of a glyph pool: the last `n_val` glyphs validate."""
    if not 0 < n_val < len(images):
        raise ValueError(f"n_val={n_val} must be between 1 and {len(images) - 1}")
    return (images[:-n_val], labels[:-n_val]), (images[-n_val:], labels[-n_val:])
