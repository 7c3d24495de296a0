"""The `testbed` command: list, run, bench, check, rounds, regress, report, reproduce and
clean."""

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
from testbed.runner import ConfigError, find_experiment, run_experiment


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="testbed", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser(
        "list", help="list the experiments, or one experiment's parameters and their ranges")
    listing.add_argument("name", nargs="?", help="an experiment: show its parameters")
    run = commands.add_parser("run", help="run one experiment")
    run.add_argument("name")
    run.add_argument("--quick", action="store_true", help="the small version (what CI runs)")
    run.add_argument("--out", type=Path, default=Path("results"), help="results directory")
    run.add_argument("--seed", type=int, default=1)
    run.add_argument("--repeat", type=int, default=1)
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a parameter of the experiment (`testbed list NAME` shows "
                          "them with their ranges)")
    run.add_argument("--runtime", help="sim or emulation (default: the experiment's own)")
    run.add_argument("--profile", help="cost profile in simulation (testbed/data/costs-*.json):"
                     " measured, kernel, xeon-2008")
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
    report = commands.add_parser(
        "report", help="the 2010 paper's claims beside saved results: tables and an HTML page")
    report.add_argument("results", type=Path, help="results directory (results/*.json)")
    report.add_argument("--html", type=Path, help="the HTML page (default: RESULTS/report.html)")
    reproduce = commands.add_parser(
        "reproduce", help="the paper reproduction (make run): quick experiments, then the report")
    reproduce.add_argument("--out", type=Path, default=Path("results/paper"))
    reproduce.add_argument("--only", help="comma-separated experiments of the plan to run")
    clean = commands.add_parser("clean", help="remove what a killed emulation run left behind")
    clean.add_argument("--run", type=int, metavar="PID",
                       help="only the run whose runner had this process id (default: every "
                            "run whose runner is gone)")
    sweep = commands.add_parser("sweep", help="run one experiment over seeds and parameter "
                                "values on a Dask cluster, merged into one result file")
    sweep.add_argument("name")
    sweep.add_argument("--seeds", default="1", help="comma-separated seeds")
    sweep.add_argument("--set", action="append", default=[], metavar="KEY=V1|V2",
                       help="a parameter and the values to sweep it over")
    sweep.add_argument("--scheduler", help="a running Dask scheduler (default: a LocalCluster)")
    sweep.add_argument("--runtime")
    sweep.add_argument("--profile")
    sweep.add_argument("--quick", action="store_true")
    sweep.add_argument("--out", type=Path, default=Path("results"))
    check_sim = commands.add_parser("validate", help="the same small experiments in emulation "
                                    "and simulation (measured profile), within 25%%?")
    check_sim.add_argument("--quick", action="store_true")
    check_sim.add_argument("--out", type=Path, default=Path("results/validate"))
    calibrate = commands.add_parser("calibrate", help="time each operation here and write the "
                                    "measured, kernel and xeon-2008 cost profiles")
    calibrate.add_argument("--out", type=Path, help="directory (default: testbed/data)")
    calibrate.add_argument("--connections", type=int, default=300)
    calibrate.add_argument("--rounds", type=int, default=3)
    calibrate.add_argument("--emulation", action="store_true",
                           help="take the server costs from an emulated connect run (root; "
                           "tcpcrypt through tcpcryptd)")
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
    unmet = [outcome.name for outcome in result.expectations if outcome.failed]
    if not unmet:
        return 0
    console.print(f"[bold red]{len(unmet)} of {len(result.expectations)} expectations not "
                  f"met[/bold red]: {'; '.join(unmet)}"
                  + (" (--allow-unmet: exit 0)" if allowed else f" (exit {UNMET_EXIT})"))
    return 0 if allowed else UNMET_EXIT


def _list(console: Console) -> int:
    found = discover()
    table = Table(title="experiments")
    for column in ("name", "runtimes", "bench", "description"):
        table.add_column(column)
    for name, module in found.experiments.items():
        spec = spec_of(module)
        table.add_row(name, ", ".join(spec.supported_runtimes), "yes" if spec.bench else "",
                      spec.description)
    console.print(table)
    for name, error in found.broken.items():
        console.print(f"[red]experiment module {name} failed to import:[/red] {error}")
    return 1 if found.broken else 0


def _list_one(console: Console, name: str) -> int:
    from middleboxes.registry import MODELS, model_parameters

    spec = spec_of(find_experiment(name))
    console.print(f"{spec.name} ({spec.runtime}): {spec.description}")
    table = Table(title=f"parameters of {spec.name} (testbed run {spec.name} --set KEY=VALUE)")
    for column in ("name", "type", "default", "--quick", "accepts", "help"):
        table.add_column(column)
    for param in spec.params:
        quick = "" if param.quick is None else str(param.quick)
        table.add_row(param.name, type(param.default).__name__, str(param.default), quick,
                      param.accepted(), param.help)
    console.print(table)
    if any(param.chains for param in spec.params):
        console.print(CHAIN_SYNTAX)
        models = Table(title="middlebox models")
        for column in ("model", "parameter", "type", "default", "accepts"):
            models.add_column(column)
        for model_name, model in MODELS.items():
            rows = model_parameters(model) or [("", "", "", "")]
            for index, row in enumerate(rows):
                models.add_row(model_name if index == 0 else "", *row)
        console.print(models)
    return 0


CHAIN_SYNTAX = (
    "A chain: models in path order from the client, separated by commas outside parentheses;"
    " parameters as key=value inside parentheses; a list value separates its items with '|';"
    " 'none' is no model. Example: strip-options(on=syn,ports=80|443),link(delay_ms=10)"
)


