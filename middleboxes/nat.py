"""nat: rewrites the client's address and port to a public address and an allocated port,
and maps replies back (a NAPT as home routers do).

A mapping lasts `idle_s` after its last packet (either way) and `closed_s` after its
connection closed (RST, or FIN both ways); its port then goes back to the pool. Ports never
used are handed out first, then freed ones, those freed longest ago first, so a port is reused
as late as possible. With every port of the range in a live mapping, the closed mapping that
closed first, if any, makes room; otherwise the new flow is dropped ("nat-ports-exhausted")
until a mapping expires.
"""

from __future__ import annotations

import ipaddress
from collections import deque

from middleboxes.base import (
    Action,
    Direction,
    Drop,
    Forward,
    Middlebox,
    MiddleboxConfigError,
    Scope,
)
from middleboxes.flow_table import CLOSED_S, FLOW_RANGES, IDLE_S, FlowTable, flow_params
from packets.patch import patch_fields
from packets.tcp import TcpPacket

Inside = tuple[bytes, int]  # the client's address and port


class Nat(Middlebox):
    name = "nat"
    ranges = {"first_port": (1024, 65535), **FLOW_RANGES}
    scope = Scope.PACKETS  # rewrites addresses and ports, the same in every wire segment
    # (in place, checksums updated incrementally: a 64 KB super-packet costs what a SYN does)

    def __init__(self, public: str = "192.0.2.1", first_port: int = 20000,
                 idle_s: float = IDLE_S, closed_s: float = CLOSED_S) -> None:
        super().__init__()
        try:
            self.public = ipaddress.IPv4Address(public).packed
        except ValueError:
            raise MiddleboxConfigError(
                f"nat: public must be an IPv4 address, got {public!r}"
            ) from None
        self.check_ranges(first_port=first_port, idle_s=idle_s, closed_s=closed_s)
        self._next_port = first_port
        self._free: deque[int] = deque()  # ports of expired mappings, oldest first
        ports = 65536 - first_port
        self._outbound: FlowTable[Inside, int] = FlowTable(
            idle_s=idle_s, closed_s=closed_s, max_flows=ports, on_drop=self._dropped)
        self._inbound: dict[int, Inside] = {}
        self.params: dict[str, object] = {"public": public, "first_port": first_port,
                                          **flow_params(idle_s, closed_s, ports)}
        self.params.pop("max_flows", None)

    def mappings(self) -> int:
        """Mappings held."""
        return len(self._outbound)

    def _dropped(self, inside: Inside, port: int, reason: str) -> None:
        self.stats[f"mappings-{reason}"] += 1
        del self._inbound[port]
        self._free.append(port)

    def _allocate(self, inside: Inside, now: float) -> int | None:
        if self._next_port <= 65535:
            port = self._next_port
            self._next_port += 1
        elif self._free:
            port = self._free.popleft()
        else:
            return None
        self._outbound.put(inside, port, now)
        self._inbound[port] = inside
        return port

    def _outside_port(self, packet: TcpPacket, now: float) -> int | None:
        inside = (packet.ip.src, packet.src_port)
        port = self._outbound.get(inside, now)
        if port is not None and packet.is_syn() and self._outbound.is_closed(inside):
            self._outbound.discard(inside)  # a new connection from a closed one's port
            self._dropped(inside, port, "closed")
            port = None
        if port is None:
            port = self._allocate(inside, now)
            if port is None and self._outbound.is_closed_any() and self._outbound.evict_one():
                port = self._allocate(inside, now)
        return port

    def process(self, packet: TcpPacket, direction: Direction, now: float) -> list[Action]:
        if direction is Direction.TO_SERVER:
            port = self._outside_port(packet, now)
            if port is None:
                return [Drop("nat-ports-exhausted")]
            self._outbound.observe((packet.ip.src, packet.src_port), packet.flags, direction, now)
            return [Forward(patch_fields(packet, src=self.public, src_port=port))]
        self._outbound.sweep(now)
        mapping = self._inbound.get(packet.dst_port) if packet.ip.dst == self.public else None
        if mapping is None:
            return [Drop("nat-no-mapping")]
        self._outbound.get(mapping, now)  # a reply keeps the mapping alive too
        self._outbound.observe(mapping, packet.flags, direction, now)
        address, port = mapping
        return [Forward(patch_fields(packet, dst=address, dst_port=port))]
