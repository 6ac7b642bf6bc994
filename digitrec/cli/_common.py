"""What the reading commands share: the reader's checkpoint argument and --localizer."""

from __future__ import annotations

import argparse
import math
import sys


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error: `prog: error: what (see prog --help)`, exit status 2 (no
    usage block above it)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def exit(self, status: int = 0, message: str | None = None):
        if message:
            sys.stderr.write(message)
        sys.exit(status)


def cli_parser(
    prog: str, doc: str | None, localizer_required: bool = False, reader_optional: bool = False
):
    """The start every reading command shares: the reader's checkpoint and --localizer."""
    p = Parser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
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
def _checked(text: str, cast, ok, expected: str):
    """`text` cast by `cast` and accepted by `ok`, else argparse's error naming `expected`."""
    try:
        value = cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected {expected}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"{text!r}: expected {expected}")
    return value


def positive_int(text: str) -> int:
    return _checked(text, int, lambda v: v >= 1, "a whole number >= 1")


def positive_float(text: str) -> float:
    return _checked(text, float, lambda v: math.isfinite(v) and v > 0, "a finite number > 0")


def share(text: str) -> float:
    return _checked(text, float, lambda v: 0 <= v <= 1, "a number in [0, 1]")


def port(text: str) -> int:
    return _checked(text, int, lambda v: 0 <= v <= 65535, "a port, 0-65535 (0: any free one)")


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
