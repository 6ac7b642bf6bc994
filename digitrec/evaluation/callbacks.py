"""The evaluation suites as a Lightning callback: scored after the test set, on the same weights.

Configured in conf/callbacks/default.yaml from the `eval` selection (conf/eval/); a datamodule
without suites (`suite_glyphs()` is None: SVHN, scenes) gets none.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pytorch_lightning as pl

from digitrec.data import suites as suite_configs
from digitrec.evaluation.scoring import evaluate_suites, suite_base
from digitrec.tracking.datasets import dataset_input

log = logging.getLogger(__name__)


class EvaluationSuites(pl.Callback):
    """Scores every selected suite (`suite/<name>/<metric>`) once the test epoch ends; the suites
    are built from their configs when fitting starts, so a bad suite fails before training."""

    def __init__(self, suites: Mapping | None = None, batch_size: int | None = None):
        self.configs = dict(suites or {})
        self.batch_size = batch_size
        self.suites: list[suite_configs.Suite] | None = None
        self.source = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.suites is not None or not self.configs:
            return
        datamodule = trainer.datamodule
        self.source = datamodule.suite_glyphs() if datamodule is not None else None
        if self.source is None:
            self.suites = []
            return
        self.suites = suite_configs.from_configs(self.configs, suite_base(self.source[2]))

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.suites:
            return
        images, labels, _ = self.source
        batch = self.batch_size or getattr(trainer.datamodule, "eval_batch_size", 500)
        metrics = evaluate_suites(pl_module, self.suites, images, labels, batch)
        pl_module.log_dict(metrics)
        self._log_datasets(trainer)

    def _log_datasets(self, trainer: pl.Trainer) -> None:
        """The suites as the run's evaluation datasets; a failure is a warning, not a failed run."""
        logger = trainer.logger
        describe = getattr(trainer.datamodule, "describe_suites", None)
        if trainer.global_rank != 0 or describe is None or not hasattr(logger, "run_id"):
            return
        try:
            inputs = [dataset_input(i) for i in describe(self.suites)]
            logger.experiment.log_inputs(logger.run_id, datasets=inputs)
        except Exception as e:  # noqa: BLE001  (metadata: the run stands)
            log.warning("suite datasets not logged: %s: %s", type(e).__name__, e)
