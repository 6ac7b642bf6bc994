"""The lock files (requirements/, written by `make lock`) and digitrec/environment.py."""

import hashlib
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from conftest import REPO
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from digitrec import environment

LOCKS = sorted((REPO / "requirements").glob("lock-linux-py3*.txt"))
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)$")


def read_lock(path: Path) -> dict[str, str]:
    """name → version; every line a pin, a comment or blank."""
    pins = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        match = PIN.match(text)
        assert match, f"{path.name}:{n}: not a pin: {line!r}"
        pins[canonicalize_name(match[1])] = match[2]
    return pins


def test_the_locks_pin_every_dependency_for_python_3_11_and_3_12():
    assert [p.name for p in LOCKS] == ["lock-linux-py311.txt", "lock-linux-py312.txt"]
    torch = re.search(r"^TORCH\s*:=\s*torch==(\S+)", (REPO / "Makefile").read_text(), re.M)[1]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    for extra in ("export", "dev"):  # the tests need the dev extras (pytest, selenium, onnx...)
        wanted += [Requirement(r) for r in project["optional-dependencies"][extra]]
    for path in LOCKS:
        assert path.read_text().splitlines()[1] == "#    make lock"  # uv's header: how to refresh
        pins = read_lock(path)
        assert pins["torch"] == torch == "2.13.0"
        assert pins["optuna"] == "5.0.0"
        assert "hydra-optuna-sweeper" not in pins  # the sweeper is digitrec's own
        cuda = [n for n in pins if n.startswith(("nvidia-", "cuda-", "triton"))]
        assert not cuda, f"{path.name}: the CPU lock holds CUDA packages {cuda}"
        for req in wanted:
            name = canonicalize_name(req.name)
            if name == "digitrec":  # digitrec[export]
                continue
            assert name in pins, f"{path.name} lacks {req} (make lock)"
            assert req.specifier.contains(pins[name], prereleases=True), (
                f"{path.name} pins {name}=={pins[name]}, pyproject.toml wants {req} (make lock)"
            )


def test_lock_digest_is_the_lock_files_sha256(tmp_path):
    lock = environment.lock_file()
    assert lock.name == f"lock-linux-py{sys.version_info[0]}{sys.version_info[1]}.txt"
    if lock.exists():
        assert environment.lock_digest() == hashlib.sha256(lock.read_bytes()).hexdigest()[:12]
    assert environment.lock_digest(tmp_path) is None  # no lock: a wheel install
    (tmp_path / "requirements").mkdir()
    environment.lock_file(tmp_path).write_text("optuna==5.0.0\n")
    assert environment.lock_digest(tmp_path) == hashlib.sha256(b"optuna==5.0.0\n").hexdigest()[:12]


def test_pip_freeze_lists_the_installed_distributions():
    lines = environment.pip_freeze().splitlines()
    names = [canonicalize_name(re.split(r"[ =@]", line.split("# ")[-1])[0]) for line in lines]
    assert names == sorted(names) and len(set(names)) == len(names)
    for name in ("optuna", "hydra-core", "mlflow", "torch"):
        assert f"{name}=={metadata.version(name)}" in lines
    (digitrec,) = [line for line in lines if "digitrec==" in line]  # editable: -e file://...
    assert digitrec.endswith(f"digitrec=={metadata.version('digitrec')}")
