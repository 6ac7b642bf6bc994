"""The photo reader's diagnostics quoted in README.md (not part of the package).

python experiments/photo_reader/analysis.py looks READER LOCALIZER --scenes .data/scenes-tune
    per look: mean IoU with the true box and the median predicted / true width (up to 4 looks)
python experiments/photo_reader/analysis.py candidates READER LOCALIZER --scenes .data/scenes-tune
    sequence accuracy of candidate sets (the most confident reading wins) vs ground-truth crops
python experiments/photo_reader/analysis.py profile
    where a 640x480 photo's time goes (untrained default-size networks, 2 threads, medians)
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import torch

from digitrec.data.scenes import read_labels
from digitrec.inference.images import load_image
from digitrec.inference.pipeline import PhotoReader
from digitrec.tasks import load_task

REPO = Path(__file__).resolve().parents[2]


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def scaled(box, s: float):
    center, half = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]) / 2 * s
    return np.concatenate([center - half, center + half])


def looks(pr: PhotoReader, items, folder) -> None:
    pr.looks, pr.scales = 4, ()
    per = [[] for _ in range(4)]
    for it in items:
        truth = np.array(it["box"])
        for k, b in enumerate(pr.candidates(load_image(folder / it["name"]))[::-1]):
            per[k].append((iou(b, truth), (b[2] - b[0]) / (truth[2] - truth[0])))
    for k, rows in enumerate(per, 1):
        if rows:
            v = np.array(rows)
            print(
                f"look {k}: {len(v)} scenes, mean IoU {v[:, 0].mean():.3f}, "
                f"median width ratio {np.median(v[:, 1]):.3f}"
            )


def candidates(pr: PhotoReader, items, folder) -> None:
    pr.scales = ()
    sets = {  # chain: the looks' boxes, last first
        "every look + last x1.2 (default)": lambda ch: ch + [scaled(ch[0], 1.2)],
        "looks but the first + last x1.2": lambda ch: (
            (ch[:-1] if len(ch) > 1 else ch) + [scaled(ch[0], 1.2)]
        ),
        "last look only": lambda ch: ch[:1],
        "every look + last x0.9, x1.2, x1.4": lambda ch: (
            ch + [scaled(ch[0], s) for s in (0.9, 1.2, 1.4)]
        ),
    }
    right = dict.fromkeys(sets, 0)
    gt = 0
    for it in items:
        image = load_image(folder / it["name"])
        gt += pr.read_crops(pr.crops(image, [np.array(it["box"])]))[0][0] == it["number"]
        chain = pr.candidates(image)
        for name, make in sets.items():
            boxes = make(list(chain))
            readings = pr.read_crops(pr.crops(image, boxes))
            right[name] += max(readings, key=lambda r: r[1])[0] == it["number"]
    print(f"ground-truth crops: {gt / len(items):.2%} ({len(items)} scenes)")
    for name, n in right.items():
        print(f"{name}: {n / len(items):.2%}")


def profile() -> None:
    from omegaconf import OmegaConf

    from digitrec.tasks import BoxLocalizer, DigitReader, to_input

    def plain(name, **values):
        cfg = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "model" / f"{name}.yaml"))
        return {**{k: v for k, v in cfg.items() if k != "_target_"}, **values}

    def ms(f, *args, n=200) -> float:
        for _ in range(10):
            f(*args)
        times = []
        for _ in range(n):
            start = time.perf_counter()
            f(*args)
            times.append(time.perf_counter() - start)
        return 1e3 * float(np.median(times))

    torch.manual_seed(0)
    reader = DigitReader(
        **plain("cnn", in_channels=3, height=54, width=54, max_len=5, mean_subtract=True)
    ).eval()
    loc = BoxLocalizer(**plain("localizer", in_channels=3, size=128)).eval()
    with torch.no_grad():  # a small box every time: every look is taken (as in the benchmark)
        loc.net.head[-1].weight.zero_()
        loc.net.head[-1].bias.copy_(torch.tensor([0.0, 0.0, -3.0, -3.0]))
    pr = PhotoReader(reader, loc)
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    boxes = pr.candidates(image)
    crops = pr.crops(image, boxes)
    x1 = to_input(torch.randint(0, 256, (1, 3, 128, 128), dtype=torch.uint8))
    c4 = to_input(torch.randint(0, 256, (4, 3, 54, 54), dtype=torch.uint8), True)
    with torch.inference_mode():
        print(f"localizer, batch 1: {ms(loc.net, x1):.2f} ms")
        print(f"reader, batch 4: {ms(reader.net, c4):.2f} ms")
        for name, net, x in (("localizer", loc.net, x1), ("reader", reader.net, c4)):
            traced = torch.jit.optimize_for_inference(
                torch.jit.freeze(torch.jit.trace(copy.deepcopy(net).eval(), x, check_trace=False))
            )
            print(
                f"{name} traced + frozen: {ms(traced, x):.2f} ms (eager again: {ms(net, x):.2f} ms)"
            )
    print(
        f"{len(boxes) - len(pr.scales)} looks (PhotoReader.candidates): "
        f"{ms(pr.candidates, image):.2f} ms"
    )
    print(f"cropping {len(boxes)} candidates: {ms(pr.crops, image, boxes):.2f} ms")
    print(f"reading them (read_crops): {ms(pr.read_crops, crops):.2f} ms")
    print(f"the whole photo: {ms(pr, image):.2f} ms")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("what", choices=["looks", "candidates", "profile"])
    p.add_argument("reader", nargs="?")
    p.add_argument("localizer", nargs="?")
    p.add_argument("--scenes", default=".data/scenes-tune")
    p.add_argument("--n", type=int, default=400, help="the first N scenes")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.what == "profile":
        return profile()
    if not (args.reader and args.localizer):
        p.error(f"{args.what} needs READER and LOCALIZER checkpoints")
    pr = PhotoReader(load_task(args.reader), load_task(args.localizer))
    folder = Path(args.scenes)
    items = read_labels(folder)[: args.n]
    (looks if args.what == "looks" else candidates)(pr, items, folder)


if __name__ == "__main__":
    main()
