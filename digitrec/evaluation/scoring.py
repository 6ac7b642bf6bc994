"""Scoring a sequence reader on fixed sets: the evaluation suites (conf/eval/) and users' folders.

`score` reads a set in batches and returns the run's metric names (sequence, per-digit and length
accuracy, coverage at 98%) plus sequence accuracy per number length; `evaluate_suites` does it for
every selected suite. `digitrec-train` calls it after the test set; `digitrec-evaluate`
(digitrec.evaluation.folders) on any checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from digitrec.data.sequences import Sequences, SequenceSpec
from digitrec.data.suites import SUITE_PREFIX, Suite
from digitrec.tasks import decode


@torch.inference_mode()
def predict(model, images: np.ndarray, batch_size: int = 500):
    """(Decoded, digit logits) for uint8 images (N, H, W) or (N, H, W, C), in batches."""
    was_training = model.training
    model.eval()
    decoded, logits = [], []
    try:
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size]))
            x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
            length_logits, digit_logits = model(x)
            decoded.append(decode.joint_decode(length_logits, digit_logits))
            logits.append(digit_logits.float())
    finally:
        model.train(was_training)
    joined = decode.Decoded(
        *(torch.cat([getattr(d, f) for d in decoded]) for f in ("length", "digits", "confidence"))
    )
    return joined, torch.cat(logits)


def score(model, s: Sequences, batch_size: int = 500) -> dict[str, float]:
    """The run's metrics on a fixed set, plus `sequence_accuracy_len<k>` for every length k in it
    and `n`, the set's size."""
    decoded, logits = predict(model, s.images, batch_size)
    length, digits = torch.from_numpy(s.length), torch.from_numpy(s.digits)
    values = decode.metrics(decoded, logits, length, digits)
    correct = decode.sequence_correct(decoded, length, digits)
    for k in np.unique(s.length):
        values[f"sequence_accuracy_len{k}"] = correct[length == int(k)].float().mean().item()
    values["n"] = float(len(s))
    return values


def suite_base(spec: SequenceSpec) -> SequenceSpec:
    """The canvas and maximum length a suite is drawn on: the run's, with the classic layout."""
    return SequenceSpec(max_len=spec.max_len, height=spec.height, width=spec.width, gap=(1, 4))


def evaluate_suites(
    model, suites: Iterable[Suite], glyphs: np.ndarray, labels: np.ndarray, batch_size: int = 500
) -> dict[str, float]:
    """`suite/<name>/<metric>` for every suite, each built from `glyphs` (the test split)."""
    out = {}
    for suite in suites:
        values = score(model, suite.build(glyphs, labels), batch_size)
        out.update({f"{SUITE_PREFIX}/{suite.name}/{k}": v for k, v in values.items()})
    return out


def binomial_se(p: float, n: int) -> float:
    """The standard error of a proportion p measured on n items."""
    return float(np.sqrt(p * (1 - p) / n)) if n else float("nan")
