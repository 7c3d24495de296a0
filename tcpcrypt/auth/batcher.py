"""The server's batcher: session IDs arriving within a window share one signature.

`submit(session_id)` returns a future; a worker thread closes a batch when it holds
`max_batch` IDs or `window_s` after the batch's first ID arrived, whichever comes first, signs
its Merkle root once and resolves every future with that ID's proof. So a connection waits at
most one window plus one signature. Thread-safe (a threaded server calls `sign` from any
thread); asyncio code awaits `sign_async`. `max_batch=1` is signing each session ID on its own,
the baseline the `batch-signing` experiment compares against. `stats` counts batches, session
IDs and the worker's CPU time spent building trees and signing (`sign_cpu_ns`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from concurrent.futures import Future

from tcpcrypt.auth.batch_proof import BatchProof, sign_batch
from tcpcrypt.auth.errors import AuthConfigError
from tcpcrypt.auth.signing import SigningKey

MAX_BATCH_LIMIT = 1 << 16


class BatcherClosed(RuntimeError):
    """The batcher was closed; no more session IDs are signed."""


class Batcher:
    def __init__(self, key: SigningKey, *, max_batch: int = 64, window_s: float = 0.005) -> None:
        if not 1 <= max_batch <= MAX_BATCH_LIMIT:
            raise AuthConfigError(f"max_batch must be in 1..{MAX_BATCH_LIMIT}, not {max_batch}")
        if not 0 <= window_s <= 1.0:
            raise AuthConfigError(f"window_s must be in 0..1 s, not {window_s}")
        self.key = key
        self.max_batch = max_batch
        self.window_s = window_s
        self.stats: Counter[str] = Counter()
        self._pending: list[tuple[bytes, Future[BatchProof], float]] = []  # (ID, proof, arrival)
        self._closed = False
        self._wake = threading.Condition()
        self._worker = threading.Thread(target=self._run, name="auth-batcher", daemon=True)
        self._worker.start()

    def submit(self, session_id: bytes) -> Future[BatchProof]:
        future: Future[BatchProof] = Future()
        with self._wake:
            if self._closed:
                raise BatcherClosed("the batcher is closed")
            self._pending.append((bytes(session_id), future, time.monotonic()))
            self._wake.notify()
        return future

    def sign(self, session_id: bytes, timeout: float | None = None) -> BatchProof:
        """Block until the batch holding `session_id` is signed; its proof."""
        return self.submit(session_id).result(timeout)

    async def sign_async(self, session_id: bytes) -> BatchProof:
        return await asyncio.wrap_future(self.submit(session_id))

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

    def _next_batch(self) -> list[tuple[bytes, Future[BatchProof], float]] | None:
        with self._wake:
            while True:
                if self._pending:  # the window runs from the oldest waiting ID's arrival
                    wait = self._pending[0][2] + self.window_s - time.monotonic()
                    if len(self._pending) >= self.max_batch or wait <= 0 or self._closed:
                        batch = self._pending[: self.max_batch]
                        del self._pending[: self.max_batch]
                        return batch
                    self._wake.wait(wait)
                elif self._closed:
                    return None
                else:
                    self._wake.wait()

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            started = time.thread_time_ns()
            try:
                proofs = sign_batch(self.key, [sid for sid, _, _ in batch])
            except Exception as error:  # hand the failure to every waiting connection
                for _, future, _ in batch:
                    future.set_exception(error)
                continue
            self.stats["sign_cpu_ns"] += time.thread_time_ns() - started
            self.stats["batches"] += 1
            self.stats["session_ids"] += len(batch)
            for (_, future, _), proof in zip(batch, proofs, strict=True):
                future.set_result(proof)
