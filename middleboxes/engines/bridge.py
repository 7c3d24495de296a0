"""A transparent bridge over AF_PACKET that runs a middlebox model between two interfaces.

Frames arriving on the client-side interface go to the model as TO_SERVER packets and leave
on the server-side interface, and the other way round. Frames that are not IPv4/TCP (ARP,
ICMP) are bridged without the model, but other IPv4 frames (ICMP) wait the fixed delay of the
chain's `link` models, so that ping sees the path's RTT; ARP crosses at once. `Delay` actions
wait in a timer heap; `Inject` sends a new packet out of the interface its direction points to;
a model that holds packets back (`next_timer`/`expire`) is called when its time comes.
Packets the engine sends itself take the Ethernet header last seen towards their IPv4
destination (for a destination not seen yet, the direction's last one), so several hosts may
share a side (a dumbbell's clients). A chain of `passthrough` models only takes a fast path
that forwards frames without parsing them.

The interfaces must have checksum and segmentation offloads off (the emulation runtime does
that), or the model would see packets the wire never carries.

The engine reports its counters as one JSON line on stdout, {"event": "stats", ...}, when it
gets SIGUSR1 and when it stops (SIGTERM, SIGINT): per model the counters (`dropped:model-error`
counts packets dropped because the model raised) and the last errors, and the engine's own
(`engine-errors`, `send-errors`, `send-retries`, `non-tcp`; `delayed`, `delayed-late` and
`lateness-us`: packets a model delayed, those sent more than 10% after the delay asked for,
and their total lateness, from which the runtime warns that a shaped link missed its rate
or delay).

    python -m middleboxes.engines.bridge --path "link(delay_ms=10)" --client IF --server IF
"""

from __future__ import annotations

import argparse
import errno
import heapq
import itertools
import json
import select
import signal
import socket
import sys
import time
from collections import Counter, deque
from collections.abc import Sequence
from types import FrameType
from typing import Any

from middleboxes.base import Action, Delay, Direction, Drop, Forward, Inject, Middlebox
from middleboxes.chain import Chain
from middleboxes.link import Link
from middleboxes.passthrough import Passthrough
from middleboxes.registry import parse_chain

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_HEADER = 14
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_STATISTICS = 6  # struct tpacket_stats {unsigned tp_packets, tp_drops}; read resets
RETRY_S = 0.0002
SOCKET_BUFFER = 8 << 20
LATE_FRACTION = 0.10  # see testbed.fidelity


def _models(model: Middlebox) -> list[Middlebox]:
    return list(model.models) if isinstance(model, Chain) else [model]


