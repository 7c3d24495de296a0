"""What a middlebox path does to one connection of a protocol, decided by the real models and
the real tcpcrypt core over real IPv4/TCP bytes (no re-implementation of either).

The client and the server are two small TCP endpoints that build packets with the `packets`
codec: a SYN (with the ENO option for tcpcrypt), the SYN-ACK, the ACK, then the stream (for
tcpcrypt: Init1, Init2, then a request and a response through `TcpcryptConnection`; for TCP
and TLS: handshake-sized flights and the request and response). Every packet crosses the
chain through a `middleboxes.scheduling.PathScheduler` in simulated time, and the receiver
reassembles the stream by sequence number as it arrives. Outcomes:
  - `encrypted`: tcpcrypt established on both sides (or TLS), request and response intact;
  - `fallback`: both tcpcrypt sides fell back to TCP, data intact;
  - `plaintext`: TCP, data intact;
  - `broken`: anything else (a lost SYN, missing or altered data, sides that disagree).
Outcomes are deterministic per (chain, protocol, port), so `decide` is memoised: a population
of a million paths asks the models once per distinct chain.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from middleboxes.base import Direction
from middleboxes.registry import parse_chain
from middleboxes.scheduling import PathScheduler
from packets.errors import MalformedPacket
from packets.ipv4 import PROTOCOL_TCP, IPv4Header
from packets.tcp import ACK, PSH, SYN, build_packet, parse_packet
from packets.tcp_options import TcpOption
from tcpcrypt.config import TcpcryptConfig
from tcpcrypt.connection import ConnectionState, TcpcryptConnection
from tcpcrypt.events import DataReceived
from tcpcrypt.randomness import seeded_random
from tcpcrypt.suites import RsaKeyHolder

ENO_KIND = 69
MSS = 1400
CLIENT, SERVER = bytes((10, 0, 0, 1)), bytes((10, 0, 0, 2))
REQUEST = b"GET / HTTP/1.1\r\nHost: server\r\n\r\n"
RESPONSE = bytes(range(256)) * 8
SUITES = {"tcpcrypt-x25519": "x25519", "tcpcrypt-rsa-exp3": "rsa-exp3-2048"}
TLS_FLIGHTS = (300, 1500, 400, 100)  # ClientHello, server flight, key exchange, Finished
OUTCOMES = ("encrypted", "fallback", "plaintext", "broken")
_RSA_KEYS = RsaKeyHolder(lifetime_s=float("inf"))


@dataclass
class _Side:
    isn: int
    port: int
    sent: int = 0  # stream bytes sent
    peer_next: int | None = None  # next sequence number expected from the peer
    stream: bytearray = field(default_factory=bytearray)
    early: dict[int, bytes] = field(default_factory=dict)
    address: bytes = b""
    peer: tuple[bytes, int] | None = None  # where the peer's packets came from, as seen

    def take(self, seq: int, payload: bytes) -> None:
        """Reassemble: keep in-order data, hold data that arrives ahead of a gap."""
        if self.peer_next is None or not payload:
            return
        self.early[seq] = payload
        while self.peer_next in self.early:
            chunk = self.early.pop(self.peer_next)
            self.stream += chunk
            self.peer_next = (self.peer_next + len(chunk)) & 0xFFFFFFFF


class _Path:
    """The two endpoints and the chain between them, in simulated time."""

    def __init__(self, chain: str, port: int) -> None:
        self.scheduler = PathScheduler(parse_chain(chain))
        self.client = _Side(isn=1_000_000, port=40_000, address=CLIENT, peer=(SERVER, port))
        self.server = _Side(isn=7_000_000, port=port, address=SERVER)
        self.now = 0.0

    def send(self, to_server: bool, flags: int, payload: bytes = b"",
             options: tuple[TcpOption, ...] = ()) -> list[bytes]:
        """Send one segment; return the packets that reach its receiver (re-parsed)."""
        me, peer = (self.client, self.server) if to_server else (self.server, self.client)
        dst, dst_port = me.peer or (peer.address, peer.port)
        header = IPv4Header(20, 0, 0, 0, 0x4000, 64, PROTOCOL_TCP, 0, me.address, dst)
        seq = (me.isn + (0 if flags & SYN else 1 + me.sent)) & 0xFFFFFFFF
        raw = build_packet(header, src_port=me.port, dst_port=dst_port, seq=seq,
                           ack=me.peer_next or 0, flags=flags, window=65535,
                           options=options, payload=payload)
        me.sent += len(payload)
        direction = Direction.TO_SERVER if to_server else Direction.TO_CLIENT
        out = self.scheduler.feed(raw, direction, self.now)
        while (deadline := self.scheduler.next_deadline()) is not None:
            self.now = max(self.now, deadline)
            out += self.scheduler.due(self.now)
        return [release.packet for release in out if release.direction is direction]

    def stream(self, to_server: bool, data: bytes) -> None:
        receiver = self.server if to_server else self.client
        for start in range(0, len(data), MSS):
            for raw in self.send(to_server, ACK | PSH, data[start:start + MSS]):
                try:
                    packet = parse_packet(raw)
                except MalformedPacket:
                    continue
                receiver.take(packet.seq, packet.payload)

    def handshake(self, syn_option: bytes | None) -> tuple[bytes | None, bool]:
        """SYN and SYN-ACK; (the ENO option the server saw, whether the SYN arrived)."""
        options: tuple[TcpOption, ...] = (TcpOption(2, bytes((2, 4)) + MSS.to_bytes(2, "big")),)
        if syn_option is not None:
            options += (TcpOption(ENO_KIND, syn_option),)
        arrived = self.send(True, SYN, options=options)
        if not arrived:
            return None, False
        syn = parse_packet(arrived[0])
        self.server.peer_next = (syn.seq + 1) & 0xFFFFFFFF
        self.server.peer = (syn.ip.src, syn.src_port)
        return syn.option(ENO_KIND), True

    def synack(self, option: bytes | None) -> tuple[bytes | None, bool]:
        options = (TcpOption(ENO_KIND, option),) if option is not None else ()
        arrived = self.send(False, SYN | ACK, options=options)
        if not arrived:
            return None, False
        synack = parse_packet(arrived[0])
        self.client.peer_next = (synack.seq + 1) & 0xFFFFFFFF
        return synack.option(ENO_KIND), True

    def ack(self, option: bytes | None) -> bytes | None:
        options = (TcpOption(ENO_KIND, option),) if option is not None else ()
        arrived = self.send(True, ACK, options=options)
        return parse_packet(arrived[0]).option(ENO_KIND) if arrived else None


def _plain(chain: str, protocol: str, port: int) -> str:
    path = _Path(chain, port)
    if not path.handshake(None)[1] or not path.synack(None)[1]:
        return "broken"
    path.ack(None)
    sizes = TLS_FLIGHTS if protocol.startswith("tls") else ()
    expected_up, expected_down = bytearray(), bytearray()
    for index, size in enumerate(sizes):
        chunk = bytes([index]) * size
        path.stream(index % 2 == 0, chunk)
        (expected_up if index % 2 == 0 else expected_down).extend(chunk)
    path.stream(True, REQUEST)
    path.stream(False, RESPONSE)
    intact = (path.server.stream == expected_up + REQUEST
              and path.client.stream == expected_down + RESPONSE)
    if not intact:
        return "broken"
    return "encrypted" if protocol.startswith("tls") else "plaintext"


def _tcpcrypt(chain: str, suite: str, port: int) -> str:
    config = TcpcryptConfig(suites=(suite,))
    a = TcpcryptConnection(active=True, config=config, random=seeded_random(1),
                           rsa_keys=_RSA_KEYS)
    b = TcpcryptConnection(active=False, config=config, random=seeded_random(2),
                           rsa_keys=_RSA_KEYS)
    path = _Path(chain, port)
    seen, arrived = path.handshake(a.syn_option())
    if not arrived:
        return "broken"
    b.on_syn(seen)
    seen, arrived = path.synack(b.synack_option())
    if not arrived:
        return "broken"
    a.on_synack(seen)
    b.on_ack(path.ack(a.ack_option()))
    _pump(path, a, b)
    if ConnectionState.RESET in (a.state, b.state):
        return "broken"
    a.send(REQUEST)
    _pump(path, a, b)
    if b.state is not ConnectionState.RESET:
        b.send(RESPONSE)
    _pump(path, a, b)
    received_b, received_a = _received(b), _received(a)
    if received_b != REQUEST or received_a != RESPONSE:
        return "broken"
    states = {a.state, b.state}
    if states == {ConnectionState.ESTABLISHED}:
        return "encrypted"
    return "fallback" if states == {ConnectionState.FALLBACK} else "broken"


def _pump(path: _Path, a: TcpcryptConnection, b: TcpcryptConnection) -> None:
    """Move stream bytes both ways until neither side has more to send."""
    for _ in range(16):
        up, down = a.data_to_send(), b.data_to_send()
        if not up and not down:
            return
        before = len(path.server.stream)
        path.stream(True, up)
        b.receive(bytes(path.server.stream[before:]))
        before = len(path.client.stream)
        path.stream(False, down)
        a.receive(bytes(path.client.stream[before:]))


def _received(connection: TcpcryptConnection) -> bytes:
    data = bytearray()
    while (event := connection.next_event()) is not None:
        if isinstance(event, DataReceived):
            data += event.data
    return bytes(data)


@functools.cache
def decide(chain: str, protocol: str, port: int = 443) -> str:
    """The outcome of one `protocol` connection to `port` over `chain` (memoised)."""
    base = protocol.removesuffix("-resumed")
    if base in SUITES:
        return _tcpcrypt(chain, SUITES[base], port)
    if base in ("tcp", "tls12-rsa", "tls13"):
        return _plain(chain, base, port)
    raise ValueError(f"no path model for protocol {protocol!r}")
