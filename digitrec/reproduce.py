"""`make reproduce-paper PROFILE=smoke|cpu|gpu`: the paper's results table, ours beside it.

    digitrec-reproduce --profile smoke          # minutes on a CPU (conf/reproduce/smoke.yaml)
    digitrec-reproduce --profile cpu            # hours on a CPU
    digitrec-reproduce --profile gpu            # one GPU, real SVHN (downloads it)
    digitrec-reproduce --profile smoke --dry-run   # print the commands only

Three sweeps, each one MLflow parent run in the experiment `reproduce_<profile>`:
(a) sequence accuracy vs depth (3-11 hidden layers, the paper's Figure 5) on SVHN, (b) the best
depth's coverage at 98% accuracy and its accuracy-vs-coverage curve, (c) separate vs shared vs
recurrent heads on SVHN (at depth 8) and on synthetic MNIST numbers. SVHN is the real one when
<data_dir>/svhn has its train and test folders, else the rendered SYNTHETIC stand-in
(`digitrec-data street`), and the report says which. Writes <out>/README.md, depth.png and
coverage.png (default out: experiments/reproduce-paper).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from digitrec.data.download import atomic_write_bytes
from digitrec.plots import finish_figure
from digitrec.tracking import PARENT_FILE, add_uri_argument, best_run, children_of, git_commit

REPO = Path(__file__).resolve().parent.parent
PROFILES = REPO / "conf" / "reproduce"
# Goodfellow et al. 2014 on SVHN; the depth curve is read off their Figure 5
PAPER = {"sequence_accuracy": 0.9603, "digit_accuracy": 0.9784, "coverage_at_98": 0.9564}
PAPER_DEPTH = {3: 0.923, 5: 0.947, 8: 0.957, 11: 0.960}
PAPER_DEPTH_OF_BEST = 8  # the network of the headline figures ("8 convolutional hidden layers")


def load_profile(name: str):
    path = Path(name) if name.endswith(".yaml") else PROFILES / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROFILES.glob("*.yaml")))
        raise SystemExit(
            f"digitrec-reproduce: no profile {name!r} (known: {known}; or a .yaml path)"
        )
    return path.stem, OmegaConf.load(path)


def svhn_source(profile, data_dir: Path, render_dir: Path, dry_run: bool) -> tuple[Path, str]:
    """(root, description): real SVHN when present (or required), else the rendered stand-in."""
    real = data_dir / "svhn"
    if all((real / s / "digitStruct.mat").is_file() for s in ("train", "test")):
        return real, "SVHN (real)"
    if profile.svhn.get("require_real"):  # the datamodule downloads it, or says why it cannot
        return real, "SVHN (real, downloaded)"
    if not (render_dir / "test" / "digitStruct.mat").is_file():
        limit = int(profile.svhn.get("render_limit") or 0)
        labels = data_dir / "svhn" / "labels"
        cmd = [sys.executable, "-m", "digitrec.data.cli", "street", "--out", str(render_dir),
               "--data-dir", str(data_dir)]  # fmt: skip
        if (labels / "train.json.gz").is_file():
            cmd += ["--labels", str(labels)] + (["--limit", str(limit)] if limit else [])
        else:
            cmd += ["--random", str(limit or 33402)]
        _run(cmd, dry_run)
    return render_dir, "rendered stand-in (SYNTHETIC, not SVHN)"


def _run(cmd: list[str], dry_run: bool) -> int:
    print("$ " + shlex.join(str(c) for c in cmd), flush=True)
    if dry_run:
        return 0
    return subprocess.run(cmd, cwd=REPO).returncode


def sweep(name: str, params: list[str], overrides: list[str], study: str, sweep_root: Path,
          uri: str | None, dry_run: bool) -> str | None:  # fmt: skip
    """One multirun (an MLflow parent + a child per job); returns the parent run id."""
    sweep_dir = sweep_root / name
    cmd = [sys.executable, "-m", "digitrec.train", "-m", *overrides, *params, f"study={study}",
           f"tracking.sweep_name={name}", f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    if uri:
        cmd.append(f"tracking.uri={uri}")
    code = _run(cmd, dry_run)
    parent = sweep_dir / PARENT_FILE
    if dry_run or not parent.is_file():
        if not dry_run:
            print(f"digitrec-reproduce: sweep {name} did not start (exit {code})", file=sys.stderr)
        return None
    if code:
        print(f"digitrec-reproduce: sweep {name} exited {code}; reporting its finished runs",
              file=sys.stderr)  # fmt: skip
    return parent.read_text().strip()


def finished_children(client: MlflowClient, parent_id: str | None) -> list:
    if parent_id is None:
        return []
    return [
        c for c in children_of(client, client.get_run(parent_id)) if c.info.status == "FINISHED"
    ]


def coverage_curve(client: MlflowClient, run) -> tuple[np.ndarray, np.ndarray]:
    """(coverage, accuracy) of the run's test answers ranked by confidence."""
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(run.info.run_id, "test_confidence.npz", tmp)
        with np.load(path) as f:
            confidence, correct = f["confidence"], f["correct"].astype(np.float64)
    order = np.argsort(-confidence, kind="stable")
    k = np.arange(1, len(order) + 1)
    return k / len(order), np.cumsum(correct[order]) / k


