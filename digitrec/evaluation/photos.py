"""Reading labelled photos end to end with the two-stage reader, scored against their labels:
scenes folders, SVHN format-1 folders and labels.csv folders (digitrec-evaluate-photos:
digitrec.cli.evaluate_photos), logged as MLflow evaluation runs."""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np
import torch
from tqdm import tqdm

from digitrec.inference.images import load_image
from digitrec.inference.pipeline import PhotoReader
from digitrec.io import one_line
from digitrec.models.localizer import box_iou

WAYS = ("ground-truth crop", "two-stage", "first look only", "whole photo")
SMALL = 0.03  # a number narrower than this fraction of the photo's width is "small"
MISSES = (
    "wrong, ground-truth crop right",
    "box elsewhere (IoU < 0.1)",
    f"box elsewhere, number < {SMALL:.0%} of the photo's width",
    "box found, misread",
)
EXPERIMENT = "photo_eval"


@dataclass
class Item:
    """One labelled photo: its path, true number, true union box (x0, y0, x1, y1) if known."""

    name: str
    path: Path
    number: str
    box: list[float] | None = None
    group: str | None = None


def slug(way: str) -> str:
    return way.replace("-", "_").replace(" ", "_")


# ------------------------------------------------------------------------------- sources
def scene_items(folder: Path) -> list[Item]:
    from digitrec.data.scenes import read_labels

    return [
        Item(f"{folder.name}/{e['name']}", folder / e["name"], e["number"], e["box"])
        for e in read_labels(folder)
    ]


def svhn_items(folder: Path) -> list[Item]:
    """A format-1 split folder's images with their numbers and union boxes."""
    from digitrec.data.svhn import split_records, union_box

    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder}: no such folder (an SVHN format-1 split: PNGs and "
            "digitStruct.mat or JSON labels)"
        )
    folder, records = split_records(folder.parent, folder.name, download=False)
    missing = {r.name for r in records if not (folder / r.name).is_file()}
    if missing:  # a cut-down split (e.g. fixtures: a digitStruct.mat longer than its PNGs)
        print(
            f"digitrec-evaluate-photos: {folder}: {len(missing)} images listed in its labels "
            f"are not there (e.g. {min(missing)}); the {len(records) - len(missing)} present "
            "are read",
            file=sys.stderr,
        )
    out = []
    for r in records:
        if not len(r.boxes) or r.name in missing:
            continue
        box = [float(v) for v in union_box(r.boxes)]
        out.append(Item(f"{folder.name}/{r.name}", folder / r.name, r.number, box))
    return out


def folder_items(folder: Path) -> list[Item]:
    """DIR/labels.csv rows (file, number, optional crop group) as items (the reader of
    digitrec-evaluate); a missing or malformed file or a bad label raises ValueError."""
    from digitrec.evaluation.folders import DIGITS, LABELS, read_labels

    out = []
    for file, number, crop in read_labels(folder, extra=("crop",)):
        if not DIGITS.fullmatch(number):
            raise ValueError(f"{folder / LABELS}: {file}: number {number!r} is not a digit string")
        if not file or PurePath(file).is_absolute() or ".." in PurePath(file).parts:
            raise ValueError(
                f"{folder / LABELS}: {file!r}: outside {folder} (paths are relative to the folder)"
            )
        out.append(Item(file, folder / file, number, None, crop or None))
    return out


# ------------------------------------------------------------------------------- reading
def _iou(a, b) -> float:
    return float(
        box_iou(torch.tensor([a], dtype=torch.float64), torch.tensor([b], dtype=torch.float64))[0]
    )


def _accuracy(rows: list[dict], way: str, key=None) -> dict:
    """Accuracy of `way` over the rows that have it, overall and by `key(row)`."""
    have = [r for r in rows if way in r["read"]]
    out = {
        "n": len(have),
        "accuracy": float(np.mean([r["read"][way] == r["number"] for r in have])) if have else None,
    }
    if key is not None:
        groups: dict = {}
        for r in have:
            if key(r) is not None:  # rows without a group are in no group's figure
                groups.setdefault(key(r), []).append(r["read"][way] == r["number"])
        out["by"] = {
            str(k): {"n": len(v), "accuracy": float(np.mean(v))}
            for k, v in sorted(groups.items(), key=lambda kv: str(kv[0]))
        }
    return out


