"""strip-options: removes TCP options a 2011-era middlebox does not know, as many access
networks were seen to do on the SYN (more often on port 80)."""

from __future__ import annotations

from typing import Final

from middleboxes.base import (
    Action,
    Direction,
    EnoEffect,
    Forward,
    Middlebox,
    MiddleboxConfigError,
    Scope,
)
from packets.tcp import TcpPacket, remove_tcp_options

# EOL, NOP, MSS, window scale, SACK-permitted, SACK, timestamps.
KNOWN_IN_2011: Final = frozenset({0, 1, 2, 3, 4, 5, 8})
WHERE: Final = ("syn", "synack", "all")
ENO_KIND: Final = 69  # TCP-ENO, RFC 8547


class StripOptions(Middlebox):
    name = "strip-options"
    ranges = {"kinds": (0, 255), "ports": (1, 65535)}
    choices = {"on": WHERE}

    def __init__(self, on: str = "all", kinds: tuple[int, ...] = (),
                 ports: tuple[int, ...] = ()) -> None:
        super().__init__()
        if on not in WHERE:
            raise MiddleboxConfigError(f"strip-options: on must be one of {WHERE}, got {on!r}")
        self.check_ranges(kinds=kinds, ports=ports)
        self.on, self.kinds, self.ports = on, kinds, ports
        self.params: dict[str, object] = {"on": on}
        if kinds:
            self.params["kinds"] = kinds
        if ports:
            self.params["ports"] = ports

    def needs(self) -> Scope:
        # on=all also edits data packets, whose options every wire segment of a
        # super-packet shares; on=syn/synack only ever touches SYNs
        return Scope.PACKETS if self.on == "all" else Scope.CONTROL
    def eno_effect(self, port: int) -> EnoEffect:
        """STRIPPED when this model removes ENO (on=syn, synack and all each cover the SYN or
        the SYN-ACK) from connections to `port`."""
        if self.ports and port not in self.ports:
            return EnoEffect.PASSES
        strips = ENO_KIND in self.kinds if self.kinds else ENO_KIND not in KNOWN_IN_2011
        return EnoEffect.STRIPPED if strips else EnoEffect.PASSES

    def _applies(self, packet: TcpPacket) -> bool:
        if self.ports and packet.src_port not in self.ports and packet.dst_port not in self.ports:
            return False
        if self.on == "syn":
            return packet.is_syn()
        if self.on == "synack":
            return packet.is_synack()
        return True

    def process(self, packet: TcpPacket, direction: Direction, now: float) -> list[Action]:
        if not self._applies(packet):
            return [Forward(packet.raw)]
        present = {option.kind for option in packet.options}
        doomed = set(self.kinds) & present if self.kinds else present - KNOWN_IN_2011
        if not doomed:
            return [Forward(packet.raw)]
        self.stats["stripped"] += 1
        return [Forward(remove_tcp_options(packet, doomed))]
