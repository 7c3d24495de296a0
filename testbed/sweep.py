"""`testbed sweep`: one experiment over many seeds and parameter values through Dask's
`distributed` (a LocalCluster of this machine's cores by default, or a running scheduler's
workers with --scheduler ADDRESS), merged into one result file listing every point's seed,
parameters, metrics and expectations.

Each point is an ordinary `run_experiment` in a worker, writing its own result folder
(`points/<index>/`); the merged file is NAME-sweep.json beside them. Workers on other machines
need this package installed and the output folder reachable at the same path.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from testbed.environment import capture_environment
from testbed.registry import spec_of
from testbed.results import SCHEMA_VERSION, write_atomically
from testbed.runner import ConfigError, find_experiment, resolve_params, resolve_runtime


def sweep_points(seeds: list[int], values: Mapping[str, list[str]]) -> list[dict[str, Any]]:
    """Every combination of a seed and one value per swept parameter."""
    names = sorted(values)
    return [{"seed": seed, "overrides": dict(zip(names, combo, strict=True))}
            for seed in seeds for combo in itertools.product(*(values[n] for n in names))]


def _run_point(name: str, point: dict[str, Any], out_dir: str, quick: bool,
               runtime: str | None, profile: str | None) -> dict[str, Any]:
    from testbed.runner import run_experiment

    result = run_experiment(name, quick=quick, out_dir=Path(out_dir), seed=point["seed"],
                            overrides=point["overrides"], runtime=runtime, profile=profile)
    return result.to_json()


def run_sweep(name: str, *, seeds: list[int], values: Mapping[str, list[str]], out_dir: Path,
              quick: bool = False, runtime: str | None = None, profile: str | None = None,
              scheduler: str | None = None) -> Path:
    """Run every point on the cluster; write and return the merged result file."""
    spec = spec_of(find_experiment(name))
    points = sweep_points(seeds, values)
    if not points:
        raise ConfigError("a sweep needs at least one seed")
    for point in points:  # every point's parameters are checked before anything starts
        resolve_params(spec, quick, point["overrides"])
        if point["seed"] < 0:
            raise ConfigError(f"--seeds must be >= 0, got {point['seed']}")
    chosen, cost_profile = resolve_runtime(spec, runtime, profile)
    from distributed import Client, LocalCluster

    started = datetime.now(UTC)
    clock = time.monotonic()
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=os.cpu_count() or 1, threads_per_worker=1,
                               processes=True, dashboard_address=None)
    try:
        with Client(scheduler if scheduler else cluster) as client:  # type: ignore[no-untyped-call]
            futures = [client.submit(_run_point, name, point,
                                     str(out_dir / "points" / str(index)), quick, chosen,
                                     cost_profile, pure=False)
                       for index, point in enumerate(points)]
            documents = client.gather(futures)
    finally:
        if cluster is not None:
            cluster.close()
    merged: dict[str, Any] = {
        "schema": SCHEMA_VERSION, "experiment": f"{spec.name}-sweep", "runtime": chosen,
        "profile": cost_profile, "started": started.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - clock, 3),
        "environment": {**capture_environment(),
                        "scheduler": scheduler or "LocalCluster (this machine)"},
        "config": {"seeds": seeds, "swept": dict(values), "quick": quick},
        "rows": [], "metrics": {}, "expectations": [], "warnings": [], "figures": [],
        "points": [
            {"index": index, "seed": point["seed"], "params": document["config"],
             "metrics": document["metrics"], "expectations": document["expectations"],
             "warnings": document["warnings"], "result": f"points/{index}/{spec.name}.json"}
            for index, (point, document) in enumerate(zip(points, documents, strict=True))
        ],
    }
    warnings: list[str] = merged["warnings"]
    for document in documents:
        warnings.extend(w for w in document["warnings"] if w not in warnings)
    path = out_dir / f"{spec.name}-sweep.json"
    write_atomically(path, merged)
    return path
