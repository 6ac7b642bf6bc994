"""The evaluation suites' figures as JSON records and as one fixed-width table (digitrec-train
prints it after a run, digitrec-evaluate after its suites)."""

from __future__ import annotations

from collections.abc import Mapping

from digitrec.data.suites import SUITE_PREFIX, suite_names

METRICS = ("sequence_accuracy", "digit_accuracy", "length_accuracy", "coverage_at_98")
LEN_PREFIX = "sequence_accuracy_len"


def round_values(values: Mapping[str, float]) -> dict:
    return {k: round(float(v), 5) for k, v in values.items()}


def suite_record(name: str, values: Mapping[str, float]) -> dict:
    """One suite's JSON line: name, size, the run's metrics, then accuracy per length."""
    lengths = sorted(
        (k for k in values if k.startswith(LEN_PREFIX)),
        key=lambda k: int(k.removeprefix(LEN_PREFIX)),
    )
    return {
        "suite": name,
        "n": int(values.get("n", 0)),
        **round_values({k: values[k] for k in (*METRICS, *lengths) if k in values}),
    }


def records_from_metrics(metrics: Mapping[str, float]) -> list[dict]:
    """The suite records of a run's metrics (`suite/<name>/<metric>`)."""
    out = []
    for name in suite_names(metrics):
        prefix = f"{SUITE_PREFIX}/{name}/"
        out.append(
            suite_record(
                name, {k[len(prefix) :]: v for k, v in metrics.items() if k.startswith(prefix)}
            )
        )
    return out


def suite_table(records: list[dict]) -> str:
    """The suites' figures as a fixed-width table (accuracies in %); "" for none."""
    if not records:
        return ""
    lengths = sorted(
        {int(k.removeprefix(LEN_PREFIX)) for r in records for k in r if k.startswith(LEN_PREFIX)}
    )
    columns = [
        ("seq %", "sequence_accuracy"),
        ("digit %", "digit_accuracy"),
        ("length %", "length_accuracy"),
        ("cov98 %", "coverage_at_98"),
        *((f"len{k} %", f"{LEN_PREFIX}{k}") for k in lengths),
    ]
    width = max(5, *(len(r["suite"]) for r in records))
    lines = [f"{'suite':<{width}} {'n':>6} " + " ".join(f"{c:>8}" for c, _ in columns)]
    for r in records:
        cells = [f"{100 * r[k]:8.2f}" if k in r else f"{'':>8}" for _, k in columns]
        lines.append(f"{r['suite']:<{width}} {r['n']:>6} " + " ".join(cells))
    return "\n".join(lines)
