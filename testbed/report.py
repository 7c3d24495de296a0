"""Terminal output of results: the rows as a rich table, expectations, warnings."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from testbed.experiment import ExpectationOutcome


def format_cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def rows_tables(title: str, rows: list[dict[str, Any]]) -> list[Table]:
    """One table per run of consecutive rows that share the same columns."""
    tables: list[Table] = []
    columns: tuple[str, ...] | None = None
    for row in rows:
        if tuple(row) != columns:
            columns = tuple(row)
            tables.append(Table(title=title if not tables else None))
            for column in columns:
                tables[-1].add_column(column)
        tables[-1].add_row(*(format_cell(row[column]) for column in columns))
    return tables


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
