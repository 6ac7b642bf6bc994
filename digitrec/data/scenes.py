"""Scenes: street-number images pasted at random positions and scales into larger backgrounds.

A photo of a house is mostly not its number. Scenes model that: a whole SVHN-format image (real
or rendered) is scaled down and pasted somewhere into a bigger, cluttered background (SYNTHETIC:
a gradient, rectangles like windows and doors, lines, noise and blur), and the number's union box
moves with it. Two uses:

- the localizer's data (`data=scenes`, digitrec.datamodules.SceneDataModule): scenes composed on
  the fly at the localizer's input size from whole-image caches, and zoomed views around the
  number (what the photo reader's second and third looks see);
- a generated test set of full-size photos (`digitrec-data scenes`): PNGs plus `labels.json`
  (number, union box, digit boxes per file), on which the two-stage reader is measured against
  the same reader on ground-truth crops (experiments/photo_reader).

Both draw backgrounds and placements with the same functions, so geometry is described in
fractions of the scene and the look does not depend on the resolution.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from digitrec.data.svhn import RENDERED_MARKER, split_records
from digitrec.io import atomic_write_bytes

log = logging.getLogger(__name__)

SCENE_SIZES = ((640, 480), (480, 640), (800, 600), (1024, 768), (1280, 720))
SCALE = (0.15, 0.6)  # the pasted image's width as a fraction of the scene's
ZOOMED = (0.2, 0.6)  # the number's width as a fraction of a zoomed view's (a later look's)
MARKER = "SCENES.md"


def clutter(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A cluttered background (height, width, 3) uint8: a wall color with a gradient, 2-12
    rectangles (windows, doors, signs), a few lines, noise and blur."""
    import cv2

    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    grad = np.cos(angle) * xx / width + np.sin(angle) * yy / height
    image = rng.uniform(20, 235, 3)[None, None] + (grad * rng.uniform(-70, 70))[..., None]
    for _ in range(int(rng.integers(2, 13))):
        w, h = rng.uniform(0.05, 0.5) * width, rng.uniform(0.05, 0.5) * height
        x, y = rng.uniform(-0.1, 1) * width, rng.uniform(-0.1, 1) * height
        x0, y0, x1, y1 = (int(max(0, v)) for v in (x, y, min(width, x + w), min(height, y + h)))
        image[y0:y1, x0:x1] = rng.uniform(0, 255, 3) + rng.normal(0, 4, (y1 - y0, x1 - x0, 1))
    image = np.clip(image, 0, 255).astype(np.uint8)
    thickness = max(1, round(min(width, height) / 150))
    for _ in range(int(rng.integers(0, 6))):
        p0 = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        p1 = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        color = tuple(int(c) for c in rng.uniform(0, 255, 3))
        cv2.line(image, p0, p1, color, int(thickness * rng.integers(1, 4)))
    noise = rng.normal(0, rng.uniform(2, 10), (height, width, 1))
    image = np.clip(image + noise, 0, 255).astype(np.uint8)
    sigma = rng.uniform(0, 1.5) * min(width, height) / 256
    return cv2.GaussianBlur(image, (0, 0), sigma) if sigma > 0.3 else image


def place(
    rng: np.random.Generator,
    source_aspect: float,
    scene_aspect: float,
    canvas: tuple[int, int],
    scale: Sequence[float] = SCALE,
) -> tuple[int, int, int, int]:
    """Where a source image goes: (x, y, width, height) in canvas pixels. `source_aspect` and
    `scene_aspect` are the real height/width of the source and width/height of the scene it
    represents (the canvas may be a squashed square, as the localizer's input is)."""
    cw, ch = canvas
    f = rng.uniform(*scale)
    # the pasted height in canvas pixels is f * scene_aspect * source_aspect * ch; keep it inside
    f = min(f, 0.95 / (scene_aspect * source_aspect))
    pw = max(2, round(f * cw))
    ph = max(2, min(ch, round(f * scene_aspect * source_aspect * ch)))
    return int(rng.integers(0, cw - pw + 1)), int(rng.integers(0, ch - ph + 1)), pw, ph


def paste(canvas: np.ndarray, source: np.ndarray, x: int, y: int, w: int, h: int) -> None:
    """Resize `source` to (w, h) and write it into `canvas` at (x, y), in place."""
    import cv2

    shrink = w < source.shape[1] or h < source.shape[0]
    canvas[y : y + h, x : x + w] = cv2.resize(
        source, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )


def compose(
    rng: np.random.Generator,
    source: np.ndarray,
    boxes: np.ndarray,
    real_size: tuple[int, int],
    canvas: tuple[int, int],
    scene_aspect: float,
    scale: Sequence[float] = SCALE,
) -> tuple[np.ndarray, np.ndarray]:
    """One scene: clutter of `canvas` (width, height) with `source` pasted in. `boxes` (k, 4)
    x0, y0, x1, y1 in source pixels; `real_size` the source's real (width, height) (the cached
    sources are squashed squares). Returns the scene and the boxes in scene pixels."""
    cw, ch = canvas
    scene = clutter(rng, ch, cw)
    x, y, w, h = place(rng, real_size[1] / real_size[0], scene_aspect, canvas, scale)
    paste(scene, source, x, y, w, h)
    sx, sy = w / source.shape[1], h / source.shape[0]
    moved = np.asarray(boxes, np.float32) * [sx, sy, sx, sy] + [x, y, x, y]
    return scene, moved.astype(np.float32)


