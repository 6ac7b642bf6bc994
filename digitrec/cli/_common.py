"""What the reading commands share: the reader's checkpoint argument and --localizer."""

from __future__ import annotations

import argparse
import math


def cli_parser(
    prog: str, doc: str | None, localizer_required: bool = False, reader_optional: bool = False
):
    """The start every reading command shares: the reader's checkpoint and --localizer."""
    p = argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "checkpoint",
        nargs="?" if reader_optional else None,
        help="the model: a detector's or a reader's checkpoint (a run's best.ckpt) or an MLflow "
        "model (models:/NAME@alias, runs:/RUN_ID/model; the tracking store is "
        "$MLFLOW_TRACKING_URI, else ./mlflow.db)"
        + ("; none: the pretrained detector (digitrec-pretrained list)" if reader_optional else ""),
    )
    p.add_argument(
        "--localizer",
        default=None,
        required=localizer_required,
        help="the localizer's checkpoint (experiment=localizer)",
    )
    return p


def add_fallback_argument(p) -> None:
    p.add_argument(
        "--fallback",
        type=share,
        default=0.0,
        help="below this confidence, search again from four tiles of the photo (default 0: off)",
    )


# ------------------------------------------------------------------ flag values (argparse types)
# Each refuses a bad value with argparse's one-line usage error naming the flag, before anything
# is created or loaded.
def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= 1") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= 1")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number > 0") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a finite number > 0")
    return value


def share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number in [0, 1]") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number in [0, 1]")
    return value


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a port, 0-65535") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a port, 0-65535 (0: any free one)")
    return value


def size32(text: str) -> int:
    value = positive_int(text)
    if value % 32:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a multiple of 32")
    return value


def readable_file(text: str) -> str:
    from pathlib import Path

    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return text
