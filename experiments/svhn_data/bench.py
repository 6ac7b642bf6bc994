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
    parser.add_argument("--grid", default=None, help="also save the first 24 train images here")
    args = parser.parse_args()
    root = Path(args.root)
    if args.grid:
        save_grid(root, Path(args.grid))
    rows = []
    mat = root / "train" / "digitStruct.mat"
    records = svhn.read_digit_struct(mat)
    rows.append(
        (
            f"digitStruct.mat parse, fast ({len(records):,} entries)",
            f"{best_of(lambda: svhn.read_digit_struct(mat)):.2f} s",
        )
    )
    if args.slow:
        rows.append(
            (
                "digitStruct.mat parse, h5py object by object",
                f"{best_of(lambda: svhn.read_digit_struct_slow(mat), 1):.0f} s",
            )
        )
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
        rows.append(
            (
                f"training batches of 128, random 54x54 crops, {label}",
                f"{per / elapsed:,.0f} images/s",
            )
        )
    # the first N train layouts with their image sizes (the .mat does not store sizes)
    sizes = [svhn._read_image(root / "train" / r.name).shape[1::-1] for r in records[: args.render]]
    layouts = [svhn.Record(r.name, r.boxes, tuple(s)) for r, s in zip(records, sizes, strict=False)]
    fonts = street.find_fonts()
    start = time.perf_counter()
    for i, r in enumerate(layouts):
        street.render(r, fonts, i)
    elapsed = time.perf_counter() - start
    rows.append(
        (
            f"rendering (one process, {len(layouts):,} SVHN train layouts, no PNG)",
            f"{len(layouts) / elapsed:,.0f} images/s",
        )
    )
    print("| measurement | result |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")


def save_grid(root: Path, path: Path, n: int = 24, cols: int = 6) -> None:
    """The first `n` train images of a format-1 root with their boxes and labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from digitrec.data import svhn

    records = svhn.read_digit_struct(root / "train" / "digitStruct.mat")[:n]
    synthetic = (root / svhn.RENDERED_MARKER).is_file()
    fig, axes = plt.subplots(-(-n // cols), cols, figsize=(cols * 2.2, -(-n // cols) * 1.4))
    for ax, r in zip(axes.flat, records, strict=False):
        ax.imshow(svhn._read_image(root / "train" / r.name))
        for _, left, top, w, h in r.boxes:
            ax.add_patch(plt.Rectangle((left, top), w, h, fill=False, color="yellow", lw=0.6))
        ax.set_title(f"{r.name}: {r.number}", fontsize=7)
    for ax in axes.flat:
        ax.axis("off")
    kind = "SYNTHETIC rendered stand-in (digitrec-data street)" if synthetic else "SVHN"
    fig.suptitle(f"{kind}: first {n} train images, digit boxes from digitStruct.mat", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
