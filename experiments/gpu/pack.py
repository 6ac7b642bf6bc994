"""Pack the GPU check's data: a rendered stand-in's caches, compressed, small enough to carry.

    python experiments/gpu/pack.py --out .gpu/street                    # render, cache, pack
    python experiments/gpu/pack.py --out .gpu/street --root .data/street-cpu   # an existing one

The GPU machine has no package registry and no Pillow to render with, and a run carries at most
64 MiB (wheels included), so the stand-in is rendered here (`digitrec-data street`: SVHN's real
layouts, drawn glyphs: SYNTHETIC), converted to the paper's 64x64 union-box crops
(digitrec.data.svhn.build_cache) and written as a format-1 root holding only its gzip-compressed
caches and RENDERED.md. SVHNDataModule reads such a root as it reads any other.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from digitrec.data import svhn  # noqa: E402
from digitrec.data.svhn import RENDERED_MARKER  # noqa: E402


def compress(src: Path, dst: Path) -> None:
    """Copy an HDF5 cache with every dataset gzip-compressed (h5py reads it back as is)."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    with h5py.File(src, "r") as f, h5py.File(tmp, "w") as g:
        for key, data in f.items():
            kwargs = {"compression": "gzip", "compression_opts": 6, "shuffle": True}
            if data.ndim == 4:
                kwargs["chunks"] = (min(len(data), 256), *data.shape[1:])
            g.create_dataset(key, data=data[()], **kwargs)
        for key, value in f.attrs.items():  # "complete" last, as build_cache writes it
            if key != "complete":
                g.attrs[key] = value
        g.attrs["complete"] = f.attrs["complete"]
    os.replace(tmp, dst)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--out", type=Path, default=REPO / ".gpu" / "street")
    p.add_argument("--root", type=Path, help="an already rendered stand-in (default: render one)")
    p.add_argument("--train", type=int, default=12000, help="training layouts to render")
    p.add_argument("--test", type=int, default=2000, help="test layouts to render")
    p.add_argument("--data-dir", type=Path,
                   default=Path(os.environ.get("DIGITREC_DATA_DIR", REPO / ".data")))  # fmt: skip
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root
        if root is None:
            root = Path(tmp) / "street"
            labels = args.data_dir / "svhn" / "labels"
            for split, n in (("train", args.train), ("test", args.test)):
                cmd = [sys.executable, "-m", "digitrec.data.cli", "street", "--out", str(root),
                       "--data-dir", str(args.data_dir), "--splits", split]  # fmt: skip
                cmd += (["--labels", str(labels), "--limit", str(n)]
                        if (labels / f"{split}.json.gz").is_file() else ["--random", str(n)])  # fmt: skip
                subprocess.run(cmd, check=True)
        pre = svhn.Preprocessing()
        cache = args.out / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        for split in ("train", "test"):
            src = svhn.build_cache(root, split, pre, download=False)
            compress(src, cache / src.name)
        shutil.copy(root / RENDERED_MARKER, args.out / RENDERED_MARKER)
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"packed {args.out}: {size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
