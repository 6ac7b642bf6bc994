"""The renderer's look: the Style knobs (digitrec-data street --set KEY=VALUE) and the words beside numbers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Style:
    """The renderer's knobs (`digitrec-data street --set KEY=VALUE`). Shares are probabilities
    per image. `Style.v1()` is the first renderer's look (saturated random colors, no relief,
    shadows, words, real backgrounds or low resolution)."""

    palette: str = "natural"  # natural: walls, plates and ink mostly desaturated (real SVHN's
    #                           colors: grays, browns, whites, dark blues); random: any RGB
    plate: float = 0.6  # a plate behind the number
    rounded: float = 0.5  # of the plates: rounded corners
    contrast: tuple[float, float] = (0.35, 1.0)  # ink strength: 1 full, lower fades into the wall
    relief: float = 0.3  # raised/engraved digits: a highlight on one side, a shadow on the other
    shadow: float = 0.25  # a soft shadow cast by the digits onto the wall or plate
    words: float = 0.2  # a word or letters beside the number ("No", "Suite", "Rd", ...; not read)
    backgrounds: str | None = None  # an SVHN format-1 split folder (real photos); walls cut from
    #                                 them, their digits painted out (e.g. svhn/real/train)
    real_background: float = 0.6  # of the images, when `backgrounds` is set
    lowres: float = 0.4  # shrunk 1.5-4x and enlarged back: the soft look of small SVHN numbers
    blur: float = 1.2  # the largest Gaussian blur sigma, per 60 px of the image's short side
    jpeg: float = 0.7  # JPEG artifacts (quality 30-95)

    @classmethod
    def v1(cls) -> Style:
        return cls(
            palette="random",
            rounded=0.0,
            contrast=(1.0, 1.0),
            relief=0.0,
            shadow=0.0,
            words=0.0,
            lowres=0.0,
        )

    def __post_init__(self):
        if self.palette not in ("natural", "random"):
            raise ValueError(f"palette={self.palette!r}: expected natural or random")
        for name in (
            "plate",
            "rounded",
            "relief",
            "shadow",
            "words",
            "real_background",
            "lowres",
            "jpeg",
        ):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name}={getattr(self, name)}: expected a share in [0, 1]")
        lo, hi = self.contrast
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"contrast={self.contrast}: expected 0 < low <= high <= 1")

    @classmethod
    def parse(cls, items: Sequence[str], base: Style | None = None) -> Style:
        """`KEY=VALUE` strings (contrast=LOW,HIGH) over `base` (default: the defaults)."""
        base = base or cls()
        names = {f.name for f in fields(cls)}
        changes = {}
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or key not in names:
                raise ValueError(
                    f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(names))}"
                )
            if key == "palette":
                changes[key] = value
            elif key == "backgrounds":
                changes[key] = value or None
            elif key == "contrast":
                changes[key] = tuple(float(v) for v in value.split(","))
            else:
                try:
                    changes[key] = float(value)
                except ValueError:
                    raise ValueError(f"--set {item!r}: expected a number") from None
        return replace(base, **changes)


WORDS = (
    "No",
    "No.",
    "N°",
    "Nr",
    "#",
    "Suite",
    "Apt",
    "Unit",
    "Rd",
    "St",
    "Ave",
    "Road",
    "Street",
    "Lane",
    "Drive",
    "Way",
    "Court",
    "House",
    "Block",
    "E",
    "W",
    "N",
    "S",
    "A",
    "B",
    "C",
    "Bldg",
    "Oak",
    "Elm",
    "Main",
    "Park",
    "Hill",
)
