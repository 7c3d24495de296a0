"""`testbed report RESULTS_DIR`: the paper-reproduction report on the terminal (one table per
claim of the 2010 paper, wrapped to the console's width, nothing cut) and as one
self-contained HTML page beside the results (`report.html`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from testbed.claims import Claim, Results, all_claims, load_results
from testbed.report import format_cell, rows_tables

HTML_NAME = "report.html"
NARROWEST_KEY = 14  # the first column folds down to this before a table is split


def key_width(claim: Claim, width: int) -> int:
    """The first column's width: the claim's own, or less on a narrow console so that the
    paper's figure and this run's stay side by side in one table while they can."""
    columns = list(dict.fromkeys(column for row in claim.rows for column in row))
    others = sum(max([len(column)] + [len(format_cell(row.get(column))) for row in claim.rows])
                 + 3 for column in columns[1:])
    return max(NARROWEST_KEY, min(claim.key_width, width - 1 - 3 - others))


def print_claims(console: Console, results: Results, claims: list[Claim]) -> None:
    """Every claim's table (or why it is not measured), then what failed or was unreadable."""
    console.print(f"[bold]The 2010 tcpcrypt paper beside this run[/bold] ({results.directory})")
    for claim in claims:
        if claim.missing:
            console.print(f"\n[bold]{claim.title}[/bold]\n  {claim.missing}")
            continue
        console.print()
        for table in rows_tables(claim.title, claim.rows, console.width,
                                 key_width(claim, console.width)):
            console.print(table)
        for note in claim.notes:
            console.print(f"  note: {note}", soft_wrap=False)
    console.print()
    for name, document in results.documents.items():
        _runs_line(console, name, document)
    if results.failures:
        console.print()
        for experiment, reason in results.failures.items():
            console.print(f"[bold red]failed:[/bold red] {experiment}: {reason}")
    for name, reason in results.unreadable.items():
        console.print(f"[yellow]left out:[/yellow] {name}: {reason}")


def _runs_line(console: Console, name: str, document: dict[str, Any]) -> None:
    """One line per experiment run: how it ran, its expectations, its warnings; fidelity
    warnings (the host could not give the run what it meant to measure) in full."""
    from testbed.fidelity import FIDELITY_PREFIX

    expectations = document.get("expectations") or []
    warnings = [str(w) for w in document.get("warnings") or []]
    unmet = sum(not e.get("passed") and e.get("checked", True) is not False
                for e in expectations)
    profile = f", {document['profile']}" if document.get("profile") else ""
    console.print(f"{name} ({document.get('runtime')}{profile}, {document.get('duration_s')} s): "
                  f"{unmet} of {len(expectations)} expectations not met, "
                  f"{len(warnings)} warnings")
    for warning in warnings:
        if warning.startswith(FIDELITY_PREFIX):
            console.print(f"  [bold magenta]fidelity:[/bold magenta] "
                          f"{warning.removeprefix(FIDELITY_PREFIX)}")


def report(console: Console, directory: Path, html: Path | None = None) -> Path:
    """Print the report on `console` and write the HTML page (default RESULTS_DIR/report.html);
    its path. ValueError (one line) for a directory that holds no results."""
    from testbed.report_html import write_html

    results = load_results(directory)
    if not results.documents and not results.failures:
        raise ValueError(f"{directory}: no result files (results/*.json as `testbed run` "
                         "writes them)")
    claims = all_claims(results)
    print_claims(console, results, claims)
    path = write_html(results, claims, html or directory / HTML_NAME)
    console.print(f"\nHTML report written to {path.resolve()}")
    return path
