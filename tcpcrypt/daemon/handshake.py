"""The handshake packets the kernel queues to the daemon: TCP-ENO options in and out.

`HandshakeTable.on_packet` takes one queued IPv4/TCP packet and the netfilter hook it was
queued at, drives the flow's `TcpcryptConnection` (created at the SYN) and returns the packet
with an ENO option added, or None to release it unchanged. The proxy later claims the flow's
connection by its addresses. No I/O here: the caller owns the queue and the clock.

Flows are keyed by what both views agree on. Host A (our outgoing wire sockets, never NATed):
the exact (local, remote) pair. Host B: the peer's (address, port) only, because the kernel
redirects incoming connections to the proxy port, and our SYN-ACK is queued before the reply
is translated back, so the local port differs between the SYN and the SYN-ACK.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from packets.errors import MalformedPacket
from packets.tcp import TcpPacket, parse_packet, set_tcp_option
from packets.tcp_options import TcpOption
from tcpcrypt.connection import TcpcryptConnection
from tcpcrypt.constants import ENO_OPTION_KIND, EXPERIMENTAL_OPTION_KIND
from tcpcrypt.daemon.nfqueue import HOOK_LOCAL_OUT, HOOK_PRE_ROUTING
from tcpcrypt.daemon.stats import Stats
from tcpcrypt.errors import UsageError

Address = tuple[str, int]
FlowKey = TypeVar("FlowKey")
ConnectionFactory = Callable[[bool, str], TcpcryptConnection]
"""(active, peer address) -> a new connection for that role."""

SMALL_SEGMENT = 512
"""A's segments get the ENO option only up to this much data (Init1 fits; full-size segments
would exceed the path MTU with 4 more bytes)."""


@dataclass
class Flow:
    """One connection's handshake state, from its SYN until the table forgets it."""

    role: str  # "A" (we connected out) or "B" (a peer connected in)
    connection: TcpcryptConnection
    local: Address
    remote: Address
    syn_seq: int
    created: float
    syn_option: bytes | None = None  # A: the option our SYN carried (for retransmissions)
    claimed: bool = False
    notes: list[str] = field(default_factory=list)


def _addresses(packet: TcpPacket) -> tuple[Address, Address]:
    source = (str(ipaddress.IPv4Address(packet.ip.src)), packet.src_port)
    destination = (str(ipaddress.IPv4Address(packet.ip.dst)), packet.dst_port)
    return source, destination


def _eno_option(packet: TcpPacket) -> bytes | None:
    option = packet.option(ENO_OPTION_KIND)
    return option if option is not None else packet.option(EXPERIMENTAL_OPTION_KIND)


class HandshakeTable:
    """Flows in their handshake, for both roles."""

    def __init__(
        self, new_connection: ConnectionFactory, stats: Stats, *, lifetime_s: float = 10.0
    ) -> None:
        self._new_connection = new_connection
        self._stats = stats
        self._lifetime_s = lifetime_s
        self._a_flows: dict[tuple[Address, Address], Flow] = {}
        self._b_flows: dict[Address, Flow] = {}

    def __len__(self) -> int:
        return len(self._a_flows) + len(self._b_flows)

    def on_packet(self, hook: int, raw: bytes, now: float) -> bytes | None:
        """The packet to release instead of `raw`, or None to release `raw` as it is."""
        self._stats.count("packets_queued")
        try:
            packet = parse_packet(raw)
        except MalformedPacket as error:
            self._stats.count("malformed_packets", error.reason)
            return None
        try:
            if hook == HOOK_LOCAL_OUT:
                return self._outgoing(packet, now)
            if hook == HOOK_PRE_ROUTING:
                self._incoming(packet, now)
            return None
        except UsageError as error:  # our own sequencing mistake: count it, never crash
            self._stats.count("internal_errors", str(error)[:60])
            return None

    def _outgoing(self, packet: TcpPacket, now: float) -> bytes | None:
        source, destination = _addresses(packet)
        if packet.is_syn():
            flow = self._a_flows.get((source, destination))
            if flow is None or flow.syn_seq != packet.seq:
                connection = self._new_connection(True, destination[0])
                flow = Flow("A", connection, source, destination, packet.seq, now)
                flow.syn_option = connection.syn_option()
                self._a_flows[(source, destination)] = flow
            return self._with_option(packet, flow.syn_option, flow)
        if packet.is_synack():
            b_flow = self._b_flows.get(destination)
            if b_flow is None:
                return None
            return self._with_option(packet, b_flow.connection.synack_option(), b_flow)
        a_flow = self._a_flows.get((source, destination))
        if a_flow is None or len(packet.payload) > SMALL_SEGMENT:
            return None
        return self._with_option(packet, a_flow.connection.ack_option(), a_flow)

    def _incoming(self, packet: TcpPacket, now: float) -> None:
        source, destination = _addresses(packet)
        option = _eno_option(packet)
        if packet.is_syn():
            flow = self._b_flows.get(source)
            if flow is not None and flow.syn_seq == packet.seq:
                return  # a retransmitted SYN: already answered
            connection = self._new_connection(False, source[0])
            connection.on_syn(option)
            self._b_flows[source] = Flow("B", connection, destination, source, packet.seq, now)
        elif packet.is_synack():
            a_flow = self._a_flows.get((destination, source))
            if a_flow is not None:
                a_flow.connection.on_synack(option)
        else:
            b_flow = self._b_flows.get(source)
            if b_flow is not None:
                b_flow.connection.on_ack(option)

    def _with_option(self, packet: TcpPacket, option: bytes | None, flow: Flow) -> bytes | None:
        if option is None:
            return None
        try:
            return set_tcp_option(packet, TcpOption(option[0], option))
        except ValueError:  # no room left among the packet's options
            flow.notes.append("no-option-space")
            self._stats.count("option_space_exhausted")
            return None

    def claim_a(self, local: Address, remote: Address) -> Flow | None:
        """The flow of our outgoing wire connection `local` -> `remote`."""
        flow = self._a_flows.get((local, remote))
        if flow is not None:
            flow.claimed = True
        return flow

    def claim_b(self, remote: Address) -> Flow | None:
        """The flow of the incoming wire connection from `remote`, claimed at most once.

        A flow claimed before belongs to an earlier connection from the same address and
        port (the port reused, and the new SYN not seen: unparseable, say): None then, and
        the new connection is relayed as plain TCP rather than with the old one's state.
        """
        flow = self._b_flows.get(remote)
        if flow is None or flow.claimed:
            return None
        flow.claimed = True
        return flow

    def forget(self, flow: Flow) -> None:
        """The proxy is done with `flow`'s connection: drop it now rather than at expiry, so
        that the table holds live handshakes and not every connection of the last seconds."""
        if flow.role == "A":
            table: dict[tuple[Address, Address], Flow] = self._a_flows
            if table.get((flow.local, flow.remote)) is flow:
                del table[(flow.local, flow.remote)]
        elif self._b_flows.get(flow.remote) is flow:
            del self._b_flows[flow.remote]

    def expire(self, now: float) -> int:
        """Forget flows older than the lifetime; returns how many went."""
        return self._expire(self._a_flows, now) + self._expire(self._b_flows, now)

    def _expire(self, table: dict[FlowKey, Flow], now: float) -> int:
        old = [key for key, flow in table.items() if now - flow.created > self._lifetime_s]
        for key in old:
            if not table.pop(key).claimed:
                self._stats.count("handshakes_unclaimed")
        return len(old)
