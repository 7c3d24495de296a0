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
