"""digitrec-train under bad input: a config mistake is one line before any run or folder exists;
an unusable tracking store, data file or checkpoint is one line (the traceback in the job's log),
a non-zero exit, and a FAILED run once one is open. Everything on loopback, every wait bounded."""

import logging
import os
import pickle
import shutil
import socket
import sqlite3
import time

import pytest
import torch
from conftest import REPO, compose_cfg, small_overrides
from mlflow.tracking import MlflowClient

from digitrec import tracking
from digitrec.checkpoints import CheckpointError
from digitrec.checkpoints import load as load_checkpoint
from digitrec.checkpoints import run_of as checkpoint_meta
from digitrec.cli.train import main
from digitrec.data.mnist import MNIST_FILES
from digitrec.tracking import TrackingError, probe_store
from digitrec.training.config_check import ConfigError, check
from digitrec.training.train import build as _build

FAST = ["trainer.max_epochs=1", "trainer.num_sanity_val_steps=0"]


@pytest.fixture(autouse=True)
def _restore_logging():
    """main() runs Hydra in this process: it replaces the root logger's handlers."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for h in root.handlers:
        if h not in handlers:
            h.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def _args(tmp_path, data_dir, *extra):
    base = small_overrides(tmp_path, data_dir, store=False)  # tests check nothing is created
    return [*base, f"hydra.run.dir={tmp_path}/run", *FAST, *extra]


def _main(args, capfd, tmp_path, monkeypatch):
    """Run digitrec-train's main in this process (cwd tmp_path): exit code, stderr, stdout."""
    monkeypatch.chdir(tmp_path)
    capfd.readouterr()  # what came before
    with pytest.raises(SystemExit) as exit_:
        main(args)
    out, err = capfd.readouterr()
    return exit_.value.code, err, out


def _one_line(err: str, out: str, *names: str) -> str:
    """The single `digitrec-train: ...` line on stderr, naming each of `names`; no traceback."""
    assert "Traceback" not in err + out, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith("digitrec-train: ")]
    assert len(lines) == 1, err[-3000:]
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


