"""`digitrec-reproduce` (make reproduce-paper): the paper's results table, ours beside it.

cli (the command), jobs (profile, data, the sweeps, resumable per job), real_svhn (every SVHN
model read on real SVHN test images), paper_table (the report and its plots)."""

from digitrec.reproduce.cli import main

__all__ = ["main"]
