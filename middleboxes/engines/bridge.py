"""A transparent bridge over AF_PACKET that runs a middlebox model between two interfaces,
with the hosts' segmentation and checksum offloads left on.

Frames arriving on the client-side interface go to the model as TO_SERVER packets and leave
on the server-side interface, and the other way round. The sockets carry the virtio-net
header (PACKET_VNET_HDR): TCP data arrives as super-packets of up to 64 KB whose checksums the
kernel completes, and leaves the same way, so the kernel (not this loop) segments and
checksums them. What the chain sees depends on what it needs (`middleboxes.base.Scope`,
`middleboxes.engines.dispatch`): nothing at all for pass-through (frames are forwarded
unparsed), SYN/FIN/RST only for handshake models, every packet, or wire-sized segments for
models that act per segment (loss, reordering, resegmenting, proxy ACKs), for which the
engine splits super-packets.

Frames that are not IPv4/TCP (ARP, ICMP) are bridged without the model, but other IPv4 frames
(ICMP) wait the fixed delay of the chain's `link` models, so that ping sees the path's RTT;
ARP crosses at once. Pass-through frames are read into one reused buffer and sent from it, in
batches, with no parsing and no per-frame objects. A delay counts from the kernel's receive
stamp of the frame, and the packet leaves at its release time to within microseconds: the
loop polls for the last 300 us instead of trusting a timer wake-up (`engines.timing`).
`Delay` actions wait in a `scheduling.DeadlineQueue` (the simulator's queue); `Inject` sends
a new packet out of the interface its direction points to; a model that holds packets back
(`next_timer`/`expire`) is called when its time comes. Packets the engine sends itself take
the Ethernet header last seen towards their IPv4 destination (for a destination not seen yet,
the direction's last one), so several hosts may share a side (a dumbbell's clients).

The engine reports its counters as one JSON line on stdout, {"event": "stats", ...}, when it
gets SIGUSR1 and when it stops (SIGTERM, SIGINT): per model the counters (`dropped:model-error`
counts packets dropped because the model raised) and the last errors, and the engine's own
(`bytes-in`, `engine-errors`, `send-errors`, `send-retries`, `non-tcp`, `socket-drops`,
`truncated`, `super-packets-split`, ...; `delayed`, `delayed-late` and `lateness-us`: packets
a model delayed, those sent more than 10% after the delay asked for, and their total lateness,
from which the runtime warns that a shaped link missed its rate or delay; histograms
`late<=Nus` (release time to send) and `read-lag<=Nus` (kernel stamp to read),
`stamp-unusable`, `spin-us`/`spins`, the CPU spent polling before release times, and
`wakes`, the rounds that found frames), with
the scope the chain runs at.

    python -m middleboxes.engines.bridge --path "link(delay_ms=10)" --client IF --server IF
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import fcntl
import json
import select
import signal
import socket
import struct
import sys
import time
from collections import Counter, deque
from types import FrameType
from typing import Any

from middleboxes.base import Direction, Middlebox, Scope
from middleboxes.chain import Chain
from middleboxes.engines.dispatch import Dispatcher, Outgoing
from middleboxes.engines.timing import (
    SO_TIMESTAMPNS,
    STAMP_SPACE,
    bucket,
    stamped_arrival,
    wait_before,
)
from middleboxes.engines.vnet import HEADER_BYTES
from middleboxes.link import Link
from middleboxes.registry import parse_chain
from middleboxes.scheduling import DeadlineQueue

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_HEADER = 14
SOL_PACKET = 263
PACKET_STATISTICS = 6  # struct tpacket_stats {unsigned tp_packets, tp_drops}; read resets
PACKET_VNET_HDR = 15  # set before any ring: frames carry the 10-byte virtio-net header
PACKET_IGNORE_OUTGOING = 23  # the socket does not read back what it sends
SIOCGIFMTU = 0x8921
PR_SET_TIMERSLACK = 29
RETRY_S = 0.0002
SOCKET_BUFFER = 32 << 20  # smaller ones dropped thousands of super-packets in bursts
LATE_FRACTION = 0.10  # see testbed.fidelity
RECEIVE_BUFFER = 256 << 10  # a 64 KB super-packet and its headers, with room to spare
FRAME_START = HEADER_BYTES + ETH_HEADER  # where the IPv4 packet starts in what we read
BATCH = 64  # frames read from one side before the other side's turn
IDLE_S = 0.05  # the longest the loop sleeps (signals are handled between rounds)


def _models(model: Middlebox) -> list[Middlebox]:
    return list(model.models) if isinstance(model, Chain) else [model]


def _mtu(sock: socket.socket, name: str) -> int:
    request = struct.pack("16si", name.encode()[:15], 0)
    return int(struct.unpack("16si", fcntl.ioctl(sock.fileno(), SIOCGIFMTU, request))[1])


def open_socket(name: str) -> socket.socket:
    """A non-blocking AF_PACKET socket on `name` with the virtio-net header, that ignores its
    own sends, with 32 MB buffers."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    for option, fallback in ((getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF),
                             (getattr(socket, "SO_SNDBUFFORCE", 32), socket.SO_SNDBUF)):
        try:  # bursts of a bulk transfer overflow the default buffer (socket-drops)
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, fallback, SOCKET_BUFFER)
    sock.bind((name, 0))
    sock.setblocking(False)
    return sock


