"""One signer process for a server of several processes: batch signing across all of them.

A server that takes connections in several processes (SO_REUSEPORT workers, one per core)
would, with a `Batcher` in each, split its arrivals into as many batches: fewer session IDs per
signature. Here every worker sends its session IDs to ONE signer process over a Unix socket
(`signer_wire` frames); the signer closes batches by the same schedule as `Batcher`
(`batch_schedule.BatchQueue`: at most `max_batch` IDs or the window, less the learned close-to-
sent margin), signs each batch's Merkle root once and returns every worker the encoded proofs
of its own IDs, one write per worker per batch. Workers report each proof written (DELIVERED),
which is what the schedule learns its margin from.

The signer is one thread around a selector (no per-request threads or futures: it only reads
frames, signs and writes). It wakes for the first ID of a batch and then sleeps until that
batch is due, reading what the workers sent meanwhile only then: every frame carries when it
happened (`signer_wire`), so reading late changes no arrival or delivery time, and the signer
wakes about once per batch instead of once per connection. A batch that fills up before its due
time is therefore closed at that time, not at its `max_batch`-th arrival: a batch still never
holds more than `max_batch` IDs nor waits longer than its window. A worker that dies or sends
garbage is dropped; its pending IDs are still signed with their batch and their proofs
discarded, so the signer never waits for it; a worker that stops reading is dropped after
`SEND_TIMEOUT_S`. `SignerProcess` runs the signer in its own process (its key never leaves it)
and stops it cleanly: on `close()`, or when the process that started it goes away (its control
pipe ends).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import resource
import selectors
import shutil
import socket
import struct
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from tcpcrypt.auth.batch_proof import encode_proof, sign_batch
from tcpcrypt.auth.batch_schedule import BatchQueue
from tcpcrypt.auth.batcher import MAX_BATCH_LIMIT, warm_up
from tcpcrypt.auth.errors import AuthConfigError
from tcpcrypt.auth.signer_wire import (
    Frame,
    FrameKind,
    FrameReader,
    SignerProtocolError,
    encode_frame,
)
from tcpcrypt.auth.signing import PublicKey, SigningKey

SEND_TIMEOUT_S = 5.0
_READ = 1 << 16
_IDLE_S = 0.5  # longest select() when nothing is due (the control pipe is watched anyway)


@dataclass(eq=False)
class _Worker:
    sock: socket.socket
    reader: FrameReader = field(default_factory=FrameReader)
    alive: bool = True


@dataclass
class _Ticket:
    worker: _Worker
    request: int


def check_batch_params(max_batch: int, window_s: float) -> None:
    """Refuse a bad batch size or window before anything starts (AuthConfigError)."""
    if not 1 <= max_batch <= MAX_BATCH_LIMIT:
        raise AuthConfigError(f"max_batch must be in 1..{MAX_BATCH_LIMIT}, not {max_batch}")
    if not 0 <= window_s <= 1.0:
        raise AuthConfigError(f"window_s must be in 0..1 s, not {window_s}")


class SignerLoop:
    """The signer: serves the workers connecting to `listener` until told to stop."""

    def __init__(self, key: SigningKey, listener: socket.socket, *, max_batch: int,
                 window_s: float) -> None:
        check_batch_params(max_batch, window_s)
        self.key = key
        self.listener = listener
        self.queue: BatchQueue[_Ticket] = BatchQueue(max_batch, window_s)
        self.stats: Counter[str] = Counter()
        self._selector = selectors.DefaultSelector()
        self._selector.register(listener, selectors.EVENT_READ, None)
        self._next_batch = 0
        self.stats["warmup_cpu_ns"] = warm_up(key, self.queue.deliveries, time.monotonic)

    def serve(self, control: Connection) -> None:
        """Run until `control` says "stop" or ends; answer "stats" with `snapshot()`."""
        self._selector.register(control, selectors.EVENT_READ, "control")
        try:
            while self._step(control):
                pass
        finally:
            self._sign_due(closing=True)  # what waits is signed and sent before leaving
            self._selector.close()

    def snapshot(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        shot: dict[str, Any] = dict(self.stats)
        shot["process_cpu_s"] = usage.ru_utime + usage.ru_stime
        shot["margin_ms"] = self.queue.deliveries.estimate.margin_s * 1000
        shot["queued_batches"] = self.queue.queued_batches
        shot["waiting_ids"] = len(self.queue.waiting)  # received, not yet signed
        shot["queued_ns"] = int(self.queue.queued_s * 1e9)
        return shot

    def _step(self, control: Connection) -> bool:
        """One turn: with nothing waiting, wait for anything; with a batch waiting, watch only
        the control pipe until the batch is due, then read everything the workers sent
        meanwhile (their frames carry when each thing happened) and sign."""
        due = self.queue.due()
        now = time.monotonic()
        if due is not None and due > now:
            self.stats["sleeps"] += 1
            if control.poll(due - now):
                return self._control(control)
            ready = self._selector.select(0)  # due: take in what came while we slept
        else:
            ready = self._selector.select(_IDLE_S if due is None else 0)
        self.stats["wakes"] += 1
        for key, _ in ready:
            if key.data == "control":
                if not self._control(control):
                    return False
            elif key.data is None:
                self._accept()
            else:
                self._read(key.data)
        self._sign_due()
        return True

    def _control(self, control: Connection) -> bool:
        try:
            word = control.recv()
        except (EOFError, OSError):
            return False  # the process that started us is gone
        if word == "stop":
            return False
        control.send(self.snapshot())
        return True

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            sock, _ = self.listener.accept()
            sock.settimeout(SEND_TIMEOUT_S)
            worker = _Worker(sock)
            self._selector.register(sock, selectors.EVENT_READ, worker)
            self.stats["workers_connected"] += 1

    def _drop(self, worker: _Worker) -> None:
        if worker.alive:
            worker.alive = False
            self.stats["workers_dropped"] += 1
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(worker.sock)
            worker.sock.close()

    def _read(self, worker: _Worker) -> None:
        try:
            data = worker.sock.recv(_READ)
            frames = worker.reader.feed(data) if data else None
        except (OSError, SignerProtocolError):
            frames = None
        if frames is None:
            self._drop(worker)
            return
        now = time.monotonic()
        for frame in frames:
            at = min(now, frame.stamp_ns / 1e9)  # when it happened (never in our future)
            if frame.kind is FrameKind.SIGN and 1 <= len(frame.payload) <= 255:
                self.queue.add(frame.payload, _Ticket(worker, frame.request), at)
            elif frame.kind is FrameKind.DELIVERED:
                self.queue.deliveries.delivered(struct.pack("!I", frame.batch), frame.leaf, at)
            else:  # a worker sending what only the signer sends, or an empty ID: not ours
                self._drop(worker)
                return

    def _sign_due(self, closing: bool = False) -> None:
        while True:
            due, now = self.queue.due(), time.monotonic()
            batch = self.queue.take(now, closing=closing)
            if batch is None or due is None:
                return
            # the planned close, not when this process got the CPU to do it: a late wake-up
            # is part of what the margin must cover
            closed_at = min(due, now)
            started = time.thread_time_ns()
            batch_id = self._next_batch
            self._next_batch = (self._next_batch + 1) & 0xFFFFFFFF
            out: dict[_Worker, bytearray] = defaultdict(bytearray)
            try:
                proofs = sign_batch(self.key, [waiting.session_id for waiting in batch])
            except Exception as error:  # a failing key fails the batch, visibly
                reason = type(error).__name__.encode("ascii")[:64]
                for waiting in batch:
                    out[waiting.ticket.worker] += encode_frame(
                        Frame(FrameKind.FAILED, waiting.ticket.request, payload=reason))
                self._send_all(out)
                continue
            for index, (waiting, proof) in enumerate(zip(batch, proofs, strict=True)):
                out[waiting.ticket.worker] += encode_frame(Frame(
                    FrameKind.PROOF, waiting.ticket.request, batch_id, index,
                    encode_proof(proof)))
            self.stats["sign_cpu_ns"] += time.thread_time_ns() - started
            self.stats["batches"] += 1
            self.stats["session_ids"] += len(batch)
            self.queue.finished(struct.pack("!I", batch_id), batch, closed_at, time.monotonic())
            self._send_all(out)

    def _send_all(self, out: dict[_Worker, bytearray]) -> None:
        for worker, data in out.items():
            if not worker.alive:
                self.stats["proofs_discarded"] += 1
                continue
            try:
                worker.sock.sendall(data)
            except OSError:  # died, or stopped reading for SEND_TIMEOUT_S
                self._drop(worker)


def _signer_main(control: Connection, path: str, scheme: str, max_batch: int,
                 window_s: float) -> None:
    key = SigningKey.generate(scheme)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    loop = SignerLoop(key, listener, max_batch=max_batch, window_s=window_s)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    control.send(("ready", public))
    try:
        loop.serve(control)
    finally:
        listener.close()
        with contextlib.suppress(OSError, BrokenPipeError):
            control.send(loop.snapshot())


class SignerProcess:
    """Starts the shared signer in a process of its own; `path` is its Unix socket."""

    def __init__(self, scheme: str = "rsa-2048", *, max_batch: int = 64,
                 window_s: float = 0.005, start_timeout_s: float = 60.0) -> None:
        check_batch_params(max_batch, window_s)
        if scheme not in ("rsa-2048", "ed25519"):
            raise AuthConfigError(f"unknown signature scheme {scheme!r} (rsa-2048, ed25519)")
        self._folder = tempfile.mkdtemp(prefix="tcpcrypt-signer-")
        self.path = str(Path(self._folder) / "signer.sock")
        spawn = multiprocessing.get_context("spawn")
        self._control, child = spawn.Pipe()
        self.process = spawn.Process(target=_signer_main, name="tcpcrypt-signer", daemon=True,
                                     args=(child, self.path, scheme, max_batch, window_s))
        self.process.start()
        child.close()
        self.final_stats: dict[str, Any] | None = None
        try:
            if not self._control.poll(start_timeout_s):
                raise RuntimeError("the signer process did not start")
            word, public_pem = self._control.recv()
            if word != "ready":
                raise RuntimeError(f"the signer process said {word!r}")
        except BaseException:
            self.close()
            raise
        loaded = serialization.load_pem_public_key(public_pem)
        self.public_key: PublicKey = loaded  # type: ignore[assignment]

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def stats(self) -> dict[str, Any]:
        """The signer's counters and its process CPU time so far."""
        self._control.send("stats")
        stats: dict[str, Any] = self._control.recv()
        return stats

    def close(self) -> None:
        """Stop the signer (it signs and sends what waits), wait for it, remove its socket."""
        if self.process.is_alive():
            with contextlib.suppress(OSError):
                self._control.send("stop")
                if self._control.poll(10):
                    self.final_stats = self._control.recv()
            self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self._control.close()
        shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> SignerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
