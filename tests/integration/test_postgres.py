"""Past one machine, really run: a PostgreSQL server on 127.0.0.1, an `mlflow server` over it
with an artifact root, and a sweep of 4 jobs, 2 at a time, tracked through that server; the
sweep's best model registered and read back through the server.

Needs PostgreSQL's `initdb` and `postgres` (Debian's `postgresql`; .ci/run installs it): skipped
without them, failing instead in CI (CI=true)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import small_overrides
from helpers import free_port, mlflow_server, stop, train_cli, unavailable, wait_until
from mlflow.tracking import MlflowClient

from digitrec.cli import compare
from digitrec.registry import resolve

FAST = ["trainer.max_epochs=1", "trainer.num_sanity_val_steps=0", "trainer.log_every_n_steps=2"]


def _tool(name: str) -> str | None:
    """A PostgreSQL program: on PATH, else in Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL cluster on 127.0.0.1 with an empty database `mlflow`: its URI."""
    initdb, postgres = _tool("initdb"), _tool("postgres")
    if not (initdb and postgres):
        unavailable("PostgreSQL (initdb, postgres): apt-get install postgresql")
    import psycopg

    # outside pytest's tmp folders, which only their owner can enter: PostgreSQL refuses to run
    # as root, so as root the cluster belongs to the `postgres` user
    home = Path(tempfile.mkdtemp(prefix="digitrec-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(home, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [
            *as_user,
            initdb,
            "-D",
            str(home / "db"),
            "-U",
            "mlflow",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = free_port()
    server = subprocess.Popen(
        [
            *as_user,
            postgres,
            "-D",
            str(home / "db"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-k",
            str(home),
            "-c",
            "fsync=off",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    admin = f"postgresql://mlflow@127.0.0.1:{port}/postgres"

    def accepting() -> bool:
        try:
            psycopg.connect(admin, connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    try:
        wait_until(accepting, "postgres", server, seconds=60)
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as connection:
            connection.execute("CREATE DATABASE mlflow")
        yield f"postgresql+psycopg://mlflow@127.0.0.1:{port}/mlflow"
    finally:
        stop(server)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def server(postgres, tmp_path_factory):
    """`mlflow server` over the PostgreSQL store, artifacts under a local root: its URL."""
    root = tmp_path_factory.mktemp("server")
    with mlflow_server(postgres, root, "--artifacts-destination", str(root / "artifacts")) as url:
        yield url


def test_a_sweep_of_four_jobs_two_at_a_time_through_a_server_on_postgresql(
    server, postgres, tmp_path, fake_data_dir
):
    local = [
        o
        for o in small_overrides(tmp_path, fake_data_dir, store=False)
        if not o.startswith("tracking.")
    ]
    args = [
        "-m",
        "launcher=local",
        "hydra.launcher.n_jobs=2",
        "threads=1",
        "seed=0,1,2,3",
        f"tracking.uri={server}",
        "tracking.sweep_name=pg",
        "study=pg_sweep",
        f"hydra.sweep.dir={tmp_path}/sweep",
        *FAST,
        *local,
    ]
    result = train_cli(args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "mlflow.db").exists()  # nothing tracked beside the server

    client = MlflowClient(server)
    experiment = client.get_experiment_by_name("pg_sweep")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("sweep") == "true"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == 5 and len(children) == 4
    assert {c.data.params["seed"] for c in children} == {"0", "1", "2", "3"}
    for child in children:
        assert child.info.status == "FINISHED"
        assert {"val/sequence_accuracy", "test/sequence_accuracy", "train/loss"} <= set(
            child.data.metrics
        )
        assert child.info.artifact_uri.startswith("mlflow-artifacts:")  # through the server
    spans = sorted((c.info.start_time, c.info.end_time) for c in children)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))  # 2 at a time
    assert parent.info.status == "FINISHED" and parent.data.tags["best_run_id"] in {
        c.info.run_id for c in children
    }

    # the metrics are in PostgreSQL itself, not in a file beside the server
    import psycopg

    with psycopg.connect(postgres.replace("+psycopg", ""), connect_timeout=5) as connection:
        (count,) = connection.execute(
            "SELECT count(*) FROM runs WHERE experiment_id = %s", (experiment.experiment_id,)
        ).fetchone()
    assert count == 5

    # the best child registered through the server, and read back by its alias
    assert compare.main([parent.info.run_id, "--uri", server, "--register", "pg-reader"]) == 0
    version = client.get_model_version_by_alias("pg-reader", "champion")
    assert version.run_id == parent.data.tags["best_run_id"]
    checkpoint, localizer = resolve("models:/pg-reader@champion", tracking_uri=server)
    assert checkpoint.is_file() and localizer is None
