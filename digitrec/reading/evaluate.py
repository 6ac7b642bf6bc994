"""`digitrec-evaluate-photos`: what localization changes, measured on a scenes folder.

digitrec-data scenes --root <SVHN format-1 root> --out scenes/ --n 1000
digitrec-evaluate-photos READER.ckpt --localizer LOCALIZER.ckpt --scenes scenes/

Reads every scene four ways with the same reader and compares sequence accuracy:
ground-truth crops (the labelled union box, the paper's crop), two-stage (the full pipeline:
localizer, second look, most confident candidate), first look only (the localizer's box on the
whole photo, no second look) and whole photo (no localizer). Also the IoU of the two-stage and
first-look boxes with the true union box, the two-stage reader's errors where the
ground-truth crop is right (box elsewhere — and how many of those numbers are small — or found
but misread) and the two-stage time per photo (median, this machine's threads). Prints a
markdown table; --out writes the figures as JSON.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from digitrec.data.download import atomic_write_bytes
from digitrec.data.scenes import read_labels
from digitrec.models.localizer import box_iou
from digitrec.reading.images import load_image
from digitrec.reading.pipeline import PhotoReader, add_fallback_argument, cli_parser

WAYS = ("ground-truth crop", "two-stage", "first look only", "whole photo")
SMALL = 0.03  # a number narrower than this fraction of the photo's width is "small"
MISSES = ("wrong, ground-truth crop right", "box elsewhere (IoU < 0.1)",
          f"box elsewhere, number < {SMALL:.0%} of the photo's width", "box found, misread")  # fmt: skip


def _iou(a, b) -> float:
    return float(box_iou(torch.tensor([a], dtype=torch.float64),
                         torch.tensor([b], dtype=torch.float64))[0])  # fmt: skip


def evaluate(reader: PhotoReader, folder: Path, limit: int | None = None,
             progress: bool = True) -> dict:  # fmt: skip
    labels = read_labels(folder)[:limit]
    first_look = PhotoReader(reader.reader, reader.localizer, looks=1, fallback=0.0)
    correct = dict.fromkeys(WAYS, 0)
    ious = {"two-stage": [], "first look only": []}
    seconds = []
    misses = dict.fromkeys(MISSES, 0)
    for item in tqdm(labels, desc="reading scenes", unit="img", disable=not progress):
        image = load_image(folder / item["name"])
        truth, true_box = item["number"], item["box"]
        start = time.perf_counter()
        two = reader(image)
        seconds.append(time.perf_counter() - start)
        first = first_look(image)
        h, w = image.shape[:2]
        gt = reader.read_crops(reader.crops(image, [np.array(true_box)]))[0][0]
        whole = reader.read_crops(reader.crops(image, [np.array([0, 0, w, h], float)]))[0][0]
        for way, number in zip(WAYS, (gt, two.number, first.number, whole), strict=True):
            correct[way] += number == truth
        ious["two-stage"].append(_iou(two.box, true_box))
        ious["first look only"].append(_iou(first.box, true_box))
        if gt == truth and two.number != truth:  # what localization lost
            wrong, elsewhere, small, misread = MISSES
            misses[wrong] += 1
            if ious["two-stage"][-1] < 0.1:
                misses[elsewhere] += 1
                misses[small] += (true_box[2] - true_box[0]) < SMALL * w
            else:
                misses[misread] += 1
    n = len(labels)
    return {
        "scenes": str(folder), "images": n,
        "sequence_accuracy": {way: correct[way] / n for way in WAYS},
        "mean_iou": {k: float(np.mean(v)) for k, v in ious.items()},
        "iou50": {k: float(np.mean(np.array(v) >= 0.5)) for k, v in ious.items()},
        "two_stage_errors": misses,
        "two_stage_ms_median": 1e3 * statistics.median(seconds),
        "threads": torch.get_num_threads(),
        "settings": {"looks": reader.looks, "zoom": reader.zoom, "scales": list(reader.scales),
                     "fallback": reader.fallback},
    }  # fmt: skip


def markdown(r: dict) -> str:
    gt = r["sequence_accuracy"]["ground-truth crop"]
    rows = ["| reading | sequence accuracy | vs ground-truth crops | mean IoU | IoU ≥ 0.5 |",
            "|---|---|---|---|---|"]  # fmt: skip
    for way in WAYS:
        acc = r["sequence_accuracy"][way]
        iou = r["mean_iou"].get(way)
        rows.append(f"| {way} | {acc:.2%} | {100 * (acc - gt):+.2f} points | "
                    + (f"{iou:.3f} | {r['iou50'][way]:.2%} |" if iou is not None else "– | – |"))  # fmt: skip
    e = r["two_stage_errors"]
    rows.append(f"\ntwo-stage {e[MISSES[0]]} wrong where the ground-truth crop is right: "
                f"{e[MISSES[1]]} with the box elsewhere (IoU < 0.1; {e[MISSES[2]]} of them numbers"
                f" under {SMALL:.0%} of the photo's width), {e[MISSES[3]]} found but misread")  # fmt: skip
    rows.append(f"\n{r['images']} scenes; two-stage median {r['two_stage_ms_median']:.1f} ms a "
                f"photo (decoded, {r['threads']} threads)")  # fmt: skip
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = cli_parser("digitrec-evaluate-photos", __doc__, localizer_required=True)
    p.add_argument("--scenes", required=True, help="a folder written by digitrec-data scenes")
    p.add_argument("--limit", type=int, default=None, help="the first N scenes only")
    p.add_argument("--out", default=None, help="write the figures as JSON here")
    add_fallback_argument(p)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        reader = PhotoReader.from_checkpoints(
            args.checkpoint, args.localizer, fallback=args.fallback
        )
        result = evaluate(reader, Path(args.scenes), args.limit)
    except (FileNotFoundError, ValueError) as e:
        print(f"digitrec-evaluate-photos: {e}", file=sys.stderr)
        return 2
    print(markdown(result))
    if args.out:
        atomic_write_bytes(Path(args.out), json.dumps(result, indent=2).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
