"""Turns a topology's middlebox nodes into transparent bridges running their model chain."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

OFFLOADS = ("tx", "rx", "tso", "gso", "gro")


class MiddleboxNodeError(RuntimeError):
    """A middlebox node cannot be hosted (wrong number of interfaces, engine failed)."""


def disable_offloads(net: Any) -> dict[str, str]:
    """Offloads off on every host interface; returns what was set, for the results."""
    settings: dict[str, str] = {}
    for host in net.hosts:
        for interface in host.intfList():
            if interface.name == "lo":
                continue
            host.cmd("ethtool", "-K", interface.name,
                     *[word for offload in OFFLOADS for word in (offload, "off")])
            settings[interface.name] = ",".join(f"{o}=off" for o in OFFLOADS)
    return settings


def start_middleboxes(net: Any) -> list[subprocess.Popen[str]]:
    """Start the bridge engine in every host with params role=middlebox."""
    middleboxes = [h for h in net.hosts if h.params.get("role") == "middlebox"]
    if not middleboxes:
        return []
    net.offload_settings = disable_offloads(net)
    engines = []
    for node in middleboxes:
        interfaces = [i.name for i in node.intfList() if i.name != "lo"]
        if len(interfaces) != 2:
            raise MiddleboxNodeError(
                f"{node.name}: the bridge engine needs exactly 2 interfaces, has {interfaces}"
            )
        for interface in interfaces:
            node.cmd("ip", "addr", "flush", "dev", interface)  # a bridge has no address
        process: subprocess.Popen[str] = node.popen(
            [sys.executable, "-m", "middleboxes.engines.bridge", "--path", node.params["path"],
             "--client", interfaces[0], "--server", interfaces[1]],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert process.stdout is not None
        if process.stdout.readline().strip() != "bridging":
            _, error = process.communicate(timeout=5)
            raise MiddleboxNodeError(f"{node.name}: engine did not start: {error.strip()}")
        engines.append(process)
    return engines