def evaluate(reader: PhotoReader, items: list[Item], progress: bool = True) -> dict:
    first_look = (
        PhotoReader(reader.reader, reader.localizer, looks=1, fallback=0.0)
        if reader.localizer is not None
        else None
    )
    rows, errors, seconds = [], [], []
    misses = dict.fromkeys(MISSES, 0)
    for item in tqdm(items, desc="reading photos", unit="img", disable=not progress):
        try:
            image = load_image(item.path)
        except Exception as e:  # missing, corrupt, a decompression bomb: this file only
            errors.append({"file": item.name, "error": one_line(e)})
            print(f"digitrec-evaluate-photos: {errors[-1]['error']}", file=sys.stderr)
            continue
        h, w = image.shape[:2]
        start = time.perf_counter()
        reading = reader(image)  # the pipeline (the whole photo as one crop without a localizer)
        seconds.append(time.perf_counter() - start)
        read = {}
        row = {
            "file": item.name,
            "number": item.number,
            "group": item.group,
            "size": [w, h],
            "read": read,
            "confidence": round(reading.confidence, 4),
            "box": [round(v, 1) for v in reading.box],
        }
        whole = reader.read_crops(reader.crops(image, [np.array([0, 0, w, h], float)]))[0][0]
        read["whole photo"] = whole
        if first_look is not None:
            read["two-stage"] = reading.number
            first = first_look(image)
            read["first look only"] = first.number
        if item.box is not None:
            read["ground-truth crop"] = reader.read_crops(
                reader.crops(image, [np.array(item.box, float)])
            )[0][0]
            row["true_box"] = item.box
            if first_look is not None:
                row["iou"] = {
                    "two-stage": _iou(reading.box, item.box),
                    "first look only": _iou(first.box, item.box),
                }
                gt_right = read["ground-truth crop"] == item.number
                if gt_right and reading.number != item.number:  # what localization lost
                    wrong, elsewhere, small, misread = MISSES
                    misses[wrong] += 1
                    if row["iou"]["two-stage"] < 0.1:
                        misses[elsewhere] += 1
                        misses[small] += (item.box[2] - item.box[0]) < SMALL * w
                    else:
                        misses[misread] += 1
        rows.append(row)
    return _summary(reader, rows, errors, seconds, misses)


def _summary(reader: PhotoReader, rows: list, errors: list, seconds: list, misses: dict) -> dict:
    """Accuracy of each way of reading (overall, by length, by group), the localization's IoU and
    what the two-stage reading lost, the median time, the settings and every reading."""
    ways = [way for way in WAYS if any(way in r["read"] for r in rows)]
    by_length = {way: _accuracy(rows, way, lambda r: len(r["number"])) for way in ways}
    ious = [r["iou"] for r in rows if "iou" in r]
    result = {
        "images": len(rows),
        "errors": errors,
        "sequence_accuracy": {way: a["accuracy"] for way, a in by_length.items()},
        "n": {way: a["n"] for way, a in by_length.items()},
        "by_length": {way: a["by"] for way, a in by_length.items()},
        "by_group": (
            {way: _accuracy(rows, way, lambda r: r["group"])["by"] for way in ways}
            if any(r["group"] for r in rows)
            else {}
        ),
        "mean_iou": {
            k: float(np.mean([i[k] for i in ious])) for k in ("two-stage", "first look only")
        }
        if ious
        else {},
        "iou50": {
            k: float(np.mean([i[k] >= 0.5 for i in ious])) for k in ("two-stage", "first look only")
        }
        if ious
        else {},
        "two_stage_errors": misses if ious else {},
        "ms_median": 1e3 * statistics.median(seconds) if seconds else None,
        "threads": torch.get_num_threads(),
        "settings": {
            "looks": reader.looks,
            "zoom": reader.zoom,
            "scales": list(reader.scales),
            "fallback": reader.fallback,
            "localizer": reader.localizer is not None,
        },
        "readings": rows,
    }
    return result


def markdown(r: dict) -> str:
    acc = r["sequence_accuracy"]
    gt = acc.get("ground-truth crop")
    rows = [
        "| reading | n | sequence accuracy | vs ground-truth crops | mean IoU | IoU ≥ 0.5 |",
        "|---|---|---|---|---|---|",
    ]
    for way, a in acc.items():
        if a is None:
            continue
        vs = f"{100 * (a - gt):+.2f} points" if gt is not None else "–"
        iou = r["mean_iou"].get(way)
        iou_cells = f"{iou:.3f} | {r['iou50'][way]:.2%}" if iou is not None else "– | –"
        rows.append(f"| {way} | {r['n'][way]} | {a:.2%} | {vs} | {iou_cells} |")
    lengths = sorted({int(k) for v in r["by_length"].values() for k in v})
    rows += [
        "",
        "| reading | " + " | ".join(f"{k} digits" for k in lengths) + " |",
        "|---|" + "---|" * len(lengths),
    ]
    for way, by in r["by_length"].items():
        cells = [
            f"{by[str(k)]['accuracy']:.1%} (n={by[str(k)]['n']})" if str(k) in by else "–"
            for k in lengths
        ]
        rows.append(f"| {way} | " + " | ".join(cells) + " |")
    for way, by in r["by_group"].items():
        rows.append(
            f"\n{way} by group: "
            + ", ".join(f"{g} {v['accuracy']:.1%} (n={v['n']})" for g, v in by.items())
        )
    e = r["two_stage_errors"]
    if e:
        rows.append(
            f"\ntwo-stage {e[MISSES[0]]} wrong where the ground-truth crop is right: "
            f"{e[MISSES[1]]} with the box elsewhere (IoU < 0.1; {e[MISSES[2]]} of them "
            f"numbers under {SMALL:.0%} of the photo's width), {e[MISSES[3]]} found but "
            "misread"
        )
    what = "two-stage" if r["settings"]["localizer"] else "whole photo"
    ms = f"{what} median {r['ms_median']:.1f} ms a photo" if r["ms_median"] is not None else ""
    rows.append(
        f"\n{r['images']} images read, {len(r['errors'])} unreadable; {ms} "
        f"(decoded, {r['threads']} threads)"
    )
    return "\n".join(rows)


