"""The composed training config's values, checked before a run opens: one line per mistake.

`check(cfg)` looks at the keys users set most (batch size, learning rate, depth, epochs, the
model's choices, ...) wherever the composed config has them, and raises ConfigError naming the
key, the value and what is expected, e.g.

    Invalid batch size: data.batch_size=0, expected an integer >= 1

It is not a schema: keys it does not know pass, and the classes they configure check the rest.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from digitrec.io import first_line
from digitrec.models.config import CONTEXTS, HEADS, LOSSES, POOL_PADDINGS


class ConfigError(ValueError):
    """A config value of the wrong type, out of range, or not one of the choices."""


@dataclass(frozen=True)
class Rule:
    label: str  # what the value is, for the message ("batch size")
    expected: str  # what it must be ("an integer >= 1")
    ok: Callable[[Any], bool]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def integer(low: int, label: str, nullable: bool = False) -> Rule:
    return Rule(
        label,
        f"an integer >= {low}" + (" or null" if nullable else ""),
        lambda v: (nullable and v is None) or (_is_int(v) and v >= low),
    )


def number(
    label: str,
    low: float = 0.0,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = True,
) -> Rule:
    bounds = f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        bounds += f" and {'<' if high_open else '<='} {high:g}"

    def ok(v: Any) -> bool:
        if not _is_number(v) or v < low or (low_open and v == low):
            return False
        return high is None or v < high or (not high_open and v == high)

    return Rule(label, f"a number {bounds}", ok)


def choice(label: str, *options: Any) -> Rule:
    shown = ", ".join("null" if o is None else str(o) for o in options)
    return Rule(label, f"one of {shown}", lambda v: isinstance(v, str | None) and v in options)


def int_list(label: str, low: int = 1) -> Rule:
    return Rule(
        label,
        f"a non-empty list of integers >= {low}",
        lambda v: isinstance(v, list) and bool(v) and all(_is_int(x) and x >= low for x in v),
    )


def _checkpoint(label: str) -> Rule:
    return Rule(
        label,
        "null or an existing checkpoint file",
        lambda v: v is None or (isinstance(v, str) and Path(v).is_file()),
    )


# key → rule; a key the composed config lacks (another datamodule or model) is skipped
RULES: dict[str, Rule] = {
    "seed": integer(0, "seed", nullable=True),
    "threads": integer(1, "thread count", nullable=True),
    "ckpt_path": _checkpoint("checkpoint to resume"),
    "init_from": _checkpoint("checkpoint to start from"),
    "data.batch_size": integer(1, "batch size"),
    "data.eval_batch_size": integer(1, "evaluation batch size"),
    "data.train_size": integer(1, "training set size", nullable=True),
    "data.val_size": integer(1, "validation set size", nullable=True),
    "data.test_size": integer(1, "test set size", nullable=True),
    "data.num_workers": integer(0, "number of data loader workers"),
    "data.min_len": integer(1, "shortest number length"),
    "data.max_len": integer(1, "longest number length"),
    "model.depth": integer(1, "model depth"),
    "model.widths": int_list("layer widths"),
    "model.kernel_size": integer(1, "kernel size"),
    "model.first_kernel_size": integer(1, "first kernel size"),
    "model.first_stride": integer(1, "first stride"),
    "model.maxout": integer(1, "maxout pieces"),
    "model.head": choice("head", *HEADS),
    "model.loss": choice("loss", *LOSSES),
    "model.context": choice("context", *CONTEXTS),
    "model.pool_padding": choice("pool padding", *POOL_PADDINGS),
    "model.conv_dropout": number("dropout", 0, 1),
    "model.fc_dropout": number("dropout", 0, 1),
    "model.dropout": number("dropout", 0, 1),
    "model.label_smoothing": number("label smoothing", 0, 1),
    "optimizer.lr": number("learning rate", 0, low_open=True),
    "optimizer.weight_decay": number("weight decay", 0),
    "optimizer.momentum": number("momentum", 0),
    "scheduler.max_lr": number("learning rate", 0, low_open=True),
    "scheduler.pct_start": number("warm-up share", 0, 1, high_open=False),
    "scheduler.gamma": number("decay factor", 0, low_open=True),
    "scheduler.step_size": integer(1, "decay step size"),
    "trainer.max_epochs": Rule(
        "number of epochs",
        "an integer >= 1, -1 (no limit) or null",
        lambda v: v is None or v == -1 or (_is_int(v) and v >= 1),
    ),
    "trainer.log_every_n_steps": integer(1, "logging interval"),
    "trainer.gradient_clip_val": Rule(
        "gradient clipping norm",
        "a number > 0 or null",
        lambda v: v is None or (_is_number(v) and v > 0),
    ),
    "trainer.accumulate_grad_batches": integer(1, "gradient accumulation"),
    "tracking.objective_mode": choice("objective mode", "max", "min"),
    "tracking.monitor_mode": choice("monitor mode", "max", "min"),
}


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _get(values: dict, key: str) -> tuple[bool, Any]:
    node: Any = values
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def resolved(cfg: DictConfig) -> dict:
    """The config's values with interpolations resolved (Hydra's own node left out); a value that
    does not resolve (a missing environment variable, a typo in ${...}) is a ConfigError."""
    keys = [k for k in cfg if k != "hydra"]
    try:
        return {
            k: OmegaConf.to_container(cfg[k], resolve=True)
            if OmegaConf.is_config(cfg[k])
            else cfg[k]
            for k in keys
        }
    except Exception as e:  # omegaconf's interpolation and missing-value errors
        first = first_line(e)
        raise ConfigError(f"Invalid config: {first}") from None


def check(cfg: DictConfig) -> None:
    """Raise ConfigError for the first value of the wrong type, out of range or not a choice."""
    values = resolved(cfg)
    for key, rule in RULES.items():
        found, value = _get(values, key)
        if found and not rule.ok(value):
            raise ConfigError(
                f"Invalid {rule.label}: {key}={_show(value)}, expected {rule.expected}"
            )
    data = values.get("data") or {}
    low, high = data.get("min_len"), data.get("max_len")
    if _is_int(low) and _is_int(high) and low > high:
        raise ConfigError(
            f"Invalid number lengths: data.min_len={low} > data.max_len={high}, "
            "expected min_len <= max_len"
        )


def check_accelerator(cfg: DictConfig) -> None:
    """trainer.accelerator=gpu (or cuda) needs a CUDA GPU on this machine."""
    import torch

    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator", default="auto"))
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"Invalid accelerator: trainer.accelerator={accelerator}, but this machine has no "
            "CUDA GPU (torch.cuda.is_available() is False); expected auto or cpu"
        )
