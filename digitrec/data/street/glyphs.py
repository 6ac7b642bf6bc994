"""Fonts for the street renderer: found on this machine (and fetched), each digit's glyph mask."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

FONT_DIRS = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.fonts",
    "~/.local/share/fonts",
    "/Library/Fonts",
    "C:/Windows/Fonts",
)
# symbol and size-variant fonts map '0'-'9' to other shapes
_NOT_DIGIT_FONTS = ("cmex", "cmsy", "STIXSize", "STIXNonUnicode", "Symbol", "Dingbat", "Emoji")
GLYPH = 64  # glyph masks are rendered once at this height, then resized into each box


def find_fonts(extra: Sequence[str | Path] = ()) -> list[str]:
    """Fonts that draw ten distinct digits: `extra` (e.g. what `digitrec-data fonts` fetched),
    then this machine's TrueType/OpenType fonts and matplotlib's."""
    import matplotlib

    from digitrec.data.fonts import SUFFIXES

    dirs = [Path(d).expanduser() for d in FONT_DIRS]
    dirs.append(Path(matplotlib.get_data_path()) / "fonts" / "ttf")
    system = sorted(
        {p for d in dirs if d.is_dir() for p in d.rglob("*") if p.suffix.lower() in SUFFIXES}
    )
    paths = [Path(p) for p in extra] + system
    fonts, seen = [], set()
    for p in paths:
        if p.name in seen:  # the same font in two places (system and matplotlib's copy)
            continue
        if any(bad.lower() in p.name.lower() for bad in _NOT_DIGIT_FONTS):
            continue
        try:
            masks = _glyphs(str(p))
        except OSError:
            continue
        if all(m.any() for m in masks) and len({m.tobytes() for m in masks}) == 10:
            fonts.append(str(p))
            seen.add(p.name)
    if not fonts:
        raise RuntimeError(
            f"no TrueType font that draws digits was found (looked in {', '.join(map(str, dirs))})"
        )
    return fonts


@lru_cache(maxsize=256)
def _glyphs(font_path: str) -> tuple[np.ndarray, ...]:
    """The ten digit masks of a font, cropped to their ink, GLYPH px high (uint8 0..255)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(font_path, GLYPH)
    out = []
    for ch in "0123456789":
        canvas = Image.new("L", (GLYPH * 2, GLYPH * 2), 0)
        ImageDraw.Draw(canvas).text((GLYPH // 2, GLYPH // 4), ch, fill=255, font=font)
        mask = np.asarray(canvas)
        ys, xs = np.nonzero(mask > 40)
        out.append(
            mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].copy()
            if len(ys)
            else np.zeros((1, 1), np.uint8)
        )
    return tuple(out)
