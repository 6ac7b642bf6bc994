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
import sys

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from digitrec.analysis.compare import (
    CompareError,
    best_checkpoint,
    render,
    resolve,
    table,
)
from digitrec.cli._common import Parser
from digitrec.tracking import add_uri_argument, best_run, open_store, register_model


def parser() -> argparse.ArgumentParser:
    parser = Parser(
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
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
