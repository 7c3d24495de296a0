"""What the engine does with one IPv4/TCP packet and its virtio-net header, sans-IO: hand it
to the model chain in the form the chain needs (`Scope`), and turn the chain's actions into
packets to send, each with the header the kernel needs to send it.

- NOTHING (pass-through): never called; the engine forwards frames without parsing them.
- CONTROL: packets without SYN, FIN or RST cross with their own header, unparsed.
- PACKETS: every packet, a super-packet as one, goes to the chain.
- SEGMENTS: a super-packet is first cut into its wire segments (`vnet.split_super_packet`),
  and each goes to the chain: loss, reordering and made-up ACKs act per wire segment. When
  the chain passes every segment on unchanged (with one delay), the super-packet leaves
  whole; otherwise its segments leave one by one.

A packet the chain forwards unchanged keeps the header it came with (a partial checksum stays
partial, a super-packet stays one); anything else (an edit, an injected packet, a split
segment) gets a fresh header from `vnet.outgoing`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from middleboxes.base import (
    Action,
    Delay,
    Direction,
    Drop,
    Forward,
    Inject,
    Middlebox,
    Scope,
    Timed,
)
from middleboxes.engines.vnet import VnetHeader, outgoing, split_super_packet

SYN_FIN_RST = 0x07
IPV4_TCP_HEADERS = 52  # IPv4 and TCP headers with timestamps: the usual MSS is MTU - 52


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A packet to send `delay` seconds from now, out of the side `direction` points to."""

    direction: Direction
    delay: float
    header: bytes  # the virtio-net header to write before the Ethernet frame
    packet: bytes  # IPv4, without the Ethernet header


class Dispatcher:
    def __init__(self, model: Middlebox, mtu: int = 1500) -> None:
        self.model = model
        self.scope = model.needs()
        self.mtu = mtu
        self.counters: Counter[str] = Counter()

    def tcp(self, header: bytes, packet: bytes, direction: Direction,
            now: float) -> list[Outgoing]:
        """The packets to send for one arriving IPv4/TCP packet."""
        if self.scope is Scope.CONTROL:
            ihl = (packet[0] & 0x0F) * 4
            if len(packet) < ihl + 14 or not packet[ihl + 13] & SYN_FIN_RST:
                self.counters["unparsed"] += 1
                return [Outgoing(direction, 0.0, header, packet)]
        vnet = VnetHeader.parse(header)
        gso_size = vnet.gso_size or self.mtu - IPV4_TCP_HEADERS
        if self.scope is Scope.SEGMENTS and vnet.is_super_packet:
            return self._per_segment(header, packet, vnet, direction, now)
        if vnet.is_super_packet:
            self.counters["super-packets"] += 1
        return self._outgoing(self.model.handle(packet, direction, now), direction, packet,
                              header, gso_size)

    def _per_segment(self, header: bytes, packet: bytes, vnet: VnetHeader,
                     direction: Direction, now: float) -> list[Outgoing]:
        """The chain sees each wire segment of a super-packet. When it passes every one on
        unchanged with the same delay (most segments, even on a lossy link), the super-packet
        itself leaves with its header: the kernel sends the same segments, and the engine
        saves a send per segment. Otherwise (a segment dropped, edited, or delayed apart)
        each segment leaves on its own; packets the chain adds (made-up ACKs, duplicates)
        leave on their own either way."""
        pieces = split_super_packet(packet, vnet.gso_size)
        self.counters["super-packets-split"] += 1
        self.counters["segments-from-splits"] += len(pieces)
        passed: list[float | None] = []  # per piece: its delay if it went on unchanged
        extra: list[tuple[int, Action]] = []  # everything else, with its piece's index
        for index, piece in enumerate(pieces):
            delay = None
            for action in self.model.handle(piece, direction, now):
                if (delay is None and isinstance(action, (Forward, Delay))
                        and action.packet is piece):
                    delay = action.seconds if isinstance(action, Delay) else 0.0
                else:
                    extra.append((index, action))
            passed.append(delay)
        first = passed[0]
        if first is not None and all(delay == first for delay in passed):
            self.counters["super-packets-kept"] += 1
            whole = [Outgoing(direction, first, header, packet)]
            return whole + self._outgoing([a for _, a in extra], direction, None, None,
                                          vnet.gso_size)
        by_piece: dict[int, list[Action]] = {}
        for index, action in extra:
            by_piece.setdefault(index, []).append(action)
        out: list[Outgoing] = []
        for index, piece in enumerate(pieces):
            delay = passed[index]
            if delay is not None:
                out += self._outgoing([Delay(delay, piece) if delay else Forward(piece)],
                                      direction, None, None, vnet.gso_size)
            out += self._outgoing(by_piece.get(index, []), direction, None, None,
                                  vnet.gso_size)
        return out

    def released(self, now: float) -> list[Outgoing]:
        """The packets the chain releases on its timers (a coalescer's held data)."""
        timed: list[Timed] = self.model.release(now)
        out: list[Outgoing] = []
        for direction, action in timed:
            out += self._outgoing([action], direction, None, None, self.mtu - IPV4_TCP_HEADERS)
        return out

    def _outgoing(self, actions: list[Action], direction: Direction, original: bytes | None,
                  header: bytes | None, gso_size: int) -> list[Outgoing]:
        out = []
        for action in actions:
            if isinstance(action, Drop):
                continue
            going, delay = direction, 0.0
            if isinstance(action, Inject):
                going = action.direction
            elif isinstance(action, Delay):
                delay = action.seconds
            packet = action.packet
            if header is not None and packet == original:
                out.append(Outgoing(going, delay, header, packet))
            else:
                fresh, packet = outgoing(packet, self.mtu, gso_size)
                out.append(Outgoing(going, delay, fresh, packet))
        return out
