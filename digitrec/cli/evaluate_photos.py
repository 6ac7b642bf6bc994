"""`digitrec-evaluate-photos`: read labelled photos end to end and measure what each stage costs.

digitrec-evaluate-photos READER.ckpt --localizer LOC.ckpt --folder real_photos/
digitrec-evaluate-photos READER.ckpt --localizer LOC.ckpt --svhn svhn/real/test --svhn svhn/fixtures/test
digitrec-evaluate-photos READER.ckpt --localizer LOC.ckpt --scenes scenes/     # digitrec-data scenes

Sources (any mix, each repeatable): --folder DIR with DIR/labels.csv (`file,number`, an optional
`crop` column such as full/tight is reported as groups); --svhn DIR, an SVHN format-1 split
folder (PNGs + digitStruct.mat, or PNGs labelled by the JSON form: see digitrec.data.svhn.
split_records) — its boxes give the ground-truth crop; --scenes DIR from `digitrec-data scenes`.

Every image is read these ways with the same reader: ground-truth crop (the labelled union box,
the paper's crop; where boxes are known), two-stage (the full pipeline: localizer, more looks,
most confident candidate), first look only (the localizer's box on the whole photo) and whole
photo (no localizer). Reported: exact-number accuracy per way, per number length and per group,
the IoU of the two-stage and first-look boxes with the true box, what localization loses (wrong
two-stage readings where the ground-truth crop is right: box elsewhere — and how many of those
numbers are small — or found but misread) and the median time of the pipeline per photo (decoded
image in, number out; this machine's threads). A file that cannot be read gets an error line;
the others go on (exit 1). The figures go to MLflow as an evaluation run (experiment
`photo_eval`, tagged with the checkpoints' training runs; --no-track to skip) and, with --out, to
a JSON file with every image's readings.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from digitrec.cli._common import add_fallback_argument, cli_parser, positive_int
from digitrec.evaluation.photos import (
    EXPERIMENT,
    evaluate,
    folder_items,
    markdown,
    scene_items,
    svhn_items,
    track,
)
from digitrec.inference.pipeline import PhotoReader
from digitrec.io import atomic_write_bytes, one_line
from digitrec.registry import resolve_reader


def main(argv: list[str] | None = None) -> int:
    from digitrec.tracking import add_uri_argument

    p = cli_parser("digitrec-evaluate-photos", __doc__)
    p.add_argument(
        "--folder",
        action="append",
        default=[],
        metavar="DIR",
        help="photos listed in DIR/labels.csv (file,number[,crop]); repeatable",
    )
    p.add_argument(
        "--svhn",
        action="append",
        default=[],
        metavar="DIR",
        help="an SVHN format-1 split folder; repeatable",
    )
    p.add_argument(
        "--scenes",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder written by digitrec-data scenes; repeatable",
    )
    p.add_argument("--limit", type=positive_int, default=None, help="the first N images only")
    p.add_argument("--out", default=None, help="write the figures and readings as JSON here")
    add_fallback_argument(p)
    p.add_argument("--threads", type=positive_int, default=None)
    p.add_argument("--experiment", default=EXPERIMENT, help="MLflow experiment (photo_eval)")
    p.add_argument("--no-track", action="store_true", help="do not log an MLflow run")
    add_uri_argument(p)
    args = p.parse_args(argv)
    if not (args.folder or args.svhn or args.scenes):
        p.error("give at least one of --folder DIR, --svhn DIR, --scenes DIR")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        items = [
            *(i for d in args.folder for i in folder_items(Path(d))),
            *(i for d in args.svhn for i in svhn_items(Path(d))),
            *(i for d in args.scenes for i in scene_items(Path(d))),
        ][: args.limit]
        reader_file, localizer = resolve_reader(args.checkpoint, args.localizer)  # or models:/...
        reader = PhotoReader.from_checkpoints(reader_file, localizer, fallback=args.fallback)
    except (FileNotFoundError, ValueError) as e:
        print(f"digitrec-evaluate-photos: {one_line(e)}", file=sys.stderr)
        return 2
    result = evaluate(reader, items)
    print(markdown(result))
    if args.out:
        atomic_write_bytes(Path(args.out), json.dumps(result, indent=1).encode())
    if not args.no_track:
        run = track(result, args, [*args.folder, *args.svhn, *args.scenes])
        print(f"MLflow run {run} (experiment {args.experiment!r})")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
