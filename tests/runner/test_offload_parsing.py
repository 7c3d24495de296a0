"""Offload settings read from `ethtool -k` output end up in results under short names."""

from __future__ import annotations

from testbed.emulation.offloads import parse_ethtool_features

SAMPLE = """Features for client-eth0:
rx-checksumming: on
tx-checksumming: off
\ttx-checksum-ipv4: off [fixed]
scatter-gather: on
tcp-segmentation-offload: off
generic-segmentation-offload: on
generic-receive-offload: on [fixed]
large-receive-offload: off [fixed]
"""


def test_offload_features_are_named_short_and_fixed_markers_dropped() -> None:
    assert parse_ethtool_features(SAMPLE) == {
        "rx": "on", "tx": "off", "tso": "off", "gso": "on", "gro": "on",
    }


def test_unrelated_or_empty_output_gives_no_settings() -> None:
    assert parse_ethtool_features("") == {}
    assert parse_ethtool_features("Cannot get device features: No such device") == {}