# ------------------------------------------------------------------------------- tracking
def metrics(r: dict) -> dict[str, float]:
    """The figures as flat MLflow metrics: <way>/sequence_accuracy, …_len<k>, …_<group>."""
    out = {"images": r["images"], "errors": len(r["errors"])}
    for way, a in r["sequence_accuracy"].items():
        if a is None:
            continue
        out[f"{slug(way)}/sequence_accuracy"] = a
        out[f"{slug(way)}/n"] = r["n"][way]
        for k, v in r["by_length"][way].items():
            out[f"{slug(way)}/sequence_accuracy_len{k}"] = v["accuracy"]
        for g, v in r["by_group"].get(way, {}).items():
            out[f"{slug(way)}/sequence_accuracy_{g}"] = v["accuracy"]
    for way, v in r["mean_iou"].items():
        out[f"{slug(way)}/mean_iou"] = v
    if r["ms_median"] is not None:
        out["ms_median"] = r["ms_median"]
    return out


PHOTO_KINDS = {
    "folder": "labelled photos (labels.csv)",
    "svhn": "SVHN format-1 split",
    "scenes": "scenes written by digitrec-data scenes (SYNTHETIC clutter)",
}


def photo_dataset(kind: str, folder: Path, limit: int | None, size: int | None):
    """A source folder of the evaluation as a dataset input: its label files' md5s (labels.csv,
    digitStruct.mat, JSON labels) fingerprint it."""
    from digitrec.datamodules.base import DatasetInfo, file_md5s

    labels = (
        [
            p
            for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix.lower() in (".csv", ".json", ".mat")
        ]
        if folder.is_dir()
        else []
    )
    source = {
        "uri": folder.resolve().as_uri(),
        "kind": PHOTO_KINDS[kind],
        "files": file_md5s(labels),
    }
    return DatasetInfo(
        f"{folder.resolve().parent.name}/{folder.name}",
        "evaluation",
        source,
        {"limit": limit},
        size,
        {"image": ("uint8", [-1, -1, -1, 3])},
    )


def track(r: dict, args, sources: list[str]) -> str:
    """Log the evaluation as an MLflow run; its id."""
    import tempfile

    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    from digitrec import checkpoints
    from digitrec.paths import default_tracking_uri
    from digitrec.registry import is_model_uri, resolve
    from digitrec.tracking import experiment_id, log_batched
    from digitrec.tracking.datasets import dataset_input

    uri = args.uri or default_tracking_uri()
    client = MlflowClient(tracking_uri=uri)
    exp = experiment_id(client, args.experiment, str(Path.cwd() / "mlartifacts"))
    names = [f"{Path(s).resolve().parent.name}/{Path(s).name}" for s in sources]
    tags = {"mlflow.runName": "evaluate " + " + ".join(names), "digitrec.evaluation": "photos"}
    for role, ref in (("reader", args.checkpoint), ("localizer", args.localizer)):
        if ref:
            path = resolve(ref)[0]
            tags[f"{role}_checkpoint"] = ref if is_model_uri(ref) else str(path.resolve())
            if run_id := checkpoints.load(path, role).run_id:
                tags[f"{role}_run_id"] = run_id
    run = client.create_run(exp, tags=tags).info.run_id
    now = int(time.time() * 1000)
    params = {
        "sources": " ".join(sources),
        **{k: str(v) for k, v in r["settings"].items()},
        "threads": str(r["threads"]),
    }
    log_batched(
        client,
        run,
        params=[Param(k, v) for k, v in params.items()],
        metrics=[Metric(k, float(v), now, 0) for k, v in metrics(r).items()],
    )
    kinds = [(k, d) for k in ("folder", "svhn", "scenes") for d in getattr(args, k, None) or []]
    client.log_inputs(
        run,
        datasets=[
            dataset_input(
                photo_dataset(k, Path(d), args.limit, r["images"] if len(kinds) == 1 else None)
            )
            for k, d in kinds
        ],
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "photo_eval.json"
        path.write_text(json.dumps(r, indent=1))
        client.log_artifact(run, str(path))
    client.set_terminated(run)
    return run


# ------------------------------------------------------------------------------- command
