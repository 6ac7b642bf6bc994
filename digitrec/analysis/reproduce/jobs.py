"""The reproduction's jobs: its profile, its SVHN data, and its three sweeps, resumable per job.

A sweep's jobs go to `<sweep root>/<sweep>/<key>-<value>` (e.g. `depth/depth-8`), its MLflow
parent run id to `<sweep root>/<sweep>/PARENT_FILE`, its fixed overrides to RECIPE_FILE. Run again
over the same sweep root, a sweep whose parent is in the store runs only the values without a
FINISHED child (into the same parent run, `tracking.sweep_parent`); a sweep with every value
finished is not run at all. A job killed half-way is run again from its start (its run, left
RUNNING, is marked KILLED; its folder is renamed <key>-<value>.attempt-<time>): the unit of
resuming is the job. A resume with other fixed overrides is refused; one process at a time.
"""

from __future__ import annotations

import fcntl
import shlex
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from digitrec.data.street import street_command
from digitrec.io import atomic_write_bytes
from digitrec.paths import ROOT
from digitrec.tracking import PARENT_FILE, children_of, record_best

REPO = ROOT  # the jobs run in the repository (its conf/, outputs/, mlflow.db)
PROFILES = REPO / "conf" / "reproduce"
OBJECTIVE = "val/sequence_accuracy"


def load_profile(name: str):
    path = Path(name) if name.endswith(".yaml") else PROFILES / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROFILES.glob("*.yaml")))
        raise SystemExit(
            f"digitrec-reproduce: no profile {name!r} (known: {known}; or a .yaml path)"
        )
    return path.stem, OmegaConf.load(path)


def run_command(cmd: list[str], dry_run: bool) -> int:
    print("$ " + shlex.join(str(c) for c in cmd), flush=True)
    if dry_run:
        return 0
    return subprocess.run(cmd, cwd=REPO).returncode


def svhn_source(profile, data_dir: Path, render_dir: Path, dry_run: bool) -> tuple[Path, str]:
    """(root, description): real SVHN when present (or required), else the rendered stand-in."""
    real = data_dir / "svhn"
    if all((real / s / "digitStruct.mat").is_file() for s in ("train", "test")):
        return real, "SVHN (real)"
    if profile.svhn.get("require_real"):  # the datamodule downloads it, or says why it cannot
        return real, "SVHN (real, downloaded)"
    if not (render_dir / "test" / "digitStruct.mat").is_file():  # test is rendered last
        labels = data_dir / "svhn" / "labels"
        limits = {"train": int(profile.svhn.get("render_limit") or 0)}
        limits["test"] = int(profile.svhn.get("render_test_limit") or limits["train"])
        for split, limit in limits.items():
            cmd = street_command(render_dir, split, labels, limit, data_dir=data_dir)
            if run_command(cmd, dry_run):
                raise SystemExit(
                    f"digitrec-reproduce: rendering the stand-in's {split} split "
                    f"into {render_dir} failed"
                )
    return render_dir, "rendered stand-in (SYNTHETIC, not SVHN)"


def build_caches(root: Path) -> None:
    """The stand-in's caches at the paper's preprocessing (what the SVHN jobs read), built here
    so that two jobs starting together do not both build them."""
    from digitrec.data import svhn

    for split in ("train", "test"):
        svhn.build_cache(root, split, svhn.Preprocessing(), download=False)


@dataclass
class Sweep:
    """One multirun over `key` (a Hydra override such as model.depth) taking `values`."""

    name: str
    key: str
    values: list[str]
    overrides: list[str]  # the profile's, the data's, and any fixed ones (model.depth=8)

    @property
    def short(self) -> str:
        return self.key.rsplit(".", 1)[-1]


def finished_values(client: MlflowClient, parent_id: str, key: str) -> dict[str, object]:
    """value of `key` → the FINISHED child run that has it (the latest, when several do)."""
    children = children_of(client, client.get_run(parent_id), order_by=["start_time ASC"])
    return {
        c.data.params[key]: c
        for c in children
        if c.info.status == "FINISHED" and key in c.data.params
    }


def close_killed(client: MlflowClient, parent_id: str) -> None:
    """Children an earlier attempt left RUNNING (their process was killed) are marked KILLED."""
    for c in children_of(client, client.get_run(parent_id)):
        if c.info.status == "RUNNING":
            client.set_terminated(c.info.run_id, "KILLED")
            print(
                f"digitrec-reproduce: run {c.info.run_id} of an earlier attempt was left "
                "running (killed): marked KILLED, its job runs again",
                flush=True,
            )


