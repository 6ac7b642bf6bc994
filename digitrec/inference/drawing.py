"""Digits drawn by hand (the web page's draw mode) → what a reader of synthetic MNIST numbers
reads: dark strokes on a light canvas, cropped to the ink with a margin like MNIST's (a digit
about 20 of 28 pixels high), then `to_reader_input` (inverted, fitted to 28 x 112, centered).
"""

from __future__ import annotations

import numpy as np

from digitrec.inference.pipeline import Reading, WholeImageReader
from digitrec.inference.preprocessing import to_reader_input

INK = 96  # how much darker than the paper a pixel is to count as ink (0-255)
MARGIN = 4 / 20  # MNIST: a 20-pixel digit in a 28-pixel box, 4 pixels each side


def ink_box(gray: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) around the strokes of a grayscale drawing, None when it is blank."""
    paper = float(np.median(gray))
    ink = np.abs(gray.astype(np.int16) - paper) > INK
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if not len(rows):
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def drawing_input(image: np.ndarray, reader: WholeImageReader) -> np.ndarray | None:
    """The reader's input (uint8, its height x width) for an RGB drawing; None when blank."""
    gray = image.mean(axis=2).astype(np.uint8) if image.ndim == 3 else image
    box = ink_box(gray)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    pad = max(2, round(MARGIN * (y1 - y0)))
    paper = int(np.median(gray))
    h, w = y1 - y0 + 2 * pad, x1 - x0 + 2 * pad
    crop = np.full((h, w), paper, np.uint8)
    crop[pad : pad + y1 - y0, pad : pad + x1 - x0] = gray[y0:y1, x0:x1]
    rgb = np.repeat(crop[..., None], 3, axis=2)
    x = to_reader_input(rgb, *reader.input_shape)
    return x if x.ndim == 2 else x[..., 0]


def read_drawing(image: np.ndarray, reader: WholeImageReader) -> tuple[Reading, np.ndarray | None]:
    """(the reading, the reader's input) for a drawing; an empty reading when it is blank."""
    x = drawing_input(image, reader)
    if x is None:
        return Reading("", 0.0, [0.0, 0.0, 0.0, 0.0]), None
    reading = reader(np.repeat(x[..., None], 3, axis=2))
    return reading, x
