"""`digitrec-compare`: the runs of an experiment or a sweep, best first, on the command line.

    digitrec-compare mnist_search                  # every run of an MLflow experiment
    digitrec-compare mnist_search --latest-sweep   # the children of its latest sweep
    digitrec-compare 3f2a...e9                     # the children of a sweep parent run (its id)
    digitrec-compare mnist_search svhn_search      # several targets, one table each
    digitrec-compare mnist_search --markdown       # or --csv, for reports
    digitrec-compare RUN_ID RUN_ID ...             # plain runs (not sweeps): one table of them
    digitrec-compare mnist_search --latest-sweep --register digitrec-mnist   # + Model Registry

Rows are sorted by the objective (a sweep's own objective, else val/sequence_accuracy; --objective
to change it); the columns are the headline metrics, each evaluation suite's sequence accuracy
(`suite/<name>/sequence_accuracy`, conf/eval/; --metric adds any other metric, e.g.
suite/fixed_pitch/sequence_accuracy_len3) and only the parameters that vary between the runs.
Below each table: the best run and its checkpoint (the local file, and its MLflow artifact).
--register NAME registers the best run's logged model (runs:/<id>/model) as a new version of
NAME in the Model Registry and points --alias (champion) at it: models:/NAME@champion.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import re
import sys
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from digitrec.data.suites import suite_names
from digitrec.tracking import (
    add_uri_argument,
    best_run,
    children_of,
    latest_sweep,
    open_store,
    register_model,
    run_overrides,
)

DEFAULT_OBJECTIVE = "val/sequence_accuracy"
METRICS = ["test/sequence_accuracy", "test/digit_accuracy", "test/coverage_at_98", "fit_seconds"]
IGNORED = (
    "paths.",
    "tracking.",
    "hydra.",
    "ckpt_path",
    "trainer.enable_",
    "data.verify",
    "callbacks.model_checkpoint.dirpath",
    "threads",
)
RUN_ID = re.compile(r"^[0-9a-f]{32}$")


class CompareError(ValueError):
    pass


def resolve(client: MlflowClient, target: str, newest_sweep: bool):
    """(title, runs, objective, maximize) for an experiment name or a sweep parent run id."""
    if RUN_ID.match(target):
        try:
            parent = client.get_run(target)
        except MlflowException as e:
            raise CompareError(f"no run {target} in {client.tracking_uri}") from e
        if parent.data.tags.get("sweep") != "true":  # a plain run: a table of its own kind
            return "runs", [parent], DEFAULT_OBJECTIVE, True
        return _sweep(client, parent)
    exp = client.get_experiment_by_name(target)
    if exp is None:
        names = sorted(e.name for e in client.search_experiments())
        raise CompareError(
            f"no experiment or run {target!r} in {client.tracking_uri} "
            f"(experiments: {', '.join(names) or 'none'})"
        )
    if newest_sweep:
        parent = latest_sweep(client, exp.experiment_id)
        if parent is None:
            raise CompareError(f"experiment {target!r} has no sweep (a `digitrec-train -m` run)")
        return _sweep(client, parent)
    runs = [
        r
        for r in client.search_runs([exp.experiment_id], max_results=50000)
        if r.data.tags.get("sweep") != "true"
    ]
    return f"experiment {target}", runs, DEFAULT_OBJECTIVE, True


def _sweep(client: MlflowClient, parent):
    tags = parent.data.tags
    if tags.get("sweep") != "true":
        raise CompareError(f"run {parent.info.run_id} is not a sweep parent run")
    objective, _, mode = tags.get("objective", DEFAULT_OBJECTIVE).partition(" ")
    title = f"sweep {tags.get('sweep_name', '?')} (parent run {parent.info.run_id}, {parent.info.status})"
    return title, children_of(client, parent), objective, mode.strip("()") != "min"


def varying_params(runs) -> list[str]:
    """Parameters that differ between the runs and were set on a command line (sweep overrides):
    values derived from them (an output folder, a schedule's peak rate) are left out."""
    keys = sorted({k for r in runs for k in r.data.params if not k.startswith(IGNORED)})
    varying = [k for k in keys if len({r.data.params.get(k) for r in runs}) > 1]
    chosen = {k for r in runs for k in run_overrides(r)}
    return [k for k in varying if k in chosen] or varying


def suite_columns(runs) -> list[str]:
    """Each evaluation suite's sequence accuracy, for the suites any of the runs has."""
    names = sorted({n for r in runs for n in suite_names(r.data.metrics)})
    return [f"suite/{n}/sequence_accuracy" for n in names]


def table(
    runs, objective: str, maximize: bool, extra: list[str] = (), plain: bool = False
) -> tuple[list[str], list[list[str]]]:
    """Header and rows, best first; runs without the objective (failed, running) last.
    `plain` runs (given by id, not a sweep) show their name and their overrides instead of
    the parameters that vary."""

    def key(run):
        value = run.data.metrics.get(objective)
        if value is None or math.isnan(value):
            return (1, 0.0)
        return (0, -value if maximize else value)

    runs = sorted(runs, key=key)
    params = [] if plain else varying_params(runs)
    metrics = [objective] + [m for m in METRICS if m != objective]
    metrics += [m for m in [*suite_columns(runs), *extra] if m not in metrics]
    header = ["rank", "run", "status", *metrics, *params]
    if plain:
        header[2:2] = ["name"]
        header.append("overrides")
    rows = []
    for i, run in enumerate(runs, 1):
        values = [_fmt(run.data.metrics.get(m)) for m in metrics]
        row = [
            str(i),
            run.info.run_id,
            run.info.status,
            *values,
            *(_short(run.data.params.get(p, "")) for p in params),
        ]
        if plain:
            row[2:2] = [run.info.run_name or ""]
            row.append(
                " ".join(
                    f"{k}={v}" for k, v in run_overrides(run).items() if not k.startswith(IGNORED)
                )
            )
        rows.append(row)
    return header, rows


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.0f}"


