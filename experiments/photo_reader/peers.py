"""digitrec beside the OCR a user would otherwise pick, on the same real images: `make peers`.

    python peers.py read --engine digitrec --reader R.ckpt --localizer L.ckpt --out digitrec.json
    .venv-peers/bin/python peers.py read --engine rapidocr --out rapidocr.json
    .venv-peers/bin/python peers.py read --engine tesseract --out tesseract.json
    python peers.py table digitrec.json rapidocr.json tesseract.json

Images: `$DIGITREC_DATA_DIR/real_photos` (labels.csv) and real SVHN test
(`svhn/real/test` + `svhn/fixtures/test`, labels from the official JSON/digitStruct). The same
answer rule for every engine: **the digits of its most confident text line** (digitrec: its
reading, the most confident candidate; RapidOCR: the detected line with the highest recognition
score among those with a digit, non-digits dropped; Tesseract 5 `--psm 11` (sparse text): the
line whose words have the highest mean confidence among those with a digit, non-digits dropped).
Exact match of the whole number counts. Time: the median per image from the decoded RGB array
to the answer (decoding excluded for all), one image at a time, on this machine's cores
(digitrec and RapidOCR use all cores through torch / onnxruntime; Tesseract one).

Peers are never digitrec dependencies: RapidOCR lives in `.venv-peers` (its wheel pins the GUI
build of OpenCV, which would clash with the project's headless one), Tesseract is the Debian
package `tesseract-ocr`; `make peers` sets both up.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

DIGITS = re.compile(r"[0-9]")


def data_dir() -> Path:
    return Path(
        os.environ.get("DIGITREC_DATA_DIR", Path(__file__).resolve().parents[3] / "shared" / "data")
    )


def items(root: Path) -> dict[str, list[tuple[str, Path, str]]]:
    """{set name: [(name, path, number)]}: real_photos, svhn_real_test."""
    photos = root / "real_photos"
    with open(photos / "labels.csv", newline="") as f:
        real = [(r["file"], photos / r["file"], r["number"]) for r in csv.DictReader(f)]
    svhn = []
    for folder in (root / "svhn" / "fixtures" / "test", root / "svhn" / "real" / "test"):
        svhn += [
            (f"{folder.parent.name}/{name}", folder / name, number)
            for name, number in _svhn_labels(root, folder)
        ]
    return {"real_photos": real, "svhn_real_test": svhn}


def _svhn_labels(root: Path, folder: Path) -> list[tuple[str, str]]:
    """(file, number) of a split folder; numbers from the official labels (JSON form). Read
    here, not with digitrec.data.svhn: this runs in .venv-peers too, where digitrec is not
    installed."""
    import gzip

    with gzip.open(root / "svhn" / "labels" / "test.json.gz", "rt") as f:
        labels = {
            e["name"]: "".join(str(int(b["label"]) % 10) for b in e["boxes"]) for e in json.load(f)
        }
    return sorted(
        ((p.name, labels[p.name]) for p in folder.glob("*.png")),
        key=lambda t: int(t[0].split(".")[0]),
    )


def load_rgb(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


# ------------------------------------------------------------------------------- answer rules
def rapidocr_answer(result) -> str:
    """RapidOCR's [(box, text, score), ...] → the digits of the highest-scoring line that has one."""
    lines = [(score, "".join(DIGITS.findall(text))) for _, text, score in result or []]
    lines = [(s, d) for s, d in lines if d]
    return max(lines)[1] if lines else ""


def tesseract_answer(data: dict) -> str:
    """pytesseract.image_to_data's dict → the digits of the line (block, paragraph, line) whose
    words have the highest mean confidence, among lines with a digit."""
    lines: dict = {}
    for i, text in enumerate(data["text"]):
        conf = float(data["conf"][i])
        if text.strip() and conf >= 0:
            key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
            lines.setdefault(key, []).append((conf, text))
    scored = [
        (
            float(np.mean([c for c, _ in words])),
            "".join(DIGITS.findall(" ".join(t for _, t in words))),
        )
        for words in lines.values()
    ]
    scored = [(c, d) for c, d in scored if d]
    return max(scored)[1] if scored else ""


# ------------------------------------------------------------------------------- engines
def digitrec_engine(args):
    import torch

    from digitrec.inference.pipeline import PhotoReader

    if args.threads:
        torch.set_num_threads(args.threads)
    reader = PhotoReader.from_checkpoints(args.reader, args.localizer)

    def read(image: np.ndarray) -> str:
        return reader(image).number

    def run_name(path: str) -> str:  # <run dir>/checkpoints/best.ckpt → the run dir's name
        p = Path(path).resolve()
        return p.parents[1].name if p.parent.name == "checkpoints" else p.name

    return read, f"digitrec two-stage ({run_name(args.reader)} + {run_name(args.localizer)})"


