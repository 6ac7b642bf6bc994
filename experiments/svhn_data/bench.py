"""SVHN pipeline benchmarks: digitStruct parse time, cache read throughput, rendering throughput.

    python experiments/svhn_data/bench.py --root DIR [--slow]

DIR is a format-1 root (real SVHN or `digitrec-data street --out DIR`, SYNTHETIC) with
train/digitStruct.mat and its cache (built on first use). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    from digitrec.data import street, svhn
    from digitrec.datamodules import Albumentations, CroppedStream

    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--slow", action="store_true", help="also time the object-by-object walk")
    parser.add_argument("--render", type=int, default=1000, help="layouts to render (one process)")
    args = parser.parse_args()
    root = Path(args.root)
    rows = []
    mat = root / "train" / "digitStruct.mat"
    records = svhn.read_digit_struct(mat)
    rows.append((f"digitStruct.mat parse, fast ({len(records):,} entries)",
                 f"{best_of(lambda: svhn.read_digit_struct(mat)):.2f} s"))  # fmt: skip
    if args.slow:
        rows.append(("digitStruct.mat parse, h5py object by object",
                     f"{best_of(lambda: svhn.read_digit_struct_slow(mat), 1):.0f} s"))  # fmt: skip
    cache = svhn.load_cache(svhn.build_cache(root, "train", svhn.Preprocessing()))
    n = len(cache["length"])
    start = time.perf_counter()
    svhn.load_cache(svhn.cache_path(root, "train", svhn.Preprocessing()))
    rows.append((f"cache file → memory ({n:,} images)", f"{time.perf_counter() - start:.2f} s"))
    data = {k: cache[k] for k in ("images", "length", "digits", "box")}
    for label, transform in (("no augmentation", None), ("augmentation=svhn", "svhn")):
        if transform:
            from hydra.utils import instantiate
            from omegaconf import OmegaConf

            conf = Path(__file__).resolve().parents[2] / "conf" / "augmentation" / "svhn.yaml"
            transform = Albumentations(instantiate(OmegaConf.load(conf)))
        stream = CroppedStream(data, 54, 128, 0, transform)
        count = 0

        def epoch(stream=stream, limited=transform is not None):
            nonlocal count
            for i, batch in enumerate(stream):
                count += len(batch["length"])
                if limited and i == 20:  # augmentation is slow: 21 batches are enough
                    break

        elapsed = best_of(epoch, 1 if transform else 3)
        per = count / (1 if transform else 3)
        rows.append((f"training batches of 128, random 54x54 crops, {label}",
                     f"{per / elapsed:,.0f} images/s"))  # fmt: skip
    # the first N train layouts with their image sizes (the .mat does not store sizes)
    sizes = [svhn._read_image(root / "train" / r.name).shape[1::-1] for r in records[: args.render]]
    layouts = [svhn.Record(r.name, r.boxes, tuple(s)) for r, s in zip(records, sizes, strict=False)]
    fonts = street.find_fonts()
    start = time.perf_counter()
    for i, r in enumerate(layouts):
        street.render(r, fonts, i)
    elapsed = time.perf_counter() - start
    rows.append((f"rendering (one process, {len(layouts):,} SVHN train layouts, no PNG)",
                 f"{len(layouts) / elapsed:,.0f} images/s"))  # fmt: skip
    print("| measurement | result |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
