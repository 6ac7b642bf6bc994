"""What a finished run prints: its headline test figures, where it is tracked, the suites' table."""

from __future__ import annotations

from collections.abc import Mapping

from digitrec.evaluation.tables import records_from_metrics, suite_table


def summary(
    metrics: Mapping[str, float], headlines: Mapping[str, str], tracker, n_test: int, best: str
) -> str:
    lines = [""] + [
        f"{label:<24}{metrics[k]:.2%}" for k, label in headlines.items() if k in metrics
    ]
    lines += [
        f"test set                {n_test:,} images",
        f"training                {metrics['fit_seconds']:.0f} s, "
        f"{metrics['train_sequences_per_second']:.0f} sequences/s",
        f"MLflow run              {tracker.run_id}  (experiment {tracker.experiment_name!r})",
    ]
    if best:
        lines.append(f"best checkpoint         {best}")
    if tracker.model_uri:
        lines.append(f"MLflow model            {tracker.model_uri}")
    lines.append(f"open the UI              {tracker.ui_hint()}")
    table = suite_table(records_from_metrics(metrics))
    if table:
        lines += ["", table]
    return "\n".join(lines)
