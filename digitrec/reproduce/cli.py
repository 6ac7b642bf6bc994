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
the real SVHN test images of <data_dir>/svhn/real/test when they are there (digitrec.reproduce.
real_svhn). Writes <out>/README.md, depth.png and coverage.png (default out:
experiments/reproduce-paper).

Resumable: the sweeps go to outputs/reproduce-paper/<profile> (--sweep-dir); run the same command
again after a kill and only the jobs without a finished run are run (digitrec.reproduce.jobs).
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

from digitrec.reproduce import jobs, paper_table, real_svhn
from digitrec.tracking import add_uri_argument

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
        ),  # fmt: skip
        jobs.Sweep("heads_mnist", "model.head", [str(h) for h in profile.mnist.heads], mnist),
    ]


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
                        help="the sweeps' folders (default outputs/reproduce-paper/PROFILE); "
                             "an earlier attempt there is resumed")  # fmt: skip
    parser.add_argument("--fresh", action="store_true",
                        help="start over in a new sweep folder (PROFILE-<time>) instead of resuming")  # fmt: skip
    add_uri_argument(parser)
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    name, profile = jobs.load_profile(args.profile)
    command = "digitrec-reproduce " + " ".join(argv if argv is not None else sys.argv[1:])
    data_dir = args.data_dir.resolve()
    render_dir = (args.render_dir or REPO / ".data" / f"street-{name}").resolve()
    uri = args.uri or f"sqlite:///{REPO / 'mlflow.db'}"
    study = f"reproduce_{name}"
    default_root = REPO / "outputs" / "reproduce-paper"
    sweep_root = (args.sweep_dir or (default_root / f"{name}-{datetime.now():%Y-%m-%d_%H-%M-%S}"
                                     if args.fresh else default_root / name)).resolve()  # fmt: skip
    resumed = any((sweep_root / s / jobs.PARENT_FILE).is_file()
                  for s in ("depth", "heads_svhn", "heads_mnist"))  # fmt: skip
    start = time.perf_counter()

    root, svhn_label = jobs.svhn_source(profile, data_dir, render_dir, args.dry_run)
    if not args.dry_run and "real" not in svhn_label:  # once, not in two jobs at a time
        jobs.build_caches(root)
    svhn = [*profile.svhn.overrides, f"paths.data_dir={data_dir}", f"data.root={root}"]
    mnist = [*profile.mnist.overrides, f"paths.data_dir={data_dir}"]
    parents = {s.name: jobs.run_sweep(s, study, sweep_root, uri, args.dry_run)
               for s in sweeps(profile, svhn, mnist) if s.values}  # fmt: skip
    if args.dry_run:
        return 0
    if not any(parents.values()):
        print("digitrec-reproduce: no sweep ran; nothing to report", file=sys.stderr)
        return 1
    client = MlflowClient(tracking_uri=uri)
    real_root = real_svhn.real_test_root(data_dir)
    svhn_runs = [r for part in ("depth", "heads_svhn")
                 for r in jobs.finished_children(client, parents.get(part))]  # fmt: skip
    real_svhn.measure_all(client, svhn_runs, real_root)
    runs = {part: jobs.finished_children(client, parents.get(part))  # after the real readings
            for part in ("depth", "heads_svhn", "heads_mnist")}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    minutes = (time.perf_counter() - start) / 60
    ctx = paper_table.Context(name, profile, command, svhn_label, study, uri, parents, minutes,
                              resumed, real_root)  # fmt: skip
    paper_table.report(ctx, client, runs, args.out)
    print(f"wrote {args.out / 'README.md'}, depth.png, coverage.png ({minutes:.1f} min)")
    return 0 if all(parents.values()) else 1
