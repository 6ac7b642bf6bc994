"""digitrec beside the OCR a user would otherwise pick, on the same real images: `make peers`.

    python peers.py read --engine digitrec --out digitrec.json   # the shipped models (digitrec.pretrained)
    python peers.py read --engine digitrec --reader R.ckpt [--localizer L.ckpt] --out other.json
    .venv-peers/bin/python peers.py read --engine rapidocr --out rapidocr.json
    .venv-peers/bin/python peers.py read --engine tesseract --out tesseract.json
    python peers.py table digitrec.json rapidocr.json tesseract.json

Images: `$DIGITREC_DATA_DIR/real_photos` (labels.csv); `curtin_numbers/test`: the 142 one-number
photos of its labels.csv and, apart, its 25 photos without a number (`curtin_test_empty`: an
engine is right there when it answers nothing — the table counts its answers); real SVHN test
(`svhn/real/test` + `svhn/fixtures/test`, labels from the official JSON/digitStruct) whole, and
(`svhn_real_test_crops`) cut to the digits' union box grown by 30% each way (ground-truth
crops). Nothing here is ever trained or tuned on. The same
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


EMPTY = "curtin_test_empty"  # photos without a number: the right answer is none


def items(root: Path) -> dict[str, list[tuple]]:
    """{set name: [(name, path, number[, crop box])]}: real_photos, curtin_test,
    curtin_test_empty, svhn_real_test, svhn_real_test_crops."""
    photos = root / "real_photos"
    with open(photos / "labels.csv", newline="") as f:
        real = [(r["file"], photos / r["file"], r["number"]) for r in csv.DictReader(f)]
    curtin = root / "curtin_numbers" / "test"
    with open(curtin / "labels.csv", newline="") as f:
        one = [(r["file"], curtin / r["file"], r["number"]) for r in csv.DictReader(f)]
    entries = json.loads((curtin / "labels.json").read_text())
    empty = [(e["file"], curtin / e["file"], "") for e in entries if not e["numbers"]]
    svhn, crops = [], []
    for folder in (root / "svhn" / "fixtures" / "test", root / "svhn" / "real" / "test"):
        for name, number, box in _svhn_labels(root, folder):
            svhn.append((f"{folder.parent.name}/{name}", folder / name, number))
            crops.append((f"{folder.parent.name}/{name}", folder / name, number, box))
    return {
        "real_photos": real,
        "curtin_test": one,
        EMPTY: empty,
        "svhn_real_test": svhn,
        "svhn_real_test_crops": crops,
    }


def _svhn_labels(root: Path, folder: Path) -> list[tuple[str, str, tuple]]:
    """(file, number, union box grown 30%: x0, y0, x1, y1) of a split folder; numbers from the
    official labels (JSON form). Read here, not with digitrec.data.svhn: this runs in
    .venv-peers too, where digitrec is not installed."""
    import gzip

    with gzip.open(root / "svhn" / "labels" / "test.json.gz", "rt") as f:
        entries = {e["name"]: e["boxes"] for e in json.load(f)}

    def grown(boxes) -> tuple:
        x0 = min(b["left"] for b in boxes)
        y0 = min(b["top"] for b in boxes)
        x1 = max(b["left"] + b["width"] for b in boxes)
        y1 = max(b["top"] + b["height"] for b in boxes)
        mx, my = 0.15 * (x1 - x0), 0.15 * (y1 - y0)
        return (x0 - mx, y0 - my, x1 + mx, y1 + my)

    out = []
    for p in folder.glob("*.png"):
        boxes = entries[p.name]
        out.append((p.name, "".join(str(int(b["label"]) % 10) for b in boxes), grown(boxes)))
    return sorted(out, key=lambda t: int(t[0].split(".")[0]))


def load_rgb(path: Path, crop: tuple | None = None) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        image = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    if crop is not None:
        h, w = image.shape[:2]
        x0, y0 = max(0, int(crop[0])), max(0, int(crop[1]))
        x1, y1 = min(w, int(np.ceil(crop[2]))), min(h, int(np.ceil(crop[3])))
        image = np.ascontiguousarray(image[y0:y1, x0:x1])
    return image


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

    from digitrec import pretrained
    from digitrec.inference.pipeline import open_reader

    if args.threads:
        torch.set_num_threads(args.threads)
    path = args.reader or pretrained.path("detector")
    reader = open_reader(path, args.localizer)

    def read(image: np.ndarray) -> str:
        return reader(image).number

    def run_name(path) -> str:  # <run dir>/checkpoints/best.ckpt → the run dir's name
        p = Path(path).resolve()
        return p.parents[1].name if p.parent.name == "checkpoints" else p.name

    if args.localizer:
        return read, f"digitrec two-stage ({run_name(path)} + {run_name(args.localizer)})"
    kind = "detector" if type(reader).__name__ == "DetectorReader" else "reader"
    return read, f"digitrec {kind} ({run_name(path)})"


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
        for file, path, number, *crop in rows:
            image = load_rgb(path, crop[0] if crop else None)
            start = time.perf_counter()
            answer = read(image)
            seconds.append(time.perf_counter() - start)
            readings.append(
                {"file": file, "number": number, "answer": answer, "correct": answer == number}
            )
        correct = sum(r["correct"] for r in readings)  # EMPTY: photos given no answer
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
    head = "| set | " + " | ".join(r["name"] for r in results) + " |"
    lines = [head, "|---|" + "---|" * len(results)]
    for s in sets:
        cells = []
        for r in results:
            v = r["sets"][s]
            if s == EMPTY:  # how many got an answer: lower is better
                answered = v["n"] - v["correct"]
                cells.append(f"answered {answered}/{v['n']}")
                continue
            se = (v["correct"] / v["n"] * (1 - v["correct"] / v["n"]) / v["n"]) ** 0.5
            cells.append(f"{v['correct']}/{v['n']} ({v['correct'] / v['n']:.1%} ± {se:.1%})")
        lines.append(f"| {s}: exact | " + " | ".join(cells) + " |")
    for s in sets:
        ms = " | ".join(f"{r['sets'][s]['ms_median']:.0f}" for r in results)
        lines.append(f"| {s}: median ms | {ms} |")
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
    r.add_argument(
        "--reader", help="digitrec: a detector's or reader's checkpoint (default: the shipped one)"
    )
    r.add_argument("--localizer", help="digitrec: the localizer's checkpoint")
    r.add_argument("--threads", type=int, default=None, help="digitrec: torch threads")
    r.add_argument("--data-dir", default=None, help="default $DIGITREC_DATA_DIR, ../shared/data")
    r.add_argument("--limit", type=int, default=None, help="the first N images of each set")
    r.add_argument("--out", required=True)
    t = sub.add_parser("table", help="the engines side by side (first = the time baseline)")
    t.add_argument("results", nargs="+")
    args = p.parse_args(argv)
    return run(args) if args.command == "read" else table(args)


if __name__ == "__main__":
    sys.exit(main())
