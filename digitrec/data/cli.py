"""`digitrec-data mnist [--data-dir DIR]`: fetch and verify datasets ahead of training."""

from __future__ import annotations

import argparse
import logging
import sys

from digitrec.data import mnist
from digitrec.data.download import DownloadError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="digitrec-data", description=__doc__)
    parser.add_argument("dataset", choices=["mnist"])
    parser.add_argument("--data-dir", default=None,
                        help="default: $DIGITREC_DATA_DIR, else .data")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    data_dir = args.data_dir or mnist.data_dir_from_env()
    try:
        path = mnist.ensure_mnist(data_dir)
    except (DownloadError, ValueError, OSError) as e:
        print(f"digitrec-data: {e}", file=sys.stderr)
        return 1
    print(f"MNIST ready and verified in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
