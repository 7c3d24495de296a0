"""The `testbed` command: list, run, bench, check, rounds, regress and clean."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from testbed.experiment import Expectation, ExpectationOutcome
from testbed.progress import progress_wanted
from testbed.registry import discover, spec_of
from testbed.regress_cli import regress, run_rounds
from testbed.report import expectations_table, print_warnings, rows_tables
from testbed.results import Result, load_result
from testbed.runner import ConfigError, run_experiment


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="testbed", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the experiments")
    run = commands.add_parser("run", help="run one experiment")
    run.add_argument("name")
    run.add_argument("--quick", action="store_true", help="the small version (what CI runs)")
    run.add_argument("--out", type=Path, default=Path("results"), help="results directory")
    run.add_argument("--seed", type=int, default=1)
    run.add_argument("--repeat", type=int, default=1)
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a parameter of the experiment")
    run.add_argument("--allow-unmet", action="store_true",
                     help="exit 0 even when expectations are not met (still reported)")
    bench = commands.add_parser("bench", help="run the benchmark experiments and their checks")
    bench.add_argument("--out", type=Path, default=Path("results"))
    bench.add_argument("--quick", action="store_true")
    check = commands.add_parser("check", help="re-check a result, optionally against a baseline")
    check.add_argument("result", type=Path)
    check.add_argument("--baseline", type=Path)
    check.add_argument("--tolerance", type=float, default=0.2)
    rounds = commands.add_parser(
        "rounds", help="run the quick experiments the baselines draw on, in interleaved rounds")
    rounds.add_argument("--out", type=Path, required=True, help="writes OUT/round-K/NAME.json")
    rounds.add_argument("--rounds", type=int, default=1)
    rounds.add_argument("--baseline", type=Path, help="baseline file (default: the committed)")
    regress = commands.add_parser(
        "regress", help="check saved results against the committed performance baselines")
    regress.add_argument("results", type=Path, help="results directory (one or more rounds)")
    regress.add_argument("--baseline", type=Path, help="baseline file (default: the committed)")
    regress.add_argument("--update", action="store_true",
                         help="rewrite the baselines' references and bands from these results")
    commands.add_parser("clean", help="remove what a killed emulation run left behind")
    return parser


def _overrides(pairs: list[str]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set wants KEY=VALUE, got {pair!r}")
        overrides[key.strip()] = value.strip()
    return overrides


def _show(console: Console, result: Result) -> None:
    for table in rows_tables(result.experiment, result.rows, console.width):
        console.print(table)
    if result.expectations:
        console.print(expectations_table(result.expectations))
    print_warnings(console, result.warnings)
    console.print(f"result written to {result.path}")


UNMET_EXIT = 3  # expectations not met (1: crashed, 2: refused before running)


def _unmet_exit(console: Console, result: Result, allowed: bool) -> int:
    unmet = [outcome.name for outcome in result.expectations if not outcome.passed]
    if not unmet:
        return 0
    console.print(f"[bold red]{len(unmet)} of {len(result.expectations)} expectations not "
                  f"met[/bold red]: {'; '.join(unmet)}"
                  + (" (--allow-unmet: exit 0)" if allowed else f" (exit {UNMET_EXIT})"))
    return 0 if allowed else UNMET_EXIT


def _list(console: Console) -> int:
    found = discover()
    table = Table(title="experiments")
    for column in ("name", "runtime", "bench", "description"):
        table.add_column(column)
    for name, module in found.experiments.items():
        spec = spec_of(module)
        table.add_row(name, spec.runtime, "yes" if spec.bench else "", spec.description)
    console.print(table)
    for name, error in found.broken.items():
        console.print(f"[red]experiment module {name} failed to import:[/red] {error}")
    return 1 if found.broken else 0


def _bench(console: Console, out: Path, quick: bool) -> int:
    outcomes: list[ExpectationOutcome] = []
    for name, module in discover().experiments.items():
        if spec_of(module).bench:
            result = run_experiment(name, quick=quick, out_dir=out, show_progress=progress_wanted())
            _show(console, result)
            outcomes.extend(result.expectations)
    console.print(expectations_table(outcomes, "All benchmark expectations"))
    return 0 if all(outcome.passed for outcome in outcomes) else 1


def _ratio(document: dict[str, object], lhs: str, rhs: str) -> float | None:
    metrics = document.get("metrics", {})
    assert isinstance(metrics, dict)
    if lhs in metrics and rhs in metrics and metrics[rhs]:
        return float(metrics[lhs]) / float(metrics[rhs])
    return None


def _check(console: Console, path: Path, baseline: Path | None, tolerance: float) -> int:
    try:
        document = load_result(path)
        old = load_result(baseline) if baseline else None
    except (OSError, ValueError) as error:
        raise ConfigError(str(error)) from None
    failed = False
    table = Table(title=f"check {path.name}")
    for column in ("check", "result", "measured", "baseline ratio", "ratio now"):
        table.add_column(column)
    for stored in document.get("expectations", []):
        fields = {k: stored[k] for k in ("name", "lhs", "op", "rhs", "factor", "offset", "source")}
        outcome = Expectation(**fields).evaluate(document["metrics"])
        verdict = "PASS" if outcome.passed else "FAIL"
        failed |= not outcome.passed
        now = _ratio(document, outcome.lhs, outcome.rhs)
        then = _ratio(old, outcome.lhs, outcome.rhs) if old else None
        if now is not None and then is not None and then != 0:
            change = (now - then) / abs(then)
            worse = change < -tolerance if outcome.op == ">=" else change > tolerance
            if worse:
                verdict = "REGRESSED"
                failed = True
        table.add_row(outcome.name, verdict, outcome.description,
                      "" if then is None else f"{then:.3g}", "" if now is None else f"{now:.3g}")
    console.print(table)
    return 1 if failed else 0


def _clean(console: Console) -> int:
    try:
        from testbed.emulation.cleanup import clean_leftovers
    except ModuleNotFoundError:
        print("testbed clean: the emulation runtime is not installed in this version",
              file=sys.stderr)
        return 2
    removed = clean_leftovers()
    for line in removed:
        console.print(line)
    if not removed:
        console.print("nothing to clean")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console()
    try:
        if args.command == "list":
            return _list(console)
        if args.command == "run":
            result = run_experiment(
                args.name, quick=args.quick, out_dir=args.out, seed=args.seed,
                repeat=args.repeat, overrides=_overrides(args.set),
                show_progress=progress_wanted(),
            )
            _show(console, result)
            return _unmet_exit(console, result, args.allow_unmet)
        if args.command == "bench":
            return _bench(console, args.out, args.quick)
        if args.command == "check":
            return _check(console, args.result, args.baseline, args.tolerance)
        if args.command == "rounds":
            return run_rounds(console, args.out, args.rounds, args.baseline)
        if args.command == "regress":
            return regress(console, args.results, args.baseline, args.update)
        return _clean(console)
    except ConfigError as error:
        print(f"testbed: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("testbed: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
