"""Committed performance baselines: what `testbed regress` checks, and how bands are derived.

A baseline file (JSON) names the quick experiments that feed it and a list of entries. Each
entry is a metric, or a ratio of two metrics of the same run (`metric` over `over`), with the
side that is better (`higher`, `lower`, or `both` when any move is suspect), a reference value
and a band. The band is a factor >= 1: a `higher` entry regresses below reference / band, a
`lower` one above reference * band. Factors rather than percentages keep the two directions
symmetric: a band below 2 catches any twofold slowdown of the measured thing.

Bands come from measured dispersion (`band_from_samples`), never from a guess: the quick
experiments run in interleaved rounds, and the band is the widest of four robust standard
deviations of the logarithms (1.4826 x MAD), 1.5 times the worst deviation seen on the bad
side, and a floor of 15%.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

BASELINE_SCHEMA = 1
DIRECTIONS = ("higher", "lower", "both")
ROBUST_SIGMAS = 4.0  # robust standard deviations of log(value) inside the band
WORST_MARGIN = 1.5  # times the worst bad-side deviation seen while calibrating
MIN_BAND = 1.15  # never tighter than 15%
MIN_ROUNDS = 5  # fewer rounds say nothing about dispersion
MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation


class BaselineError(ValueError):
    """A baseline file or a results directory that cannot be used; the message is one line."""


@dataclass(frozen=True)
class BaselineEntry:
    name: str
    experiment: str
    metric: str
    better: str
    over: str = ""
    reference: float | None = None
    band: float | None = None
    rounds: int = 0
    note: str = ""

    def value(self, metrics: Mapping[str, float]) -> float | None:
        """This entry's value in one run's metrics; None when a metric is absent or zero."""
        if self.metric not in metrics or (self.over and self.over not in metrics):
            return None
        value = float(metrics[self.metric])
        if not self.over:
            return value
        denominator = float(metrics[self.over])
        return value / denominator if denominator else None

    def bounds(self) -> tuple[float, float]:
        """(lowest, highest) value that passes."""
        if self.reference is None or self.band is None:
            raise BaselineError(f"baseline {self.name!r} has no reference yet: run --update")
        low = self.reference / self.band if self.better in ("higher", "both") else -math.inf
        high = self.reference * self.band if self.better in ("lower", "both") else math.inf
        return low, high

    def describe(self) -> str:
        return f"{self.metric} / {self.over}" if self.over else self.metric


@dataclass(frozen=True)
class Baselines:
    experiments: tuple[str, ...]
    entries: tuple[BaselineEntry, ...]
    method: str = ""
    quick: bool = True
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)  # experiment -> --set

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": BASELINE_SCHEMA,
            "method": self.method,
            "experiments": list(self.experiments),
            "quick": self.quick,
            "overrides": self.overrides,
            "entries": [
                {key: value for key, value in asdict(entry).items() if value not in ("", None)}
                for entry in self.entries
            ],
        }


def default_baseline_path() -> Path:
    return Path(str(resources.files("testbed") / "data" / "baselines.json"))


def _entry(raw: object, index: int) -> BaselineEntry:
    if not isinstance(raw, dict):
        raise BaselineError(f"baseline entry {index} is not an object")
    known = set(BaselineEntry.__dataclass_fields__)
    unknown = set(raw) - known
    if unknown:
        raise BaselineError(f"baseline entry {index}: unknown keys {sorted(unknown)}")
    try:
        entry = BaselineEntry(**raw)
    except TypeError as error:
        raise BaselineError(f"baseline entry {index}: {error}") from None
    if entry.better not in DIRECTIONS:
        raise BaselineError(f"baseline {entry.name!r}: better must be one of {DIRECTIONS}")
    if entry.band is not None and entry.band < 1:
        raise BaselineError(f"baseline {entry.name!r}: band is a factor >= 1, got {entry.band}")
    return entry


def load_baselines(path: Path) -> Baselines:
    try:
        document = json.loads(path.read_text())
    except OSError as error:
        raise BaselineError(f"cannot read baseline {path}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise BaselineError(f"baseline {path} is not JSON: {error}") from None
    if not isinstance(document, dict) or document.get("schema") != BASELINE_SCHEMA:
        raise BaselineError(f"baseline {path}: schema {BASELINE_SCHEMA} expected")
    entries = tuple(_entry(raw, k) for k, raw in enumerate(document.get("entries", [])))
    names = [entry.name for entry in entries]
    if len(set(names)) != len(names):
        raise BaselineError(f"baseline {path}: two entries share a name")
    overrides = document.get("overrides", {})
    if not isinstance(overrides, dict) or not all(
            isinstance(v, dict) for v in overrides.values()):
        raise BaselineError(f"baseline {path}: overrides maps an experiment to its parameters")
    return Baselines(tuple(document.get("experiments", [])), entries,
                     str(document.get("method", "")), bool(document.get("quick", True)),
                     {name: {str(k): str(v) for k, v in values.items()}
                      for name, values in overrides.items()})


def save_baselines(path: Path, baselines: Baselines) -> None:
    from testbed.results import write_atomically

    write_atomically(path, baselines.to_json())


def band_from_samples(samples: Sequence[float], better: str) -> tuple[float, float]:
    """(reference, band) from one value per calibration round; see the module docstring."""
    if len(samples) < MIN_ROUNDS:
        raise BaselineError(f"{len(samples)} rounds measured; bands need at least {MIN_ROUNDS}")
    if any(sample <= 0 for sample in samples):
        raise BaselineError("bands are taken on logarithms: every sample must be positive")
    logs = [math.log(sample) for sample in samples]
    centre = statistics.median(logs)
    sigma = MAD_TO_SIGMA * statistics.median(abs(value - centre) for value in logs)
    if better == "higher":
        worst = max(centre - value for value in logs)
    elif better == "lower":
        worst = max(value - centre for value in logs)
    else:
        worst = max(abs(value - centre) for value in logs)
    width = max(ROBUST_SIGMAS * sigma, WORST_MARGIN * worst, math.log(MIN_BAND))
    return math.exp(centre), math.exp(width)


def recalibrated(baselines: Baselines, rounds: Sequence[Mapping[str, Mapping[str, float]]]
                 ) -> tuple[Baselines, list[str]]:
    """New references and bands from `rounds` (experiment -> metrics, one per round); entries
    measured in too few rounds keep their old values and are named in the returned list."""
    kept: list[str] = []
    entries: list[BaselineEntry] = []
    for entry in baselines.entries:
        samples = [value for run in rounds
                   if (value := entry.value(run.get(entry.experiment, {}))) is not None]
        try:
            reference, band = band_from_samples(samples, entry.better)
        except BaselineError as error:
            kept.append(f"{entry.name}: {error}")
            entries.append(entry)
            continue
        entries.append(replace(entry, reference=round(reference, 6), band=round(band, 4),
                               rounds=len(samples)))
    return replace(baselines, entries=tuple(entries)), kept
