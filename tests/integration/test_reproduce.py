"""make reproduce-paper end to end on a tiny profile: rendered stand-in, three sweeps, the report."""

import re

import pytest
from conftest import new_store
from helpers import unavailable
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from digitrec.analysis.reproduce import jobs
from digitrec.cli import reproduce
from digitrec.tracking import PARENT_FILE

TINY = {
    "description": "test: a tiny network, a few steps",
    "svhn": {
        "require_real": False,
        "render_limit": 48,
        "overrides": [
            "experiment=paper_svhn",
            "model.batch_norm=true",
            "model.widths=[4,4,8,8]",
            "model.locally_connected=8",
            "model.fc=[16]",
            "data.val_size=16",
            "data.test_size=24",
            "data.batch_size=8",
            "data.eval_batch_size=24",
            "data.train_size=16",
            "trainer.max_epochs=1",
            "trainer.num_sanity_val_steps=0",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
        ],
        "depths": [3, 5],
        "heads": ["rnn"],
    },
    "mnist": {
        "overrides": [
            "data.verify=false",
            "data.val_glyphs=100",
            "data.train_size=64",
            "data.val_size=32",
            "data.test_size=32",
            "data.batch_size=32",
            "trainer.max_epochs=1",
            "trainer.num_sanity_val_steps=0",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
            "eval=[]",
        ],  # no evaluation suites: the report does not use them
        "heads": ["separate", "shared"],
    },
}


