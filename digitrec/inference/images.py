"""Photos in: files, folders and globs → RGB uint8 arrays, whatever the file's mode.

EXIF orientation is applied (phones store portrait photos as rotated landscape pixels);
grayscale, palette, RGBA (composited over white), 16-bit and 32-bit images become 8-bit RGB.

Every image is bounded before it is decoded: the pixel count its header declares is checked
against `max_pixels` (default 50 Mpx, `DIGITREC_MAX_PIXELS` or each command's --max-mpx); a
larger JPEG is decoded at 1/2, 1/4 or 1/8 scale by the decoder itself (draft mode: the full
image never exists in memory), any other format is refused with one line. A decompression bomb
is one ImageError for that file, never an abort of a batch.
"""

from __future__ import annotations

import glob
import io
import os
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
MAX_PIXELS = 50_000_000  # the default bound on an image's declared pixel count


def max_pixels_default() -> int:
    """`DIGITREC_MAX_PIXELS` when set (a positive integer), else MAX_PIXELS."""
    value = os.environ.get("DIGITREC_MAX_PIXELS", "")
    if not value:
        return MAX_PIXELS
    try:
        n = int(float(value))
    except ValueError:
        n = 0
    if n <= 0:
        raise ValueError(f"DIGITREC_MAX_PIXELS={value!r}: expected a positive number of pixels")
    return n


class ImageError(ValueError):
    """A file that is missing, not an image, or corrupt."""


def to_rgb(image) -> np.ndarray:
    """A PIL image in any mode → (H, W, 3) uint8 RGB."""
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):  # 16/32-bit, float
        lo, hi = image.getextrema()  # without an array of the whole image
        if image.mode == "F":  # floats: their own range
            scale, offset = 255 / max(hi - lo, 1e-12), lo
        else:  # 16-bit samples (32-bit "I" PNGs hold 16-bit values too)
            scale, offset = 1 / (257.0 if hi <= 65535 else hi / 255), 0.0
        w, h = image.size
        out = np.empty((h, w, 3), np.uint8)
        rows = max(1, (1 << 20) // max(w, 1))  # about 1 Mpx at a time: memory bounded
        for y in range(0, h, rows):
            part = np.asarray(image.crop((0, y, w, min(h, y + rows))), np.float32)
            part -= offset  # in place: one float band alive at a time
            part *= scale
            np.clip(np.rint(part, out=part), 0, 255, out=part)
            out[y : y + rows] = part[..., None]
        return out
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))  # one copy


def _open(source, name: str, max_pixels: int | None) -> tuple[np.ndarray, float]:
    """(the image decoded, the factor from its pixels to the file's: 1, or 2-8 for a JPEG the
    decoder reduced)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    limit = max_pixels_default() if max_pixels is None else max_pixels
    try:
        with warnings.catch_warnings():  # the limit below is ours; Pillow's warning is noise
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as image:  # reads the header only
                declared = image.size[0]
                _bound(image, name, limit)
                image.load()  # decode now: a truncated file fails here, not later
                factor = declared / image.size[0]
                ImageOps.exif_transpose(image, in_place=True)  # no copy unless it turns
                return to_rgb(image), factor
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except Image.DecompressionBombError as e:  # beyond Pillow's own hard limit
        raise ImageError(f"{name}: too large to decode ({e})") from None
    except UnidentifiedImageError:  # Pillow's message names the file object, not the file
        raise ImageError(
            f"{name}: not a readable image (an unknown format or a corrupt header)"
        ) from None
    except (OSError, SyntaxError, ValueError) as e:
        if isinstance(e, ImageError):
            raise
        raise ImageError(f"{name}: not a readable image ({type(e).__name__}: {e})") from None


def _bound(image, name: str, limit: int) -> None:
    """Refuse an image whose header declares more than `limit` pixels, or, for a JPEG, ask
    the decoder for the smallest power-of-two reduction that fits (draft mode)."""
    w, h = image.size
    if w * h <= limit:
        return
    if image.format == "JPEG":
        scale = 2
        while scale < 8 and (w // scale) * (h // scale) > limit:
            scale *= 2
        image.draft(image.mode, (w // scale, h // scale))
        if image.size[0] * image.size[1] <= limit:
            return
    raise ImageError(
        f"{name}: {w}x{h} pixels ({w * h / 1e6:.0f} Mpx), more than the limit of "
        f"{limit / 1e6:g} Mpx (--max-mpx or DIGITREC_MAX_PIXELS)"
    )


def load_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """A photo file → (H, W, 3) uint8 RGB (see `load_image_scaled`)."""
    return load_image_scaled(path, max_pixels)[0]


def load_image_scaled(path: str | Path, max_pixels: int | None = None) -> tuple[np.ndarray, float]:
    """A photo file → ((H, W, 3) uint8 RGB, EXIF orientation applied, at most `max_pixels`
    (default: max_pixels_default()); the factor from its pixels to the file's: 1, or 2-8 when a
    larger JPEG was decoded reduced — multiply boxes by it to give them in the photo's pixels).
    Raises ImageError with one line naming the file; a FIFO, a device or a folder is refused
    before it is opened (reading one could block forever)."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except OSError as e:
        raise ImageError(f"{path}: not readable ({e.strerror})") from None
    if not stat.S_ISREG(mode):
        raise ImageError(f"{path}: not a regular file (a folder, a FIFO or a device)")
    return _open(str(path), str(path), max_pixels)


def decode_image_scaled(
    data: bytes, name: str = "upload", max_pixels: int | None = None
) -> tuple[np.ndarray, float]:
    """Encoded image bytes → (image, factor), as load_image_scaled."""
    return _open(io.BytesIO(data), name, max_pixels)


def decode_image(data: bytes, name: str = "upload", max_pixels: int | None = None) -> np.ndarray:
    """Encoded image bytes → (H, W, 3) uint8 RGB, as load_image. Raises ImageError."""
    return _open(io.BytesIO(data), name, max_pixels)[0]


def expand_inputs(items: Iterable[str]) -> Iterator[str]:
    """Files as given; folders → their images (recursively, sorted); globs → their matches.
    A name that matches nothing is yielded as is, so reading it reports it."""
    for item in items:
        p = Path(item)
        if p.is_dir():
            yield from (
                str(f)
                for f in sorted(p.rglob("*"))
                if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()
            )
        elif not p.exists() and glob.has_magic(item):
            matches = sorted(glob.glob(item, recursive=True))
            yield from (m for m in matches if Path(m).is_file()) if matches else [item]
        else:
            yield item
