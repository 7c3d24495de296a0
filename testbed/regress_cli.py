"""The `testbed rounds` and `testbed regress` commands (argument parsing stays in cli.py).

`rounds` runs the quick experiments a baseline file draws on, in interleaved rounds (round K
runs every experiment once, in an order rotated by K, into OUT/round-K/), so that a slow
minute of a shared machine spreads over all of them instead of hitting one. `regress` checks
a results directory against the baselines and, with `--update`, rewrites the baselines from
the rounds found there.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from testbed.baselines import (
    MIN_ROUNDS,
    BaselineError,
    default_baseline_path,
    load_baselines,
    recalibrated,
    save_baselines,
)
from testbed.progress import progress_wanted
from testbed.regress import absent_metrics, check, load_rounds, verdict_rows
from testbed.report import print_warnings, rows_tables
from testbed.runner import ConfigError, run_experiment


def _baselines_path(path: Path | None) -> Path:
    return path if path is not None else default_baseline_path()


def run_rounds(console: Console, out: Path, rounds: int, baseline: Path | None) -> int:
    """Run the baseline's experiments `rounds` times, interleaved; 0 unless a run crashed."""
    if rounds < 1:
        raise ConfigError(f"--rounds must be at least 1, got {rounds}")
    try:
        baselines = load_baselines(_baselines_path(baseline))
    except BaselineError as error:
        raise ConfigError(str(error)) from None
    names = list(baselines.experiments)
    if not names:
        raise ConfigError("the baseline file names no experiments to run")
    crashed: list[str] = []
    for index in range(1, rounds + 1):
        shift = (index - 1) % len(names)
        for name in names[shift:] + names[:shift]:
            if not _run_one(console, name, baselines.quick, baselines.overrides.get(name, {}),
                            out / f"round-{index}", index, f"round {index}/{rounds}"):
                crashed.append(f"{name} (round {index})")
    if crashed:
        console.print(f"[bold red]crashed twice, no metrics:[/bold red] {', '.join(crashed)}")
        return 1
    return 0


def _run_one(console: Console, name: str, quick: bool, overrides: dict[str, str], out: Path,
             seed: int, label: str) -> bool:
    """Run one experiment, once more if it crashes (a reset under load is not a regression;
    twice is reported); False when both attempts crashed."""
    for attempt in (1, 2):
        try:
            result = run_experiment(name, quick=quick, out_dir=out, seed=seed,
                                    overrides=overrides, show_progress=progress_wanted())
        except (ConfigError, KeyboardInterrupt):
            raise
        except Exception as error:  # the experiment's own failure: say it, try once more
            console.print(f"[red]{label}: {name} crashed (attempt {attempt}):[/red] "
                          f"{type(error).__name__}: {str(error)[-300:]}")
            continue
        failed = sum(outcome.failed for outcome in result.expectations)
        console.print(f"{label}: {name} in {result.duration_s:.1f} s"
                      + (f" ({failed} expectation(s) not met; not a gate here)"
                         if failed else ""))
        print_warnings(console, result.warnings)
        return True
    return False


def regress(console: Console, results: Path, baseline: Path | None, update: bool) -> int:
    """0: every checked entry within its band; 1: a regression; ConfigError on bad input."""
    path = _baselines_path(baseline)
    skipped: list[str] = []
    try:
        baselines = load_baselines(path)
        rounds = load_rounds(results, baselines, skipped)
        for line in skipped:
            console.print(f"[yellow]left out[/yellow] (not measured as the baselines were): "
                          f"{line}")
        if update:
            return _update(console, path, rounds)
        verdicts = check(baselines, rounds)
    except BaselineError as error:
        raise ConfigError(str(error)) from None
    title = f"regress: {len(rounds)} round(s) against {path.name}"
    for table in rows_tables(title, verdict_rows(verdicts), console.width, key_width=27):
        console.print(table)
    for line in absent_metrics(verdicts):
        console.print(f"[yellow]not checked[/yellow] (absent from the results): {line}")
    regressed = [verdict for verdict in verdicts if verdict.failed]
    checked = sum(verdict.value is not None for verdict in verdicts)
    if regressed:
        console.print(f"[bold red]REGRESSION:[/bold red] {len(regressed)} of {checked} checked "
                      f"baselines out of their band: "
                      + ", ".join(verdict.entry.name for verdict in regressed))
        return 1
    console.print(f"[green]no regression[/green]: {checked} baselines checked, "
                  f"{len(verdicts) - checked} not checked")
    return 0


def _update(console: Console, path: Path, rounds: list[dict[str, dict[str, float]]]) -> int:
    if len(rounds) < MIN_ROUNDS:
        raise BaselineError(f"--update needs at least {MIN_ROUNDS} rounds of results "
                            f"(testbed rounds --rounds N), found {len(rounds)}")
    baselines = load_baselines(path)
    updated, kept = recalibrated(baselines, rounds)
    save_baselines(path, updated)
    for line in kept:
        console.print(f"[yellow]kept as it was[/yellow]: {line}")
    rows = [{"baseline": entry.name, "reference": f"{entry.reference:.4g}",
             "band": f"x{entry.band:.3g}", "rounds": entry.rounds,
             "catches 2x": "yes" if entry.band is not None and entry.band < 2 else "NO"}
            for entry in updated.entries if entry.reference is not None]
    for table in rows_tables(f"baselines written to {path}", rows, console.width):
        console.print(table)
    return 0
