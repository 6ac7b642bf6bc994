"""`digitrec-evaluate`: score a reader checkpoint on the evaluation suites and on your own images.

digitrec-evaluate READER.ckpt --suite touching --suite fixed_pitch   # suites (conf/eval/)
digitrec-evaluate READER.ckpt --suite all --data-dir ~/data            # every suite
digitrec-evaluate READER.ckpt --folder my_numbers/                     # labelled images

Suites are drawn from the glyph source's test split (--glyphs, from --data-dir) on the reader's
canvas; each prints one JSON line {"suite", "n", "sequence_accuracy", "digit_accuracy",
"length_accuracy", "coverage_at_98", "sequence_accuracy_len<k>" ...} and a table on stderr.

--folder DIR reads DIR/labels.csv (header `file,number`, other columns ignored; `number` is the
digit string, leading zeros kept; files relative to DIR) and prints one JSON line per file:
{"file", "number", "predicted", "confidence", "correct"}, or {"file", "error"} for a missing or
unreadable image or a bad label (the others go on), then a totals line {"total": true, "files",
"read", "errors", "n", "sequence_accuracy", "digit_accuracy", "length_accuracy",
"coverage_at_98"} over the files read.

Exit codes: 0 all read; 1 some files of --folder could not be read; 2 nothing evaluated (bad
checkpoint, unknown suite, missing or malformed labels.csv, glyph data unavailable).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from digitrec.cli._common import Parser, positive_int
from digitrec.evaluation.folders import (
    PROG,
    UsageError,
    load_glyphs,
    load_reader,
    load_suites,
    print_error,
    read_labels,
    run_folder,
    run_suites,
    suite_names,
)
from digitrec.io import one_line


def parser() -> argparse.ArgumentParser:
    from digitrec.data import suites
    from digitrec.data.mnist import data_dir_from_env

    p = Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a DigitReader checkpoint (a run's best.ckpt)")
    p.add_argument(
        "--suite",
        action="append",
        default=[],
        metavar="NAME",
        help="an evaluation suite (conf/eval/<NAME>.yaml; repeatable; all: every "
        f"one): {', '.join(suites.available())}",
    )
    p.add_argument(
        "--folder",
        default=None,
        metavar="DIR",
        help="images listed in DIR/labels.csv (header file,number)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=data_dir_from_env(),
        metavar="DIR",
        help="where the suites' glyphs are (or are downloaded to); default "
        "$DIGITREC_DATA_DIR or ./.data",
    )
    p.add_argument(
        "--glyphs",
        choices=("mnist", "notmnist"),
        default="mnist",
        help="the suites' glyph source (its test split); default mnist",
    )
    p.add_argument(
        "--no-verify",
        action="store_true",
        help="accept glyph files whose checksums are not the official ones",
    )
    p.add_argument("--batch-size", type=positive_int, default=500, help="images per forward pass")
    p.add_argument(
        "--threads", type=positive_int, default=None, help="torch threads (default: all cores)"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if not args.suite and args.folder is None:
        p.error("give --suite NAME (or --suite all) and/or --folder DIR")
    if args.batch_size < 1:
        p.error(f"--batch-size {args.batch_size}: expected at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        names = suite_names(args.suite)
        folder = Path(args.folder) if args.folder is not None else None
        if folder is not None:
            read_labels(folder)  # a missing or malformed labels.csv fails before any work
        model = load_reader(args.checkpoint)
        if names:
            suites = load_suites(names, model)
            glyphs, labels = load_glyphs(args.glyphs, args.data_dir, not args.no_verify)
            try:
                run_suites(model, suites, glyphs, labels, args.batch_size)
            except ValueError as e:  # a suite the reader's canvas cannot hold
                raise UsageError(one_line(e)) from None
        errors = run_folder(model, folder, args.batch_size) if folder is not None else 0
    except UsageError as e:
        print_error(str(e))
        return 2
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
