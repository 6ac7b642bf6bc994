"""`digitrec-report STUDY`: a sweep's results table and plot, generated from MLflow.

    digitrec-report heads                       # the latest finished sweep of experiment "heads"
    digitrec-report mnist_seq --sweep RUN_ID --name full --out experiments/heads

It reads the sweep's parent run and its children, finds the overrides that vary between the
children, groups the runs by them (seeds are averaged: mean ± standard deviation), and writes
`<out>/<name>.png` and the table into `<out>/README.md` between `<!-- report:NAME -->` and
`<!-- /report:NAME -->` (or `<out>/<name>.md` when the README has no such markers).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from mlflow.tracking import MlflowClient

from digitrec.data.download import atomic_write_bytes
from digitrec.data.suites import suite_names
from digitrec.plots import finish_figure
from digitrec.tracking import (
    add_uri_argument,
    children_of,
    latest_sweep,
    open_store,
    run_overrides,
)

COLUMNS = [  # (metric, header, format)
    ("test/sequence_accuracy", "test seq. acc. %", "pct"),
    ("val/sequence_accuracy", "val seq. acc. %", "pct"),
    ("test/digit_accuracy", "per-digit %", "pct"),
    ("test/coverage_at_98", "coverage@98 %", "pct"),
    ("model/parameters", "params", "int"),
    ("model/macs_per_image", "MMACs/image", "mega"),
    ("fit_seconds", "fit s", "int"),
]


def columns(runs) -> list[tuple[str, str, str]]:
    """COLUMNS, then each evaluation suite's sequence accuracy for the suites the runs have."""
    names = sorted({n for r in runs for n in suite_names(r.data.metrics)})
    return COLUMNS + [(f"suite/{n}/sequence_accuracy", f"{n} %", "pct") for n in names]


SKIP_KEYS = ("tracking.", "paths.", "hydra.", "trainer.enable_", "threads")


class ReportError(ValueError):
    pass


def _overrides(run) -> dict[str, str]:
    return {k: v for k, v in run_overrides(run).items() if not k.startswith(SKIP_KEYS)}


def find_sweep(client: MlflowClient, study: str, sweep: str | None):
    exp = client.get_experiment_by_name(study)
    if exp is None:
        raise ReportError(
            f"no MLflow experiment {study!r} in {client.tracking_uri}; "
            f"run `digitrec-train -m experiment={study}` first"
        )
    if sweep:
        return exp, client.get_run(sweep)
    parent = latest_sweep(client, exp.experiment_id, finished_only=True)
    if parent is None:
        raise ReportError(f"experiment {study!r} has no finished sweep (a `digitrec-train -m` run)")
    return exp, parent


def _value(run, metric: str) -> float | None:
    if metric in run.data.metrics:
        return run.data.metrics[metric]
    legacy = metric.removeprefix("model/")  # runs before the model/ metrics logged it as a param
    if legacy != metric and run.data.params.get(legacy, "").isdigit():
        return float(run.data.params[legacy])
    return None


def _fmt(values: list[float], kind: str) -> str:
    if not values:
        return "–"
    mean = statistics.fmean(values)
    if kind == "pct":
        sd = f" ± {100 * statistics.stdev(values):.2f}" if len(values) > 1 else ""
        return f"{100 * mean:.2f}{sd}"
    return f"{mean / 1e6:.1f}" if kind == "mega" else f"{mean:,.0f}"


def _sort_key(value: str):
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def summarize(client: MlflowClient, parent) -> tuple[list[str], list[dict], list]:
    children = children_of(client, parent, order_by=["start_time ASC"])
    finished = [c for c in children if c.info.status == "FINISHED"]
    if not finished:
        raise ReportError(f"sweep {parent.info.run_id} has no finished child runs")
    overrides = [_overrides(c) for c in finished]
    keys = sorted({k for o in overrides for k in o})
    varying = [k for k in keys if len({o.get(k) for o in overrides}) > 1]
    group_keys = [k for k in varying if k != "seed"]
    groups: dict[tuple, list] = defaultdict(list)
    if group_keys:
        for run, o in zip(finished, overrides, strict=True):
            groups[tuple(o.get(k, "") for k in group_keys)].append(run)
    else:  # only seeds vary: one row, labelled by what the runs share
        shared = " ".join(
            f"{k}={v}" for k, v in overrides[0].items() if k not in ("seed", "study", "experiment")
        )
        group_keys = ["config"]
        groups[(shared or "(defaults)",)] = list(finished)
    rows, cols = [], columns(finished)
    numeric = all(_sort_key(v)[0] == 0 for key in groups for v in key)
    # numbers in numeric order (depth 1, 2, ..., 11); anything else in the sweep's order
    for key in sorted(groups, key=lambda t: [_sort_key(v) for v in t]) if numeric else groups:
        runs = groups[key]
        row = {"group": dict(zip(group_keys, key, strict=True)), "runs": runs, "columns": cols}
        for metric, _, _ in cols:
            row[metric] = [v for r in runs if (v := _value(r, metric)) is not None]
        rows.append(row)
    return group_keys, rows, [c for c in children if c.info.status != "FINISHED"]


