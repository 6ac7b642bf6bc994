"""Images to a reader's input: what a checkpoint's preprocessing recipe means in pixels."""

from __future__ import annotations

import numpy as np

from digitrec.data.svhn import crop_resize, expand_box


def crop_inputs(
    image: np.ndarray, boxes: list[np.ndarray], expand: float, image_size: int, crop: int
) -> np.ndarray:
    """An SVHN crop reader's input for each box (the paper's recipe): the box enlarged by
    `expand`, resized to `image_size` squared, its center `crop` x `crop` window."""
    h, w = image.shape[:2]
    o = (image_size - crop) // 2
    out = [
        crop_resize(image, expand_box(b, w, h, expand), image_size)[o : o + crop, o : o + crop]
        for b in boxes
    ]
    return np.stack(out)


def to_reader_input(image: np.ndarray, channels: int, height: int, width: int) -> np.ndarray:
    """Any uint8 RGB image (h, w, 3) → what a reader of input (channels, height, width) reads.

    1 channel (a reader of synthetic MNIST/notMNIST numbers: white ink on black): grayscale
    (luma), inverted when the background is light (median of the border pixels > 127), then
    resized keeping the aspect ratio to fit height x width (INTER_AREA when shrinking,
    INTER_LINEAR when enlarging) and centered on a black canvas → (height, width).
    3 channels (an SVHN crop reader): the RGB image resized to height x width → (height, width, 3).
    An image already height x width is not resized.
    """
    import cv2

    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    if channels == 3:
        if (h, w) == (height, width):
            return image
        shrink = h * w > height * width
        return cv2.resize(
            image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        )
    if channels != 1:
        raise ValueError(f"a reader of {channels} channels: expected 1 (gray) or 3 (RGB)")
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 127:  # dark ink on a light background
        gray = 255 - gray
    if (h, w) == (height, width):
        return gray
    scale = min(height / h, width / w)
    nh = min(height, max(1, round(h * scale)))
    nw = min(width, max(1, round(w * scale)))
    resized = cv2.resize(
        gray, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    )
    canvas = np.zeros((height, width), np.uint8)
    y, x = (height - nh) // 2, (width - nw) // 2
    canvas[y : y + nh, x : x + nw] = resized
    return canvas
