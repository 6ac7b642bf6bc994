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
import csv
import json
import os
import re
import sys
from pathlib import Path, PurePath

import numpy as np
import torch

from digitrec.reading.pipeline import to_reader_input

PROG = "digitrec-evaluate"
LABELS = "labels.csv"
HEADER = ("file", "number")
METRICS = ("sequence_accuracy", "digit_accuracy", "length_accuracy", "coverage_at_98")
DIGITS = re.compile(r"[0-9]+")  # ASCII digits only (str.isdigit also accepts "²", "٣", ...)


class UsageError(ValueError):
    """Nothing can be evaluated: one line for stderr, exit code 2."""


def _one_line(e: BaseException | str) -> str:
    return " ".join(str(e).split())


def _print_err(message: str) -> None:
    print(f"{PROG}: {_one_line(message)}", file=sys.stderr, flush=True)


def _emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


# ------------------------------------------------------------------------------- the reader
def load_reader(path: str):
    """A DigitReader from its checkpoint; UsageError (one line) for anything else."""
    from digitrec.module import DigitReader
    from digitrec.reading.mlflow_model import resolve
    from digitrec.reading.pipeline import load_module

    try:
        checkpoint = resolve(path)[0]  # a path, models:/... or runs:/...
    except ValueError as e:  # a model URI that does not resolve: its own one line
        raise UsageError(str(e)) from None
    try:
        model = load_module(checkpoint)
    except FileNotFoundError:
        raise UsageError(
            f"{path}: no such checkpoint (expected a DigitReader checkpoint, "
            "e.g. a run's best.ckpt)"
        ) from None
    except Exception as e:  # not a checkpoint, or weights that do not fit its hyperparameters
        raise UsageError(
            f"{path}: not a DigitReader checkpoint ({type(e).__name__}: {_one_line(e)[:300]})"
        ) from None
    if not isinstance(model, DigitReader):
        raise UsageError(
            f"{path}: a {type(model).__name__} (localizer) checkpoint; expected a "
            "DigitReader checkpoint (a number reader)"
        )
    return model


def input_shape(model) -> tuple[int, int, int]:
    """(channels, height, width) the reader reads."""
    return tuple(int(v) for v in model.net.input_shape)


# ------------------------------------------------------------------------------- suites
def suite_names(requested: list[str]) -> list[str]:
    """`--suite` values → suite names (`all`: every one), in the order given, once each."""
    from digitrec.data.suites import available

    available = available()
    names: list[str] = []
    for name in requested:
        if name == "all":
            names += available
        elif name in available:
            names.append(name)
        else:
            raise UsageError(
                f"--suite {name}: no such suite; available: all, " + ", ".join(available)
            )
    return list(dict.fromkeys(names))


def load_suites(names: list[str], model):
    """The suites on the reader's canvas and maximum length (conf/eval/<name>.yaml)."""
    from digitrec.data import suites
    from digitrec.data.sequences import SequenceSpec
    from digitrec.evaluate import suite_base

    channels, height, width = input_shape(model)
    if channels != 1:
        raise UsageError(
            f"--suite: the reader reads {channels}-channel {height}x{width} images "
            "(an SVHN reader); suites are gray synthetic numbers, for readers "
            "trained on data=mnist_seq or notmnist_seq"
        )
    base = suite_base(SequenceSpec(max_len=model.net.max_len, height=height, width=width))
    out = []
    for name in names:
        try:
            out.append(suites.load(name, base))
        except Exception as e:  # a bad value, or a suite longer than the reader reads
            raise UsageError(_one_line(e)) from None
    return out


def load_glyphs(source: str, data_dir: Path, verify: bool) -> tuple[np.ndarray, np.ndarray]:
    """The glyph source's test split (images, labels)."""
    from digitrec.data.mnist import ChecksumError, load_mnist
    from digitrec.data.notmnist import load_notmnist

    loader = {"mnist": load_mnist, "notmnist": load_notmnist}[source]
    try:
        data = loader(data_dir, download=True, verify=verify)
    except Exception as e:  # missing and not downloadable, checksum mismatch, corrupt files
        hint = " (--no-verify accepts your own files)" if isinstance(e, ChecksumError) else ""
        raise UsageError(
            f"--glyphs {source} (--data-dir {data_dir}): {_one_line(e)}{hint}"
        ) from None
    return data["test_images"], data["test_labels"]


def _round(values: dict[str, float]) -> dict:
    return {k: round(float(v), 5) for k, v in values.items()}


def suite_record(name: str, values: dict[str, float]) -> dict:
    """One suite's JSON line: name, size, the run's metrics, then accuracy per length."""
    lengths = sorted(
        (k for k in values if k.startswith("sequence_accuracy_len")),
        key=lambda k: int(k.removeprefix("sequence_accuracy_len")),
    )
    return {
        "suite": name,
        "n": int(values["n"]),
        **_round({k: values[k] for k in (*METRICS, *lengths) if k in values}),
    }


def suite_table(records: list[dict]) -> str:
    """The suites' figures as a fixed-width table (accuracies in %)."""
    lengths = sorted(
        {
            int(k.removeprefix("sequence_accuracy_len"))
            for r in records
            for k in r
            if k.startswith("sequence_accuracy_len")
        }
    )
    columns = [
        ("seq %", "sequence_accuracy"),
        ("digit %", "digit_accuracy"),
        ("length %", "length_accuracy"),
        ("cov98 %", "coverage_at_98"),
        *((f"len{k} %", f"sequence_accuracy_len{k}") for k in lengths),
    ]
    width = max(5, *(len(r["suite"]) for r in records))
    lines = [f"{'suite':<{width}} {'n':>6} " + " ".join(f"{c:>8}" for c, _ in columns)]
    for r in records:
        cells = [f"{100 * r[k]:8.2f}" if k in r else f"{'':>8}" for _, k in columns]
        lines.append(f"{r['suite']:<{width}} {r['n']:>6} " + " ".join(cells))
    return "\n".join(lines)