def markdown(study, parent, group_keys, rows, failed, uri, command) -> str:
    n = sum(len(r["runs"]) for r in rows)
    seeds = max(len(r["runs"]) for r in rows)
    cols = rows[0]["columns"] if rows else COLUMNS
    lines = [
        f"Generated by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC from MLflow "
        f"(experiment `{study}`, sweep parent run `{parent.info.run_id}`, {n} finished runs"
        + (f", {len(failed)} not finished" if failed else "")
        + ")."
        + (" Values are mean ± standard deviation over seeds." if seeds > 1 else ""),
        "",
        "| " + " | ".join([*group_keys, "runs", *(h for _, h, _ in cols), "MLflow runs"]) + " |",
        "|" + "---|" * (len(group_keys) + len(cols) + 2),
    ]
    for r in rows:
        cells = [r["group"][k] for k in group_keys] + [str(len(r["runs"]))]
        cells += [_fmt(r[m], kind) for m, _, kind in cols]
        cells.append(", ".join(f"`{run.info.run_id[:8]}`" for run in r["runs"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(group_keys, rows, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [", ".join(r["group"].values()) for r in rows]
    numeric = len(group_keys) == 1 and all(_sort_key(lab)[0] == 0 for lab in labels)
    xs = [float(lab) for lab in labels] if numeric else list(range(len(rows)))
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    for metric, name, style in (
        ("test/sequence_accuracy", "test", "o-"),
        ("val/sequence_accuracy", "validation", "s--"),
    ):
        means = [100 * sum(r[metric]) / len(r[metric]) if r[metric] else float("nan") for r in rows]
        ax.plot(
            xs,
            means,
            style if numeric else style[0],
            label=name,
            markersize=7,
            alpha=0.9 if name == "test" else 0.6,
        )
        if name == "test":
            for x, r in zip(xs, rows, strict=True):  # every seed as a dot
                ax.plot(
                    [x] * len(r[metric]),
                    [100 * v for v in r[metric]],
                    ".",
                    color="k",
                    alpha=0.4,
                    markersize=4,
                )
    ax.set_xticks(xs, labels)
    if not numeric:
        ax.set_xlim(-0.5, len(xs) - 0.5)
    return finish_figure(fig, ax, path, ", ".join(group_keys), "sequence accuracy (%)", title)


def write_section(out: Path, name: str, text: str) -> Path:
    """Replace the README's `<!-- report:NAME -->` section, or write `<out>/<name>.md`."""
    readme = out / "README.md"
    begin, end = f"<!-- report:{name} -->", f"<!-- /report:{name} -->"
    target, content = out / f"{name}.md", text
    if readme.exists() and begin in (old := readme.read_text()):
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        target, content = readme, pattern.sub(lambda _: f"{begin}\n{text}{end}", old)
    atomic_write_bytes(target, content.encode())
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="digitrec-report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("study", help="MLflow experiment name (the config's `study`)")
    parser.add_argument("--sweep", help="sweep parent run id (default: the latest finished one)")
    add_uri_argument(parser)
    parser.add_argument("--out", type=Path, help="output folder (default: experiments/STUDY)")
    parser.add_argument("--name", help="section and plot name (default: STUDY)")
    args = parser.parse_args(argv)
    out, name = args.out or Path("experiments") / args.study, args.name or args.study
    command = "digitrec-report " + " ".join(argv if argv is not None else sys.argv[1:])
    try:
        client = open_store(args.uri)
        _, parent = find_sweep(client, args.study, args.sweep)
        group_keys, rows, failed = summarize(client, parent)
    except (ReportError, ValueError) as e:
        print(f"digitrec-report: {e}", file=sys.stderr)
        return 1
    title = f"{args.study}: {', '.join(group_keys)} (big marks: means; dots: single runs)"
    png = plot(group_keys, rows, out / f"{name}.png", title)
    text = markdown(args.study, parent, group_keys, rows, failed, client.tracking_uri, command)
    text += f"\n![{name}]({png.name})\n"
    target = write_section(out, name, text)
    print(text)
    print(f"wrote {target} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
