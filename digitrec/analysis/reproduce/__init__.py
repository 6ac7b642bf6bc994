"""The paper's results table, ours beside it (digitrec-reproduce: digitrec.cli.reproduce).

jobs (profile, data, the sweeps, resumable per job), real_svhn (every SVHN model read on real
SVHN test images), paper_table (the report and its plots)."""
