"""The one error the packet codec raises for bytes that are not a valid IPv4/TCP packet."""

from __future__ import annotations


class MalformedPacket(ValueError):
    """`reason` is a short machine-readable tag (e.g. "ipv4-truncated")."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
