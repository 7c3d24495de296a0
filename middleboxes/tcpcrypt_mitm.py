"""tcpcrypt-mitm: a man in the middle that terminates tcpcrypt on each side and relays.

The attacker authentication over the session ID is meant to catch (issue #12). On a flow whose
SYN offers TCP-ENO, the model runs two real `TcpcryptConnection`s: host B towards the client
and host A towards the server. It puts its own ENO options in the SYN, SYN-ACK and first ACK
(each side's transcript is then consistent, so both key exchanges succeed), swaps the
client's Init1 and the server's Init2 for its own (same lengths), and re-encrypts every frame
from one session's keys to the other's (`tcpcrypt_stream_rewriter`). Sequence numbers are
untouched. The endpoints get two different session IDs and, without authentication, cannot
tell; the plaintext is the model's (it counts the bytes it read, `stats["plaintext_bytes"]`).

Flows it cannot take over (no ENO on the SYN, another AEAD than AES-GCM, Init messages of
another length) pass untouched. State is kept per flow, with each direction's rewritten bytes
(for retransmissions): a model for tests, not for bulk transfers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from middleboxes.base import Action, Direction, Drop, FlowKey, Forward, Middlebox, flow_key
from middleboxes.tcpcrypt_stream_rewriter import StreamRewriter
from packets.tcp import TcpPacket, rebuild
from packets.tcp_options import TcpOption
from tcpcrypt.aead import aead_by_name
from tcpcrypt.config import TcpcryptConfig
from tcpcrypt.connection import ConnectionState, TcpcryptConnection
from tcpcrypt.constants import ENO_OPTION_KIND
from tcpcrypt.randomness import system_random

MOD = 1 << 32


@dataclass
class _Flow:
    client_side: TcpcryptConnection  # we are host B to the client
    server_side: TcpcryptConnection  # we are host A to the server
    client_isn: int
    syn_option: bytes
    server_isn: int | None = None
    synack_option: bytes | None = None
    ack_option: bytes | None = None
    acked: bool = False
    init1: bytes | None = None  # ours, for the server
    init2: bytes | None = None  # ours, for the client
    rewriters: dict[Direction, StreamRewriter] = field(default_factory=dict)


def _keys(inbound: TcpcryptConnection, outbound: TcpcryptConnection,
          to_server: bool) -> tuple[bytes, bytes] | None:
    ready = ConnectionState.ESTABLISHED
    if inbound.state is not ready or outbound.state is not ready:
        return None
    assert inbound.secret is not None and outbound.secret is not None
    assert inbound.aead is not None and outbound.aead is not None
    chain_in = inbound.secret.key_chain(aead_by_name(inbound.aead).key_length)
    chain_out = outbound.secret.key_chain(aead_by_name(outbound.aead).key_length)
    if to_server:  # client (A) -> us: k_ab of session 1; us (A) -> server: k_ab of session 2
        return chain_in.key_ab(0), chain_out.key_ab(0)
    return chain_in.key_ba(0), chain_out.key_ba(0)  # server (B) -> us, us (B) -> client


class TcpcryptMitm(Middlebox):
    name = "tcpcrypt-mitm"

    def __init__(self) -> None:
        super().__init__()
        self.params: dict[str, object] = {}
        self._flows: dict[FlowKey, _Flow] = {}
        self.session_ids: list[tuple[bytes | None, bytes | None]] = []  # (client's, server's)

    def process(self, packet: TcpPacket, direction: Direction, now: float) -> list[Action]:
        key = flow_key(packet, direction)
        if packet.is_syn() and direction is Direction.TO_SERVER:
            return self._syn(packet, key)
        flow = self._flows.get(key)
        if flow is None:
            return [Forward(packet.raw)]
        options = packet.options
        if packet.is_synack() and direction is Direction.TO_CLIENT:
            options = self._synack(packet, flow)
        elif direction is Direction.TO_SERVER and packet.option(ENO_OPTION_KIND) is not None:
            options = self._ack_options(packet, flow)
        if flow.client_side.state is ConnectionState.FALLBACK:
            self._flows.pop(key, None)  # plain TCP: nothing to take over
        payload = packet.payload
        if payload and key in self._flows:
            rewritten = self._payload(packet, flow, direction)
            if rewritten is None:
                self.stats["gap-dropped"] += 1
                return [Drop("tcpcrypt-mitm: out-of-order segment")]
            payload = rewritten
        if options is packet.options and payload is packet.payload:
            return [Forward(packet.raw)]
        return [Forward(rebuild(packet, options=options, payload=payload))]

    # --- the handshake: our own ENO options on each side ------------------------------
    def _syn(self, packet: TcpPacket, key: FlowKey) -> list[Action]:
        option = packet.option(ENO_OPTION_KIND)
        flow = self._flows.get(key)
        if flow is None:
            if option is None:
                return [Forward(packet.raw)]
            config = TcpcryptConfig()
            client_side = TcpcryptConnection(active=False, config=config, random=system_random)
            server_side = TcpcryptConnection(active=True, config=config, random=system_random)
            client_side.on_syn(option)
            flow = _Flow(client_side, server_side, packet.seq, server_side.syn_option())
            self._flows[key] = flow
            self.stats["flows"] += 1
        return [Forward(self._with_eno(packet, flow.syn_option))]

    def _synack(self, packet: TcpPacket, flow: _Flow) -> list[TcpOption]:
        if flow.synack_option is None:
            flow.server_isn = packet.seq
            flow.server_side.on_synack(packet.option(ENO_OPTION_KIND))
            flow.init1 = flow.server_side.data_to_send() or None
            if flow.server_side.state is ConnectionState.FALLBACK:
                flow.synack_option = b""  # the server speaks plain TCP: so does the client
            else:
                flow.synack_option = flow.client_side.synack_option() or b""
        if flow.server_side.state is ConnectionState.FALLBACK:
            self._flows.pop(flow_key(packet, Direction.TO_CLIENT), None)
        return self._eno_options(packet, flow.synack_option or None)

    def _ack_options(self, packet: TcpPacket, flow: _Flow) -> list[TcpOption]:
        if not flow.acked:
            flow.acked = True
            flow.client_side.on_ack(packet.option(ENO_OPTION_KIND))
            flow.ack_option = flow.server_side.ack_option()
        return self._eno_options(packet, flow.ack_option)

    @staticmethod
    def _eno_options(packet: TcpPacket, option: bytes | None) -> list[TcpOption]:
        kept = [o for o in packet.options if o.kind != ENO_OPTION_KIND]
        return kept + [TcpOption(option[0], option)] if option else kept

    def _with_eno(self, packet: TcpPacket, option: bytes) -> bytes:
        return rebuild(packet, options=self._eno_options(packet, option))

    # --- the stream -------------------------------------------------------------------
    def _payload(self, packet: TcpPacket, flow: _Flow, direction: Direction) -> bytes | None:
        rewriter = flow.rewriters.get(direction) or self._rewriter(flow, direction)
        if direction is Direction.TO_SERVER:
            offset = (packet.seq - flow.client_isn - 1) % MOD
        else:
            offset = (packet.seq - (flow.server_isn or 0) - 1) % MOD
        before = rewriter.received
        rewritten = rewriter.rewrite(offset, packet.payload)
        self.stats["plaintext_bytes"] += rewriter.received - before
        return rewritten

    def _rewriter(self, flow: _Flow, direction: Direction) -> StreamRewriter:
        if direction is Direction.TO_SERVER:
            rewriter = StreamRewriter(
                lambda data: self._init_from_client(flow, data), lambda: flow.init1,
                lambda: _keys(flow.client_side, flow.server_side, True))
        else:
            rewriter = StreamRewriter(
                lambda data: self._init_from_server(flow, data), lambda: flow.init2,
                lambda: _keys(flow.server_side, flow.client_side, False))
        flow.rewriters[direction] = rewriter
        return rewriter

    def _init_from_client(self, flow: _Flow, data: bytes) -> None:
        flow.client_side.receive(data)
        if flow.init2 is None and flow.client_side.state is ConnectionState.ESTABLISHED:
            flow.init2 = flow.client_side.data_to_send()

    def _init_from_server(self, flow: _Flow, data: bytes) -> None:
        flow.server_side.receive(data)
        if flow.server_side.state is ConnectionState.ESTABLISHED:
            self.session_ids.append((flow.client_side.session_id, flow.server_side.session_id))
            self.stats["sessions-taken-over"] += 1