def _runs(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


# ------------------------------------------------------------------------- config values
@pytest.mark.parametrize(
    "extra, names",
    [
        (["data.batch_size=0"], ["data.batch_size=0", "integer >= 1"]),
        (["optimizer.lr=-1"], ["optimizer.lr=-1", "number > 0"]),
        (["model.depth=abc"], ["model.depth='abc'", "integer >= 1"]),
        (["model.head=foo"], ["model.head='foo'", "separate, shared, rnn"]),
        (["model=nope"], ["model/nope", "cnn"]),  # an unknown config group choice
        (["trainer.max_epochs=0.5"], ["trainer.max_epochs=0.5"]),
        (["model.fc_dropout=1.5"], ["model.fc_dropout=1.5", "< 1"]),
        (["data.min_len=4", "data.max_len=3"], ["data.min_len=4", "data.max_len=3"]),
        (["init_from=missing.ckpt"], ["init_from='missing.ckpt'", "existing checkpoint file"]),
        (["no_such_key=1"], ["no_such_key", "+no_such_key=1"]),
        (["-m", "seed=0,1", "data.batch_size=0"], ["data.batch_size=0"]),  # before the sweep
        # values only a constructor checks: still before any run (issue 30)
        (["data.max_len=3"], ["data.train_length_probs", "data.max_len=3"]),
        (["data.height=0"], ["height=0"]),
        (["data.gap=[5,1]"], ["data.gap=(5, 1)"]),
        (["data.glyphs=klingon"], ["data.glyphs='klingon'"]),
        pytest.param(
            ["trainer.accelerator=gpu"],
            ["trainer.accelerator=gpu", "no CUDA GPU"],
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present"),
        ),
    ],
    ids=[
        "batch_size",
        "lr",
        "depth",
        "head",
        "group",
        "epochs",
        "dropout",
        "lengths",
        "init_from",
        "unknown_key",
        "sweep",
        "max_len_vs_weights",
        "height",
        "gap",
        "glyphs",
        "accelerator",
    ],
)
def test_a_bad_config_value_is_one_line_before_any_run_or_folder(
    extra, names, tmp_path, fake_data_dir, capfd, monkeypatch
):
    flags = [a for a in extra if a.startswith("-")]
    args = [*flags, *_args(tmp_path, fake_data_dir), *[a for a in extra if a not in flags]]
    code, err, out = _main(args, capfd, tmp_path, monkeypatch)
    assert code == 2
    line = _one_line(err, out, *names)
    assert err.strip().splitlines() == [line]  # nothing else on stderr
    # no MLflow store, no run, no output (or sweep) folder
    assert sorted(os.listdir(tmp_path)) == [], sorted(os.listdir(tmp_path))


def test_every_shipped_config_passes_the_checks(tmp_path, fake_data_dir):
    for group in ("experiment", "hparams_search"):
        for path in sorted((REPO / "conf" / group).glob("*.yaml")):
            check(
                compose_cfg([f"paths.data_dir={fake_data_dir}", f"{group}={path.stem}"], tmp_path)
            )
    with pytest.raises(ConfigError, match=r"Invalid learning rate: optimizer.lr=0, expected"):
        check(compose_cfg(["optimizer.lr=0"], tmp_path))


def test_a_bad_value_in_a_sweep_fails_its_jobs_in_one_line(
    tmp_path, fake_data_dir, capfd, monkeypatch
):
    """A swept value is checked in each job: a FAILED child each, one line, no traceback."""
    closers = []  # the parent run is closed at exit when the sweep raises: do it here
    monkeypatch.setattr(tracking.atexit, "register", lambda f, *a: closers.append((f, a)))
    args = [
        "-m",
        *_args(tmp_path, fake_data_dir),
        f"hydra.sweep.dir={tmp_path}/sweep",
        "data.batch_size=0,-3",
    ]
    code, err, out = _main(args, capfd, tmp_path, monkeypatch)
    for f, a in closers:
        f(*a)
    assert code == 2
    _one_line(err, out, "data.batch_size=0", "expected an integer >= 1", "sweep/0/train.log")
    runs = _runs(tmp_path)
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert sorted(r.data.params["data.batch_size"] for r in children) == ["-3", "0"]
    assert {r.info.status for r in runs} == {"FAILED"}  # both jobs and the parent
    assert "ConfigError" in (tmp_path / "sweep" / "1" / "train.log").read_text()


# --------------------------------------------------------------------------- tracking store
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_tracking_server_fails_in_seconds_in_one_line(
    tmp_path, fake_data_dir, capfd, monkeypatch
):
    """Before: MLflow retried for over 4 minutes, then 112 lines of tracebacks."""
    uri = f"http://127.0.0.1:{_closed_port()}"
    start = time.perf_counter()
    code, err, out = _main(
        [*_args(tmp_path, fake_data_dir), f"tracking.uri={uri}"], capfd, tmp_path, monkeypatch
    )
    assert time.perf_counter() - start < 5
    assert code == 1
    line = _one_line(err, out, f"tracking.uri={uri}", "no tracking server answers")
    assert err.strip().splitlines() == [line]
    assert sorted(os.listdir(tmp_path)) == []  # no run folder


def test_a_server_that_never_answers_is_given_up_after_the_timeout():
    with socket.socket() as server:  # listens, never accepts or answers
        server.bind(("127.0.0.1", 0))
        server.listen()
        uri = f"http://127.0.0.1:{server.getsockname()[1]}"
        start = time.perf_counter()
        with pytest.raises(TrackingError, match=r"no tracking server answers \(.*0.5 s\)"):
            probe_store(uri, timeout=0.5)
        assert time.perf_counter() - start < 5


def _corrupt(tmp_path):
    (tmp_path / "mlflow.db").write_bytes(b"this is not an SQLite database\n" * 64)
    return f"sqlite:///{tmp_path}/mlflow.db", "is not an SQLite database"


def _sqlite_db(path):
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE t (x)")


def _read_only_uri(tmp_path):  # read-only for root too: SQLite's own read-only mode
    _sqlite_db(tmp_path / "mlflow.db")
    return f"'sqlite:///file:{tmp_path}/mlflow.db?mode=ro&uri=true'", "read-only"


def _read_only_file(tmp_path):  # not for root, who writes to read-only files: mode=ro covers it
    _sqlite_db(tmp_path / "mlflow.db")
    (tmp_path / "mlflow.db").chmod(0o444)
    return f"sqlite:///{tmp_path}/mlflow.db", "cannot be written"


STORES = [_corrupt, _read_only_uri] + ([_read_only_file] if os.geteuid() != 0 else [])


@pytest.mark.parametrize("store", STORES, ids=lambda f: f.__name__.strip("_"))
def test_an_unusable_sqlite_store_is_one_line_before_the_run(
    store, tmp_path, fake_data_dir, capfd, monkeypatch
):
    uri, problem = store(tmp_path)
    args = [*_args(tmp_path, fake_data_dir), f"tracking.uri={uri}"]
    code, err, out = _main(args, capfd, tmp_path, monkeypatch)
    assert code == 1
    line = _one_line(err, out, "mlflow.db", problem)
    assert err.strip().splitlines() == [line]
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------- data and checkpoints
def test_a_corrupt_data_file_is_one_line_and_a_failed_run(
    tmp_path, fake_data_dir, capfd, monkeypatch
):
    data = shutil.copytree(fake_data_dir, tmp_path / "data")
    images = data / "mnist" / f"{MNIST_FILES['train_images'].name}.gz"
    images.write_bytes(images.read_bytes()[:300])  # truncated
    code, err, out = _main(_args(tmp_path, data), capfd, tmp_path, monkeypatch)
    assert code == 1
    _one_line(
        err, out, str(images), "corrupt or truncated", f"traceback in {tmp_path}/run/train.log"
    )
    log = (tmp_path / "run" / "train.log").read_text()
    assert "Traceback" in log and "corrupt or truncated gzip file" in log
    (run,) = _runs(tmp_path)
    assert run.info.status == "FAILED" and run.data.params["data.batch_size"] == "32"


def test_an_unreadable_checkpoint_is_one_line(tmp_path, fake_data_dir, capfd, monkeypatch):
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"\x00not a checkpoint" * 40)
    pickled = tmp_path / "pickled.ckpt"
    pickled.write_bytes(pickle.dumps({"state_dict": {}}))  # pickle.dump, not torch.save
    for override, problem in [
        (f"init_from={garbage}", "not a readable PyTorch checkpoint"),
        (f"ckpt_path={pickled}", "a weights-only load refuses it"),
    ]:
        code, err, out = _main(
            _args(tmp_path, fake_data_dir, override), capfd, tmp_path, monkeypatch
        )
        assert code == 1, override
        line = _one_line(err, out, override, problem, "train.log")
        assert "_use_new_zipfile_serialization" not in line and "Please file" not in line
    # init_from fails in a run (FAILED); a resume before its run
    assert [r.info.status for r in _runs(tmp_path)] == ["FAILED"]


