"""Reading the offload settings of emulated hosts' interfaces, for results' environment.

Throughput and CPU figures depend on them (segmentation and checksum offloads move work out of
the measured processes), so every emulation result records what its interfaces ran with.
"""

from __future__ import annotations

from typing import Any

FEATURES = {
    "rx-checksumming": "rx",
    "tx-checksumming": "tx",
    "tcp-segmentation-offload": "tso",
    "generic-segmentation-offload": "gso",
    "generic-receive-offload": "gro",
}


def parse_ethtool_features(text: str) -> dict[str, str]:
    """`ethtool -k` output -> {"rx": "on", "tx": "on", "tso": ..., "gso": ..., "gro": ...}."""
    settings: dict[str, str] = {}
    for line in text.splitlines():
        name, _, value = line.strip().partition(":")
        if name in FEATURES and value.strip():
            settings[FEATURES[name]] = value.split()[0]
    return settings


def read_offloads(net: Any) -> dict[str, str]:
    """{"host:interface": "rx=on,tx=on,..."} for every non-loopback interface of every host."""
    found: dict[str, str] = {}
    for host in net.hosts:
        for interface in host.intfList():
            if interface.name == "lo":
                continue
            settings = parse_ethtool_features(host.cmd("ethtool", "-k", interface.name))
            found[f"{host.name}:{interface.name}"] = ",".join(
                f"{key}={value}" for key, value in sorted(settings.items())
            ) or "unknown"
    return found
