"""Evaluation suites: named, fixed, seeded test sets that differ from training on purpose.

Each suite is one layout family (digitrec.data.sequences.SequenceSpec fields) drawn from the glyph
source's **test** split only (MNIST test digits: other writers than the training and validation
pools), with its own seed, so every model is measured on the same numbers. Suites are configs in
conf/eval/ (`eval=[fixed_pitch,touching]` selects some); `build` turns one into Sequences.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from digitrec.data.sequences import PAD, Sequences, SequenceSpec, compose, layout_spec
from digitrec.paths import EVAL_DIR  # one file a suite

SUITE_KEYS = {"description", "n", "seed"}
SUITE_PREFIX = "suite"  # a run's suite metrics: suite/<name>/<metric>


@dataclass(frozen=True)
class Suite:
    name: str
    spec: SequenceSpec
    n: int
    seed: int
    description: str = ""
    positions: int = 0  # digit labels padded to this many positions (the model's max_len)

    def build(self, glyphs: np.ndarray, labels: np.ndarray) -> Sequences:
        """The suite's numbers from a glyph pool (the test split): the same for the same pool."""
        s = compose(glyphs, labels, self.spec, self.n, np.random.default_rng(self.seed))
        extra = self.positions - s.digits.shape[1]
        if extra > 0:
            s.digits = np.pad(s.digits, ((0, 0), (0, extra)), constant_values=PAD)
        return s


def from_config(name: str, cfg: Mapping, base: SequenceSpec) -> Suite:
    """A suite from its config (conf/eval/<name>.yaml): `n`, `seed`, `description` and layout
    fields over `base` (the run's canvas and maximum length, the classic layout). A bad key or
    value fails with the suite's name."""
    cfg = dict(cfg)
    try:
        n, seed = int(cfg["n"]), int(cfg["seed"])
        if n < 1:
            raise ValueError(f"n={n}: expected at least 1")
        layout = {k: v for k, v in cfg.items() if k not in SUITE_KEYS}
        spec = layout_spec(base, layout)
        if spec.max_len > base.max_len:
            raise ValueError(f"max_len={spec.max_len}: the model reads at most {base.max_len}")
    except KeyError as e:
        raise ValueError(f"eval.{name}: missing key {e.args[0]!r} (needs n and seed)") from None
    except (TypeError, ValueError) as e:
        raise ValueError(f"eval.{name}: {e}") from None
    return Suite(name, spec, n, seed, str(cfg.get("description", "")), base.max_len)


def from_configs(cfgs: Mapping | None, base: SequenceSpec) -> list[Suite]:
    """Every selected suite (`cfg.eval`), in name order."""
    return [from_config(name, cfgs[name], base) for name in sorted(cfgs or {})]


def suite_names(metrics) -> list[str]:
    """The suites a metrics dict (or an MLflow run's metrics) has figures for, sorted."""
    return sorted(
        {k.split("/")[1] for k in metrics if k.startswith(SUITE_PREFIX + "/") and k.count("/") == 2}
    )


def available() -> list[str]:
    """The suites defined in conf/eval/, by name."""
    return sorted(p.stem for p in EVAL_DIR.glob("*.yaml"))


def load(name: str, base: SequenceSpec) -> Suite:
    """A suite from its file, conf/eval/<name>.yaml (see from_config)."""
    from omegaconf import OmegaConf

    return from_config(
        name, OmegaConf.to_container(OmegaConf.load(EVAL_DIR / f"{name}.yaml")), base
    )
