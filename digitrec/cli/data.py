"""`digitrec-data mnist|notmnist|svhn|fonts|street|scenes`: fetch, verify or render datasets.

digitrec-data svhn                      # download + extract SVHN format 1 (train, test)
digitrec-data svhn --splits train,test,extra
digitrec-data fonts                     # 67 font families for the renderer (npm registry, sha512)
digitrec-data street --out DIR          # render the SYNTHETIC stand-in with SVHN's real layouts
digitrec-data street --out DIR --random 1000 --splits train
digitrec-data street --out DIR --set backgrounds=<svhn root>/train --set words=0.3   # renderer knobs
digitrec-data scenes --root DIR --out SCENES --n 1000   # test photos: numbers pasted into clutter
digitrec-data mnist --timeout 120       # a slow link: wait up to 120 s per connect or read

Every network wait is bounded: --timeout (else $DIGITREC_NET_TIMEOUT, else 20) seconds per connect
or read, and a deadline for each whole transfer; a stopped download resumes when run again.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from digitrec.cli._common import Parser
from digitrec.data import mnist, notmnist, svhn
from digitrec.data.download import NET_TIMEOUT_ENV, DownloadError, net_timeout, writable


def parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="digitrec-data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "dataset", choices=["mnist", "notmnist", "svhn", "fonts", "street", "scenes"]
    )
    parser.add_argument("--data-dir", default=None, help="default: $DIGITREC_DATA_DIR, else .data")
    parser.add_argument("--splits", default="train,test", help="svhn/street: comma-separated")
    parser.add_argument(
        "--out",
        default=None,
        help="street/scenes: output folder (default <data-dir>/street, <data-dir>/scenes)",
    )
    parser.add_argument(
        "--labels",
        default=None,
        help="street: folder with <split>.json.gz layouts (default <data-dir>/svhn/labels)",
    )
    parser.add_argument(
        "--random",
        type=int,
        default=0,
        help="street: N random layouts per split instead of a label file",
    )
    parser.add_argument("--limit", type=int, default=0, help="street: first N layouts only")
    parser.add_argument("--workers", type=int, default=2, help="street: rendering processes")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="street: a renderer knob (digitrec/data/street/ Style), e.g. "
        "backgrounds=<svhn root>/train, words=0.3, palette=random; "
        "repeatable",
    )
    parser.add_argument(
        "--v1", action="store_true", help="street: start from the first renderer's look (Style.v1)"
    )
    parser.add_argument(
        "--root",
        default=None,
        help="scenes: the SVHN format-1 root to take images from (default <data-dir>/svhn)",
    )
    parser.add_argument("--n", type=int, default=1000, help="scenes: how many")
    parser.add_argument("--split", default="test", help="scenes: the split to take images from")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"network wait per connect or read (default ${NET_TIMEOUT_ENV}, else 20)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    try:
        timeout = net_timeout(args.timeout)  # a bad --timeout or $DIGITREC_NET_TIMEOUT: one line
    except ValueError as e:
        p.error(str(e))
    if args.timeout is not None:
        os.environ[NET_TIMEOUT_ENV] = f"{timeout:g}"  # for every download below, svhn's too
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    data_dir = Path(args.data_dir) if args.data_dir else mnist.data_dir_from_env()
    splits = [s for s in args.splits.split(",") if s]
    try:
        if args.dataset == "mnist":
            path = mnist.ensure_mnist(data_dir)
            print(f"MNIST ready and verified in {path}")
        elif args.dataset == "notmnist":
            arrays = notmnist.ensure_notmnist(data_dir)
            print(f"notMNIST ready in {data_dir / 'notmnist'}: {len(arrays['images']):,} letters")
        elif args.dataset == "svhn":
            for split in splits:
                folder = svhn.ensure_split(data_dir / "svhn", split)
                print(f"SVHN {split} ready in {folder}")
        elif args.dataset == "fonts":
            from digitrec.data.fonts import FAMILIES, ensure_fonts, font_dir

            files = ensure_fonts(data_dir)
            print(
                f"{len(FAMILIES)} font families ready in {font_dir(data_dir)}: "
                f"{len(files)} font files"
            )
        elif args.dataset == "scenes":
            from digitrec.data import scenes

            root = Path(args.root) if args.root else data_dir / "svhn"
            out = Path(args.out) if args.out else data_dir / "scenes"
            scenes.write_scenes(root, args.split, out, args.n, seed=args.seed)
            print(
                f"wrote {args.n:,} scenes (SYNTHETIC backgrounds) from {root / args.split} "
                f"into {out}"
            )
        else:
            _street(args, data_dir, splits)
    except (DownloadError, ValueError, OSError, RuntimeError) as e:
        print(f"digitrec-data: {e}", file=sys.stderr)
        return 1
    return 0


def _street(args, data_dir: Path, splits: list[str]) -> None:
    from digitrec.data import street
    from digitrec.data.fonts import font_files

    style = street.Style.parse(args.set, street.Style.v1() if args.v1 else None)
    fonts = street.find_fonts(font_files(data_dir))
    out = Path(args.out) if args.out else data_dir / "street"
    if not writable(out):
        raise ValueError(f"{out}: read-only; pass --out DIR for the rendered stand-in")
    for i, split in enumerate(splits):
        if args.random:
            layouts = street.random_layouts(args.random, seed=args.seed * 100 + i)
        else:
            labels = Path(args.labels) if args.labels else data_dir / "svhn" / "labels"
            layouts = svhn.read_json_labels(labels / f"{split}.json.gz")
        if args.limit:
            layouts = layouts[: args.limit]
        folder = street.render_split(
            layouts,
            out,
            split,
            seed=args.seed * 100 + i,
            workers=args.workers,
            fonts=fonts,
            style=style,
        )
        print(f"rendered {len(layouts):,} SYNTHETIC street numbers ({split}) into {folder}")


if __name__ == "__main__":
    sys.exit(main())
