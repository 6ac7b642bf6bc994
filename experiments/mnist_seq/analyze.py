"""Where a checkpoint's errors are: sequence accuracy by number length, digit accuracy by position.

    python experiments/mnist_seq/analyze.py outputs/runs/<time>/checkpoints/best.ckpt [--gap 1 4]

Rebuilds the default test set (10,000 numbers from MNIST test digits, seed 0) with the data
options given, and prints a markdown table.
"""

from __future__ import annotations

import argparse

import torch

from digitrec import decode
from digitrec.data.mnist import data_dir_from_env
from digitrec.datamodules import SequenceDataModule
from digitrec.module import DigitReader


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint")
    parser.add_argument("--gap", type=int, nargs=2, default=(1, 4))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    reader = DigitReader.load_from_checkpoint(
        args.checkpoint, map_location="cpu", weights_only=True
    )
    reader.eval()
    hp = reader.hparams
    dm = SequenceDataModule(str(data_dir_from_env()), max_len=hp.max_len, height=hp.height,
                            width=hp.width, gap=args.gap, seed=args.seed)  # fmt: skip
    dm.setup()
    s = dm.test_set
    outs = [
        reader(torch.from_numpy(s.images[i : i + 500]).unsqueeze(1)) for i in range(0, len(s), 500)
    ]
    length_logits = torch.cat([o[0] for o in outs])
    digit_logits = torch.cat([o[1] for o in outs])
    decoded = decode.joint_decode(length_logits, digit_logits)
    length, digits = torch.from_numpy(s.length), torch.from_numpy(s.digits)
    correct = decode.sequence_correct(decoded, length, digits)
    argmax = digit_logits.argmax(-1)
    M = hp.max_len
    print(f"test sequence accuracy {correct.float().mean():.2%} on {len(s):,} numbers\n")
    print(
        "| length | numbers | sequence acc. | "
        + " | ".join(f"digit {i + 1}" for i in range(M))
        + " |"
    )
    print("|---" * (M + 3) + "|")
    for n in range(1, M + 1):
        m = length == n
        cells = [
            f"{(argmax[m, i] == digits[m, i]).float().mean():.2%}" if i < n else ""
            for i in range(M)
        ]
        print(
            f"| {n} | {int(m.sum())} | {correct[m].float().mean():.2%} | "
            + " | ".join(cells)
            + " |"
        )


if __name__ == "__main__":
    with torch.no_grad():
        main()
