"""Terminal output of results: the rows as a rich table, expectations, warnings."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from testbed.experiment import ExpectationOutcome


def format_cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def rows_tables(title: str, rows: list[dict[str, Any]]) -> list[Table]:
    """One table per set of columns (rows of different kinds, e.g. summaries and rounds, get
    a table each), in the order the sets first appear; rows keep their order within a table."""
    tables: dict[tuple[str, ...], Table] = {}
    for row in rows:
        columns = tuple(row)
        table = tables.get(columns)
        if table is None:
            table = tables[columns] = Table(title=None if tables else title)
            for column in columns:
                table.add_column(column)
        table.add_row(*(format_cell(row[column]) for column in columns))
    return list(tables.values())


def expectations_table(outcomes: list[ExpectationOutcome], title: str = "Expectations") -> Table:
    table = Table(title=title)
    for column in ("check", "result", "measured", "source"):
        table.add_column(column)
    for outcome in outcomes:
        verdict = "[green]PASS[/green]" if outcome.passed else "[red]FAIL[/red]"
        table.add_row(outcome.name, verdict, outcome.description, outcome.source)
    return table


def print_warnings(console: Console, warnings: list[str]) -> None:
    for warning in warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