def test_checkpoint_errors_name_the_key_the_file_and_the_problem(tmp_path):
    weights = tmp_path / "weights.ckpt"
    torch.save({"weights": torch.zeros(2)}, weights)  # torch.save, but not Lightning's
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(
        CheckpointError,
        match=r"ckpt_path=.*weights.ckpt: not a Lightning checkpoint \(no 'state_dict'",
    ):
        checkpoint_meta(str(weights))
    with pytest.raises(
        CheckpointError,
        match=r"init_from=.*truncated.ckpt: not a readable PyTorch checkpoint \(PytorchStreamReader failed",
    ):
        load_checkpoint(str(truncated), "init_from")


def test_a_pickle_format_checkpoint_loads(tmp_path, fake_data_dir):
    """torch.save(..., _use_new_zipfile_serialization=False): loaded without memory-mapping
    (before: 'mmap can only be used with files saved with ...')."""
    base = small_overrides(tmp_path, fake_data_dir)
    _, model = _build(compose_cfg(base, tmp_path))
    path = tmp_path / "old.ckpt"
    torch.save(
        {
            "state_dict": model.state_dict(),
            "global_step": 7,
            "mlflow_run_id": "abc",
            "pytorch-lightning_version": "2.0.0",
        },
        path,
        _use_new_zipfile_serialization=False,
    )
    _, started = _build(compose_cfg([*base, f"init_from={path}"], tmp_path))
    for k, v in started.state_dict().items():
        torch.testing.assert_close(v, model.state_dict()[k], rtol=0, atol=0)
    assert checkpoint_meta(str(path)) == ("abc", 7)
