"""A server worker process of the `batch-signing` experiment (not an experiment: no SPEC).

Several of these share one port (SO_REUSEPORT), each pinned to its own CPU when the parent
asks, like `connection-rate`'s library servers. A worker runs the in-band tcpcrypt handshake
of each accepted connection on a thread of its own (the handshakes happen before the
measured phase), then hands the connection to its one event-loop thread, which serves the
authentications: on the client's go byte it sends the session ID to the shared signer
(`tcpcrypt.auth.shared_signer`), and when the proof comes back it writes it to the client and
reports it delivered. `sign-each` signs each ID in the worker itself, on the loop thread, with
the same key: with nothing to share there is no reason for a signer process, and this
baseline spreads its signatures over every worker's CPU (a lone signer process would cap it
at one CPU of signatures, and its IPC would only add to its cost). `none` answers the
go byte with one byte: the same connection, unauthenticated (the latency baseline). The go
byte names the method (`GO_BYTE`): a worker serves every method it was started with side by
side, so one arrival stream can interleave authenticated and unauthenticated connections.

One loop thread instead of a thread per connection: a thread woken for the go byte, blocked on
a future, woken again for the proof cost more CPU in wake-ups and GIL hand-offs than the
proof itself (see docs/auth.md, "Per-connection cost").

Measured per worker: its process CPU over the phases the parent marks, and per method the
loop's CPU spent on authentication (`auth_cpu_ns`: from the go byte to the proof written, the
write itself apart in `send_cpu_ns`; the loop's writes to the signer count for `batch-sign`).
"""

from __future__ import annotations

import contextlib
import os
import queue
import selectors
import socket
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from experiments.batch_signing_server import METHOD_OF_GO, NO_AUTH, NO_AUTH_REPLY, measure_phases
from tcpcrypt.auth.batch_proof import encode_proof, sign_batch
from tcpcrypt.auth.signer_client import SignerChannel, SignerUnavailable
from tcpcrypt.auth.signer_wire import FrameKind
from tcpcrypt.auth.signing import SigningKey
from tcpcrypt.auth.wire import MessageType, send_message
from tcpcrypt.inband import InbandTcpcryptSocket, inband_accept


def reuseport_listener(port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1024)
    return listener


