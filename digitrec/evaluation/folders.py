"""Scoring a reader checkpoint on the evaluation suites and on a folder of labelled images
(digitrec-evaluate: digitrec.cli.evaluate). A folder's labels.csv has the header `file,number`;
each image becomes the reader's input as its checkpoint's preprocessing says."""

from __future__ import annotations

import csv
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path, PurePath

import numpy as np
import torch

from digitrec.evaluation.tables import METRICS, round_values, suite_record, suite_table
from digitrec.inference.preprocessing import to_reader_input
from digitrec.io import one_line

PROG = "digitrec-evaluate"
LABELS = "labels.csv"
HEADER = ("file", "number")
DIGITS = re.compile(r"[0-9]+")  # ASCII digits only (str.isdigit also accepts "²", "٣", ...)


class UsageError(ValueError):
    """Nothing can be evaluated: one line for stderr, exit code 2."""


def print_error(message: str) -> None:
    print(f"{PROG}: {one_line(message)}", file=sys.stderr, flush=True)


def _emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


# ------------------------------------------------------------------------------- the reader
def load_reader(path: str):
    """A DigitReader from its checkpoint; UsageError (one line) for anything else."""
    from digitrec.registry import resolve
    from digitrec.tasks import DigitReader, load_task

    try:
        checkpoint = resolve(path)[0]  # a path, models:/... or runs:/...
    except ValueError as e:  # a model URI that does not resolve: its own one line
        raise UsageError(str(e)) from None
    try:
        model = load_task(checkpoint)
    except FileNotFoundError:
        raise UsageError(
            f"{path}: no such checkpoint (expected a DigitReader checkpoint, "
            "e.g. a run's best.ckpt)"
        ) from None
    except Exception as e:  # not a checkpoint, or weights that do not fit its hyperparameters
        raise UsageError(
            f"{path}: not a DigitReader checkpoint ({type(e).__name__}: {one_line(e)[:300]})"
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
    from digitrec.evaluation.scoring import suite_base

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
            raise UsageError(one_line(e)) from None
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
            f"--glyphs {source} (--data-dir {data_dir}): {one_line(e)}{hint}"
        ) from None
    return data["test_images"], data["test_labels"]


def run_suites(model, suites, glyphs, labels, batch_size: int) -> None:
    from digitrec.evaluation.scoring import score

    records = []
    for suite in suites:
        records.append(
            suite_record(suite.name, score(model, suite.build(glyphs, labels), batch_size))
        )
        _emit(records[-1])
    print(suite_table(records), file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------- folders
def read_labels(folder: Path, extra: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """(file, number) rows of folder/labels.csv, as written (leading zeros kept), then the
    `extra` columns' values ("" where a column is absent). The header is checked now (UsageError);
    the rows are streamed, one line at a time, as the result is iterated."""
    path = folder / LABELS
    expected = f"expected a CSV with the header {','.join(HEADER)}"
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            first = next(csv.reader(f), [])
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file ({expected})") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UsageError(f"{path}: cannot read it ({one_line(e)}); {expected}") from None
    header = [c.strip().lower() for c in first]
    if not set(HEADER) <= set(header):
        raise UsageError(
            f"{path}: {expected} (other columns allowed), got {','.join(header) or 'an empty file'}"
        )
    columns = [header.index(c) if c in header else None for c in (*HEADER, *extra)]
    return _rows(path, columns, max(c for c in columns if c is not None) + 1)


def _rows(path: Path, columns: list, width: int) -> Iterator[tuple[str, ...]]:
    line = 1
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = csv.reader(f)
            next(rows, None)  # the header, checked by read_labels
            for row in rows:
                line = rows.line_num
                if any(c.strip() for c in row):  # blank lines are skipped
                    row = row + [""] * (width - len(row))
                    yield tuple(row[c].strip() if c is not None else "" for c in columns)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UsageError(f"{path}: cannot read it after line {line} ({one_line(e)})") from None


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
    from digitrec.data.sequences import labels_to_string
    from digitrec.evaluation.scoring import predict
    from digitrec.inference.images import ImageError, load_image

    rows = read_labels(folder)  # streamed: a row is read, checked, batched and forgotten
    channels, height, width = input_shape(model)
    max_len = model.net.max_len
    errors = files = 0
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
                print_error(r["error"])
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
    waiting = 0  # images in pending (counted, not recounted: linear in the rows)
    for file, number in rows:
        files += 1
        record = {"file": file, "number": number}
        try:
            path = check_row(folder, file, number, max_len)
            record["image"] = to_reader_input(load_image(path), channels, height, width)
        except (ImageError, ValueError) as e:  # missing, corrupt, outside the folder, bad label
            record["error"] = one_line(e)
        except Exception as e:  # e.g. PIL's decompression-bomb guard: this file only
            record["error"] = (
                f"{folder / file}: not a readable image ({type(e).__name__}: {one_line(e)})"
            )
        errors += "error" in record
        pending.append(record)
        waiting += "image" in record
        if waiting >= batch_size or not waiting:  # a batch to read, or errors only: out now
            flush(pending)
            waiting = 0
    flush(pending)

    totals = _totals(files, errors, results, max_len)
    _emit(totals)
    if errors:
        print_error(f"{errors} of the {files} files in {folder / LABELS} could not be read")
    return errors


def _totals(files: int, errors: int, results: list, max_len: int) -> dict:
    """The totals line: counts, and the metrics over every file read (null when none was)."""
    from digitrec.data.sequences import PAD
    from digitrec.tasks import decode

    read = files - errors
    totals = {"total": True, "files": files, "read": read, "errors": errors, "n": read}
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
        totals.update(round_values(decode.metrics(decoded, logits, length, digits)))
    else:
        totals.update(dict.fromkeys(METRICS))  # nothing read: no figures (null)
    return totals


# ------------------------------------------------------------------------------- command
