"""Synthetic multi-digit numbers composed from single-glyph images (MNIST digits, notMNIST letters).

The generator is vectorized numpy: a batch of n sequences costs a handful of array operations
per digit position, not a Python loop per sequence. Labels follow the project's one contract:
`length` (n,), `digits` (n, max_len) with -1 past the length, `box` (n, 4) = x0, y0, x1, y1 of the
union of the drawn glyphs' ink, in canvas pixels (x1, y1 exclusive).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

PAD = -1  # digit label of an absent position


@dataclass(frozen=True)
class SequenceSpec:
    """How numbers are laid out on the canvas: one layout family.

    The defaults are the classic generator (ink-to-ink gaps, placed at a random x). The other
    fields widen it: `pitch` (the seed notebooks' layout: each glyph image in its own cell of
    this width, cells side by side, optional `empty_cells`), per-glyph `scale`, `fill` (the
    number's strip resized to the canvas width), `edge` (the number against the left or right
    edge), a whole-number vertical `shift`, `rotate` and `shear` (slant), and pixel `noise`.
    """

    max_len: int = 5
    height: int = 28
    width: int = 112
    min_len: int = 1
    length_probs: Sequence[float] | None = None  # over min_len..max_len; None: uniform
    gap: tuple[int, int] = (0, 3)  # ink-to-ink spacing in px, inclusive; negative: overlap
    jitter: int = 2  # per-glyph vertical offset, ±px
    pitch: int = 0  # >0: fixed-pitch cells of this width (no ink alignment; gap is unused)
    empty_cells: float = 0.0  # pitch layouts: chance of an empty cell before each later digit
    scale: tuple[float, float] = (1.0, 1.0)  # per-glyph size factor of its g x g image
    fill: bool = False  # resize the number (its cells, or its ink) to the canvas width
    edge: float = 0.0  # chance the number is placed against the left or the right edge
    shift: int = 0  # whole-number vertical offset, ±px
    rotate: float = 0.0  # whole-number rotation, ±degrees
    shear: float = 0.0  # whole-number slant (horizontal shear), ±degrees
    noise: float = 0.0  # Gaussian pixel noise, standard deviation up to this (gray levels)

    def __post_init__(self):
        if self.height < 1 or self.width < 1:
            raise ValueError(f"height={self.height}, width={self.width}: expected pixels >= 1")
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
        if not 0 < self.scale[0] <= self.scale[1] <= 2:
            raise ValueError(f"scale={list(self.scale)}: expected 0 < low <= high <= 2")
        for name in ("empty_cells", "edge"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name}={getattr(self, name)}: expected a probability in [0, 1]")
        for name in ("pitch", "jitter", "shift", "rotate", "shear", "noise"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)}: expected a value >= 0")

    @property
    def lengths(self) -> np.ndarray:
        return np.arange(self.min_len, self.max_len + 1)

    @property
    def probs(self) -> np.ndarray:
        if self.length_probs is None:
            return np.full(len(self.lengths), 1 / len(self.lengths))
        p = np.asarray(self.length_probs, float)
        return p / p.sum()


LAYOUT_FIELDS = (
    "gap",
    "jitter",
    "pitch",
    "empty_cells",
    "scale",
    "fill",
    "edge",
    "shift",
    "rotate",
    "shear",
    "noise",
)


def layout_spec(base: SequenceSpec, layout: dict) -> SequenceSpec:
    """`base` with one layout family's fields (a config mapping) replaced; unknown keys fail."""
    layout = {k: v for k, v in dict(layout).items() if k != "weight"}
    unknown = sorted(set(layout) - set(LAYOUT_FIELDS) - {"min_len", "max_len", "length_probs"})
    if unknown:
        raise ValueError(f"layout keys {unknown}: expected some of {list(LAYOUT_FIELDS)}")
    for key in ("gap", "scale"):
        if key in layout:
            layout[key] = tuple(layout[key])
    if layout.get("length_probs") is not None:
        layout["length_probs"] = tuple(layout["length_probs"])
    return dataclasses.replace(base, **layout)


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


