"""Result rows on the terminal: one table per kind of row, cells formatted for reading."""

from __future__ import annotations

from testbed.report import format_cell, rows_tables


def test_rows_of_two_kinds_interleaved_make_two_tables_in_row_order() -> None:
    rows = [
        {"protocol": "tcp", "mbps": 1.0},
        {"protocol": "tcp", "round": 0, "mbps": 1.0},
        {"protocol": "tls13", "mbps": 2.0},
        {"protocol": "tls13", "round": 0, "mbps": 2.0},
    ]
    tables = rows_tables("throughput", rows)
    assert [table.row_count for table in tables] == [2, 2]
    assert [[column.header for column in table.columns] for table in tables] == [
        ["protocol", "mbps"], ["protocol", "round", "mbps"]]
    assert tables[0].title == "throughput" and tables[1].title is None
    assert list(tables[0].columns[0].cells) == ["tcp", "tls13"]


def test_cells_read_as_people_write_them() -> None:
    assert [format_cell(v) for v in (None, True, False, 0.12345, 12345.6, "x", 3)] == [
        "-", "yes", "no", "0.123", "12,346", "x", "3"]


def test_a_wide_table_wraps_into_tables_led_by_its_key_column_and_cuts_nothing() -> None:
    from rich.console import Console

    columns = ["protocol", "latency_ms", "p90_ms", "connect_ms", "ready_ms", "server_cpu_us",
               "daemon_cpu_us", "daemon_kernel_us", "resumed", "encrypted", "paper_2010_ms"]
    rows = [{column: ("tcpcrypt-rsa-exp3-resumed" if column == "protocol" else 1234.5678)
             for column in columns}]
    tables = rows_tables("connect", rows, width=80)
    assert len(tables) > 1
    assert all(table.columns[0].header == "protocol" for table in tables)
    shown = [str(column.header) for table in tables for column in table.columns[1:]]
    assert shown == columns[1:]
    console = Console(record=True, width=80)
    for table in tables:
        console.print(table)
    text = console.export_text()
    assert "…" not in text and all(len(line) <= 80 for line in text.splitlines())
    assert all(column in text for column in columns)


def test_a_very_wide_key_column_folds_instead_of_splitting_the_table() -> None:
    rows = [{"server CPU per connection": "tcpcrypt / TCP (worst case) (tcpcrypt-rsa-exp3 / "
             "tcp)", "paper_2010": 3.0, "measured": 29.1}]
    (table,) = rows_tables("connect", rows, width=80)
    assert [str(column.header) for column in table.columns] == [
        "server CPU per connection", "paper_2010", "measured"]
