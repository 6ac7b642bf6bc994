"""What the reading commands share: the reader's checkpoint argument and --localizer."""

from __future__ import annotations

import argparse


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
        type=float,
        default=0.0,
        help="below this confidence, search again from four tiles of the photo (default 0: off)",
    )
