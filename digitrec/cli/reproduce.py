"""`make reproduce-paper PROFILE=smoke|cpu|gpu`: the paper's results table, ours beside it.

    digitrec-reproduce --profile smoke          # minutes on a CPU (conf/reproduce/smoke.yaml)
    digitrec-reproduce --profile cpu            # about an hour on 2 CPU cores
    digitrec-reproduce --profile gpu            # one GPU, real SVHN (downloads it)
    digitrec-reproduce --profile smoke --dry-run   # print the commands only

Three sweeps, each one MLflow parent run in the experiment `reproduce_<profile>`:
(a) sequence accuracy vs depth (the paper's Figure 5) on SVHN, (b) the best depth's coverage at
98% accuracy and its accuracy-vs-coverage curve, (c) separate vs shared vs recurrent heads on SVHN
(at depth 8; the separate head is the depth sweep's run) and on synthetic MNIST numbers. SVHN is
the real one when <data_dir>/svhn has its train and test folders, else the rendered SYNTHETIC
stand-in (`digitrec-data street`), and the report says which. Every SVHN model is also read on
the real SVHN test images of <data_dir>/svhn/real/test when they are there (digitrec.analysis.reproduce.
real_svhn). Writes <out>/README.md, depth.png and coverage.png (default out:
experiments/reproduce-paper).

Resumable: the sweeps go to outputs/reproduce-paper/<profile> (--sweep-dir); run the same command
again after a kill and only the jobs without a finished run are run (digitrec.analysis.reproduce.jobs).
--fresh starts over in a new folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path

from mlflow.tracking import MlflowClient

from digitrec.analysis.reproduce import jobs, paper_table, real_svhn
from digitrec.cli._common import Parser
from digitrec.paths import default_tracking_uri
from digitrec.tracking import add_uri_argument, git_commit

REPO = jobs.REPO


def sweeps(profile, svhn: list[str], mnist: list[str]) -> list[jobs.Sweep]:
    """The three sweeps; the heads sweep on SVHN leaves out the head the depth sweep trains at
    the paper's depth (separate)."""
    depths = [str(d) for d in profile.svhn.depths]
    heads = [str(h) for h in profile.svhn.heads]
    if str(paper_table.HEADS_DEPTH) in depths:
        heads = [h for h in heads if h != "separate"]
    return [
        jobs.Sweep("depth", "model.depth", depths, svhn),
        jobs.Sweep(
            "heads_svhn", "model.head", heads, [*svhn, f"model.depth={paper_table.HEADS_DEPTH}"]
        ),
        jobs.Sweep("heads_mnist", "model.head", [str(h) for h in profile.mnist.heads], mnist),
    ]


def parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="digitrec-reproduce",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--profile", default="smoke", help="smoke | cpu | gpu | a .yaml path")
    parser.add_argument("--out", type=Path, default=REPO / "experiments" / "reproduce-paper")
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("DIGITREC_DATA_DIR", REPO / ".data"))
    )
    parser.add_argument(
        "--render-dir",
        type=Path,
        help="where the rendered stand-in goes (default .data/street-PROFILE)",
    )
    parser.add_argument(
        "--sweep-dir",
        type=Path,
        help="the sweeps' folders (default outputs/reproduce-paper/PROFILE); "
        "an earlier attempt there is resumed",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="start over in a new sweep folder (the sweep folder's name + -<time>)",
    )
    add_uri_argument(parser)
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    name, profile = jobs.load_profile(args.profile)
    command = "digitrec-reproduce " + " ".join(argv if argv is not None else sys.argv[1:])
    data_dir = args.data_dir.resolve()
    render_dir = (args.render_dir or REPO / ".data" / f"street-{name}").resolve()
    uri = args.uri or default_tracking_uri(REPO)
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):  # the jobs run in REPO
        uri = f"sqlite:///{Path(uri.removeprefix('sqlite:///')).resolve()}"
    study = f"reproduce_{name}"
    sweep_root = (args.sweep_dir or REPO / "outputs" / "reproduce-paper" / name).resolve()
    if args.fresh:
        sweep_root = sweep_root.with_name(f"{sweep_root.name}-{datetime.now():%Y-%m-%d_%H-%M-%S}")
    start = time.perf_counter()
    commit = git_commit(REPO)  # now: the report's own plots would make the tree look changed

    root, svhn_label = jobs.svhn_source(profile, data_dir, render_dir, args.dry_run)
    svhn = [*profile.svhn.overrides, f"paths.data_dir={data_dir}", f"data.root={root}"]
    mnist = [*profile.mnist.overrides, f"paths.data_dir={data_dir}"]
    plan = [s for s in sweeps(profile, svhn, mnist) if s.values]
    if args.dry_run:
        for s in plan:
            jobs.run_sweep(s, study, sweep_root, uri, dry_run=True)
        return 0
    for s in plan:  # every sweep's recipe checked before any runs
        jobs.check_recipe(s, sweep_root)
    with jobs.lock(sweep_root):
        if "real" not in svhn_label:  # once, not in two jobs at a time
            jobs.build_caches(root)
        ran = {s.name: jobs.run_sweep(s, study, sweep_root, uri, dry_run=False) for s in plan}
    parents = {k: v[0] for k, v in ran.items()}
    if not any(parents.values()):
        print("digitrec-reproduce: no sweep ran; nothing to report", file=sys.stderr)
        return 1
    client = MlflowClient(tracking_uri=uri)
    runs = {s.name: jobs.finished_children(client, parents[s.name], s) for s in plan}
    real_root = real_svhn.real_test_root(data_dir)
    real_svhn.measure_all(client, runs.get("depth", []) + runs.get("heads_svhn", []), real_root)
    runs = {
        s.name: jobs.finished_children(client, parents[s.name], s)  # with the real readings
        for s in plan
    }
    missing = {
        s.name: [v for v in s.values if v not in {r.data.params.get(s.key) for r in runs[s.name]}]
        for s in plan
    }
    missing = {k: v for k, v in missing.items() if v}
    for part in ("depth", "heads_svhn", "heads_mnist"):
        runs.setdefault(part, [])
    args.out.mkdir(parents=True, exist_ok=True)
    minutes = (time.perf_counter() - start) / 60
    resumed = any(v[1] for v in ran.values())
    ctx = paper_table.Context(
        name,
        profile,
        command,
        svhn_label,
        study,
        uri,
        parents,
        minutes,
        resumed,
        real_root,
        missing,
        commit,
    )
    paper_table.report(ctx, client, runs, args.out)
    print(f"wrote {args.out / 'README.md'}, depth.png, coverage.png ({minutes:.1f} min)")
    if missing:
        print(
            "digitrec-reproduce: jobs without a finished run: "
            + "; ".join(f"{k}: {', '.join(v)}" for k, v in missing.items())
            + " (run the command again to "
            "run them)",
            file=sys.stderr,
        )
        return 1
    return 0
