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


def rows_table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title)
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    for column in columns:
        table.add_column(column, justify="left")
    for row in rows:
        table.add_row(*(format_cell(row.get(column, "")) for column in columns))
    return table


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
