"""Shared fixtures: small generated glyph data, composed configs with a temporary MLflow store."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers import unavailable
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from digitrec.cli.train import CONF_DIR as CONFIG_DIR
from digitrec.data.mnist import MNIST_FILES, write_idx

# the small photo-reading models and folders several test files share (their fixtures)
pytest_plugins = ("photo_fixtures",)

REPO = Path(__file__).resolve().parent.parent


def random_records(n: int, seed: int = 0, max_digits: int = 6, size=None) -> list:
    """`n` SVHN records of 1..max_digits random digit boxes (label, left, top, width, height),
    lengths cycling so inline values and reference arrays both occur in a digitStruct.mat."""
    from digitrec.data.digitstruct import Record

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = 1 + i % max_digits
        boxes = np.column_stack(
            [
                rng.integers(1, 11, k),
                rng.integers(-3, 200, k),
                rng.integers(-2, 50, k),
                rng.integers(5, 40, k),
                rng.integers(10, 60, k),
            ]
        ).astype(np.float64)
        out.append(Record(f"{i + 1}.png", boxes, size))
    return out


def make_glyphs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-shaped stand-ins: digit d is a bar of width d+2 with a little noise; learnable."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = np.zeros((n, 28, 28), np.uint8)
    for i, d in enumerate(labels):
        x = 4 + (d % 5) * 2
        images[i, 6 + d % 3 : 22, x : x + d // 2 + 3] = 200
        images[i] += rng.integers(0, 20, (28, 28), dtype=np.uint8)
    return images, labels


@pytest.fixture(scope="session")
def fake_data_dir(tmp_path_factory) -> Path:
    """A data directory with small generated MNIST-format files (checksums not official)."""
    root = tmp_path_factory.mktemp("data")
    train = make_glyphs(600, 0)
    test = make_glyphs(200, 1)
    arrays = {
        "train_images": train[0],
        "train_labels": train[1],
        "test_images": test[0],
        "test_labels": test[1],
    }
    for key, spec in MNIST_FILES.items():
        write_idx(root / "mnist" / f"{spec.name}.gz", arrays[key])
    return root


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """../shared/data (or DIGITREC_DATA_DIR). In CI its absence fails the test instead of skipping."""
    path = Path(os.environ.get("DIGITREC_DATA_DIR", REPO.parent / "shared" / "data"))
    if not (path / "mnist").is_dir():
        unavailable(f"real MNIST under {path}/mnist (set DIGITREC_DATA_DIR)")
    return path


_STORE_TEMPLATE: list[Path] = []


def new_store(path: Path) -> Path:
    """An empty MLflow SQLite store at `path`: a copy of one created once per test session.
    Creating a store runs MLflow's schema migrations (about 2 s); a copy of a migrated,
    still-empty store is the same store without that wait."""
    if not _STORE_TEMPLATE:
        from mlflow.tracking import MlflowClient

        folder = Path(tempfile.mkdtemp(prefix="digitrec-store-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        MlflowClient(f"sqlite:///{folder / 'mlflow.db'}").search_experiments()  # migrates
        _STORE_TEMPLATE.append(folder / "mlflow.db")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_STORE_TEMPLATE[0], path)
    return path


def small_overrides(tmp_path: Path, data_dir: Path, store: bool = True) -> list[str]:
    """Shrink a run to seconds and keep every file it writes under tmp_path (its MLflow store
    made in advance unless store=False, for tests that check nothing is created)."""
    if store:
        new_store(tmp_path / "mlflow.db")
    return [
        f"paths.data_dir={data_dir}",
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        f"tracking.artifact_root={tmp_path}/mlartifacts",
        "data.verify=false",
        "data.val_glyphs=100",
        "data.train_size=256",
        "data.val_size=200",
        "data.test_size=200",
        "data.batch_size=32",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "eval=[]",  # no evaluation suites (tests/integration/test_suites.py runs them)
    ]


def compose_cfg(overrides: list[str], tmp_path: Path) -> DictConfig:
    """Compose conf/train.yaml as `digitrec-train` would, with a Hydra context for ${hydra:...}."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(tmp_path / "output")
        cfg.hydra.runtime.cwd = str(REPO)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    return cfg


# The longest tests (tens of seconds each, most of them training in subprocesses) run first, so
# that with pytest-xdist's workers (make test: --dist loadfile, a test file per worker at a time,
# files in this order) no long test starts last and runs alone.
LONGEST_FIRST = (
    "test_learns_real_mnist_sequences_in_about_a_minute",  # and the live page's tests
    "test_four_jobs_two_at_a_time_share_one_sqlite_store",  # and the tests sharing its sweep
    "test_reproduce_writes_the_report_with_plots_and_run_ids",
    "test_optuna_sweep_resumes_from_its_storage",
    "test_ddp_on_cpu_two_processes_one_tracked_run",
    "test_a_sweep_of_four_jobs_two_at_a_time_through_a_server_on_postgresql",
    "test_killed_training_job_resumes_into_the_same_mlflow_run",
    "test_a_crashed_job_is_a_failed_child_and_the_sweep_goes_on",
)


def _module_fixtures(item) -> bool:
    """Whether the test uses a fixture built once per module."""
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    return any(defs and defs[-1].scope == "module" for defs in definitions.values())


def pytest_collection_modifyitems(config, items):
    """The longest tests first; the tests of a file that share a module-scoped fixture stay
    together (their fixture is built once)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    units: dict[str, list] = {}
    for item in items:
        key = item.module.__name__ if _module_fixtures(item) else item.nodeid
        units.setdefault(key, []).append(item)
    order = sorted(
        units.values(), key=lambda unit: min(rank.get(i.originalname, len(rank)) for i in unit)
    )
    items[:] = [item for unit in order for item in unit]
