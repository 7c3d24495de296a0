"""The JSON result of a run (schema version 1), written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from testbed.experiment import ExpectationOutcome

SCHEMA_VERSION = 1


@dataclass
class Result:
    experiment: str
    runtime: str
    started: str
    duration_s: float
    environment: dict[str, Any]
    config: dict[str, Any]
    rows: list[dict[str, Any]]
    metrics: dict[str, float]
    expectations: list[ExpectationOutcome]
    warnings: list[str]
    figures: list[str] = field(default_factory=list)
    path: Path | None = None
    profile: str | None = None  # the cost profile of a simulation run, else None
    samples: dict[str, list[float]] = field(default_factory=dict)  # e.g. per-connection ms

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "experiment": self.experiment,
            "runtime": self.runtime,
            "profile": self.profile,
            "started": self.started,
            "duration_s": round(self.duration_s, 3),
            "environment": self.environment,
            "config": self.config,
            "rows": self.rows,
            "metrics": self.metrics,
            "expectations": [asdict(outcome) for outcome in self.expectations],
            "warnings": self.warnings,
            "figures": self.figures,
            "samples": self.samples,
        }


def write_atomically(path: Path, document: dict[str, Any]) -> None:
    """Write JSON to a temporary file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(document, stream, indent=2, default=str)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_result(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    if document.get("schema") != SCHEMA_VERSION:
        raise ValueError(f"{path}: schema {document.get('schema')}, expected {SCHEMA_VERSION}")
    return document
