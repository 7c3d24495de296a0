"""`testbed regress`: saved results against committed baselines, and the rounds that feed them.

A results directory holds one round (`NAME.json` files) or several (`round-K/NAME.json`, as
`testbed rounds` writes them). Each entry is checked on the median of its values over the
rounds; metrics absent from the results are listed as not checked, never failed.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.baselines import BaselineEntry, BaselineError, Baselines
from testbed.results import load_result

Round = dict[str, dict[str, float]]  # experiment name -> its metrics


@dataclass(frozen=True)
class Verdict:
    entry: BaselineEntry
    value: float | None  # median over the rounds; None: not checked
    rounds: int
    status: str  # "ok", "REGRESSED", "improved", "not checked"

    @property
    def failed(self) -> bool:
        return self.status == "REGRESSED"


def config_mismatch(document: Mapping[str, Any], baselines: Baselines) -> str | None:
    """Why a result was not measured as the baselines were (quick form, parameters); None
    when it was. A result without a config (a hand-made one) is taken as it is."""
    config = document.get("config")
    if not isinstance(config, dict):
        return None
    if "quick" in config and bool(config["quick"]) != baselines.quick:
        return f"quick={config['quick']}, the baselines want quick={baselines.quick}"
    for key, value in baselines.overrides.get(str(document.get("experiment")), {}).items():
        if key in config and str(config[key]) != value:
            return f"{key}={config[key]}, the baselines want {key}={value}"
    return None


def _round_of(directory: Path, baselines: Baselines | None, skipped: list[str]) -> Round:
    found: Round = {}
    for path in sorted(directory.glob("*.json")):
        try:
            document = load_result(path)
        except (ValueError, OSError) as error:
            raise BaselineError(f"unreadable result {path}: {error}") from None
        metrics = document.get("metrics")
        if not isinstance(metrics, dict) or not isinstance(document.get("experiment"), str):
            continue
        reason = config_mismatch(document, baselines) if baselines else None
        if reason:
            skipped.append(f"{path}: {reason}")
            continue
        found[document["experiment"]] = {k: float(v) for k, v in metrics.items()}
    return found


def load_rounds(results: Path, baselines: Baselines | None = None,
                skipped: list[str] | None = None) -> list[Round]:
    """Every round under `results`: the directory itself and each subdirectory with results.
    With `baselines`, results measured otherwise (not quick, other parameters) are left out
    and named in `skipped`."""
    if not results.is_dir():
        raise BaselineError(f"no results directory {results}")
    notes = skipped if skipped is not None else []
    directories = [results, *sorted(p for p in results.iterdir() if p.is_dir())]
    rounds = [found for directory in directories
              if (found := _round_of(directory, baselines, notes))]
    if not rounds and not notes:
        raise BaselineError(f"no result files (NAME.json) in {results} or its subdirectories")
    return rounds


def check(baselines: Baselines, rounds: Sequence[Mapping[str, Mapping[str, float]]]
          ) -> list[Verdict]:
    verdicts: list[Verdict] = []
    for entry in baselines.entries:
        values = [value for run in rounds
                  if (value := entry.value(run.get(entry.experiment, {}))) is not None]
        if not values or entry.reference is None:
            verdicts.append(Verdict(entry, None, 0, "not checked"))
            continue
        value = statistics.median(values)
        low, high = entry.bounds()
        if value < low or value > high:
            status = "REGRESSED"
        elif (entry.better == "higher" and value > entry.reference * (entry.band or 1)
              or entry.better == "lower" and value < entry.reference / (entry.band or 1)):
            status = "improved"
        else:
            status = "ok"
        verdicts.append(Verdict(entry, value, len(values), status))
    return verdicts


def _number(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def allowed_range(entry: BaselineEntry) -> str:
    low, high = entry.bounds()
    if entry.better == "higher":
        return f">= {_number(low)}"
    if entry.better == "lower":
        return f"<= {_number(high)}"
    return f"{_number(low)} .. {_number(high)}"


def verdict_rows(verdicts: Sequence[Verdict]) -> list[dict[str, object]]:
    """One row per entry, for report.rows_tables: check, measured, reference, allowed, result."""
    rows: list[dict[str, object]] = []
    for verdict in verdicts:
        entry = verdict.entry
        checked = verdict.value is not None
        rows.append({
            "check": entry.name,
            "measured": _number(verdict.value) if verdict.value is not None else "-",
            "reference": _number(entry.reference) if entry.reference is not None else "-",
            "allowed": allowed_range(entry) if checked else "-",
            "result": verdict.status,
        })
    return rows


def absent_metrics(verdicts: Sequence[Verdict]) -> list[str]:
    return [f"{v.entry.name} ({v.entry.experiment}: {v.entry.describe()})"
            for v in verdicts if v.value is None]
