"""Where a checkpoint's errors are, on the test set and on every evaluation suite.

    python experiments/mnist_seq/analyze.py outputs/runs/<time>/checkpoints/best.ckpt [--suite NAME ...]

For the default test set (10,000 numbers of MNIST test digits in the classic layout, seed 0) and
each suite of conf/eval/ (all by default): sequence accuracy, the wrong answers split into
length errors (the decoded length is wrong) and digit errors (the length is right, a digit is
not), and digit accuracy by number length and position. Prints markdown.
MNIST from $DIGITREC_DATA_DIR (or .data/).

`--pool val` draws the same sets from the validation digits (the last 5,000 of MNIST train, held
out from training) instead of the test digits: that is what choosing between settings may look
at; the test digits only measure the chosen one.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from digitrec.data import suites
from digitrec.data.mnist import data_dir_from_env
from digitrec.data.sequences import compose, split_pool
from digitrec.datamodules import SequenceDataModule
from digitrec.evaluation.scoring import predict, suite_base
from digitrec.tasks import decode, load_task


def report(title: str, s, reader) -> list[str]:
    decoded, logits = predict(reader, s.images)
    length, digits = torch.from_numpy(s.length), torch.from_numpy(s.digits)
    correct = decode.sequence_correct(decoded, length, digits)
    wrong = ~correct
    length_err = (decoded.length != length) & wrong
    digit_err = wrong & ~length_err
    argmax = logits[..., :10].argmax(-1)
    M = digits.shape[1]
    lines = [
        f"### {title}: {correct.float().mean():.2%} of {len(s):,} numbers",
        "",
        f"{int(wrong.sum())} wrong: {int(length_err.sum())} length errors, "
        f"{int(digit_err.sum())} digit errors (length right)",
        "",
        "| length | numbers | sequence acc. | length acc. | "
        + " | ".join(f"digit {i + 1}" for i in range(M))
        + " |",
        "|---" * (M + 4) + "|",
    ]
    for n in sorted(set(s.length.tolist())):
        m = length == n
        cells = [
            f"{(argmax[m, i] == digits[m, i]).float().mean():.2%}" if i < n else ""
            for i in range(M)
        ]
        lines.append(
            f"| {n} | {int(m.sum())} | {correct[m].float().mean():.2%} | "
            f"{(decoded.length[m] == n).float().mean():.2%} | " + " | ".join(cells) + " |"
        )
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint")
    parser.add_argument("--suite", action="append", help="a suite of conf/eval/ (default: all)")
    parser.add_argument(
        "--pool",
        choices=("test", "val"),
        default="test",
        help="digits: MNIST test (measuring) or the held-out validation digits",
    )
    parser.add_argument("--summary", action="store_true", help="one line per set, no tables")
    args = parser.parse_args()
    reader = load_task(args.checkpoint)
    hp = reader.hparams
    dm = SequenceDataModule(
        str(data_dir_from_env()),
        max_len=hp.max_len,
        height=hp.height,
        width=hp.width,
        gap=(1, 4),
        seed=0,
    )
    dm.setup()
    data = dm.load_glyphs()
    if args.pool == "val":
        (_, _), (images, labels) = split_pool(
            data["train_images"], data["train_labels"], dm.val_glyphs
        )
        classic = compose(images, labels, dm.spec, 10000, np.random.default_rng([0, 2]))
    else:
        images, labels, classic = data["test_images"], data["test_labels"], dm.test_set
    out = report(f"{args.pool} digits, classic layout", classic, reader)
    names = args.suite or suites.available()
    for name in names:
        suite = suites.load(name, suite_base(dm.spec))
        out += report(f"{args.pool} digits, suite {name}", suite.build(images, labels), reader)
    print("\n".join(line for line in out if not args.summary or line.startswith("###")))


if __name__ == "__main__":
    main()
