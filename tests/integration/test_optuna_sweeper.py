"""The project's Optuna sweeper (digitrec/sweepers/): Hydra's sweep syntax as Optuna
distributions, ask-and-tell in batches, resume, failures, seeds, the grid sampler; one real
Hydra multirun of a toy app. digitrec-train's own Optuna sweep is in test_sweeps.py."""

import subprocess
import sys

import optuna
import pytest
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from digitrec.sweepers.optuna_sweeper import (
    GridSamplerConfig,
    OptunaSweeper,
    TPESamplerConfig,
    finished_trials,
    grid,
    job_overrides,
    parse_space,
)

SPACE = {"x": "interval(0.0, 4.0)", "depth": "range(3, 9)", "head": "choice(a, b, c)"}


def objective(values: dict[str, str]) -> float:
    if values.get("crash") == "True" and float(values["x"]) > 2.0:
        raise ValueError(f"x={values['x']} is too big")
    if values.get("none") == "True":  # Hydra writes booleans capitalised
        return None
    return -((float(values["x"]) - 2) ** 2) + int(values["depth"]) / 10


class FakeLauncher:
    """Runs `objective` on each job's overrides in this process, returning what Hydra's
    launchers return; records (initial_job_idx, overrides) per launch."""

    def __init__(self):
        self.calls: list[tuple[int, list[list[str]]]] = []

    def launch(self, job_overrides, initial_job_idx):
        self.calls.append((initial_job_idx, [list(o) for o in job_overrides]))
        returns = []
        for overrides in job_overrides:
            ret = JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED)
            try:
                ret.return_value = objective(dict(o.lstrip("+").split("=", 1) for o in overrides))
            except Exception as e:
                ret.status, ret.return_value = JobStatus.FAILED, e
            returns.append(ret)
        return returns

    def jobs(self) -> list[list[str]]:
        return [job for _, batch in self.calls for job in batch]


def sweeper(tmp_path, n_trials, storage=None, seed=0, sampler=None, **kwargs) -> OptunaSweeper:
    kwargs = {"n_jobs": 2, "max_failure_rate": 1.0, "params": SPACE, **kwargs}
    s = OptunaSweeper(
        sampler=OmegaConf.structured(sampler or TPESamplerConfig(seed=seed, n_startup_trials=4)),
        direction="maximize",
        storage=storage,
        study_name="s" if storage else None,
        n_trials=n_trials,
        n_jobs=kwargs["n_jobs"],
        max_failure_rate=kwargs["max_failure_rate"],
        params=OmegaConf.create(kwargs["params"]),
    )
    s.config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "sweep")}}})
    s.launcher = FakeLauncher()
    return s


def test_hydra_sweep_syntax_becomes_optuna_distributions():
    params = {
        "lr": "tag(log, interval(0.0003, 0.01))",
        "depth": "range(3, 9)",
        "head": "choice(separate, shared, rnn)",
        "p": "interval(0.0, 0.5)",
        "bn": "choice(false, true)",
        "f": "range(0.1, 0.5, 0.1)",
        "width": "tag(log, range(1, 65))",
        "s": "shuffle(range(1, 4))",
        "n": "2,4",
    }
    space = parse_space(params, ["n=8", "+extra.key=1", "model=cnn"])
    assert space["lr"] == FloatDistribution(0.0003, 0.01, log=True)
    assert space["depth"] == IntDistribution(3, 8)  # Hydra's range excludes its stop
    assert space["head"] == CategoricalDistribution(["separate", "shared", "rnn"])
    assert space["p"] == FloatDistribution(0.0, 0.5)
    assert space["bn"] == CategoricalDistribution([False, True])
    assert space["f"] == FloatDistribution(0.1, 0.4, step=0.1)
    assert space["width"] == IntDistribution(1, 64, log=True)
    assert sorted(space["s"].choices) == [1, 2, 3]
    # the command line wins over params, and fixed values are passed on as they are
    assert space["n"] == "n=8" and space["+extra.key"] == "+extra.key=1"
    assert list(space)[-3:] == ["n", "+extra.key", "model"]
    values = {
        "lr": 0.001,
        "depth": 5,
        "head": "rnn",
        "p": 0.25,
        "bn": True,
        "f": 0.2,
        "width": 16,
        "s": 2,
    }
    assert job_overrides(space, values) == [
        "lr=0.001",
        "depth=5",
        "head=rnn",
        "p=0.25",
        "bn=True",
        "f=0.2",
        "width=16",
        "s=2",
        "n=8",
        "+extra.key=1",
        "model=cnn",
    ]
    assert grid(parse_space({"f": "range(0.1, 0.5, 0.1)", "h": "a,b"}, [])) == {
        "f": [0.1, 0.2, 0.3, 0.4],
        "h": ["a", "b"],
    }
    with pytest.raises(ValueError, match="grid sampler needs choice"):
        grid(parse_space({"p": "interval(0, 1)"}, []))


def test_the_sampler_seed_fixes_the_first_trials(tmp_path):
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        s = sweeper(tmp_path / name, n_trials=6, seed=seed)
        s.sweep([])
        runs[name] = s.launcher.jobs()
        assert len(runs[name]) == 6
    assert runs["a"] == runs["b"]  # the same seed: the same trials (start-up and TPE alike)
    assert runs["a"][0] != runs["c"][0]
    assert len({tuple(job) for job in runs["a"]}) == 6


