"""The reproduction's report: the paper's table, the depth curve, coverage and the heads, ours
beside the paper's, from the sweeps' MLflow runs (README.md, depth.png, coverage.png)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from mlflow.tracking import MlflowClient

from digitrec.analysis.reproduce.jobs import REPO
from digitrec.analysis.reproduce.real_svhn import CONFIDENCE, PREFIX
from digitrec.evaluation.scoring import binomial_se
from digitrec.io import atomic_write_bytes
from digitrec.plots import finish_figure
from digitrec.tracking import best_run, git_commit

# Goodfellow et al. 2014 on SVHN; the depth curve is read off their Figure 5
PAPER = {"sequence_accuracy": 0.9603, "digit_accuracy": 0.9784, "coverage_at_98": 0.9564}
PAPER_DEPTH = {3: 0.923, 5: 0.947, 8: 0.957, 11: 0.960}
HEADS_DEPTH = 8  # the paper's network ("8 convolutional hidden layers"): the heads compared there


@dataclass
class Context:
    """What the report says about how its runs were made."""

    profile_name: str
    profile: object
    command: str
    svhn_label: str
    study: str
    uri: str
    parents: dict[str, str | None]
    minutes: float
    resumed: bool
    real_root: Path | None
    missing: dict[str, list[str]] = field(default_factory=dict)  # sweep → values not finished
    commit: str = field(default_factory=lambda: git_commit(REPO))  # before anything is written


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


def _metric(run, key: str) -> float | None:
    return None if run is None else run.data.metrics.get(key)


def _real(run) -> str:
    """The run's real-SVHN sequence accuracy with its n and binomial standard error."""
    p, n = _metric(run, f"{PREFIX}/sequence_accuracy"), _metric(run, f"{PREFIX}/n")
    if p is None or not n:
        return "–"
    return f"{100 * p:.2f}% ± {100 * binomial_se(p, int(n)):.2f}"


