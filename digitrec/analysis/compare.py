"""Runs of experiments or sweeps compared, best first, from MLflow (digitrec-compare:
digitrec.cli.compare)."""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from digitrec.data.suites import suite_names
from digitrec.tracking import (
    children_of,
    latest_sweep,
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