def run_suites(model, suites, glyphs, labels, batch_size: int) -> None:
    from digitrec.evaluate import score

    records = []
    for suite in suites:
        records.append(
            suite_record(suite.name, score(model, suite.build(glyphs, labels), batch_size))
        )
        _emit(records[-1])
    print(suite_table(records), file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------- folders
def read_labels(folder: Path, extra: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """(file, number) rows of folder/labels.csv, as written (leading zeros kept), then the
    `extra` columns' values ("" where a column is absent)."""
    path = folder / LABELS
    expected = f"expected a CSV with the header {','.join(HEADER)}"
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file ({expected})") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UsageError(f"{path}: cannot read it ({_one_line(e)}); {expected}") from None
    header = [c.strip().lower() for c in rows[0]] if rows else []
    if not set(HEADER) <= set(header):
        raise UsageError(
            f"{path}: {expected} (other columns allowed), got {','.join(header) or 'an empty file'}"
        )
    columns = [header.index(c) if c in header else None for c in (*HEADER, *extra)]
    width = max(c for c in columns if c is not None) + 1
    out = []
    for row in rows[1:]:
        if any(c.strip() for c in row):  # blank lines are skipped
            row = row + [""] * (width - len(row))
            out.append(tuple(row[c].strip() if c is not None else "" for c in columns))
    return out


def check_row(folder: Path, file: str, number: str, max_len: int) -> Path:
    """The image's path; ValueError for a path outside the folder or a bad label."""
    if not file:
        raise ValueError("no file name")
    if PurePath(file).is_absolute() or ".." in PurePath(os.path.normpath(file)).parts:
        raise ValueError(f"{file}: outside {folder} (paths are relative to the folder)")
    if not DIGITS.fullmatch(number) or len(number) > max_len:
        raise ValueError(f"{file}: label {number!r} is not a number of 1 to {max_len} digits")
    return folder / file


def run_folder(model, folder: Path, batch_size: int) -> int:
    """One JSON line per labels.csv row, in its order, then the totals; returns the errors."""
    from digitrec import decode
    from digitrec.data.sequences import PAD, labels_to_string
    from digitrec.evaluate import predict
    from digitrec.reading.images import ImageError, load_image

    rows = read_labels(folder)
    channels, height, width = input_shape(model)
    max_len = model.net.max_len
    errors = 0
    results = []  # (decoded, logits, numbers) per batch

    def flush(pending: list[dict]) -> None:
        images = [r["image"] for r in pending if "image" in r]
        if images:
            decoded, logits = predict(model, np.stack(images), batch_size)
            numbers = [r["number"] for r in pending if "image" in r]
            results.append((decoded, logits, numbers))
            readings = iter(
                zip(
                    decoded.digits.numpy(),
                    decoded.length.numpy(),
                    decoded.confidence.numpy(),
                    strict=True,
                )
            )
        for r in pending:
            if "error" in r:
                _emit({"file": r["file"], "error": r["error"]})
                _print_err(r["error"])
                continue
            digits, length, confidence = next(readings)
            predicted = labels_to_string(digits, int(length))
            _emit(
                {
                    "file": r["file"],
                    "number": r["number"],
                    "predicted": predicted,
                    "confidence": round(float(confidence), 4),
                    "correct": predicted == r["number"],
                }
            )
        pending.clear()

    pending: list[dict] = []
    for file, number in rows:
        record = {"file": file, "number": number}
        try:
            path = check_row(folder, file, number, max_len)
            record["image"] = to_reader_input(load_image(path), channels, height, width)
        except (ImageError, ValueError) as e:  # missing, corrupt, outside the folder, bad label
            record["error"] = _one_line(e)
        except Exception as e:  # e.g. PIL's decompression-bomb guard: this file only
            record["error"] = (
                f"{folder / file}: not a readable image ({type(e).__name__}: {_one_line(e)})"
            )
        errors += "error" in record
        pending.append(record)
        if sum("image" in r for r in pending) >= batch_size:
            flush(pending)
    flush(pending)

    read = len(rows) - errors
    totals = {"total": True, "files": len(rows), "read": read, "errors": errors, "n": read}
    if results:
        decoded = decode.Decoded(
            *(
                torch.cat([getattr(d, f) for d, _, _ in results])
                for f in ("length", "digits", "confidence")
            )
        )
        logits = torch.cat([lg for _, lg, _ in results])
        numbers = [n for _, _, ns in results for n in ns]
        length = torch.tensor([len(n) for n in numbers])
        digits = torch.full((len(numbers), max_len), PAD, dtype=torch.int64)
        for k, n in enumerate(numbers):
            digits[k, : len(n)] = torch.tensor([int(c) for c in n])
        totals.update(_round(decode.metrics(decoded, logits, length, digits)))
    else:
        totals.update(dict.fromkeys(METRICS))  # nothing read: no figures (null)
    _emit(totals)
    if errors:
        _print_err(f"{errors} of the {len(rows)} files in {folder / LABELS} could not be read")
    return errors


# ------------------------------------------------------------------------------- command
def parser() -> argparse.ArgumentParser:
    from digitrec.data import suites
    from digitrec.data.mnist import data_dir_from_env

    p = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
    p.add_argument("--batch-size", type=int, default=500, help="images per forward pass")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
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
                raise UsageError(_one_line(e)) from None
        errors = run_folder(model, folder, args.batch_size) if folder is not None else 0
    except UsageError as e:
        _print_err(str(e))
        return 2
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
