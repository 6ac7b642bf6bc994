"""Rendered street numbers: a SYNTHETIC offline stand-in for SVHN, written in SVHN's format 1.

`render_split` draws house-number images and writes them exactly as the official archives
extract (`<out>/<split>/1.png, ...` + a MATLAB v7.3 `digitStruct.mat`), so `data=svhn
data.root=<out>` runs the same reader, preprocessing and cache as real SVHN. Layouts come from a
real label file (each real image's size, digit boxes and labels: lengths, geometry and class
balance match SVHN exactly) or from `random_layouts`. Each image gets one font (those of
`digitrec-data fonts`, then the machine's and matplotlib's), a wall (a textured color or a patch
of a real image with its digits painted out), maybe a plate, ink, per-digit rotation, the
number's slant and a small perspective warp per glyph, relief and shadows, maybe a word beside
the number, low resolution, blur, noise and JPEG artifacts — each a knob of `Style` (measured:
experiments/photo_reader). Every glyph is stretched to fill its box, so the boxes are
tight like SVHN's. `<out>/RENDERED.md` marks the folder as synthetic, and caches and runs built
from it say so. Figures measured on it are not SVHN figures.
"""

from digitrec.data.street.glyphs import (  # noqa: F401
    _NOT_DIGIT_FONTS,
    FONT_DIRS,
    GLYPH,
    _glyphs,
    find_fonts,
)
from digitrec.data.street.layouts import (  # noqa: F401
    _LENGTH_P,
    random_layouts,
)
from digitrec.data.street.render import (  # noqa: F401
    _contrast,
    _hsv_color,
    _inset,
    _paint,
    _plate_color,
    _real_walls,
    _rounded_mask,
    _text_mask,
    _wall,
    _wall_color,
    _word,
    render,
)
from digitrec.data.street.style import (  # noqa: F401
    WORDS,
    Style,
)
from digitrec.data.street.writing import (  # noqa: F401
    _WORKER,
    SVHN_LAYOUTS,
    _init_worker,
    _marker,
    _render_chunk,
    render_split,
    street_command,
)