def earlier_parent(client: MlflowClient, sweep_dir: Path) -> str | None:
    """The parent run of an earlier attempt at this sweep, when it is in this store (a parent
    file naming a run this store does not have, or a deleted one, is moved aside)."""
    path = sweep_dir / PARENT_FILE
    if not path.is_file():
        return None
    parent_id = path.read_text().strip()
    try:
        run = client.get_run(parent_id)
    except MlflowException as e:
        if e.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise  # a store that does not answer is not a store without the run
        run = None
    if run is None or run.info.lifecycle_stage == "deleted":
        stale = path.with_name(f"{PARENT_FILE}.stale-{datetime.now():%Y%m%d-%H%M%S}")
        path.replace(stale)
        print(
            f"digitrec-reproduce: {path} named run {parent_id}, which "
            f"{client.tracking_uri} does not have (or deleted): moved to {stale.name}; the "
            "sweep starts afresh",
            file=sys.stderr,
        )
        return None
    return parent_id


RECIPE_FILE = "reproduce_overrides.txt"


def check_recipe(sweep: Sweep, sweep_root: Path) -> None:
    """A sweep resumed over `sweep_root` must have the fixed overrides it was started with
    (finished jobs of another recipe are not results of this one)."""
    path = sweep_root / sweep.name / RECIPE_FILE
    if not path.is_file() or not (sweep_root / sweep.name / PARENT_FILE).is_file():
        return
    old = path.read_text().splitlines()
    if old != list(sweep.overrides):
        changed = sorted(set(old) ^ set(sweep.overrides))
        raise SystemExit(
            f"digitrec-reproduce: {path}: the sweep there was run with other "
            f"overrides (differing: {' '.join(changed)}); pass --fresh to start "
            "over in a new folder"
        )


def set_aside(folder: Path) -> None:
    """An earlier attempt's job folder, renamed so that the job starts clean (Lightning would
    otherwise save best-v1.ckpt beside the old best.ckpt)."""
    if folder.exists():
        folder.rename(folder.with_name(f"{folder.name}.attempt-{datetime.now():%Y%m%d-%H%M%S}"))


def run_sweep(
    sweep: Sweep, study: str, sweep_root: Path, uri: str, dry_run: bool
) -> tuple[str | None, bool]:
    """Run the sweep's missing jobs; returns its parent run id (None: it never started) and
    whether it continued an earlier attempt."""
    sweep_dir = sweep_root / sweep.name
    parent_id, todo = None, list(sweep.values)
    if not dry_run:  # a dry run opens no store
        client = MlflowClient(tracking_uri=uri)
        parent_id = earlier_parent(client, sweep_dir)
    if parent_id is not None:
        close_killed(client, parent_id)
        done = finished_values(client, parent_id, sweep.key)
        todo = [v for v in sweep.values if v not in done]
        if not todo:
            print(
                f"digitrec-reproduce: sweep {sweep.name}: every job finished before "
                f"(parent run {parent_id}); not run again",
                flush=True,
            )
            if client.get_run(parent_id).info.status != "FINISHED":  # killed before it closed
                record_best(client, client.get_run(parent_id), OBJECTIVE, True, [sweep.key])
            return parent_id, True
        print(
            f"digitrec-reproduce: sweep {sweep.name}: {len(done)} of {len(sweep.values)} jobs "
            f"finished before; running {sweep.short}={','.join(todo)} into parent run "
            f"{parent_id}",
            flush=True,
        )
        for value in todo:
            set_aside(sweep_dir / f"{sweep.short}-{value}")
    if not dry_run:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(sweep_dir / RECIPE_FILE, ("\n".join(sweep.overrides) + "\n").encode())
    cmd = [
        sys.executable,
        "-m",
        "digitrec.cli.train",
        "-m",
        *sweep.overrides,
        f"{sweep.key}={','.join(todo)}",
        f"study={study}",
        f"tracking.uri={uri}",
        f"tracking.sweep_name={sweep.name}",
        f"hydra.sweep.dir={sweep_dir}",
        f"hydra.sweep.subdir={sweep.short}-${{{sweep.key}}}",
    ]
    if parent_id is not None:
        cmd.append(f"tracking.sweep_parent={parent_id}")
    code = run_command(cmd, dry_run)
    parent = sweep_dir / PARENT_FILE
    if dry_run or not parent.is_file():
        if not dry_run:
            print(
                f"digitrec-reproduce: sweep {sweep.name} did not start (exit {code})",
                file=sys.stderr,
            )
        return None, parent_id is not None
    if code:
        print(
            f"digitrec-reproduce: sweep {sweep.name} exited {code}; reporting its finished runs",
            file=sys.stderr,
        )
    return parent.read_text().strip(), parent_id is not None


def finished_children(client: MlflowClient, parent_id: str | None, sweep: Sweep) -> list:
    """The sweep's FINISHED children, one per value of the profile (the latest)."""
    if parent_id is None:
        return []
    done = finished_values(client, parent_id, sweep.key)
    return [done[v] for v in sweep.values if v in done]


@contextmanager
def lock(sweep_root: Path):
    """One digitrec-reproduce at a time over a sweep folder (a second would rerun the first's
    jobs into the same folders)."""
    sweep_root.mkdir(parents=True, exist_ok=True)
    with open(sweep_root / ".lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(
                f"digitrec-reproduce: another digitrec-reproduce is running over {sweep_root}"
            ) from None
        yield
