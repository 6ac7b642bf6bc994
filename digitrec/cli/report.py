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
import sys
from pathlib import Path

from digitrec.analysis.report import (
    ReportError,
    find_sweep,
    markdown,
    plot,
    summarize,
    write_section,
)
from digitrec.cli._common import Parser
from digitrec.tracking import add_uri_argument, open_store


def main(argv: list[str] | None = None) -> int:
    parser = Parser(
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
