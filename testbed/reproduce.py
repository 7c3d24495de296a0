"""`testbed reproduce` (what `make run` runs): the quick forms of the experiments behind the
2010 paper's claims into one results directory, then `testbed report` on it.

An experiment that fails (crashes, or is refused) does not stop the others: its name and
reason go to RESULTS/reproduction-status.json, which the report reads to say which claims
are missing and why. Unmet expectations are not failures here (the `--allow-unmet`
semantics): the report shows the figures against the paper's instead. Emulated experiments
wait for the machine-wide emulation lock (TESTBED_LOCK_WAIT_S, default here 1800 s) rather
than fail when another run holds it.
"""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console

from testbed.claims import STATUS_FILE
from testbed.progress import progress_wanted
from testbed.results import write_atomically

# (experiment, runtime, profile) in the order they run; all with --quick
PLAN: tuple[tuple[str, str | None, str | None], ...] = (
    ("connect", None, None),
    ("throughput", None, None),
    ("web-server", None, None),
    ("middlebox-matrix", None, None),
    ("connection-rate", "simulation", "xeon-2008"),
)
LOCK_WAIT_DEFAULT_S = "1800"


def reproduce(console: Console, out: Path, only: list[str] | None = None) -> dict[str, str]:
    """Run the plan (or the experiments named in `only`) into `out`; the failures by name."""
    from testbed.runner import run_experiment

    os.environ.setdefault("TESTBED_LOCK_WAIT_S", LOCK_WAIT_DEFAULT_S)
    out.mkdir(parents=True, exist_ok=True)
    failures: dict[str, str] = {}
    for name, runtime, profile in PLAN:
        if only is not None and name not in only:
            continue
        stale = out / f"{name}.json"
        stale.unlink(missing_ok=True)  # a failed run must not leave an older result shown
        console.print(f"[bold]running {name}[/bold] (quick"
                      f"{', ' + runtime if runtime else ''}{', ' + profile if profile else ''})")
        try:
            result = run_experiment(name, quick=True, out_dir=out, runtime=runtime,
                                    profile=profile, show_progress=progress_wanted())
        except KeyboardInterrupt:
            raise
        except Exception as error:  # one experiment failing still lets the report show the rest
            lines = str(error).strip().splitlines()
            failures[name] = f"{type(error).__name__}: {lines[-1] if lines else ''}"[:300]
            console.print(f"[bold red]{name} failed:[/bold red] {failures[name]}")
            continue
        unmet = sum(outcome.failed for outcome in result.expectations)
        console.print(f"{name}: {result.duration_s:.0f} s, {len(result.warnings)} warnings, "
                      f"{unmet} of {len(result.expectations)} expectations not met "
                      "(reported, not a failure)")
    write_atomically(out / STATUS_FILE, {"failed": failures, "plan": [p[0] for p in PLAN]})
    return failures