def _short(value: str) -> str:
    """0.004944733002746449 → 0.004945 (integers and words unchanged)."""
    try:
        return value if value.lstrip("-").isdigit() else f"{float(value):.4g}"
    except ValueError:
        return value


def render(header: list[str], rows: list[list[str]], style: str) -> str:
    if style == "csv":
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([header, *rows])
        return out.getvalue()
    if style == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
        return "\n".join(lines) + "\n"
    shown = [[c[:8] if j == 1 else c for j, c in enumerate(r)] for r in rows]  # short run ids
    widths = [max(len(str(x)) for x in col) for col in zip(header, *shown, strict=True)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *shown]
    ]
    return "\n".join(lines) + "\n"


def best_checkpoint(client: MlflowClient, run) -> str:
    local = run.data.tags.get("best_checkpoint", "")
    logged = [a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")]
    parts = []
    if local:
        parts.append(local + ("" if Path(local).exists() else " (not on this machine)"))
    parts += [f"runs:/{run.info.run_id}/{p}" for p in logged]
    return ", ".join(parts) or "(none logged)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="digitrec-compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "targets", nargs="+", metavar="TARGET", help="MLflow experiment name or sweep parent run id"
    )
    parser.add_argument(
        "--latest-sweep",
        action="store_true",
        help="an experiment's latest sweep instead of all its runs",
    )
    parser.add_argument("--objective", help="sort by this metric (default: the sweep's objective)")
    parser.add_argument("--min", action="store_true", help="lower objective is better")
    parser.add_argument(
        "--metric", action="append", default=[], help="another metric column (repeatable)"
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--csv", action="store_const", const="csv", dest="style")
    group.add_argument("--markdown", action="store_const", const="markdown", dest="style")
    parser.add_argument(
        "--register",
        metavar="NAME",
        help="register the best run's model as NAME in the Model Registry",
    )
    parser.add_argument(
        "--alias",
        default="champion",
        help="the alias --register points at the new version (champion)",
    )
    add_uri_argument(parser)
    args = parser.parse_args(argv)
    try:
        client = open_store(args.uri)
    except ValueError as e:
        print(f"digitrec-compare: {e}", file=sys.stderr)
        return 1
    resolved = []
    for target in args.targets:
        try:
            title, runs, objective, maximize = resolve(client, target, args.latest_sweep)
        except CompareError as e:
            print(f"digitrec-compare: {e}", file=sys.stderr)
            return 1
        if title == "runs" and resolved and resolved[-1][1] == "runs":  # plain runs: one table
            resolved[-1][2].extend(runs)
        else:
            resolved.append([target, title, runs, objective, maximize])
    if args.register and len(resolved) != 1:
        print(
            f"digitrec-compare: --register takes one target (a sweep, an experiment or run "
            f"ids), got {len(resolved)}",
            file=sys.stderr,
        )
        return 1
    tables = []
    for target, title, runs, objective, maximize in resolved:
        objective, maximize = args.objective or objective, maximize and not args.min
        tables.append(
            (
                target,
                title,
                runs,
                objective,
                maximize,
                *table(runs, objective, maximize, args.metric, title == "runs"),
            )
        )
    if args.style == "csv":  # one CSV: the target as the first column, the union of the columns
        columns = ["target"] + list(dict.fromkeys(c for t in tables for c in t[5]))
        rows = [
            [t[0]] + [dict(zip(t[5], r, strict=True)).get(c, "") for c in columns[1:]]
            for t in tables
            for r in t[6]
        ]
        sys.stdout.write(render(columns, rows, "csv"))
    else:
        for n, (_, title, runs, objective, maximize, header, rows) in enumerate(tables):
            mark = "## " if args.style == "markdown" else ""
            print(
                f"{chr(10) if n else ''}{mark}{title}: {len(runs)} runs, sorted by {objective} "
                f"({'max' if maximize else 'min'})\n"
            )
            sys.stdout.write(render(header, rows, args.style or "text"))
            best = best_run(runs, objective, maximize)
            if best is not None:
                print(
                    f"\nbest run {best.info.run_id}: {objective} = "
                    f"{best.data.metrics[objective]:.4f}"
                )
                print(f"best checkpoint: {best_checkpoint(client, best)}")
    if not args.register:
        return 0
    _, _, runs, objective, maximize, *_ = tables[0]
    out = sys.stderr if args.style == "csv" else sys.stdout  # the CSV stays a CSV
    return register(
        client, best_run(runs, objective, maximize), objective, args.register, args.alias, out
    )


def register(client: MlflowClient, best, objective: str, name: str, alias: str, out) -> int:
    """Register the best run's model as `name` with `alias`; one line either way."""
    if best is None:
        print(f"digitrec-compare: no finished run with {objective} to register", file=sys.stderr)
        return 1
    run_id = best.info.run_id
    try:
        version = register_model(
            client, best, name, alias, tags={objective: str(best.data.metrics[objective])}
        )
    except MlflowException as e:
        print(
            f"digitrec-compare: cannot register runs:/{run_id}/model as {name}: "
            f"{str(e).splitlines()[0]}",
            file=sys.stderr,
        )
        return 1
    if version is None:
        print(
            f"digitrec-compare: best run {run_id} has no logged model (runs:/{run_id}/model); "
            "nothing registered",
            file=sys.stderr,
        )
        return 1
    print(
        f"registered runs:/{run_id}/model as {name} version {version.version}, alias "
        f"@{alias}: models:/{name}@{alias}",
        file=out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
