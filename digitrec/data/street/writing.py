"""Rendering a split in worker processes and writing it in SVHN's format 1 (PNGs + digitStruct.mat)."""

from __future__ import annotations

import logging
import multiprocessing as mp
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from digitrec.data.digitstruct import Record, write_digit_struct
from digitrec.data.street.glyphs import find_fonts
from digitrec.data.street.render import (
    _real_walls,
    render,
)
from digitrec.data.street.style import Style
from digitrec.data.svhn import RENDERED_MARKER
from digitrec.io import atomic_write_bytes

log = logging.getLogger(__name__)


_WORKER: dict = {}


def _init_worker(fonts, folder, seed, style):
    _WORKER.update(fonts=fonts, folder=Path(folder), seed=seed, style=style)


def _render_chunk(chunk: list[tuple[int, Record]]) -> int:
    import cv2

    for i, record in chunk:
        image = render(
            record, _WORKER["fonts"], seed=_WORKER["seed"] * 1_000_003 + i, style=_WORKER["style"]
        )
        ok, png = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise RuntimeError(f"could not encode {record.name}")
        atomic_write_bytes(_WORKER["folder"] / record.name, png.tobytes())
    return len(chunk)


def render_split(
    records: Sequence[Record],
    out: str | Path,
    split: str,
    seed: int = 0,
    workers: int = 2,
    fonts: Sequence[str] | None = None,
    progress: bool = True,
    style: Style | None = None,
) -> Path:
    """Render `records` (each with a size) into `<out>/<split>/` as SVHN format 1. The
    digitStruct.mat is written last, so a split without it is unfinished."""
    from tqdm import tqdm

    out = Path(out)
    folder = out / split
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "digitStruct.mat").unlink(missing_ok=True)
    missing = [r.name for r in records if r.size is None]
    if missing:
        raise ValueError(f"layout {missing[0]} has no image size (width, height)")
    fonts = list(fonts or find_fonts())
    style = style or Style()
    if style.backgrounds:
        _real_walls(style.backgrounds)  # a bad folder fails here, once, not in every worker
    atomic_write_bytes(out / RENDERED_MARKER, _marker(fonts, style).encode())
    start = time.perf_counter()
    items = list(enumerate(records))
    chunks = [items[i : i + 256] for i in range(0, len(items), 256)]
    bar = tqdm(total=len(items), desc=f"rendering {split}", unit="img", disable=not progress)
    if workers > 1:
        ctx = mp.get_context()  # the platform default (fork on Linux, spawn elsewhere)
        with ctx.Pool(workers, _init_worker, (fonts, folder, seed, style)) as pool:
            for n in pool.imap_unordered(_render_chunk, chunks):
                bar.update(n)
    else:
        _init_worker(fonts, folder, seed, style)
        for c in chunks:
            bar.update(_render_chunk(c))
    bar.close()
    rendered = time.perf_counter() - start
    write_digit_struct(folder / "digitStruct.mat", records)
    log.info(
        "%s: %d images rendered in %.0f s (%.0f img/s), digitStruct.mat in %.0f s",
        folder,
        len(records),
        rendered,
        len(records) / max(rendered, 1e-9),
        time.perf_counter() - start - rendered,
    )
    return folder


def _marker(fonts: Sequence[str], style: Style) -> str:
    names = ", ".join(sorted({Path(f).stem for f in fonts}))
    return (
        "# Rendered street numbers: SYNTHETIC, not SVHN\n\n"
        "Written by `digitrec-data street` (digitrec/data/street/) in SVHN's format 1 as an "
        "offline stand-in for development and benchmarks. Accuracy measured on these images is "
        "not an SVHN result.\n\n"
        f"Fonts ({len(fonts)}): {names}\n\nStyle: {style}\n"
    )


SVHN_LAYOUTS = {"train": 33402, "test": 13068}  # SVHN format 1's train and test images


def street_command(
    out: Path,
    split: str,
    labels: Path | None = None,
    limit: int = 0,
    data_dir: Path | None = None,
    workers: int | None = None,
) -> list[str]:
    """The `digitrec-data street` command that renders one split into `out`: SVHN's real layouts
    when `labels`/<split>.json.gz is there (the first `limit`, 0: all), else `limit` random ones
    (0: as many as SVHN has)."""
    cmd = [sys.executable, "-m", "digitrec.cli.data", "street", "--out", str(out)]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    cmd += ["--splits", split]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    if labels is not None and (Path(labels) / f"{split}.json.gz").is_file():
        return cmd + ["--labels", str(labels)] + (["--limit", str(limit)] if limit else [])
    return cmd + ["--random", str(limit or SVHN_LAYOUTS[split])]
