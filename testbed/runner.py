"""Runs one experiment: validates its parameters first, runs it (maybe repeatedly), checks its
expectations and writes the JSON result atomically."""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from testbed.environment import capture_environment
from testbed.experiment import (
    ExperimentOutput,
    ExperimentSpec,
    ParamValue,
    RunContext,
    canonical_runtime,
)
from testbed.fidelity import HostMonitor, monitored
from testbed.progress import rich_progress, silent_progress
from testbed.registry import DEFAULT_PACKAGE, discover, spec_of
from testbed.results import Result, write_atomically


class ConfigError(Exception):
    """A bad request, refused before anything runs; the message is one line."""


def find_experiment(name: str, package: str = DEFAULT_PACKAGE) -> ModuleType:
    import difflib

    found = discover(package)
    if name in found.experiments:
        return found.experiments[name]
    close = difflib.get_close_matches(name, list(found.experiments), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    known = ", ".join(found.experiments) or "none"
    raise ConfigError(f"unknown experiment {name!r}{hint}; known: {known}")


def resolve_params(
    spec: ExperimentSpec, quick: bool, overrides: Mapping[str, str] | None
) -> dict[str, ParamValue]:
    values: dict[str, ParamValue] = {}
    for param in spec.params:
        quick_value = param.quick if quick and param.quick is not None else None
        values[param.name] = quick_value if quick_value is not None else param.default
    for key, text in (overrides or {}).items():
        override = spec.param(key)
        if override is None:
            known = ", ".join(p.name for p in spec.params) or "none"
            raise ConfigError(f"{spec.name} has no parameter {key!r}; known: {known}")
        try:
            values[key] = override.parse(text)
        except ValueError as error:
            raise ConfigError(str(error)) from None
    for param in spec.params:
        try:
            param.check(values[param.name])
        except ValueError as error:
            raise ConfigError(f"{param.name}: {error}") from None
    return values


def resolve_runtime(
    spec: ExperimentSpec, runtime: str | None, profile: str | None
) -> tuple[str, str | None]:
    """The runtime to use and, in simulation, the cost profile; ConfigError (one line) for a
    runtime the experiment does not support or a profile outside simulation."""
    try:
        chosen = canonical_runtime(runtime) if runtime else spec.runtime
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if chosen not in spec.supported_runtimes:
        raise ConfigError(f"{spec.name} runs in {', '.join(spec.supported_runtimes)}, "
                          f"not in {chosen}")
    if chosen != "simulation":
        if profile is not None:
            raise ConfigError(f"--profile applies to the simulation runtime only, not {chosen}")
        return chosen, None
    from testbed.sim.costs import DEFAULT_PROFILE, ProfileError, load_profile

    try:
        load_profile(profile or DEFAULT_PROFILE)
    except ProfileError as error:
        raise ConfigError(str(error)) from None
    return chosen, profile or DEFAULT_PROFILE


def _check_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write-probe"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise ConfigError(f"cannot write results to {out_dir}: {error.strerror}") from None


def _median_metrics(outputs: list[ExperimentOutput]) -> dict[str, float]:
    names = {name for output in outputs for name in output.metrics}
    return {
        name: statistics.median(o.metrics[name] for o in outputs if name in o.metrics)
        for name in sorted(names)
    }


def _joined_samples(outputs: list[ExperimentOutput]) -> dict[str, list[float]]:
    """Each named series of samples over all repeats, in order."""
    joined: dict[str, list[float]] = {}
    for output in outputs:
        for name, values in output.samples.items():
            joined.setdefault(name, []).extend(values)
    return joined


def _run_repeats(
    module: ModuleType, params: dict[str, ParamValue], seed: int, quick: bool, repeat: int,
    out_dir: Path, factory: Any, outputs: list[ExperimentOutput], rows: list[dict[str, Any]],
    warnings: list[str], environment: dict[str, object], runtime: str, profile: str | None,
) -> None:
    for index in range(repeat):
        run_dir = out_dir if repeat == 1 else out_dir / f"repeat-{index}"  # figures apart
        run_dir.mkdir(parents=True, exist_ok=True)
        ctx = RunContext(
            params, seed=seed + index, quick=quick, repeat=repeat, out_dir=run_dir,
            progress_factory=factory, runtime=runtime, profile=profile,
        )
        output = module.run(ctx)
        outputs.append(output)
        rows.extend({"repeat": index, **row} if repeat > 1 else row for row in output.rows)
        warnings.extend(w for w in ctx.warnings if w not in warnings)
        environment.update(ctx.environment)


def run_experiment(
    name: str,
    *,
    quick: bool = False,
    out_dir: Path = Path("results"),
    seed: int = 1,
    repeat: int = 1,
    overrides: Mapping[str, str] | None = None,
    show_progress: bool = False,
    package: str = DEFAULT_PACKAGE,
    runtime: str | None = None,
    profile: str | None = None,
) -> Result:
    """Run experiment `name` and write out_dir/NAME.json; ConfigError before anything runs."""
    if repeat < 1:
        raise ConfigError(f"--repeat must be at least 1, got {repeat}")
    if seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {seed}")
    module = find_experiment(name, package)
    spec = spec_of(module)
    params = resolve_params(spec, quick, overrides)
    chosen, cost_profile = resolve_runtime(spec, runtime, profile)
    _check_out_dir(out_dir)

    started = datetime.now(UTC)
    clock = time.monotonic()
    outputs: list[ExperimentOutput] = []
    rows: list[dict[str, Any]] = []
    warnings: list[str] = []
    environment = capture_environment()
    factory = rich_progress if show_progress else silent_progress
    watch: AbstractContextManager[HostMonitor | None] = (
        monitored() if chosen == "emulation" else nullcontext(None))
    with watch as monitor:
        _run_repeats(module, params, seed, quick, repeat, out_dir, factory, outputs, rows,
                     warnings, environment, chosen, cost_profile)
        if monitor is not None:  # emulated runs: was the host free to measure?
            environment["host_cpu"], fidelity_warnings = monitor.stop()
            warnings.extend(fidelity_warnings)
    metrics = _median_metrics(outputs)
    result = Result(
        experiment=spec.name,
        runtime=chosen,
        profile=cost_profile,
        started=started.isoformat(timespec="seconds"),
        duration_s=time.monotonic() - clock,
        environment=environment,
        config={**params, "seed": seed, "repeat": repeat, "quick": quick},
        rows=rows,
        metrics=metrics,
        expectations=spec.evaluate(
            metrics, params, {row for output in outputs for row in output.rows_not_run}),
        warnings=warnings,
        samples=_joined_samples(outputs),
        figures=[
            str(path.relative_to(out_dir)) if path.is_relative_to(out_dir) else str(path)
            for output in outputs
            for path in output.figures
        ],
        path=out_dir / f"{spec.name}.json",
    )
    assert result.path is not None
    write_atomically(result.path, result.to_json())
    return result
