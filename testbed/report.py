"""Terminal output of results: the rows as rich tables, expectations, warnings.

Tables are made to read in an 80-column terminal and in a log file: a table wider than that
is wrapped into several tables that each repeat the first (key) column, and a cell or header
that is still too wide folds onto more lines. Nothing is ever cut to an ellipsis.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from testbed.experiment import ExpectationOutcome
from testbed.fidelity import FIDELITY_PREFIX

WIDTH = 80  # the terminal the tables are made for
_BORDER = 3  # per column: one space each side and the rule between columns
KEY_WIDTH = 32  # a wider first column folds onto more lines rather than crowd the others out


def format_cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _natural_width(header: str, cells: list[str]) -> int:
    return max([len(header), *(len(cell) for cell in cells)])


def column_groups(columns: list[str], cells: list[list[str]], width: int = WIDTH,
                  key_width: int = KEY_WIDTH) -> list[list[int]]:
    """Indexes of the columns of each wrapped table: the first column starts every group, the
    others follow in order while the table still fits `width` (at least one per group)."""
    if len(columns) <= 1:
        return [list(range(len(columns)))]
    widths = [_natural_width(column, [row[k] for row in cells])
              for k, column in enumerate(columns)]
    budget = width - 1 - (min(widths[0], key_width) + _BORDER)
    groups: list[list[int]] = []
    current: list[int] = []
    used = 0
    for index in range(1, len(columns)):
        need = widths[index] + _BORDER
        if current and used + need > budget:
            groups.append([0, *current])
            current, used = [], 0
        current.append(index)
        used += need
    groups.append([0, *current])
    return groups


def _table(title: str | None, columns: list[str], cells: list[list[str]], key_width: int
           ) -> Table:
    table = Table(title=title)
    for index, column in enumerate(columns):
        table.add_column(column, overflow="fold", max_width=key_width if index == 0 else None)
    for row in cells:
        table.add_row(*row)
    return table


def rows_tables(title: str, rows: list[dict[str, Any]], width: int = WIDTH,
                key_width: int = KEY_WIDTH) -> list[Table]:
    """One table per set of columns (rows of different kinds, e.g. summaries and rounds, get
    a table each), in the order the sets first appear; rows keep their order within a table.
    A set too wide for `width` becomes several tables, each led by the first column."""
    kinds: dict[tuple[str, ...], list[list[str]]] = {}
    for row in rows:
        kinds.setdefault(tuple(row), []).append([format_cell(row[c]) for c in row])
    tables: list[Table] = []
    for columns, cells in kinds.items():
        groups = column_groups(list(columns), cells, width, key_width)
        for part, group in enumerate(groups):
            name = None if tables else title
            if part and len(groups) > 1:
                name = f"{title} (continued, {part + 1}/{len(groups)})"
            tables.append(_table(name, [columns[k] for k in group],
                                 [[row[k] for k in group] for row in cells], key_width))
    return tables


def expectations_table(outcomes: list[ExpectationOutcome], title: str = "Expectations") -> Table:
    table = Table(title=title)
    for column in ("check", "result", "measured", "source"):
        table.add_column(column, overflow="fold")
    for outcome in outcomes:
        verdict = ("[yellow]not checked[/yellow]" if not outcome.checked
                   else "[green]PASS[/green]" if outcome.passed else "[red]FAIL[/red]")
        table.add_row(outcome.name, verdict, outcome.description, outcome.source)
    return table


def print_warnings(console: Console, warnings: list[str]) -> None:
    """Each warning on its line; fidelity warnings (the host or a shaped link could not give
    the run what it meant to measure) last and in bold, so they end the run's output."""
    fidelity = [w for w in warnings if w.startswith(FIDELITY_PREFIX)]
    for warning in warnings:
        if warning not in fidelity:
            console.print(f"[yellow]warning:[/yellow] {warning}")
    for warning in fidelity:
        console.print(f"[bold magenta]fidelity warning:[/bold magenta] "
                      f"{warning.removeprefix(FIDELITY_PREFIX)}")
