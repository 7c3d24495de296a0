"""nat: rewrites the client's address and port to a public address and an allocated port,
and maps replies back (a NAPT as home routers do)."""

from __future__ import annotations

import ipaddress

from middleboxes.base import (
    Action,
    Direction,
    Drop,
    Forward,
    Middlebox,
    MiddleboxConfigError,
    Scope,
)
from packets.patch import patch_fields
from packets.tcp import TcpPacket


class Nat(Middlebox):
    name = "nat"
    scope = Scope.PACKETS  # rewrites addresses and ports, the same in every wire segment
    # (in place, checksums updated incrementally: a 64 KB super-packet costs what a SYN does)

    def __init__(self, public: str = "192.0.2.1", first_port: int = 20000) -> None:
        super().__init__()
        try:
            self.public = ipaddress.IPv4Address(public).packed
        except ValueError:
            raise MiddleboxConfigError(
                f"nat: public must be an IPv4 address, got {public!r}"
            ) from None
        if not 1024 <= first_port < 65536:
            raise MiddleboxConfigError("nat: first_port must be 1024..65535")
        self._next_port = first_port
        self._outbound: dict[tuple[bytes, int], int] = {}
        self._inbound: dict[int, tuple[bytes, int]] = {}
        self.params: dict[str, object] = {"public": public, "first_port": first_port}

    def process(self, packet: TcpPacket, direction: Direction, now: float) -> list[Action]:
        if direction is Direction.TO_SERVER:
            inside = (packet.ip.src, packet.src_port)
            port = self._outbound.get(inside)
            if port is None:
                if self._next_port > 65535:
                    return [Drop("nat-ports-exhausted")]
                port = self._outbound[inside] = self._next_port
                self._inbound[port] = inside
                self._next_port += 1
            return [Forward(patch_fields(packet, src=self.public, src_port=port))]
        mapping = self._inbound.get(packet.dst_port) if packet.ip.dst == self.public else None
        if mapping is None:
            return [Drop("nat-no-mapping")]
        address, port = mapping
        return [Forward(patch_fields(packet, dst=address, dst_port=port))]