def _bench(console: Console, out: Path, quick: bool) -> int:
    outcomes: list[ExpectationOutcome] = []
    for name, module in discover().experiments.items():
        if spec_of(module).bench:
            result = run_experiment(name, quick=quick, out_dir=out, show_progress=progress_wanted())
            _show(console, result)
            outcomes.extend(result.expectations)
    console.print(expectations_table(outcomes, "All benchmark expectations"))
    return 0 if not any(outcome.failed for outcome in outcomes) else 1


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
        if stored.get("checked") is False:  # the run left out its row: still not checked
            table.add_row(outcome.name, "not checked", str(stored.get("description", "")),
                          "", "")
            continue
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


def _clean(console: Console, run_pid: int | None = None) -> int:
    if run_pid is not None and run_pid <= 0:
        print(f"testbed clean: --run takes a process id > 0, not {run_pid}", file=sys.stderr)
        return 2
    try:
        from testbed.emulation.cleanup import clean_leftovers
    except ModuleNotFoundError:
        print("testbed clean: the emulation runtime is not installed in this version",
              file=sys.stderr)
        return 2
    removed = clean_leftovers(run_pid)
    for line in removed:
        console.print(line)
    if not removed:
        console.print("nothing to clean")
    return 0


def _validate(console: Console, out: Path, quick: bool) -> int:
    from testbed.validate import BOUND, validate

    _writable(out)
    comparisons, path = validate(out, quick)
    table = Table(title="simulation (costs calibrated in this run) vs emulation, trusted "
                  f"within {BOUND:.0%}")
    for column in ("metric", "emulation", "simulation", "difference", "trusted"):
        table.add_column(column)
    for c in comparisons:
        table.add_row(c.metric, "-" if c.emulation is None else f"{c.emulation:.4g}",
                      "-" if c.simulation is None else f"{c.simulation:.4g}",
                      "-" if c.difference is None else f"{c.difference:+.0%}",
                      "yes" if c.within else "NO")
    console.print(table)
    console.print(f"result written to {path}")
    return 0 if all(c.within for c in comparisons) else 1


def _sweep(console: Console, args: argparse.Namespace) -> int:
    from testbed.sweep import run_sweep

    try:
        seeds = [int(seed) for seed in args.seeds.split(",") if seed.strip()]
    except ValueError:
        raise ConfigError(f"--seeds wants comma-separated integers, got {args.seeds!r}") from None
    values = {key: value.split("|") for key, value in _overrides(args.set).items()}
    path = run_sweep(args.name, seeds=seeds, values=values, out_dir=args.out, quick=args.quick,
                     runtime=args.runtime, profile=args.profile, scheduler=args.scheduler)
    console.print(f"sweep written to {path}")
    return 0


def _calibrate(console: Console, out: Path | None, connections: int, rounds: int,
               emulation: bool) -> int:
    if connections < 10 or rounds < 1:
        raise ConfigError("--connections must be at least 10 and --rounds at least 1")
    from testbed.calibration.run import calibrate
    from testbed.sim.costs import DATA_DIR, load_profile

    target = out or DATA_DIR
    if out is not None:
        _writable(out)
    for path in calibrate(target, connections, rounds, say=console.print, emulation=emulation):
        console.print(f"written {path}")
    load_profile.cache_clear()
    return 0


def _report(console: Console, results: Path, html: Path | None) -> int:
    from testbed.paper_report import report

    try:
        report(console, results, html)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return 0


def _reproduce(console: Console, out: Path, only: str | None) -> int:
    """Exit 0 even when experiments failed (the report says which): a demonstration."""
    from testbed.reproduce import PLAN, reproduce

    names = [name.strip() for name in only.split(",")] if only else None
    unknown = [name for name in names or [] if name not in [p[0] for p in PLAN]]
    if unknown:
        raise ConfigError(f"--only: not in the plan: {unknown}; the plan: "
                          f"{', '.join(p[0] for p in PLAN)}")
    _writable(out)
    reproduce(console, out, names)
    return _report(console, out, None)


def _writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot write to {directory}: {error.strerror}") from None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console()
    try:
        if args.command == "list":
            return _list_one(console, args.name) if args.name else _list(console)
        if args.command == "run":
            result = run_experiment(
                args.name, quick=args.quick, out_dir=args.out, seed=args.seed,
                repeat=args.repeat, overrides=_overrides(args.set),
                show_progress=progress_wanted(), runtime=args.runtime, profile=args.profile,
            )
            _show(console, result)
            return _unmet_exit(console, result, args.allow_unmet)
        if args.command == "validate":
            return _validate(console, args.out, args.quick)
        if args.command == "sweep":
            return _sweep(console, args)
        if args.command == "calibrate":
            return _calibrate(console, args.out, args.connections, args.rounds, args.emulation)
        if args.command == "bench":
            return _bench(console, args.out, args.quick)
        if args.command == "check":
            return _check(console, args.result, args.baseline, args.tolerance)
        if args.command == "rounds":
            return run_rounds(console, args.out, args.rounds, args.baseline)
        if args.command == "report":
            return _report(console, args.results, args.html)
        if args.command == "reproduce":
            return _reproduce(console, args.out, args.only)
        if args.command == "regress":
            return regress(console, args.results, args.baseline, args.update)
        return _clean(console, args.run)
    except ConfigError as error:
        print(f"testbed: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("testbed: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
