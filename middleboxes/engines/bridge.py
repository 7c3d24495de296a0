"""A transparent bridge over AF_PACKET that runs a middlebox model between two interfaces.

Frames arriving on the client-side interface go to the model as TO_SERVER packets and leave
on the server-side interface, and the other way round. Frames that are not IPv4/TCP (ARP,
ICMP) are bridged unchanged. `Delay` actions wait in a timer heap; `Inject` sends a new packet
out of the interface its direction points to. The interfaces must have checksum and
segmentation offloads off (the emulation runtime does that), or the model would see packets
the wire never carries.

    python -m middleboxes.engines.bridge --path "link(delay_ms=10)" --client IF --server IF
"""

from __future__ import annotations

import argparse
import errno
import heapq
import itertools
import select
import signal
import socket
import sys
import time
from collections.abc import Sequence
from types import FrameType

from middleboxes.base import Action, Delay, Direction, Drop, Forward, Inject, Middlebox
from middleboxes.registry import parse_chain

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_HEADER = 14
PACKET_OUTGOING = 4
RETRY_S = 0.0002


class Bridge:
    def __init__(self, model: Middlebox, client_interface: str, server_interface: str) -> None:
        self.model = model
        self.sockets: dict[Direction, socket.socket] = {}
        self.headers: dict[Direction, bytes] = {}  # last Ethernet header seen per direction
        self._timers: list[tuple[float, int, Direction, bytes]] = []  # delayed packets
        self._retries: list[tuple[float, int, Direction, bytes]] = []  # whole frames
        self._order = itertools.count()
        for direction, name in ((Direction.TO_CLIENT, client_interface),
                                (Direction.TO_SERVER, server_interface)):
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sock.bind((name, 0))
            sock.setblocking(False)
            self.sockets[direction] = sock  # the socket packets going `direction` leave by
        self.stopped = False

    def _send(self, direction: Direction, packet: bytes) -> None:
        header = self.headers.get(direction)
        if header is None:
            return  # no frame seen yet in that direction: no MAC addresses to use
        self._send_frame(direction, header + packet)

    def _send_frame(self, direction: Direction, frame: bytes) -> None:
        """Send, and when the interface queue is full try again shortly: the engine itself
        never loses a packet (a loss here would hide behind whatever model is measured)."""
        try:
            self.sockets[direction].send(frame)
        except (BlockingIOError, InterruptedError):
            self._retry(direction, frame)
        except OSError as error:
            if error.errno == errno.ENOBUFS:
                self._retry(direction, frame)
            else:
                self.model.stats["send-errors"] += 1

    def _retry(self, direction: Direction, frame: bytes) -> None:
        self.model.stats["send-retries"] += 1
        heapq.heappush(self._retries, (time.monotonic() + RETRY_S, next(self._order),
                                       direction, frame))

    def _apply(self, actions: Sequence[Action], direction: Direction, now: float) -> None:
        for action in actions:
            if isinstance(action, Forward):
                self._send(direction, action.packet)
            elif isinstance(action, Delay):
                heapq.heappush(self._timers, (now + action.seconds, next(self._order),
                                              direction, action.packet))
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
            header, packet = frame[:ETH_HEADER], frame[ETH_HEADER:]
            self.headers[direction] = header
            if int.from_bytes(header[12:14], "big") != ETH_P_IP or len(packet) < 20 \
                    or packet[9] != 6:
                self._send_frame(direction, frame)
                continue
            now = time.monotonic()
            self._apply(self.model.handle(packet, direction, now), direction, now)

    def run(self) -> None:
        by_fd = {sock.fileno(): direction for direction, sock in self.sockets.items()}
        while not self.stopped:
            now = time.monotonic()
            while self._timers and self._timers[0][0] <= now:
                _, _, direction, packet = heapq.heappop(self._timers)
                self._send(direction, packet)
            while self._retries and self._retries[0][0] <= now:
                _, _, direction, frame = heapq.heappop(self._retries)
                self._send_frame(direction, frame)
            due = [queue[0][0] for queue in (self._timers, self._retries) if queue]
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

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("bridging", flush=True)
    bridge.run()
    print(dict(bridge.model.stats), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