def rapidocr_engine(args):
    from rapidocr_onnxruntime import RapidOCR

    ocr = RapidOCR()

    def read(image: np.ndarray) -> str:
        result, _ = ocr(image[..., ::-1].copy())  # RapidOCR takes OpenCV's BGR order
        return rapidocr_answer(result)

    import importlib.metadata as md

    return read, f"RapidOCR {md.version('rapidocr-onnxruntime')} (PP-OCRv4, onnxruntime)"


def tesseract_engine(args):
    import pytesseract

    def read(image: np.ndarray) -> str:
        return tesseract_answer(
            pytesseract.image_to_data(image, config="--psm 11", output_type=pytesseract.Output.DICT)
        )

    return read, f"Tesseract {pytesseract.get_tesseract_version()} (--psm 11)"


ENGINES = {"digitrec": digitrec_engine, "rapidocr": rapidocr_engine, "tesseract": tesseract_engine}


def run(args) -> int:
    read, name = ENGINES[args.engine](args)
    sets = items(Path(args.data_dir) if args.data_dir else data_dir())
    out = {"engine": args.engine, "name": name, "sets": {}}
    read(np.full((64, 64, 3), 128, np.uint8))  # warm-up (lazy initialisation) outside the timing
    for set_name, rows in sets.items():
        rows = rows[: args.limit]
        readings, seconds = [], []
        for file, path, number in rows:
            image = load_rgb(path)
            start = time.perf_counter()
            answer = read(image)
            seconds.append(time.perf_counter() - start)
            readings.append(
                {"file": file, "number": number, "answer": answer, "correct": answer == number}
            )
        correct = sum(r["correct"] for r in readings)
        out["sets"][set_name] = {
            "n": len(rows),
            "correct": correct,
            "ms_median": 1e3 * statistics.median(seconds),
            "readings": readings,
        }
        print(
            f"{args.engine} {set_name}: {correct}/{len(rows)} "
            f"({correct / len(rows):.1%}), median {out['sets'][set_name]['ms_median']:.0f} ms",
            flush=True,
        )
    Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


def table(args) -> int:
    results = [json.loads(Path(p).read_text()) for p in args.results]
    sets = list(results[0]["sets"])
    head = "| engine | " + " | ".join(f"{s}: exact | {s}: median ms" for s in sets) + " |"
    lines = [head, "|---|" + "---|---|" * len(sets)]
    for r in results:
        cells = []
        for s in sets:
            v = r["sets"][s]
            se = (v["correct"] / v["n"] * (1 - v["correct"] / v["n"]) / v["n"]) ** 0.5
            cells += [
                f"{v['correct']}/{v['n']} ({v['correct'] / v['n']:.1%} ± {se:.1%})",
                f"{v['ms_median']:.0f}",
            ]
        lines.append(f"| {r['name']} | " + " | ".join(cells) + " |")
    base = {s: results[0]["sets"][s]["ms_median"] for s in sets}
    for r in results[1:]:
        lines.append(
            "\n"
            + r["name"]
            + ": "
            + ", ".join(
                f"{s} {r['sets'][s]['ms_median'] / base[s]:.1f}x {results[0]['engine']}'s time"
                for s in sets
            )
        )
    print("\n".join(lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("read", help="one engine on every image")
    r.add_argument("--engine", choices=list(ENGINES), required=True)
    r.add_argument("--reader", help="digitrec: the reader's checkpoint")
    r.add_argument("--localizer", help="digitrec: the localizer's checkpoint")
    r.add_argument("--threads", type=int, default=None, help="digitrec: torch threads")
    r.add_argument("--data-dir", default=None, help="default $DIGITREC_DATA_DIR, ../shared/data")
    r.add_argument("--limit", type=int, default=None, help="the first N images of each set")
    r.add_argument("--out", required=True)
    t = sub.add_parser("table", help="the engines side by side (first = the time baseline)")
    t.add_argument("results", nargs="+")
    args = p.parse_args(argv)
    if (
        args.command == "read"
        and args.engine == "digitrec"
        and not (args.reader and args.localizer)
    ):
        p.error("--engine digitrec needs --reader and --localizer")
    return run(args) if args.command == "read" else table(args)


if __name__ == "__main__":
    sys.exit(main())
