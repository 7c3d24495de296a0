"""The 2010 paper's figures: one data file with its source, and the mapping of this project's
protocol labels onto the paper's rows."""

from __future__ import annotations

from testbed.apps.protocols import PROTOCOLS
from testbed.paper import (
    LAN_CONNECT_ROW,
    SERVER_COST_RATIOS,
    lan_connect_ms,
    paper_figures,
    server_cost_ratio,
)


def test_the_data_file_names_its_source_and_holds_the_papers_tables() -> None:
    figures = paper_figures()
    assert "USENIX Security 2010" in figures["source"]
    assert figures["lan_connect_ms"]["tcpcrypt not cached"] == 11.3
    assert figures["rsa_exp3_2048_ms"] == {"encrypt": 0.26, "decrypt": 10.42}
    assert figures["middlebox_survey"]["access_networks"] == 142


def test_every_protocol_label_maps_to_a_paper_row_or_to_nothing() -> None:
    assert set(LAN_CONNECT_ROW) == set(PROTOCOLS)
    for label, row in LAN_CONNECT_ROW.items():
        expected = None if row is None else paper_figures()["lan_connect_ms"][row]
        assert lan_connect_ms(label) == expected
    assert lan_connect_ms("tcpcrypt-rsa-exp3") == 11.3
    assert lan_connect_ms("no-such-protocol") is None


def test_every_server_cost_ratio_names_two_measured_protocols() -> None:
    for name, (numerator, denominator) in SERVER_COST_RATIOS.items():
        assert server_cost_ratio(name) > 1
        assert numerator in PROTOCOLS and denominator in PROTOCOLS
    assert server_cost_ratio("SSL / tcpcrypt") == 36.0