class AuthWorker:
    """Handshakes on threads, authentications on one loop thread."""

    def __init__(self, listener: socket.socket, methods: tuple[str, ...],
                 signer_path: str | None, key: SigningKey | None = None,
                 timeout: float = 30.0) -> None:
        self.listener = listener
        self.methods = methods
        self.timeout = timeout
        self.signer = SignerChannel(signer_path) if signer_path else None
        self.key = key  # sign-each: this worker signs each of its own IDs
        self.stats = {method: {"answered": 0, "failed": 0, "auth_cpu_ns": 0, "send_cpu_ns": 0,
                               "sign_cpu_ns": 0, "signatures": 0} for method in methods}
        self.refused = 0  # go bytes naming no method this worker serves
        self._new: queue.SimpleQueue[InbandTcpcryptSocket] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        self._stopping = False
        self._pending: dict[int, tuple[InbandTcpcryptSocket, float]] = {}
        # per method, per connection: go byte read to its answer written
        self.waits_s: dict[str, list[float]] = {method: [] for method in methods}
        self._next = 0
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        if self.signer is not None:
            self._selector.register(self.signer.fileno(), selectors.EVENT_READ, "signer")
        self._loop = threading.Thread(target=self._run, name="auth-loop", daemon=True)
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._loop.start()
        self._acceptor.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handshake, args=(conn,), daemon=True).start()

    def _handshake(self, conn: socket.socket) -> None:
        conn.settimeout(self.timeout)
        try:
            wrapped = inband_accept(conn)
        except (OSError, ConnectionError):
            conn.close()
            return
        self._new.put(wrapped)
        os.write(self._wake_w, b"w")

    def _run(self) -> None:
        while not self._stopping:
            for key, _ in self._selector.select(0.5):
                if key.data == "wake":
                    self._adopt()
                elif key.data == "signer":
                    self._proofs()
                else:
                    self._go(key.data)
            if self.signer is not None:
                started = time.thread_time_ns()
                try:
                    self.signer.flush()
                except SignerUnavailable:  # the signer is gone: fail what waits, go on
                    self._lose_signer()
                self.stats["batch-sign"]["auth_cpu_ns"] += time.thread_time_ns() - started

    def _lose_signer(self) -> None:
        assert self.signer is not None
        self._selector.unregister(self.signer.fileno())
        self.signer.close()
        self.signer = None
        for conn, _ in self._pending.values():
            conn.close()
            self.stats["batch-sign"]["failed"] += 1
        self._pending.clear()

    def _adopt(self) -> None:
        os.read(self._wake_r, 4096)
        while True:
            try:
                conn = self._new.get_nowait()
            except queue.Empty:
                return
            self._selector.register(conn.fileno(), selectors.EVENT_READ, conn)

    def _finish(self, conn: InbandTcpcryptSocket, method: str | None, ok: bool) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.fileno())
        conn.close()
        if method is None:
            self.refused += 1
        else:
            self.stats[method]["answered" if ok else "failed"] += 1

    def _go(self, conn: InbandTcpcryptSocket) -> None:
        try:
            method = METHOD_OF_GO.get(conn.recv(1))
        except OSError:
            self._finish(conn, None, False)
            return
        if method not in self.methods:
            self._finish(conn, None, False)
            return
        assert method is not None
        started = time.thread_time_ns()
        arrived = time.monotonic()
        if method == "sign-each":
            self._sign_here(conn, started)
            self.waits_s[method].append(time.monotonic() - arrived)
            return
        if method == NO_AUTH:
            try:
                conn.sendall(NO_AUTH_REPLY)  # counted as the write, as the proof's is
            except OSError:
                self._finish(conn, method, False)
                return
            self.stats[method]["send_cpu_ns"] += time.thread_time_ns() - started
            self.waits_s[method].append(time.monotonic() - arrived)
            self._finish(conn, method, True)
            return
        if self.signer is None:  # the signer is gone
            self._finish(conn, method, False)
            return
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.fileno())  # nothing more to read from it
        request, self._next = self._next, (self._next + 1) & 0xFFFFFFFF
        self._pending[request] = conn, arrived
        self.signer.request(request, conn.getsessid() or b"")
        self.stats[method]["auth_cpu_ns"] += time.thread_time_ns() - started

    def _sign_here(self, conn: InbandTcpcryptSocket, started: int) -> None:
        """One signature for this one ID, in this worker, and the proof written."""
        assert self.key is not None
        stats = self.stats["sign-each"]
        signing = time.thread_time_ns()
        body = encode_proof(sign_batch(self.key, [conn.getsessid() or b""])[0])
        writing = time.thread_time_ns()
        stats["sign_cpu_ns"] += writing - signing
        stats["signatures"] += 1
        try:
            send_message(conn, MessageType.BATCH_PROOF, body)
        except OSError:
            self._finish(conn, "sign-each", False)
            return
        done = time.thread_time_ns()
        stats["send_cpu_ns"] += done - writing
        stats["auth_cpu_ns"] += writing - started
        self._finish(conn, "sign-each", True)

    def _proofs(self) -> None:
        assert self.signer is not None
        started = time.thread_time_ns()
        writing = 0
        try:
            frames = self.signer.read()
        except SignerUnavailable:
            self._lose_signer()
            return
        answered: list[InbandTcpcryptSocket] = []
        for frame in frames:
            waiting = self._pending.pop(frame.request, None)
            if waiting is None:
                continue
            conn, arrived = waiting
            if frame.kind is not FrameKind.PROOF:
                self._finish(conn, "batch-sign", False)
                continue
            write_started = time.thread_time_ns()
            try:
                send_message(conn, MessageType.BATCH_PROOF, frame.payload)
            except OSError:
                self._finish(conn, "batch-sign", False)
                continue
            writing += time.thread_time_ns() - write_started
            self.signer.delivered(frame.batch, frame.leaf)
            self.waits_s["batch-sign"].append(time.monotonic() - arrived)
            answered.append(conn)
        stats = self.stats["batch-sign"]
        stats["send_cpu_ns"] += writing
        stats["auth_cpu_ns"] += time.thread_time_ns() - started - writing
        for conn in answered:  # closing is the same for every method: not counted
            conn.close()
            stats["answered"] += 1

    def close(self) -> None:
        self._stopping = True
        os.write(self._wake_w, b"s")
        self._loop.join(5)
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self._acceptor.join(5)
        if self.signer is not None:
            self.signer.close()
        for conn, _ in self._pending.values():
            conn.close()
        os.close(self._wake_r)
        os.close(self._wake_w)


def serve_worker(pipe: Connection, methods: tuple[str, ...], port: int,
                 signer_path: str | None, key_pem: bytes | None, cpu: int | None) -> None:
    """The process's entry point: pin, listen on `port` (0: a fresh one), serve, measure."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    key = SigningKey.from_pem(key_pem) if key_pem else None
    worker = AuthWorker(reuseport_listener(port), methods, signer_path, key)
    pipe.send(("ready", worker.listener.getsockname()[:2]))
    measurements: dict[str, Any] = {}
    try:
        measure_phases(pipe, measurements)
    finally:
        worker.close()
    measurements.update(methods=worker.stats, waits_s=worker.waits_s, refused=worker.refused)
    pipe.send(measurements)