def test_a_resumed_study_runs_only_the_missing_trials(tmp_path, caplog):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    first = sweeper(tmp_path, n_trials=3, storage=storage)
    first.sweep([])
    assert [(idx, len(batch)) for idx, batch in first.launcher.calls] == [(0, 2), (2, 1)]
    study = optuna.load_study(study_name="s", storage=storage)
    study.ask()  # trial 3 left RUNNING, as a killed sweep leaves it
    assert finished_trials(storage, "s") == 3

    second = sweeper(tmp_path, n_trials=5, storage=storage)  # the same command, a larger total
    with caplog.at_level("INFO"):
        second.sweep([])
    assert "has 3 finished trials of 5: running 2 more" in caplog.text
    assert [(idx, len(batch)) for idx, batch in second.launcher.calls] == [(4, 2)]
    trials = optuna.load_study(study_name="s", storage=storage).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3 + [TrialState.FAIL] + [
        TrialState.COMPLETE
    ] * 2
    # the seed moved on: the rerun's start-up points are new, not the first run's again
    assert second.launcher.jobs()[0] != first.launcher.jobs()[0]
    assert trials[4].user_attrs["overrides"] == " ".join(second.launcher.jobs()[0])
    results = OmegaConf.load(tmp_path / "sweep" / "optimization_results.yaml")
    assert results.trials == 6 and results.best_value == max(t.value for t in trials if t.value)

    third = sweeper(tmp_path, n_trials=5, storage=storage)
    third.sweep([])
    assert third.launcher.calls == []  # the total is reached


def test_a_crashed_trial_is_a_fail_trial_and_too_many_stop_the_sweep(tmp_path):
    s = sweeper(tmp_path, n_trials=6, storage=f"sqlite:///{tmp_path}/a.db")
    s.sweep(["+crash=true"])
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path}/a.db")
    for t in study.trials:  # x > 2 raised: FAIL; the sweep went on
        assert t.state == (TrialState.FAIL if t.params["x"] > 2 else TrialState.COMPLETE)
    assert {t.state for t in study.trials} == {TrialState.FAIL, TrialState.COMPLETE}

    s = sweeper(tmp_path, n_trials=2, storage=f"sqlite:///{tmp_path}/b.db")
    s.sweep(["+none=true"])  # a job that returns no number
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path}/b.db")
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 2

    s = sweeper(tmp_path, n_trials=6, max_failure_rate=0.0, params={**SPACE, "x": "3.0"})
    with pytest.raises(ValueError, match="x=3.0 is too big"):  # the job's own error
        s.sweep(["+crash=true"])
    assert len(s.launcher.jobs()) == 2  # stopped after the first batch


def test_the_grid_sampler_visits_each_point_once(tmp_path):
    params = {"x": "1.0,2.0", "depth": "range(3, 6)", "head": "a"}
    s = sweeper(tmp_path, n_trials=100, sampler=GridSamplerConfig(seed=0), params=params)
    s.sweep([])
    points = sorted(tuple(job[:2]) for job in s.launcher.jobs())
    assert points == sorted((f"x={x}", f"depth={d}") for x in (1.0, 2.0) for d in (3, 4, 5))


TOY_APP = """
import hydra


@hydra.main(version_base="1.3", config_path=".", config_name="app")
def main(cfg):
    if cfg.x > cfg.crash_above:
        raise ValueError(f"x={cfg.x} is too big")
    return -((cfg.x - 2) ** 2) + cfg.y


main()
"""
TOY_CONFIG = """
defaults:
  - override hydra/sweeper: optuna
  - override hydra/sweeper/sampler: random
  - _self_
x: 0.0
y: 0
crash_above: 2.0
hydra:
  sweep:
    dir: sweep
  sweeper:
    direction: maximize
    storage: sqlite:///optuna.db
    study_name: toy
    n_trials: 6
    n_jobs: 3
    max_failure_rate: 1.0
    sampler:
      seed: 0
    params:
      x: interval(0.0, 4.0)
      y: range(0, 3)
"""


def test_hydra_finds_the_sweeper_and_runs_a_multirun(tmp_path):
    """A real Hydra app (not digitrec-train): plugin discovery, hydra/sweeper=optuna and its
    sampler group, Hydra's basic launcher, crashed jobs."""
    (tmp_path / "app.py").write_text(TOY_APP)
    (tmp_path / "app.yaml").write_text(TOY_CONFIG)
    run = subprocess.run(
        [sys.executable, "app.py", "-m"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-3000:]
    trials = optuna.load_study(study_name="toy", storage=f"sqlite:///{tmp_path}/optuna.db").trials
    assert len(trials) == 6 and {t.params["y"] for t in trials} <= {0, 1, 2}
    for t in trials:
        assert t.state == (TrialState.FAIL if t.params["x"] > 2 else TrialState.COMPLETE)
        assert (tmp_path / "sweep" / str(t.number) / ".hydra").is_dir()  # job folder = trial
    assert "trial 0" in run.stdout + run.stderr