class Bridge:
    def __init__(self, model: Middlebox, client_interface: str, server_interface: str) -> None:
        self.model = model
        self.counters: Counter[str] = Counter()  # the engine's own, beside the models'
        models = _models(model)
        self.fast = all(type(m) is Passthrough for m in models)
        # Non-TCP IPv4 (ICMP) waits the fixed delay of the path's links (no loss, no jitter).
        self.other_delay = sum(m.delay for m in models if isinstance(m, Link))
        self.timed = model.holds_packets()
        self.report_requested = False
        self.sockets: dict[Direction, socket.socket] = {}
        self.headers: dict[Direction, bytes] = {}  # last Ethernet header seen per direction
        # ... and per destination IPv4 address: several hosts may sit behind one side (a
        # dumbbell's clients), and a delayed or injected packet must go to its own host's MAC
        self.headers_to: dict[tuple[Direction, bytes], bytes] = {}
        # delayed packets: (due, order, direction, packet, the delay asked for)
        self._timers: list[tuple[float, int, Direction, bytes, float]] = []
        # Frames the interface refused for now, per direction, in order: while one waits,
        # later frames queue behind it (the engine itself never reorders or loses a frame).
        self._backlog: dict[Direction, deque[bytes]] = {d: deque() for d in Direction}
        self._retry_at: float | None = None
        self._order = itertools.count()
        for direction, name in ((Direction.TO_CLIENT, client_interface),
                                (Direction.TO_SERVER, server_interface)):
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            for option, fallback in ((getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF),
                                     (getattr(socket, "SO_SNDBUFFORCE", 32), socket.SO_SNDBUF)):
                try:  # bursts of a bulk transfer overflow the default buffer (socket-drops)
                    sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
                except OSError:
                    sock.setsockopt(socket.SOL_SOCKET, fallback, SOCKET_BUFFER)
            sock.bind((name, 0))
            sock.setblocking(False)
            self.sockets[direction] = sock  # the socket packets going `direction` leave by
        self.stopped = False

    def _send(self, direction: Direction, packet: bytes) -> None:
        header = self.headers_to.get((direction, packet[16:20])) or self.headers.get(direction)
        if header is None:
            return  # no frame seen yet in that direction: no MAC addresses to use
        self._send_frame(direction, header + packet)

    def _send_frame(self, direction: Direction, frame: bytes) -> None:
        """Send, and when the interface queue is full try again shortly: the engine itself
        never loses a packet (a loss here would hide behind whatever model is measured)."""
        backlog = self._backlog[direction]
        if backlog:
            backlog.append(frame)
        elif not self._try_send(direction, frame):
            backlog.append(frame)
            self.counters["send-retries"] += 1
            if self._retry_at is None:
                self._retry_at = time.monotonic() + RETRY_S

    def _try_send(self, direction: Direction, frame: bytes) -> bool:
        """False when the interface cannot take the frame now (try again later)."""
        try:
            self.sockets[direction].send(frame)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as error:
            if error.errno == errno.ENOBUFS:
                return False
            self.counters["send-errors"] += 1
        return True

    def _flush_backlogs(self, now: float) -> None:
        self._retry_at = None
        for direction, backlog in self._backlog.items():
            while backlog and self._try_send(direction, backlog[0]):
                backlog.popleft()
            if backlog:
                self.counters["send-retries"] += 1
                self._retry_at = now + RETRY_S

    def _apply(self, actions: Sequence[Action], direction: Direction, now: float) -> None:
        for action in actions:
            if isinstance(action, Forward):
                self._send(direction, action.packet)
            elif isinstance(action, Delay):
                heapq.heappush(self._timers, (now + action.seconds, next(self._order),
                                              direction, action.packet, action.seconds))
            elif isinstance(action, Inject):
                self._send(action.direction, action.packet)
            elif isinstance(action, Drop):
                continue

    def _receive(self, arrived_on: Direction) -> None:
        direction = arrived_on.reverse  # a frame from the client side travels to the server
        sock = self.sockets[arrived_on]
        while True:
            try:
                frame, address = sock.recvfrom(65535)
            except BlockingIOError:
                return
            if address[2] == PACKET_OUTGOING:
                continue  # our own transmissions
            if self.fast:
                self._send_frame(direction, frame)
                self.counters["fast-forwarded"] += 1
                continue
            header, packet = frame[:ETH_HEADER], frame[ETH_HEADER:]
            self.headers[direction] = header
            if len(packet) >= 20:
                self.headers_to[(direction, packet[16:20])] = header
            ipv4 = int.from_bytes(header[12:14], "big") == ETH_P_IP and len(packet) >= 20
            if not ipv4 or packet[9] != 6:
                if ipv4 and self.other_delay:
                    self.counters["non-tcp-delayed"] += 1
                    heapq.heappush(self._timers, (time.monotonic() + self.other_delay,
                                                  next(self._order), direction, packet, 0.0))
                else:
                    self.counters["non-tcp"] += 1
                    self._send_frame(direction, frame)
                continue
            now = time.monotonic()
            try:
                self._apply(self.model.handle(packet, direction, now), direction, now)
            except Exception as error:  # the engine outlives anything a packet can cause
                self.counters["engine-errors"] += 1
                self.counters[f"engine-error:{type(error).__name__}"] += 1

    def _count_lateness(self, late: float, asked: float) -> None:
        """Shaping fidelity: a delayed packet sent more than 10% after the delay its link
        asked for (propagation plus queueing at the configured rate) missed the shaping."""
        if asked <= 0:
            return
        self.counters["delayed"] += 1
        self.counters["lateness-us"] += int(late * 1e6)
        if late > LATE_FRACTION * asked:
            self.counters["delayed-late"] += 1

    def _release(self, now: float) -> None:
        for direction, action in self.model.release(now):
            self._apply([action], direction, now)

    def _socket_drops(self) -> None:
        """Frames the kernel dropped because the engine's receive buffer was full."""
        for sock in self.sockets.values():
            try:
                raw = sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
            except OSError:
                continue
            self.counters["socket-drops"] += int.from_bytes(raw[4:8], sys.byteorder)

    def report(self) -> dict[str, Any]:
        """The counters of the engine and of each model, JSON-ready."""
        self._socket_drops()
        return {
            "event": "stats",
            "path": self.model.describe(),
            "engine": dict(self.counters),
            "models": [{"model": m.describe(), "stats": dict(m.stats), "errors": list(m.errors)}
                       for m in _models(self.model)],
        }

    def _print_report(self) -> None:
        print(json.dumps(self.report()), flush=True)

    def run(self) -> None:
        by_fd = {sock.fileno(): direction for direction, sock in self.sockets.items()}
        while not self.stopped:
            if self.report_requested:
                self.report_requested = False
                self._print_report()
            now = time.monotonic()
            held = self.model.next_timer() if self.timed else None
            if held is not None and held <= now:
                self._release(now)
                held = self.model.next_timer()
            while self._timers and self._timers[0][0] <= now:
                due_at, _, direction, packet, asked = heapq.heappop(self._timers)
                self._count_lateness(now - due_at, asked)
                self._send(direction, packet)
            if self._retry_at is not None and self._retry_at <= now:
                self._flush_backlogs(now)
            due = [self._timers[0][0]] if self._timers else []
            if self._retry_at is not None:
                due.append(self._retry_at)
            if held is not None:
                due.append(held)
            timeout = max(0.0, min(due) - now) if due else 0.05
            try:
                ready, _, _ = select.select(list(by_fd), [], [], min(timeout, 0.05))
            except InterruptedError:
                continue
            for fd in ready:
                self._receive(by_fd[fd])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", required=True, help='middlebox chain, e.g. "link(delay_ms=10)"')
    parser.add_argument("--client", required=True, help="interface towards the client")
    parser.add_argument("--server", required=True, help="interface towards the server")
    args = parser.parse_args(argv)
    bridge = Bridge(parse_chain(args.path), args.client, args.server)

    def stop(signum: int, frame: FrameType | None) -> None:
        bridge.stopped = True

    def report(signum: int, frame: FrameType | None) -> None:
        bridge.report_requested = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGUSR1, report)
    print("bridging", flush=True)
    bridge.run()
    bridge._print_report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