def _curve(client: MlflowClient, run, artifact: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(coverage, accuracy) of a run's answers ranked by confidence (an npz artifact)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run.info.run_id, artifact, tmp)
        except Exception:  # noqa: BLE001 — an older run without it: no curve
            return None
        with np.load(path) as f:
            confidence, correct = f["confidence"], f["correct"].astype(np.float64)
    order = np.argsort(-confidence, kind="stable")
    k = np.arange(1, len(order) + 1)
    return k / len(order), np.cumsum(correct[order]) / k


def _span(runs: dict[str, list]) -> str | None:
    """When the report's runs ran: first start to last end, and the wall time between."""
    every = [r for part in runs.values() for r in part if r.info.end_time]
    if not every:
        return None
    start = min(r.info.start_time for r in every) / 1000
    end = max(r.info.end_time for r in every) / 1000
    first, last = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
    return (
        f"{first:%Y-%m-%d %H:%M}–{last:%H:%M} UTC ({(end - start) / 60:.1f} min from the "
        "first run's start to the last run's end)"
    )


def plots(depth_rows: list[dict], curves: dict, best, out: Path, label: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    xs = [r["depth"] for r in depth_rows]
    ax.plot(
        xs,
        [np.nan if r["test"] is None else 100 * r["test"] for r in depth_rows],
        "o-",
        label=f"ours: {label}",
    )
    real = [(r["depth"], r["run"]) for r in depth_rows if _metric(r["run"], f"{PREFIX}/n")]
    if real:
        ps = np.array([_metric(run, f"{PREFIX}/sequence_accuracy") for _, run in real])
        ns = np.array([_metric(run, f"{PREFIX}/n") for _, run in real])
        se = np.sqrt(ps * (1 - ps) / ns)
        ax.errorbar(
            [d for d, _ in real],
            100 * ps,
            yerr=100 * se,
            fmt="^-",
            capsize=3,
            label=f"ours: real SVHN test (n={int(ns[0])}, ± 1 s.e.)",
        )
    ax.plot(
        list(PAPER_DEPTH),
        [100 * v for v in PAPER_DEPTH.values()],
        "s--",
        color="gray",
        label="paper: SVHN (read off Fig. 5)",
    )
    ax.set_xticks(xs)
    ax.set_ylim(0, 100)
    finish_figure(
        fig,
        ax,
        out / "depth.png",
        "hidden layers",
        "test sequence accuracy (%)",
        "sequence accuracy vs depth",
    )

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    for name, curve in curves.items():
        if curve is not None:
            ax.plot(100 * curve[0], 100 * curve[1], label=f"ours: best depth, {name}")
    for key, name in (("test/coverage_at_98", label), (f"{PREFIX}/coverage_at_98", "real SVHN")):
        if _metric(best, key) is not None and curves.get(name) is not None:
            ax.plot([100 * _metric(best, key)], [98], "o", color="k", markersize=4)
    ax.plot([100 * PAPER["coverage_at_98"]], [98], "s", color="gray", label="paper: 95.64% at 98%")
    ax.axhline(98, color="k", lw=0.6, ls=":")
    finish_figure(
        fig,
        ax,
        out / "coverage.png",
        "coverage (%): the most confident answers kept",
        "sequence accuracy (%)",
        "accuracy vs coverage",
    )


def _heads_rows(depth_runs: list, heads_runs: list) -> list:
    """The heads at HEADS_DEPTH: the heads sweep's runs, plus the depth sweep's run at that depth
    (its head is the paper's; the heads sweep does not train it twice)."""
    runs = list(heads_runs)
    have = {r.data.params.get("model.head") for r in runs}
    for r in depth_runs:
        if (
            r.data.params.get("model.depth") == str(HEADS_DEPTH)
            and r.data.params.get("model.head", "separate") not in have
        ):
            runs.append(r)
    return sorted(runs, key=lambda r: r.data.params.get("model.head", "separate"))


def report(ctx: Context, client: MlflowClient, runs: dict[str, list], out: Path) -> str:
    """Write out/README.md, depth.png and coverage.png; returns the README's text."""
    depth_rows = sorted(
        (
            {
                "depth": int(r.data.params["model.depth"]),
                "run": r,
                "val": _metric(r, "val/sequence_accuracy"),
                "test": _metric(r, "test/sequence_accuracy"),
            }
            for r in runs["depth"]
        ),
        key=lambda row: row["depth"],
    )
    best = best_run(runs["depth"], "val/sequence_accuracy")
    short = ctx.svhn_label.split(" (")[0]
    curves = {}
    if best is not None:
        curves = {
            short: _curve(client, best, "test_confidence.npz"),
            "real SVHN": _curve(client, best, CONFIDENCE),
        }
    plots(depth_rows, curves, best, out, short)

    n_test = len(curves[short][0]) if curves.get(short) is not None else None
    n_real = _metric(best, f"{PREFIX}/n")
    lines = _intro(ctx, runs, best, n_real)
    lines += _paper_table(best, short, n_test, n_real)
    lines += _depth_section(depth_rows, short)
    lines += _coverage_and_heads(ctx, runs, best, short)
    text = "\n".join(lines)
    atomic_write_bytes(out / "README.md", text.encode())
    return text


def _intro(ctx: Context, runs: dict[str, list], best, n_real) -> list[str]:
    """The report's opening: what made it, on what, its MLflow runs, its deviations."""
    p = ctx.profile
    real_dir = best.data.tags.get(f"{PREFIX}.images") if best is not None else None
    real_text = (
        f"real SVHN test images (`{real_dir}`, n={int(n_real)})"
        if n_real
        else "real SVHN test images (none found: the column is empty)"
    )
    span = _span(runs)
    ids = ", ".join(f"{k} `{v}`" for k, v in ctx.parents.items() if v)
    commit = f"{ctx.commit[:12]}" + (
        " with uncommitted changes" if ctx.commit.endswith("-dirty") else ""
    )
    hardware = f"{os.cpu_count()} CPU cores" + (
        f" and a {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    )
    lines = [
        "# Reproducing Goodfellow et al. 2014 (arXiv 1312.6082)",
        "",
        f"Generated by `{ctx.command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit "
        f"`{commit}`, profile **{ctx.profile_name}**: {p.description}. "
        f"Data preparation, the three sweeps and the real-SVHN readings took "
        f"{ctx.minutes:.1f} min on {hardware}"
        + (" in this invocation, which resumed an earlier one" if ctx.resumed else "")
        + "."
        + (f" The runs in the report span {span}." if span else ""),
        "",
        f"- SVHN training and the stand-in figures: **{ctx.svhn_label}**.",
        f"- Real-SVHN figures: the {real_text}, read from their ground-truth crops as the paper "
        "evaluates (union box + 30%, 64×64, the center 54×54); shown as accuracy ± its binomial "
        "standard error.",
        f"- MLflow experiment `{ctx.study}` ({ctx.uri}); sweep parent runs: {ids}.",
        "- Overrides of the SVHN runs: `" + " ".join(p.svhn.overrides) + "`.",
        "- Overrides of the MNIST runs: `" + " ".join(p.mnist.overrides) + "`.",
        "- Compare them: `digitrec-compare "
        + " ".join(v for v in ctx.parents.values() if v)
        + "`.",
    ]
    if "synthetic" in ctx.svhn_label.lower() or "stand-in" in ctx.svhn_label:
        lines.append(
            "- **No model here saw a real SVHN image in training**: they trained on the "
            "rendered stand-in only, so the real-SVHN column measures how far a stand-in "
            "model transfers, not what the paper's recipe reaches on SVHN."
        )
    if ctx.missing:
        lines.append(
            "- **Jobs without a finished run** (run the command again to run them): "
            + "; ".join(f"{k}: {', '.join(v)}" for k, v in ctx.missing.items())
            + "."
        )
    if p.get("deviations"):
        lines += [
            "",
            "**Deviations from the paper** (so the profile learns within its budget):",
            "",
        ]
        lines += [f"- {d}" for d in p.deviations]
    return lines


def _paper_table(best, short: str, n_test, n_real) -> list[str]:
    """The paper's headline figures beside the best depth's."""
    lines: list[str] = []
    lines += [
        "",
        "## The paper's table beside ours",
        "",
        f"Ours: the depth with the best validation sequence accuracy "
        f"(depth {best.data.params['model.depth'] if best else '–'}, run "
        f"`{best.info.run_id if best else '–'}`; validation: held-out {short} training images).",
        "",
        f"| figure | paper (SVHN) | ours: {short} test"
        + (f" (n={int(n_test)})" if n_test else "")
        + " | ours: real SVHN test"
        + (f" (n={int(n_real)})" if n_real else "")
        + " |",
        "|---|---|---|---|",
    ]
    for key, name in (
        ("sequence_accuracy", "sequence accuracy"),
        ("digit_accuracy", "per-digit accuracy"),
        ("coverage_at_98", "coverage at 98% accuracy"),
    ):
        real = _real(best) if key == "sequence_accuracy" else _pct(_metric(best, f"{PREFIX}/{key}"))
        lines.append(
            f"| {name} | {_pct(PAPER[key])} | {_pct(_metric(best, f'test/{key}'))} | {real} |"
        )
    return lines


def _depth_section(depth_rows: list[dict], short: str) -> list[str]:
    """(a) sequence accuracy against depth, the paper's Figure 5 beside ours."""
    lines: list[str] = []
    lines += [
        "",
        "## (a) Sequence accuracy vs depth (the paper's Figure 5)",
        "",
        f"| hidden layers | paper (SVHN, read off Fig. 5) | ours: val | ours: {short} test | "
        "ours: real SVHN test | fit s | MLflow run |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in depth_rows:
        fit = _metric(row["run"], "fit_seconds")
        lines.append(
            f"| {row['depth']} | {_pct(PAPER_DEPTH.get(row['depth']))} | "
            f"{_pct(row['val'])} | {_pct(row['test'])} | {_real(row['run'])} | "
            f"{'–' if fit is None else f'{fit:,.0f}'} | `{row['run'].info.run_id}` |"
        )
    return lines


def _coverage_and_heads(ctx: Context, runs: dict[str, list], best, short: str) -> list[str]:
    """(b) coverage at 98% accuracy, (c) separate vs shared vs recurrent heads."""
    lines: list[str] = []
    lines += [
        "",
        "![accuracy vs depth](depth.png)",
        "",
        "## (b) Coverage: accuracy of the most confident answers",
        "",
        f"The best depth's answers ranked by confidence; coverage at 98% accuracy: "
        f"{_pct(_metric(best, 'test/coverage_at_98'))} on the {short} test split, "
        f"{_pct(_metric(best, f'{PREFIX}/coverage_at_98'))} on the real SVHN test images "
        "(paper: 95.64%).",
        "",
        "![accuracy vs coverage](coverage.png)",
        "",
        "## (c) Separate vs shared vs recurrent heads",
        "",
        "| data | head | ours: val | ours: test | per-digit | coverage@98 | "
        "ours: real SVHN test | MLflow run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, heads in (
        (f"{ctx.svhn_label}, depth {HEADS_DEPTH}", _heads_rows(runs["depth"], runs["heads_svhn"])),
        (
            "synthetic MNIST numbers",
            sorted(runs["heads_mnist"], key=lambda r: r.data.params["model.head"]),
        ),
    ):
        for r in heads:
            real = _real(r) if "MNIST" not in label else "(not an SVHN model)"
            lines.append(
                f"| {label} | {r.data.params.get('model.head', 'separate')} | "
                f"{_pct(_metric(r, 'val/sequence_accuracy'))} | "
                f"{_pct(_metric(r, 'test/sequence_accuracy'))} | "
                f"{_pct(_metric(r, 'test/digit_accuracy'))} | "
                f"{_pct(_metric(r, 'test/coverage_at_98'))} | {real} | "
                f"`{r.info.run_id}` |"
            )
    lines += [
        "",
        "The paper uses separate softmax heads; it reports no shared or recurrent head. The "
        f"separate head at depth {HEADS_DEPTH} is the depth sweep's run.",
        "",
    ]
    return lines