class Bridge:
    def __init__(self, model: Middlebox, client_interface: str, server_interface: str) -> None:
        self.model = model
        self.counters: Counter[str] = Counter()  # the engine's own, beside the models'
        models = _models(model)
        self.scope = model.needs()
        # Non-TCP IPv4 (ICMP) waits the fixed delay of the path's links (no loss, no jitter).
        self.other_delay = sum(m.delay for m in models if isinstance(m, Link))
        self.timed = model.holds_packets()
        self.report_requested = False
        self.sockets: dict[Direction, socket.socket] = {}
        self.headers: dict[Direction, bytes] = {}  # last Ethernet header seen per direction
        # ... and per destination IPv4 address: several hosts may sit behind one side (a
        # dumbbell's clients), and a delayed or injected packet must go to its own host's MAC
        self.headers_to: dict[tuple[Direction, bytes], bytes] = {}
        self._timers: DeadlineQueue[Outgoing] = DeadlineQueue()  # delayed packets
        # Frames the interface refused for now, per direction, in order: while one waits,
        # later frames queue behind it (the engine itself never reorders or loses a frame).
        self._backlog: dict[Direction, deque[bytes]] = {d: deque() for d in Direction}
        self._retry_at: float | None = None
        self._spin_since: float | None = None
        self._buffer = bytearray(RECEIVE_BUFFER)
        self._view = memoryview(self._buffer)
        for direction, name in ((Direction.TO_CLIENT, client_interface),
                                (Direction.TO_SERVER, server_interface)):
            self.sockets[direction] = open_socket(name)  # packets going `direction` leave here
        mtu = min(_mtu(sock, name) for sock, name in
                  ((self.sockets[Direction.TO_CLIENT], client_interface),
                   (self.sockets[Direction.TO_SERVER], server_interface)))
        self.dispatcher = Dispatcher(model, mtu)
        # A chain that delays counts each delay from the frame's arrival at the interface,
        # not from when this loop got to it (the kernel stamps every frame).
        self.stamped = any(isinstance(m, Link) for m in models)
        if self.stamped:
            for sock in self.sockets.values():
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.stopped = False

    def _send(self, out: Outgoing) -> None:
        direction = out.direction
        header = (self.headers_to.get((direction, out.packet[16:20]))
                  or self.headers.get(direction))
        if header is None:
            return  # no frame seen yet in that direction: no MAC addresses to use
        self._send_frame(direction, out.header + header + out.packet)

    def _send_frame(self, direction: Direction, frame: bytes | memoryview) -> None:
        """Send, and when the interface queue is full try again shortly: the engine itself
        never loses a packet (a loss here would hide behind whatever model is measured)."""
        backlog = self._backlog[direction]
        if backlog:
            backlog.append(bytes(frame))
        elif not self._try_send(direction, frame):
            backlog.append(bytes(frame))
            self.counters["send-retries"] += 1
            if self._retry_at is None:
                self._retry_at = time.monotonic() + RETRY_S

    def _try_send(self, direction: Direction, frame: bytes | memoryview) -> bool:
        """False when the interface cannot take the frame now (try again later)."""
        try:
            self.sockets[direction].send(frame)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as error:
            if error.errno == errno.ENOBUFS:
                return False
            self.counters["send-errors"] += 1
            self.counters[f"send-error:{errno.errorcode.get(error.errno or 0, '?')}"] += 1
        return True

    def _flush_backlogs(self, now: float) -> None:
        self._retry_at = None
        for direction, backlog in self._backlog.items():
            while backlog and self._try_send(direction, backlog[0]):
                backlog.popleft()
            if backlog:
                self.counters["send-retries"] += 1
                self._retry_at = now + RETRY_S

    def _arrival(self, ancillary: list[tuple[int, int, bytes]]) -> float:
        """When the frame just read arrived, on the monotonic clock (now without a stamp)."""
        now = time.monotonic()
        arrived = stamped_arrival(ancillary, now, time.time())
        if arrived is None:
            self.counters["stamp-unusable"] += 1
            return now
        self.counters[bucket("read-lag", now - arrived)] += 1
        return arrived

    def _count_lateness(self, late: float, asked: float) -> None:
        """Shaping fidelity: a delayed packet sent more than 10% after the delay its link
        asked for (propagation plus queueing at the configured rate) missed the shaping."""
        if asked <= 0:
            return
        self.counters["delayed"] += 1
        self.counters[bucket("late", late)] += 1
        self.counters["lateness-us"] += int(late * 1e6)
        if late > LATE_FRACTION * asked:
            self.counters["delayed-late"] += 1

    def _apply(self, outs: list[Outgoing], now: float) -> None:
        for out in outs:
            if out.delay > 0:
                self._timers.push(now + out.delay, out)
            else:
                self._send(out)

    def _forward_raw(self, arrived_on: Direction) -> None:
        """Pass-through (Scope.NOTHING): up to BATCH frames cross unparsed, each read into the
        one reused buffer and sent from it; the counters are updated once per batch."""
        direction = arrived_on.reverse
        recv_into = self.sockets[arrived_on].recv_into
        send = self.sockets[direction].send
        buffer, view, backlog = self._buffer, self._view, self._backlog[direction]
        frames = size_sum = 0
        try:
            for _ in range(BATCH):
                try:
                    size = recv_into(buffer, RECEIVE_BUFFER, socket.MSG_TRUNC)
                except BlockingIOError:
                    return
                frames += 1
                size_sum += size
                if size > RECEIVE_BUFFER:
                    self.counters["truncated"] += 1
                    continue
                if backlog:
                    self._send_frame(direction, view[:size])
                    continue
                try:
                    send(view[:size])
                except OSError:  # full queue or an error: the general path sorts it out
                    self._send_frame(direction, view[:size])
        finally:
            self.counters["fast-forwarded"] += frames
            self.counters["bytes-in"] += size_sum

    def _receive(self, arrived_on: Direction) -> None:
        direction = arrived_on.reverse  # a frame from the client side travels to the server
        sock = self.sockets[arrived_on]
        view = self._view
        while True:
            arrived = 0.0
            try:
                if self.stamped:
                    size, ancillary, _, _ = sock.recvmsg_into([self._buffer], STAMP_SPACE,
                                                              socket.MSG_TRUNC)
                    arrived = self._arrival(ancillary)
                else:
                    size = sock.recv_into(self._buffer, RECEIVE_BUFFER, socket.MSG_TRUNC)
            except BlockingIOError:
                return
            if size > RECEIVE_BUFFER:
                self.counters["truncated"] += 1  # cannot happen below 64 KB super-packets
                continue
            self.counters["bytes-in"] += size
            vnet = bytes(view[:HEADER_BYTES])
            header = bytes(view[HEADER_BYTES:FRAME_START])
            packet = bytes(view[FRAME_START:size])
            self.headers[direction] = header
            if len(packet) >= 20:
                self.headers_to[(direction, packet[16:20])] = header
            ipv4 = int.from_bytes(header[12:14], "big") == ETH_P_IP and len(packet) >= 20
            if not ipv4 or packet[9] != 6:
                if ipv4 and self.other_delay:
                    self.counters["non-tcp-delayed"] += 1
                    self._timers.push(arrived + self.other_delay,
                                      Outgoing(direction, 0.0, vnet, packet))
                else:
                    self.counters["non-tcp"] += 1
                    self._send_frame(direction, view[:size])
                continue
            now = arrived if self.stamped else time.monotonic()
            try:
                self._apply(self.dispatcher.tcp(vnet, packet, direction, now), now)
            except Exception as error:  # the engine outlives anything a packet can cause
                self.counters["engine-errors"] += 1
                self.counters[f"engine-error:{type(error).__name__}"] += 1

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
            "scope": self.scope.name.lower(),
            "engine": dict(self.counters + self.dispatcher.counters),
            "models": [{"model": m.describe(), "stats": dict(m.stats), "errors": list(m.errors)}
                       for m in _models(self.model)],
        }

    def _print_report(self) -> None:
        print(json.dumps(self.report()), flush=True)

    def _due(self, now: float) -> tuple[float, bool]:
        """Send what is due. The seconds until the next thing falls due (at most 50 ms), and
        whether that is a packet's release time (to be met to the microsecond)."""
        held = self.model.next_timer() if self.timed else None
        if held is not None and held <= now:
            try:
                self._apply(self.dispatcher.released(now), now)
            except Exception as error:
                self.counters["engine-errors"] += 1
                self.counters[f"engine-error:{type(error).__name__}"] += 1
            held = self.model.next_timer()
        for due_at, out in self._timers.pop_due(now):
            self._count_lateness(now - due_at, out.delay or self.other_delay)
            self._send(out)
        if self._retry_at is not None and self._retry_at <= now:
            self._flush_backlogs(now)
        release = self._timers.next_deadline()
        if held is not None and (release is None or held < release):
            release = held
        if release is not None and (self._retry_at is None or release <= self._retry_at):
            return min(max(0.0, release - now), IDLE_S), True
        if self._retry_at is not None:
            return min(max(0.0, self._retry_at - now), IDLE_S), False
        return IDLE_S, False

    def _timeout(self, now: float) -> float:
        """How long to wait for frames before the next round (`timing.wait_before`), with
        the time spent polling before release times counted (`spin-us`)."""
        timeout, release = self._due(now)
        wait = wait_before(timeout, release, len(self._timers))
        if wait == 0.0 and release:
            if self._spin_since is None:
                self._spin_since = now
        elif self._spin_since is not None:
            self.counters["spin-us"] += int((now - self._spin_since) * 1e6)
            self.counters["spins"] += 1
            self._spin_since = None
        return wait

    def run(self) -> None:
        by_fd = {sock.fileno(): direction for direction, sock in self.sockets.items()}
        fds = list(by_fd)
        receive = self._forward_raw if self.scope is Scope.NOTHING else self._receive
        while not self.stopped:
            if self.report_requested:
                self.report_requested = False
                self._print_report()
            timeout = self._timeout(time.monotonic())
            try:
                ready, _, _ = select.select(fds, [], [], timeout)
            except InterruptedError:
                continue
            if ready:
                self.counters["wakes"] += 1  # rounds with frames: frames per wake-up
            for fd in ready:
                receive(by_fd[fd])


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

    with contextlib.suppress(OSError, AttributeError):  # timers wake within 1 us, not 50
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGUSR1, report)
    print("bridging", flush=True)
    bridge.run()
    bridge._print_report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