def plots(depth_rows: list[dict], curve, best_cov: float, out: Path, label: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, depth = plt.subplots(figsize=(6, 3.6), dpi=120)
    xs = [r["depth"] for r in depth_rows]
    depth.plot(xs, [100 * r["test"] for r in depth_rows], "o-", label=f"ours: {label}")
    depth.plot(list(PAPER_DEPTH), [100 * v for v in PAPER_DEPTH.values()], "s--", color="gray",
               label="paper: SVHN (read off Fig. 5)")  # fmt: skip
    depth.set_xticks(xs)
    finish_figure(fig, depth, out / "depth.png", "hidden layers", "test sequence accuracy (%)",
                  "sequence accuracy vs depth")  # fmt: skip

    fig, cover = plt.subplots(figsize=(6, 3.6), dpi=120)
    if curve is not None:
        cover.plot(100 * curve[0], 100 * curve[1], label=f"ours: best depth, {label}")
        cover.plot([100 * best_cov], [98], "o", color="C0")
    cover.plot([100 * PAPER["coverage_at_98"]], [98], "s", color="gray",
               label="paper: 95.64% at 98%")  # fmt: skip
    cover.axhline(98, color="k", lw=0.6, ls=":")
    finish_figure(fig, cover, out / "coverage.png", "coverage (%): the most confident answers kept",
                  "sequence accuracy (%)", "accuracy vs coverage")  # fmt: skip


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


def _metric(run, key: str) -> float | None:
    return run.data.metrics.get(key)


def report(profile_name: str, profile, command: str, svhn_label: str, study: str, uri: str,
           parents: dict[str, str | None], client: MlflowClient, out: Path,
           minutes: float) -> str:  # fmt: skip
    depth_runs = finished_children(client, parents.get("depth"))
    depth_rows = sorted(({"depth": int(r.data.params["model.depth"]), "run": r,
                          "val": _metric(r, "val/sequence_accuracy"),
                          "test": _metric(r, "test/sequence_accuracy")} for r in depth_runs),
                        key=lambda row: row["depth"])  # fmt: skip
    best = best_run(depth_runs, "val/sequence_accuracy")
    curve = coverage_curve(client, best) if best is not None else None
    best_cov = _metric(best, "test/coverage_at_98") if best is not None else None
    plots(depth_rows, curve, best_cov or 0.0, out, svhn_label.split(" (")[0])

    ids = ", ".join(f"{k} `{v}`" for k, v in parents.items() if v)
    lines = [
        "# Reproducing Goodfellow et al. 2014 (arXiv 1312.6082)",
        "",
        f"Generated by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit "
        f"`{git_commit(REPO)[:12]}`, profile **{profile_name}**: {profile.description}. "
        f"Data preparation and the three sweeps took {minutes:.1f} min on {os.cpu_count()} "
        "CPU cores" + (" and a GPU" if torch.cuda.is_available() else "") + ".",
        "",
        f"- SVHN figures come from: **{svhn_label}**.",
        f"- MLflow experiment `{study}` ({uri}); sweep parent runs: {ids}.",
        "- Overrides of the SVHN runs: `" + " ".join(profile.svhn.overrides) + "`.",
        "- Overrides of the MNIST runs: `" + " ".join(profile.mnist.overrides) + "`.",
        "- Compare them: `digitrec-compare " + " ".join(v for v in parents.values() if v) + "`.",
        "",
        "## The paper's table beside ours",
        "",
        f"Ours: the depth with the best validation sequence accuracy "
        f"(depth {best.data.params['model.depth'] if best else '–'}, run "
        f"`{best.info.run_id if best else '–'}`), on the test split of {svhn_label}.",
        "",
        "| figure | paper (SVHN) | ours | ours: data |",
        "|---|---|---|---|",
    ]
    for key, name in (("sequence_accuracy", "sequence accuracy"),
                      ("digit_accuracy", "per-digit accuracy"),
                      ("coverage_at_98", "coverage at 98% accuracy")):  # fmt: skip
        ours = _metric(best, f"test/{key}") if best is not None else None
        lines.append(f"| {name} | {_pct(PAPER[key])} | {_pct(ours)} | {svhn_label} |")
    lines += [
        "",
        "## (a) Sequence accuracy vs depth (the paper's Figure 5)",
        "",
        "| hidden layers | paper (SVHN, read off Fig. 5) | ours: val | ours: test | MLflow run |",
        "|---|---|---|---|---|",
    ]
    for row in depth_rows:
        lines.append(f"| {row['depth']} | {_pct(PAPER_DEPTH.get(row['depth']))} | "
                     f"{_pct(row['val'])} | {_pct(row['test'])} | `{row['run'].info.run_id}` |")  # fmt: skip
    lines += ["", "![accuracy vs depth](depth.png)", "",
              "## (b) Coverage: accuracy of the most confident answers", "",
              f"Best depth's test answers ranked by confidence; coverage at 98% accuracy: "
              f"{_pct(best_cov)} (paper: 95.64%).", "", "![accuracy vs coverage](coverage.png)",
              "", "## (c) Separate vs shared vs recurrent heads", "",
              "| data | head | ours: val | ours: test | per-digit | coverage@98 | MLflow run |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for part, label in (("heads_svhn", f"{svhn_label}, depth 8"),
                        ("heads_mnist", "synthetic MNIST numbers")):  # fmt: skip
        for r in sorted(finished_children(client, parents.get(part)),
                        key=lambda r: r.data.params["model.head"]):  # fmt: skip
            lines.append(f"| {label} | {r.data.params['model.head']} | "
                         f"{_pct(_metric(r, 'val/sequence_accuracy'))} | "
                         f"{_pct(_metric(r, 'test/sequence_accuracy'))} | "
                         f"{_pct(_metric(r, 'test/digit_accuracy'))} | "
                         f"{_pct(_metric(r, 'test/coverage_at_98'))} | `{r.info.run_id}` |")  # fmt: skip
    lines += [
        "",
        "The paper uses separate softmax heads; it reports no shared or recurrent head.",
        "",
    ]
    text = "\n".join(lines)
    atomic_write_bytes(out / "README.md", text.encode())
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="digitrec-reproduce", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--profile", default="smoke", help="smoke | cpu | gpu | a .yaml path")
    parser.add_argument("--out", type=Path, default=REPO / "experiments" / "reproduce-paper")
    parser.add_argument("--data-dir", type=Path,
                        default=Path(os.environ.get("DIGITREC_DATA_DIR", REPO / ".data")))  # fmt: skip
    parser.add_argument("--render-dir", type=Path,
                        help="where the rendered stand-in goes (default .data/street-PROFILE)")  # fmt: skip
    parser.add_argument("--sweep-dir", type=Path,
                        help="the sweeps' output folders (default outputs/reproduce-paper/"
                             "PROFILE-<time>)")  # fmt: skip
    add_uri_argument(parser)
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    name, profile = load_profile(args.profile)
    command = "digitrec-reproduce " + " ".join(argv if argv is not None else sys.argv[1:])
    data_dir = args.data_dir.resolve()
    render_dir = (args.render_dir or REPO / ".data" / f"street-{name}").resolve()
    uri = args.uri or f"sqlite:///{REPO / 'mlflow.db'}"
    study = f"reproduce_{name}"
    sweep_root = (
        args.sweep_dir
        or REPO / "outputs" / "reproduce-paper" / f"{name}-{datetime.now():%Y-%m-%d_%H-%M-%S}"
    ).resolve()
    start = time.perf_counter()

    root, svhn_label = svhn_source(profile, data_dir, render_dir, args.dry_run)
    svhn = [*profile.svhn.overrides, f"paths.data_dir={data_dir}", f"data.root={root}"]
    mnist = [*profile.mnist.overrides, f"paths.data_dir={data_dir}"]
    depths = ",".join(str(d) for d in profile.svhn.depths)
    parents = {
        "depth": sweep(
            "depth", [f"model.depth={depths}"], svhn, study, sweep_root, uri, args.dry_run
        ),  # fmt: skip
        "heads_svhn": sweep(
            "heads_svhn",
            ["model.depth=8", "model.head=" + ",".join(profile.svhn.heads)],
            svhn,
            study,
            sweep_root,
            uri,
            args.dry_run,
        ),  # fmt: skip
        "heads_mnist": sweep(
            "heads_mnist",
            ["model.head=" + ",".join(profile.mnist.heads)],
            mnist,
            study,
            sweep_root,
            uri,
            args.dry_run,
        ),  # fmt: skip
    }
    if args.dry_run:
        return 0
    if not any(parents.values()):
        print("digitrec-reproduce: no sweep ran; nothing to report", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=uri)
    minutes = (time.perf_counter() - start) / 60
    report(name, profile, command, svhn_label, study, uri, parents, client, args.out, minutes)
    print(f"wrote {args.out / 'README.md'}, depth.png, coverage.png ({minutes:.1f} min)")
    return 0 if all(parents.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
