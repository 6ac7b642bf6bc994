"""Pack what the GPU check carries to the device: the wheels it needs and SVHN's layouts.

    python experiments/gpu/pack.py        # .whl/ (11 wheels, ~8 MiB) and .gpu/labels (~1 MiB)

The H200 image has torch, pytorch_lightning, numpy, h5py, opencv, Pillow, matplotlib and PyYAML
but no hydra, omegaconf or albumentations and no package registry: of ../shared/device/wheels
only those three and their dependencies are copied (check.py uses hydra's instantiate only, and
no MLflow or Optuna).
The stand-in is rendered on the device from SVHN's real layouts (`svhn/labels/{train,test}.
json.gz` of DIGITREC_DATA_DIR), so no images are carried: a run carries at most 64 MiB, and
rendered crops compress to only about 7.9 KB an image.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# what check.py needs beyond the device's own packages
WHEELS = (
    "hydra_core",
    "omegaconf",
    "antlr4_python3_runtime",
    "albumentations",
    "albucore",
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "typing_inspection",
    "stringzilla",
    "simsimd",
)
CARRY_LIMIT = 64 * 2**20


def copy_wheels(source: Path, dest: Path) -> list[str]:
    """The WHEELS of `source` into `dest` (emptied first); their names."""
    picked = sorted(w for w in source.glob("*.whl") if w.name.split("-")[0].lower() in WHEELS)
    missing = set(WHEELS) - {w.name.split("-")[0].lower() for w in picked}
    if missing:
        raise SystemExit(f"pack.py: {source} lacks the wheels {sorted(missing)}")
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for w in picked:
        shutil.copy(w, dest / w.name)
    return [w.name for w in picked]


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def tree_size() -> int | None:
    """Bytes of the working tree the device tool copies (tracked and untracked, not ignored);
    None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    files = {REPO / f for f in out.stdout.decode().split("\0") if f}
    return sum(f.stat().st_size for f in files if f.is_file())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--wheels",
        type=Path,
        default=REPO.parent / "shared" / "device" / "wheels",
        help="the device wheels (../shared/device/wheels)",
    )
    p.add_argument("--whl-out", type=Path, default=REPO / ".whl")
    p.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("DIGITREC_DATA_DIR", REPO / ".data"))
    )
    p.add_argument("--out", type=Path, default=REPO / ".gpu", help="labels go to OUT/labels")
    args = p.parse_args(argv)
    names = copy_wheels(args.wheels, args.whl_out)
    print(f"{len(names)} wheels into {args.whl_out}: {size(args.whl_out) / 2**20:.1f} MiB")
    labels = args.data_dir / "svhn" / "labels"
    for split in ("train", "test"):
        if not (labels / f"{split}.json.gz").is_file():
            raise SystemExit(
                f"pack.py: {labels / f'{split}.json.gz'} not found: SVHN's layouts "
                "(set DIGITREC_DATA_DIR or --data-dir)"
            )
        (args.out / "labels").mkdir(parents=True, exist_ok=True)
        shutil.copy(labels / f"{split}.json.gz", args.out / "labels" / f"{split}.json.gz")
    print(f"SVHN's layouts into {args.out / 'labels'}")
    tree = tree_size()
    total = (tree or 0) + size(args.out) + size(args.whl_out)
    print(
        f"the device run carries about {total / 2**20:.1f} MiB (limit 64)"
        + ("" if tree is not None else "; the working tree not counted (no git)")
    )
    if total > CARRY_LIMIT:
        print("pack.py: over the device tool's 64 MiB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