def zoomed_view(
    rng: np.random.Generator,
    source: np.ndarray,
    box: np.ndarray,
    size: int,
    fraction: Sequence[float] = ZOOMED,
) -> tuple[np.ndarray, np.ndarray]:
    """What the photo reader's later looks see: a size x size view around the number (a region
    a few times its box, squashed to a square) in which the number's box spans `fraction` of the
    view's width (its height: that x 0.75-1.33, as a localizer's boxes err), off-center, and the
    rest is the source image or, past its edges, clutter. `box` (4,) x0, y0, x1, y1 in source
    pixels. Returns the view and the box in view pixels."""
    import cv2

    x0, y0, x1, y1 = np.asarray(box, np.float64)
    fw = rng.uniform(*fraction)
    fh = min(0.9, fw * np.exp(rng.uniform(np.log(0.75), np.log(4 / 3))))
    vw, vh = max(x1 - x0, 0.5) / fw, max(y1 - y0, 0.5) / fh  # the view in source pixels
    # the number's center anywhere that keeps its box inside the view
    cx = (x0 + x1) / 2 + rng.uniform(-0.5, 0.5) * (vw - (x1 - x0))
    cy = (y0 + y1) / 2 + rng.uniform(-0.5, 0.5) * (vh - (y1 - y0))
    vx0, vy0 = cx - vw / 2, cy - vh / 2
    sx, sy = size / vw, size / vh
    view = clutter(rng, size, size)
    # boxes are in corner coordinates (pixel i spans [i, i + 1]), warpAffine maps pixel centers
    m = np.array([[sx, 0, (0.5 - vx0) * sx - 0.5], [0, sy, (0.5 - vy0) * sy - 0.5]], np.float64)
    cv2.warpAffine(
        source, m, (size, size), dst=view, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT
    )
    moved = np.array([(x0 - vx0) * sx, (y0 - vy0) * sy, (x1 - vx0) * sx, (y1 - vy0) * sy])
    return view, moved.astype(np.float32)


# ------------------------------------------------------------------- a test set of photos
def write_scenes(
    root: str | Path,
    split: str,
    out: str | Path,
    n: int,
    seed: int = 0,
    max_len: int = 5,
    progress: bool = True,
) -> Path:
    """`n` full-size scenes from `<root>/<split>` (SVHN format 1) into `out`: 1.png, ... and
    `labels.json` (written last) with each file's number, union box and digit boxes
    (x0, y0, x1, y1 in scene pixels)."""
    import cv2
    from tqdm import tqdm

    root, out = Path(root), Path(out)
    folder = root / split
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder}: no SVHN format-1 split there (digitrec-data svhn, "
            "or digitrec-data street for the stand-in)"
        )
    folder, records = split_records(root, split, download=False)
    records = [r for r in records if 0 < len(r.boxes) <= max_len]
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(records), size=min(n, len(records)), replace=False)
    out.mkdir(parents=True, exist_ok=True)
    (out / "labels.json").unlink(missing_ok=True)
    labels = []
    for i, k in enumerate(
        tqdm(picks, desc=f"scenes from {split}", unit="img", disable=not progress), 1
    ):
        r = records[int(k)]
        source = cv2.imread(str(folder / r.name), cv2.IMREAD_COLOR)
        if source is None:
            raise ValueError(f"{folder / r.name}: missing or not a readable image")
        b = r.boxes
        digit_boxes = np.stack([b[:, 1], b[:, 2], b[:, 1] + b[:, 3], b[:, 2] + b[:, 4]], 1)
        width, height = SCENE_SIZES[int(rng.integers(len(SCENE_SIZES)))]
        scene, moved = compose(
            rng,
            source,
            digit_boxes,
            (source.shape[1], source.shape[0]),
            (width, height),
            width / height,
        )
        ok, png = cv2.imencode(".png", scene, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise RuntimeError(f"could not encode scene {i}")
        name = f"{i}.png"
        atomic_write_bytes(out / name, png.tobytes())
        union = [
            float(moved[:, 0].min()),
            float(moved[:, 1].min()),
            float(moved[:, 2].max()),
            float(moved[:, 3].max()),
        ]
        labels.append(
            {
                "name": name,
                "number": r.number,
                "box": [round(v, 2) for v in union],
                "boxes": np.round(moved, 2).tolist(),
                "source": f"{split}/{r.name}",
                "size": [width, height],
            }
        )
    rendered = (root / RENDERED_MARKER).is_file()
    atomic_write_bytes(
        out / MARKER,
        (
            "# Scenes: street numbers pasted into SYNTHETIC cluttered backgrounds\n\n"
            f"Written by `digitrec-data scenes` from {folder} ({'rendered stand-in, not SVHN' if rendered else 'SVHN format 1'}), "
            f"{len(labels)} images, seed {seed}. Labels: labels.json.\n"
        ).encode(),
    )
    atomic_write_bytes(out / "labels.json", json.dumps(labels, indent=0).encode())
    log.info("%s: %d scenes", out, len(labels))
    return out


def read_labels(folder: str | Path) -> list[dict]:
    path = Path(folder) / "labels.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(
            f"{path}: not a scenes label file ({e}); write one with digitrec-data scenes"
        ) from None
