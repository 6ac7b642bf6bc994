"""Photos in: files, folders and globs → RGB uint8 arrays, whatever the file's mode.

EXIF orientation is applied (phones store portrait photos as rotated landscape pixels);
grayscale, palette, RGBA (composited over white), 16-bit and 32-bit images become 8-bit RGB.
"""

from __future__ import annotations

import glob
import io
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class ImageError(ValueError):
    """A file that is missing, not an image, or corrupt."""


def to_rgb(image) -> np.ndarray:
    """A PIL image in any mode → (H, W, 3) uint8 RGB."""
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):  # 16/32-bit, float
        a = np.asarray(image, dtype=np.float64)
        if image.mode == "F":  # floats: their own range
            lo, hi = float(a.min()), float(a.max())
            a = (a - lo) / max(hi - lo, 1e-12) * 255
        else:  # 16-bit samples (32-bit "I" PNGs hold 16-bit values too)
            a = a / (257.0 if a.max() <= 65535 else a.max() / 255)
        gray = np.clip(np.rint(a), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    return np.asarray(image.convert("RGB"))


def _open(source, name: str) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(source) as image:
            image.load()  # decode now: a truncated file fails here, not later
            return to_rgb(ImageOps.exif_transpose(image))
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        raise ImageError(f"{name}: not a readable image ({type(e).__name__}: {e})") from None


def load_image(path: str | Path) -> np.ndarray:
    """A photo file → (H, W, 3) uint8 RGB, EXIF orientation applied. Raises ImageError."""
    return _open(str(path), str(path))


def decode_image(data: bytes, name: str = "upload") -> np.ndarray:
    """Encoded image bytes → (H, W, 3) uint8 RGB, EXIF orientation applied. Raises ImageError."""
    return _open(io.BytesIO(data), name)


def expand_inputs(items: Iterable[str]) -> Iterator[str]:
    """Files as given; folders → their images (recursively, sorted); globs → their matches.
    A name that matches nothing is yielded as is, so reading it reports it."""
    for item in items:
        p = Path(item)
        if p.is_dir():
            yield from (str(f) for f in sorted(p.rglob("*"))
                        if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())  # fmt: skip
        elif not p.exists() and glob.has_magic(item):
            matches = sorted(glob.glob(item, recursive=True))
            yield from (m for m in matches if Path(m).is_file()) if matches else [item]
        else:
            yield item
