"""A server process's side of the shared signer (`shared_signer`).

`SignerChannel` is the bare connection, for an event loop: queue SIGN and DELIVERED frames,
`flush()` them in one write, `read()` the signer's answers when its descriptor is readable.
`SignerClient` wraps it for threaded servers: `sign(session_id)` blocks until the proof comes
back and `delivered(proof)` reports it written, the two calls `serve_batch_signed` makes, so a
threaded server hands it over in place of an in-process `Batcher`. If the signer goes away,
every waiting and later `sign` raises `SignerUnavailable`, a clear error instead of a hang.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from concurrent.futures import Future

from tcpcrypt.auth.batch_proof import BatchProof, parse_proof
from tcpcrypt.auth.signer_wire import (
    Frame,
    FrameKind,
    FrameReader,
    SignerProtocolError,
    encode_frame,
)

_READ = 1 << 16


class SignerUnavailable(ConnectionError):
    """The shared signer could not be reached, went away, or failed this request."""


class SignerChannel:
    """One server process's connection to the signer (not thread-safe: one loop drives it)."""

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.settimeout(timeout)
            self.sock.connect(path)
        except OSError as error:
            self.sock.close()
            raise SignerUnavailable(f"no signer at its socket: {error}") from None
        self._reader = FrameReader()
        self._out = bytearray()

    def fileno(self) -> int:
        return self.sock.fileno()

    def request(self, request: int, session_id: bytes) -> None:
        self._out += encode_frame(Frame(FrameKind.SIGN, request, payload=session_id,
                                        stamp_ns=time.monotonic_ns()))

    def delivered(self, batch: int, leaf: int) -> None:
        self._out += encode_frame(Frame(FrameKind.DELIVERED, batch=batch, leaf=leaf,
                                        stamp_ns=time.monotonic_ns()))

    def flush(self) -> None:
        if self._out:
            try:
                self.sock.sendall(self._out)
            except OSError as error:
                raise SignerUnavailable(f"the signer went away: {error}") from None
            self._out.clear()

    def read(self) -> list[Frame]:
        """The frames the signer has sent (blocks until some bytes come)."""
        try:
            data = self.sock.recv(_READ)
            if not data:
                raise SignerUnavailable("the signer closed its connection")
            return self._reader.feed(data)
        except (OSError, SignerProtocolError) as error:
            raise SignerUnavailable(f"the signer's answer failed: {error}") from None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class SignerClient:
    """Thread-safe `sign`/`delivered` over a `SignerChannel`, with a thread reading answers."""

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self._channel = SignerChannel(path, timeout)
        self._channel.sock.settimeout(None)  # the reader waits as long as the signer lives
        self._lock = threading.Lock()
        self._waiting: dict[int, Future[Frame]] = {}
        self._batches: dict[tuple[bytes, int], int] = {}  # (root, leaf) -> the signer's batch
        self._next = 0
        self._gone: str | None = None
        self._reader = threading.Thread(target=self._read_loop, name="signer-client",
                                        daemon=True)
        self._reader.start()

    def sign(self, session_id: bytes, timeout: float | None = None) -> BatchProof:
        """Block until the signer has signed `session_id`'s batch; its proof."""
        future: Future[Frame] = Future()
        with self._lock:
            if self._gone is not None:
                raise SignerUnavailable(self._gone)
            request = self._next
            self._next = (self._next + 1) & 0xFFFFFFFF
            self._waiting[request] = future
            self._channel.request(request, bytes(session_id))
            try:
                self._channel.flush()
            except SignerUnavailable:
                del self._waiting[request]
                raise
        try:
            frame = future.result(timeout)
        except TimeoutError:
            with self._lock:
                self._waiting.pop(request, None)
            raise
        if frame.kind is FrameKind.FAILED:
            reason = frame.payload.decode("ascii", "replace")
            raise SignerUnavailable(f"the signer failed: {reason}")
        proof = parse_proof(frame.payload)
        with self._lock:
            self._batches[(proof.root, proof.leaf_index)] = frame.batch
            if len(self._batches) > 4096:  # proofs never reported: forget the oldest
                self._batches.pop(next(iter(self._batches)))
        return proof

    def delivered(self, proof: BatchProof) -> None:
        """`proof` has been written to its client: the signer's schedule learns from it."""
        with self._lock:
            batch = self._batches.pop((proof.root, proof.leaf_index), None)
            if batch is None or self._gone is not None:
                return
            self._channel.delivered(batch, proof.leaf_index)
            with contextlib.suppress(SignerUnavailable):
                self._channel.flush()

    def _read_loop(self) -> None:
        try:
            while True:
                for frame in self._channel.read():
                    with self._lock:
                        future = self._waiting.pop(frame.request, None)
                    if future is not None and frame.kind in (FrameKind.PROOF, FrameKind.FAILED):
                        future.set_result(frame)
        except SignerUnavailable as error:
            with self._lock:
                self._gone = str(error)
                waiting, self._waiting = self._waiting, {}
            for future in waiting.values():
                future.set_exception(SignerUnavailable(str(error)))

    def close(self) -> None:
        self._channel.close()
        self._reader.join(5)

    def __enter__(self) -> SignerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
