"""Choose the detector's inference settings on its validation photos (training data only).

    python experiments/detector/tune.py BEST.ckpt [--sizes 512 640 768] [--out tune.json]

The validation photos are the whole numbers of `curtin_numbers/train` that training held out
(`split_by_number`, the run's data.val_size and data.split_seed), read at full resolution by the
photo reader (digitrec.inference.detection.DetectorReader) at each input size and digit threshold;
for each, every answer threshold is scored: photos whose one number is read exactly, and photos
without a number that get an answer. The choice: the most numbers read with at most
`--max-false` of the number-free photos answered. `curtin_numbers/test`, `real_photos` and
`svhn/real/test` are never read here.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("checkpoint")
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 640, 768])
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.2, 0.3])
    p.add_argument(
        "--overlaps", type=float, nargs="+", default=[0.5], help="IoU dropping a digit found twice"
    )
    p.add_argument("--max-false", type=float, default=0.1, help="share of number-free photos")
    p.add_argument("--val-size", type=int, default=75)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    from digitrec.data.street_photos import labelled, read_split
    from digitrec.datamodules.street_photos import answer, split_by_number
    from digitrec.inference.detection import DetectorReader
    from digitrec.tasks import load_task

    root = Path(os.environ.get("DIGITREC_DATA_DIR", "../shared/data")) / "curtin_numbers" / "train"
    photos = read_split(root)
    val, _ = split_by_number(photos, args.val_size, args.split_seed)
    items = [(answer(photos[i]), labelled(photos[i], 4096).image) for i in val]
    items = [(a, im) for a, im in items if a != "?"]
    module = load_task(args.checkpoint)
    rows = []
    for size, t, overlap in itertools.product(args.sizes, args.thresholds, args.overlaps):
        reader = DetectorReader(module, sizes=(size,), threshold=t, overlap=overlap)
        best = [(reader.candidates(im)[:1], a) for a, im in items]
        for at in np.round(np.arange(0.05, 0.95, 0.05), 2):
            read = [c[0].number if c and c[0].score >= at else "" for c, _ in best]
            right = sum(r == a for r, (_, a) in zip(read, best, strict=True) if a)
            false = sum(r != "" for r, (_, a) in zip(read, best, strict=True) if not a)
            rows.append(
                {
                    "size": size,
                    "threshold": t,
                    "overlap": overlap,
                    "answer_threshold": float(at),
                    "read": right,
                    "false": false,
                }
            )
    n = sum(1 for a, _ in items if a)
    neg = sum(1 for a, _ in items if not a)
    ok = [r for r in rows if r["false"] <= args.max_false * neg]
    choice = max(ok or rows, key=lambda r: (r["read"], -r["false"], -r["size"], r["overlap"]))
    result = {
        "checkpoint": args.checkpoint,
        "numbers": n,
        "number_free": neg,
        "choice": choice,
        "rows": rows,
    }
    print(f"validation: {n} photos with one number, {neg} without; choice: {choice}")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