def _scale_tiles(tiles: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Each g x g tile resized by its factor, centered in a g x g tile (cropped when larger)."""
    import cv2

    g = tiles.shape[-1]
    out = np.zeros_like(tiles)
    for i, (tile, f) in enumerate(zip(tiles, factors, strict=True)):
        size = max(1, int(round(g * f)))
        if size == g:
            out[i] = tile
            continue
        small = cv2.resize(
            tile, (size, size), interpolation=cv2.INTER_AREA if size < g else cv2.INTER_LINEAR
        )
        a = (g - size) // 2
        if size < g:
            out[i, a : a + size, a : a + size] = small
        else:
            out[i] = small[-a : -a + g, -a : -a + g]
    return out


def _warp(
    images: np.ndarray, box: np.ndarray, rng: np.random.Generator, rotate: float, shear: float
) -> None:
    """Rotate and slant each whole number about its box center, in place; boxes follow."""
    import cv2

    n, H, W = images.shape
    angle = np.deg2rad(rng.uniform(-rotate, rotate, n))
    slant = np.tan(np.deg2rad(rng.uniform(-shear, shear, n)))
    for i in range(n):
        if box[i, 2] <= box[i, 0]:
            continue
        c = np.array([(box[i, 0] + box[i, 2]) / 2, (box[i, 1] + box[i, 3]) / 2])
        cos, sin = np.cos(angle[i]), np.sin(angle[i])
        A = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, slant[i]], [0.0, 1.0]])
        M = np.hstack([A, (c - A @ c)[:, None]])
        images[i] = cv2.warpAffine(images[i], M, (W, H), flags=cv2.INTER_LINEAR, borderValue=0)
        x0, y0, x1, y1 = box[i]
        corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], float) @ A.T + M[:, 2]
        lo, hi = np.floor(corners.min(0)), np.ceil(corners.max(0))
        box[i] = [max(lo[0], 0), max(lo[1], 0), min(hi[0], W), min(hi[1], H)]


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

    Each number: a length from `spec`, that many random glyphs (each scaled by a factor drawn
    from `spec.scale`), laid out left to right — by ink with a random gap to the previous glyph,
    or in fixed-pitch cells — with a vertical jitter per glyph; the whole number placed at a
    random x on the canvas (or against an edge), or resized to the canvas width when `spec.fill`
    or when it is wider than the canvas (a pitch layout; ink layouts tighten their gaps instead),
    then optionally rotated, slanted and noised. `transform` maps a stack of glyphs (k, g, g)
    to a stack of the same shape (e.g. an albumentations pipeline called with `images=`); it is
    applied to the drawn glyphs before layout, `transform_group` glyphs per call sharing one
    draw of its random parameters. Random draws that a layout does not use are not made, so the
    classic layout's stream is the same as before the wider families existed.
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
    if spec.scale != (1.0, 1.0):
        tiles[valid] = _scale_tiles(tiles[valid], rng.uniform(*spec.scale, int(valid.sum())))

    ink = tiles > 32
    left, right = _ink_extent(ink, axis=-2)  # columns: reduce over rows
    top, bottom = _ink_extent(ink, axis=-1)  # rows: reduce over columns
    ink_w = np.where(valid, right - left + 1, 0)

    # x of each tile relative to the number's start, and the number's extent (its strip)
    if spec.pitch:
        empty = (rng.random((n, M)) < spec.empty_cells) & valid
        empty[:, 0] = False
        cell = np.arange(M) + np.cumsum(empty, 1)
        tile_rel = cell * spec.pitch + (spec.pitch - g) // 2
        extent = np.where(length > 0, (cell[np.arange(n), np.maximum(length - 1, 0)] + 1), 0)
        extent = extent * spec.pitch
    else:
        gaps = rng.integers(spec.gap[0], spec.gap[1] + 1, size=(n, M))
        gaps[:, 0] = 0
        gaps = np.where(valid, gaps, 0)
        if not spec.fill:  # wider than the canvas: tighten the gaps (may touch), never clip
            over = np.maximum(ink_w.sum(1) + gaps.sum(1) - W, 0)
            shrink = -(-over // np.maximum(length - 1, 1))  # ceil
            gaps[:, 1:] -= np.where(valid[:, 1:], shrink[:, None], 0)
        ink_rel = np.cumsum(gaps, 1) + np.cumsum(ink_w, 1) - ink_w  # left edge of ink
        tile_rel = ink_rel - left
        extent = np.where(valid, ink_rel + ink_w, 0).max(1)
    resize = (extent > W) | (spec.fill & (length > 0))
    slack = np.maximum(W - extent, 0)
    x0 = (rng.random(n) * (slack + 1)).astype(np.int64)
    if spec.edge:
        at_edge = rng.random(n) < spec.edge
        x0 = np.where(at_edge, np.where(rng.random(n) < 0.5, 0, slack), x0)
    tile_x = np.where(resize[:, None], tile_rel, x0[:, None] + tile_rel)
    tile_y = (H - g) // 2 + rng.integers(-spec.jitter, spec.jitter + 1, size=(n, M))
    if spec.shift:
        tile_y = tile_y + rng.integers(-spec.shift, spec.shift + 1, size=(n, 1))

    # Paste into a canvas padded by one glyph on each side, so offsets never index out of range;
    # a sliding-window view turns each paste into one gather and one scatter of whole tiles.
    Wc = max(W, int(extent.max(initial=0)))
    canvas = np.zeros((n, H + 2 * g, Wc + 2 * g), np.uint8)
    windows = sliding_window_view(canvas, (g, g), axis=(1, 2), writeable=True)
    for i in range(M):
        b = np.nonzero(valid[:, i])[0]
        y, x = tile_y[b, i] + g, tile_x[b, i] + g
        windows[b, y, x] = np.maximum(windows[b, y, x], tiles[b, i])
    images = np.ascontiguousarray(canvas[:, g : g + H, g : g + W])

    # the union of the glyphs' ink, in canvas (or strip) pixels
    box = np.stack(
        [
            np.where(valid, tile_x + left, 1 << 30).min(1),
            np.where(valid, tile_y + top, H).min(1),
            np.where(valid, tile_x + right + 1, 0).max(1),
            np.where(valid, tile_y + bottom + 1, 0).max(1),
        ],
        1,
    ).astype(np.float64)
    if resize.any():
        import cv2
    for i in np.nonzero(resize)[0]:
        strip = canvas[i, g : g + H, g : g + extent[i]]
        images[i] = cv2.resize(
            strip, (W, H), interpolation=cv2.INTER_AREA if extent[i] > W else cv2.INTER_LINEAR
        )
        box[i, [0, 2]] = np.round(box[i, [0, 2]] * W / extent[i])
    if spec.rotate or spec.shear:
        _warp(images, box, rng, spec.rotate, spec.shear)
    if spec.noise:
        sd = rng.uniform(0, spec.noise, (n, 1, 1))
        noisy = images + rng.standard_normal(images.shape, np.float32) * sd
        images = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)

    digits = np.where(valid, labels[idx].astype(np.int64), PAD)
    box = box.astype(np.int64)
    box[:, [0, 2]] = box[:, [0, 2]].clip(0, W)
    box[:, [1, 3]] = box[:, [1, 3]].clip(0, H)
    box[length == 0] = 0
    return Sequences(images, length.astype(np.int64), digits, box)


def compose_mixture(
    glyphs: np.ndarray,
    labels: np.ndarray,
    layouts: Sequence[tuple[SequenceSpec, float]],
    n: int,
    rng: np.random.Generator,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    transform_group: int = 1,
) -> Sequences:
    """`n` numbers from several layout families, each number's family drawn by the weights,
    shuffled together. One family is exactly `compose`."""
    if len(layouts) == 1:
        return compose(glyphs, labels, layouts[0][0], n, rng, transform, transform_group)
    w = np.array([weight for _, weight in layouts], float)
    counts = rng.multinomial(n, w / w.sum())
    parts = [
        compose(glyphs, labels, spec, k, rng, transform, transform_group)
        for (spec, _), k in zip(layouts, counts, strict=True)
        if k
    ]
    positions = max(p.digits.shape[1] for p in parts)  # families may differ in max_len
    for p in parts:
        p.digits = np.pad(
            p.digits, ((0, 0), (0, positions - p.digits.shape[1])), constant_values=PAD
        )
    order = rng.permutation(n)
    return Sequences(
        *(
            np.concatenate([getattr(p, f) for p in parts])[order]
            for f in ("images", "length", "digits", "box")
        )
    )


def split_pool(
    images: np.ndarray, labels: np.ndarray, n_val: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """A fixed train/validation split of a glyph pool: the last `n_val` glyphs validate."""
    if not 0 < n_val < len(images):
        raise ValueError(f"n_val={n_val} must be between 1 and {len(images) - 1}")
    return (images[:-n_val], labels[:-n_val]), (images[-n_val:], labels[-n_val:])
