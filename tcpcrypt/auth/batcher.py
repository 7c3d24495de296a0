"""The server's batcher: session IDs arriving within a window share one signature.

`submit(session_id)` returns a future; a worker thread closes a batch when it holds
`max_batch` IDs or when the batch's window is about to end, signs its Merkle root once and
resolves every future with that ID's proof. "About to end": the batch closes one learned
close-to-sent time (at most half the window) before `window_s` after its first ID arrived
(`batch_schedule`), so that the proofs are sent within the window and a connection waits at
most one window in all while the server gets the CPU it needs. The
server reports each proof sent with `delivered(proof)` (`serve_batch_signed` does); without
reports the batcher still learns its own close-to-resolved time, measured on a warm-up
signature when it starts and on every batch. The margin also holds the time the client needs
to check its proof, taken as this host's time for one check (measured on the warm-up).

One worker both closes and signs. While it signs, new IDs keep joining the next batch, which
closes as soon as the worker is free if its time has come: a second signer would not sign
sooner in this process (`cryptography` holds the GIL while it signs: two threads signing are
no faster than one), and closing a batch only to queue it would just leave later IDs out of
it. `stats` counts the batches whose time came while the worker was signing
(`queued_batches`, and their wait, `queued_ns`).

Thread-safe (a threaded server calls `sign` from any thread); asyncio code awaits
`sign_async`. `max_batch=1` is signing each session ID on its own, the baseline the
`batch-signing` experiment compares against. `stats` counts batches, session IDs and the
worker's CPU time spent building trees and signing (`sign_cpu_ns`; the warm-up apart).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future

from tcpcrypt.auth.batch_proof import BatchProof, check_proof, sign_batch
from tcpcrypt.auth.batch_schedule import BatchQueue, DeliveryLog, Waiting
from tcpcrypt.auth.errors import AuthConfigError
from tcpcrypt.auth.signing import SigningKey

MAX_BATCH_LIMIT = 1 << 16
WARM_UP_ID = b"tcpcrypt-auth batcher warm-up"


def warm_up(key: SigningKey, deliveries: DeliveryLog, clock: Callable[[], float],
            lock: contextlib.AbstractContextManager[object] | None = None) -> int:
    """One signature and its check before the first batch: the first close-to-sent estimate,
    and how long a client takes to check a proof (if it is as fast as we are). Returns the
    CPU time it took (ns); `lock` guards `deliveries` if another thread reads it."""
    started_cpu, started = time.thread_time_ns(), clock()
    proof = sign_batch(key, [WARM_UP_ID])[0]
    signed = clock()
    check_proof(proof, key.public_key(), WARM_UP_ID)
    checked = clock()
    with lock if lock is not None else contextlib.nullcontext():
        deliveries.estimate.check_s = max(0.0, checked - signed)
        deliveries.resolved(proof.root, [0.0], started, signed)
        deliveries.delivered(proof.root, 0, signed)
    return time.thread_time_ns() - started_cpu


class BatcherClosed(RuntimeError):
    """The batcher was closed; no more session IDs are signed."""


class Batcher:
    def __init__(self, key: SigningKey, *, max_batch: int = 64, window_s: float = 0.005,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 1 <= max_batch <= MAX_BATCH_LIMIT:
            raise AuthConfigError(f"max_batch must be in 1..{MAX_BATCH_LIMIT}, not {max_batch}")
        if not 0 <= window_s <= 1.0:
            raise AuthConfigError(f"window_s must be in 0..1 s, not {window_s}")
        self.key = key
        self.max_batch = max_batch
        self.window_s = window_s
        self.clock = clock
        self.stats: Counter[str] = Counter()
        self._queue: BatchQueue[Future[BatchProof]] = BatchQueue(max_batch, window_s)
        self._closed = False
        self._wake = threading.Condition()
        self._worker = threading.Thread(target=self._run, name="auth-batcher", daemon=True)
        self._worker.start()

    def submit(self, session_id: bytes) -> Future[BatchProof]:
        future: Future[BatchProof] = Future()
        with self._wake:
            if self._closed:
                raise BatcherClosed("the batcher is closed")
            self._queue.add(bytes(session_id), future, self.clock())
            self._wake.notify()
        return future

    def sign(self, session_id: bytes, timeout: float | None = None) -> BatchProof:
        """Block until the batch holding `session_id` is signed; its proof."""
        return self.submit(session_id).result(timeout)

    async def sign_async(self, session_id: bytes) -> BatchProof:
        return await asyncio.wrap_future(self.submit(session_id))

    def delivered(self, proof: BatchProof) -> None:
        """The connection holding `proof` has sent it: a measurement for the next closes."""
        now = self.clock()
        with self._wake:
            if self._queue.deliveries.delivered(proof.root, proof.leaf_index, now):
                self._wake.notify()  # a new estimate: the waiting batch's close may move

    @property
    def margin_s(self) -> float:
        """How long before its window's end a batch closes now."""
        with self._wake:
            return self._queue.deliveries.estimate.margin_s

    def close(self) -> None:
        """Sign what is pending, then stop the worker."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._worker.join()

    def __enter__(self) -> Batcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next_batch(self) -> tuple[list[Waiting[Future[BatchProof]]], float] | None:
        """The next batch to sign and when it closed; None once closed and drained."""
        with self._wake:
            while True:
                now = self.clock()
                batch = self._queue.take(now, closing=self._closed)
                if batch is not None:
                    return batch, now
                due = self._queue.due()
                if due is None and self._closed:
                    return None
                self._wake.wait(None if due is None else due - now)

    def _warm_up(self) -> None:
        cpu_ns = warm_up(self.key, self._queue.deliveries, self.clock, self._wake)
        self.stats["warmup_cpu_ns"] += cpu_ns

    def _run(self) -> None:
        with contextlib.suppress(Exception):  # a failing key fails every batch, visibly
            self._warm_up()
        while (taken := self._next_batch()) is not None:
            batch, closed_at = taken
            started = time.thread_time_ns()
            try:
                proofs = sign_batch(self.key, [waiting.session_id for waiting in batch])
            except Exception as error:  # hand the failure to every waiting connection
                for waiting in batch:
                    waiting.ticket.set_exception(error)
                continue
            self.stats["sign_cpu_ns"] += time.thread_time_ns() - started
            self.stats["batches"] += 1
            self.stats["session_ids"] += len(batch)
            with self._wake:  # before any proof is handed out, so no report comes too early
                self._queue.finished(proofs[0].root, batch, closed_at, self.clock())
                self.stats["queued_batches"] = self._queue.queued_batches
                self.stats["queued_ns"] = int(self._queue.queued_s * 1e9)
            for waiting, proof in zip(batch, proofs, strict=True):
                waiting.ticket.set_result(proof)
