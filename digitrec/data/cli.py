"""`digitrec-data mnist|notmnist [--data-dir DIR]`: fetch and verify datasets ahead of training."""

from __future__ import annotations

import argparse
import logging
import sys

from digitrec.data import mnist, notmnist
from digitrec.data.download import DownloadError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="digitrec-data", description=__doc__)
    parser.add_argument("dataset", choices=["mnist", "notmnist"])
    parser.add_argument("--data-dir", default=None,
                        help="default: $DIGITREC_DATA_DIR, else .data")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    data_dir = args.data_dir or mnist.data_dir_from_env()
    try:
        if args.dataset == "mnist":
            path = mnist.ensure_mnist(data_dir)
            print(f"MNIST ready and verified in {path}")
        else:
            arrays = notmnist.ensure_notmnist(data_dir)
            print(f"notMNIST ready in {data_dir / 'notmnist'}: {len(arrays['images']):,} letters")
    except (DownloadError, ValueError, OSError) as e:
        print(f"digitrec-data: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
