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


def interface_names(ip_link_output: str) -> list[str]:
    """The interface names in `ip -o link show` output ("2: name@peer: <...> ..."), without
    the loopback."""
    names = []
    for line in ip_link_output.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            name = parts[1].strip().split("@")[0]
            if name and name != "lo":
                names.append(name)
    return names


def read_offloads(net: Any) -> dict[str, str]:
    """{"host:interface": "rx=on,tx=on,..."} for every non-loopback interface in every host's
    namespace: Mininet's links and the bridges and veths created inside nodes."""
    found: dict[str, str] = {}
    for host in net.hosts:
        for name in interface_names(host.cmd("ip", "-o", "link", "show")):
            settings = parse_ethtool_features(host.cmd("ethtool", "-k", name))
            found[f"{host.name}:{name}"] = ",".join(
                f"{key}={value}" for key, value in sorted(settings.items())
            ) or "unknown"
    return found