def test_reproduce_writes_the_report_with_plots_and_run_ids(
    tmp_path, fake_data_dir, real_data_dir, monkeypatch, capsys
):
    """The whole path on a tiny profile, every SVHN model read on the real SVHN test images
    (../shared/data/svhn/real/test, 258), then the profile grown by a depth and run again over
    the same folders: only the new job runs, into the same sweep parent."""
    if not (real_data_dir / "svhn" / "real" / "test").is_dir():
        message = f"no real SVHN test images under {real_data_dir}/svhn/real/test"
        unavailable(message)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # the real folder is read-only
    data = tmp_path / "data"  # generated MNIST, real SVHN test images, no SVHN train/test
    (data / "svhn").mkdir(parents=True)
    (data / "mnist").symlink_to(fake_data_dir / "mnist")
    for part in ("real", "labels"):  # real test images, labelled by the official JSON form
        (data / "svhn" / part).symlink_to(real_data_dir / "svhn" / part)
    profile = tmp_path / "tiny.yaml"
    tiny = OmegaConf.create(TINY)
    for part in (tiny.svhn, tiny.mnist):  # every file the runs write stays under tmp_path
        part.overrides.append(f"tracking.artifact_root={tmp_path / 'mlartifacts'}")
    OmegaConf.save(tiny, profile)
    out, store = tmp_path / "report", tmp_path / "mlflow.db"
    argv = [
        "--profile",
        str(profile),
        "--out",
        str(out),
        "--data-dir",
        str(data),
        "--render-dir",
        str(tmp_path / "street"),
        "--uri",
        f"sqlite:///{store}",
        "--sweep-dir",
        str(tmp_path / "sweeps"),
    ]
    assert reproduce.main(argv) == 0
    assert (tmp_path / "street" / "RENDERED.md").exists()  # no real SVHN train: the stand-in
    for png in ("depth.png", "coverage.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (out / "README.md").read_text()
    assert "rendered stand-in (SYNTHETIC, not SVHN)" in text
    assert "No model here saw a real SVHN image in training" in text
    assert "| sequence accuracy | 96.03% |" in text and "| per-digit accuracy | 97.84% |" in text
    assert "| coverage at 98% accuracy | 95.64% |" in text
    assert "ours: real SVHN test (n=258)" in text
    for depth, paper in ((3, "92.30%"), (5, "94.70%")):  # paper, val, test, real ± s.e.
        assert re.search(
            rf"^\| {depth} \| {paper} \| [\d.]+% \| [\d.]+% \| [\d.]+% ± [\d.]+ \|", text, re.M
        ), text

    client = MlflowClient(f"sqlite:///{store}")
    exp = client.get_experiment_by_name("reproduce_tiny")
    runs = client.search_runs([exp.experiment_id])
    parents = {r.data.tags["sweep_name"]: r for r in runs if r.data.tags.get("sweep") == "true"}
    assert set(parents) == {"depth", "heads_svhn", "heads_mnist"}
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 5 and all(c.info.status == "FINISHED" for c in children)
    for c in children:  # every run id is in the report, and SVHN runs are tagged synthetic
        assert c.info.run_id in text
        if c.data.tags["mlflow.parentRunId"] != parents["heads_mnist"].info.run_id:
            assert "synthetic_data" in c.data.tags
            assert c.data.metrics["real_svhn/n"] == 258  # read on every real test image
            assert 0 <= c.data.metrics["real_svhn/sequence_accuracy"] <= 1
            assert "real_svhn_confidence.npz" in {
                a.path for a in client.list_artifacts(c.info.run_id)
            }
    assert "Generated by `digitrec-reproduce --profile" in text
    assert (
        tmp_path / "sweeps" / "heads_mnist" / "head-separate" / "checkpoints" / "best.ckpt"
    ).is_file()
    assert (tmp_path / "sweeps" / "depth" / "depth-3" / "checkpoints" / "best.ckpt").is_file()

    # resumed: one more depth in the profile, the same folders, and a job of the earlier attempt
    # killed while it ran (its run left RUNNING)
    tiny.svhn.depths = [3, 4, 5]
    OmegaConf.save(tiny, profile)
    zombie = client.create_run(
        exp.experiment_id, tags={"mlflow.parentRunId": parents["depth"].info.run_id}
    ).info
    capsys.readouterr()
    assert reproduce.main(argv) == 0
    said = capsys.readouterr().out
    assert (
        "sweep depth: 2 of 3 jobs finished before; running depth=4 into parent run "
        + parents["depth"].info.run_id
        in said
    )
    assert "sweep heads_mnist: every job finished before" in said
    assert "real SVHN test (258 images) 1/1" in said  # only the new run is read
    runs = client.search_runs([exp.experiment_id])
    depth = [
        r
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == parents["depth"].info.run_id
        and r.info.status == "FINISHED"
    ]
    assert sorted(r.data.params["model.depth"] for r in depth) == ["3", "4", "5"]
    assert client.get_run(zombie.run_id).info.status == "KILLED"
    assert f"run {zombie.run_id} of an earlier attempt was left running" in said
    assert len([r for r in runs if r.data.tags.get("sweep") == "true"]) == 3  # no new parent
    parent = client.get_run(parents["depth"].info.run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["children"] == "4"  # + zombie
    assert "model.depth" in parent.data.tags["best_params"]  # the first search's keys, not {}
    assert re.search(r"^\| 4 \| – \|", (out / "README.md").read_text(), re.M)

    # another recipe over the same folders: refused in one line, nothing run
    tiny.svhn.overrides.append("model.fc=[32]")
    OmegaConf.save(tiny, profile)
    with pytest.raises(
        SystemExit,
        match=r"depth/reproduce_overrides.txt: the sweep there was run "
        r"with other overrides .*--fresh",
    ):
        reproduce.main(argv)


def test_reproduce_dry_run_prints_the_three_sweeps(tmp_path, capsys):
    store = f"sqlite:///{tmp_path}/mlflow.db"
    assert (
        reproduce.main(
            [
                "--profile",
                "smoke",
                "--dry-run",
                "--data-dir",
                str(tmp_path),
                "--render-dir",
                str(tmp_path / "street"),
                "--uri",
                store,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.count("digitrec.cli.train -m") == 3
    assert "model.depth=3,5,8,11 " in out  # the profile's depths
    assert "model.head=shared,rnn " in out  # separate at depth 8 is the depth sweep's run
    assert "--splits train --random 16000" in out and "--splits test --random 2000" in out
    assert "'hydra.sweep.subdir=depth-${model.depth}'" in out  # a folder per job, for resuming
    assert not (tmp_path / "street").exists() and not list(tmp_path.glob("*.db"))


def test_a_parent_file_naming_a_run_this_store_lacks_is_moved_aside(tmp_path, capsys):
    """A sweep folder from another store: started afresh, the old parent file kept aside."""
    client = MlflowClient(f"sqlite:///{new_store(tmp_path / 'mlflow.db')}")
    sweep_dir = tmp_path / "sweeps" / "depth"
    sweep_dir.mkdir(parents=True)
    (sweep_dir / PARENT_FILE).write_text("0123456789abcdef0123456789abcdef")
    assert jobs.earlier_parent(client, sweep_dir) is None
    assert not (sweep_dir / PARENT_FILE).exists()
    (stale,) = sweep_dir.glob(f"{PARENT_FILE}.stale-*")
    assert stale.read_text() == "0123456789abcdef0123456789abcdef"
    assert "does not have (or deleted)" in capsys.readouterr().err


def test_one_reproduction_at_a_time_over_a_sweep_folder(tmp_path):
    with jobs.lock(tmp_path / "sweeps"):
        with pytest.raises(SystemExit, match="another digitrec-reproduce is running over"):
            with jobs.lock(tmp_path / "sweeps"):
                pass
    with jobs.lock(tmp_path / "sweeps"):  # released
        pass


def test_fresh_starts_a_new_folder_beside_the_given_one(tmp_path, capsys):
    assert (
        reproduce.main(
            [
                "--profile",
                "smoke",
                "--dry-run",
                "--fresh",
                "--data-dir",
                str(tmp_path),
                "--sweep-dir",
                str(tmp_path / "sweeps"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"hydra.sweep.dir={tmp_path}/sweeps-20" in out and f"{tmp_path}/sweeps/" not in out
