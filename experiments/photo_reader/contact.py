"""A contact sheet of one engine's readings of a set (`make peers` output): each photo small, with
its true number and the engine's answer (green: right, red: wrong or none).

    python contact.py peers/digitrec.json real_photos contact_real_photos.png [--missed]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from peers import data_dir, items, load_rgb


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("results")
    p.add_argument("set")
    p.add_argument("out")
    p.add_argument("--missed", action="store_true", help="only the photos read wrong")
    p.add_argument("--tile", type=int, default=160)
    args = p.parse_args(argv)
    import cv2

    result = json.loads(Path(args.results).read_text())
    readings = result["sets"][args.set]["readings"]
    paths = {row[0]: row for row in items(data_dir())[args.set]}
    if args.missed:
        readings = [r for r in readings if not r["correct"]]
    t = args.tile
    tiles = []
    for r in readings:
        _, path, _, *crop = paths[r["file"]]
        image = load_rgb(path, crop[0] if crop else None)
        h, w = image.shape[:2]
        s = t / max(h, w)
        small = cv2.resize(
            image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA
        )
        tile = np.full((t + 34, t, 3), 255, np.uint8)
        tile[: small.shape[0], : small.shape[1]] = small
        color = (0, 140, 0) if r["correct"] else (200, 0, 0)
        cv2.putText(tile, f"true {r['number'] or '-'}", (2, t + 13), 0, 0.42, (0, 0, 0), 1)
        cv2.putText(tile, f"read {r['answer'] or '-'}", (2, t + 29), 0, 0.42, color, 1)
        tiles.append(tile)
    if not tiles:
        print("nothing to show")
        return 0
    cols = 8
    rows = [tiles[i : i + cols] for i in range(0, len(tiles), cols)]
    rows[-1] += [np.full_like(tiles[0], 255)] * (cols - len(rows[-1]))
    sheet = np.vstack([np.hstack(r) for r in rows])
    cv2.imwrite(args.out, sheet[..., ::-1])
    print(f"{len(tiles)} photos → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
