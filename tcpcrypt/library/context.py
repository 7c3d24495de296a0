"""`TcpcryptContext`: what an application's tcpcrypt connections share (suites, AEADs, the
resumption cache, A's RSA key, the kernel handle), and the steps that tie the sans-IO core to
the kernel's TCP-ENO negotiation, used by the blocking sockets and by asyncio alike."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Hashable, Sequence
from pathlib import Path

from tcpcrypt.accepted_path import AcceptedPaths
from tcpcrypt.config import TcpcryptConfig
from tcpcrypt.connection import ConnectionState, TcpcryptConnection
from tcpcrypt.connection_tables import suite_table
from tcpcrypt.daemon.keylog import ENVIRONMENT_VARIABLE as KEYLOG_VARIABLE
from tcpcrypt.daemon.keylog import KeyLog
from tcpcrypt.eno_option import parse_eno_option
from tcpcrypt.errors import UsageError
from tcpcrypt.kernel.api import KernelEno, netns_cookie
from tcpcrypt.kernel.loader import pin_dir
from tcpcrypt.kernel.records import Negotiation, decode_sock, encode_active, negotiated_options
from tcpcrypt.randomness import system_random
from tcpcrypt.resumed_path import ResumedPaths
from tcpcrypt.resumption import ResumptionCache
from tcpcrypt.suites import RsaKeyHolder

EMPTY_ENO = bytes((69, 2))
DEFER_ACCEPT_S = 1
"""TCP_DEFER_ACCEPT's value for a `defer_accept` listener: the kernel's shortest wait (one
SYN-ACK retransmission) for a client that sends nothing first."""


class TcpcryptConnectionError(ConnectionError):
    """A tcpcrypt connection failed after ENO succeeded; it was reset. `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"tcpcrypt connection reset: {reason}")
        self.reason = reason


_kernels: dict[str | None, KernelEno] = {}
_kernels_lock = threading.Lock()


def shared_kernel() -> KernelEno:
    """One opened handle per pin directory (TCPCRYPT_BPF_DIR), per process."""
    kernel = _kernels.get(os.environ.get("TCPCRYPT_BPF_DIR"))
    if kernel is not None:
        return kernel
    with _kernels_lock:
        key = os.environ.get("TCPCRYPT_BPF_DIR")
        kernel = _kernels.get(key)
        if kernel is None:
            kernel = _kernels[key] = KernelEno(pin_dir())
        return kernel


class TcpcryptContext:
    """Settings and state shared by connections, like `ssl.SSLContext`.

    `suites` and `aeads` in preference order; `cache` is the resumption cache (None: a new one
    of 1024 sessions; pass `ResumptionCache(0)` to disable resumption). `defer_accept`: a
    listener's `accept()` returns a connection only once its first data arrived (Linux's
    TCP_DEFER_ACCEPT, `DEFER_ACCEPT_S`): for servers whose clients speak first. A full key
    exchange always starts with A's Init1, but a resumed or plain connection whose client
    waits for the server is accepted only after the wait (about DEFER_ACCEPT_S to twice
    that, when the kernel's SYN-ACK retransmission is answered); see docs/library.md.
    """

    def __init__(self, suites: Sequence[str] = ("x25519",),
                 aeads: Sequence[str] = ("aes-128-gcm",),
                 cache: ResumptionCache | None = None, defer_accept: bool = False) -> None:
        self.defer_accept = defer_accept
        self.config = TcpcryptConfig(suites=tuple(suites), aeads=tuple(aeads))
        self.cache = cache if cache is not None else ResumptionCache()
        self.rsa_keys = RsaKeyHolder()
        self.suites = suite_table(self.config, self.rsa_keys)  # built once, not per connection
        self.teps = list(self.suites)
        self.resumed_paths = ResumedPaths(self.config, self.suites, self.cache, system_random)
        self.accepted_paths = AcceptedPaths(self.config, self.suites, self.cache, system_random)
        self._keylog: KeyLog | None = None
        # TCPCRYPT_KEYLOG is read when the context is made (as `ssl` reads SSLKEYLOGFILE),
        # not on every connection
        self._keylog_path: str | None = os.environ.get(KEYLOG_VARIABLE) or None
        self._kernel_handle: KernelEno | None = None
        self._lock = threading.Lock()

    @property
    def kernel(self) -> KernelEno:
        """The kernel program's handle: the one of TCPCRYPT_BPF_DIR at the context's first
        use, kept (no environment read per connection)."""
        kernel = self._kernel_handle
        if kernel is None:
            kernel = self._kernel_handle = shared_kernel()
        return kernel

    def wrap_socket(self, sock: socket.socket, server_side: bool = False) -> object:
        """A client socket (before connect()) or a bound server socket (before listen())."""
        from tcpcrypt.library.sockets import wrap

        return wrap(self, sock, server_side)

    # --- steps shared by the blocking and the asyncio sockets -----------------------------
    def new_connection(self, active: bool, peer: Hashable | None) -> TcpcryptConnection:
        with self._lock:  # the cache is shared by threads
            return TcpcryptConnection(active=active, config=self.config, random=system_random,
                                      cache=self.cache, rsa_keys=self.rsa_keys, peer=peer,
                                      now=time.monotonic(), suites=self.suites)

    def prepare_active(self, sock: socket.socket, peer: Hashable) -> TcpcryptConnection:
        """Host A, before connect(): the core's SYN option goes into the kernel's record
        (a resumption's through tcpcrypt.resumed_path, the same bytes and state)."""
        with self._lock:  # the cache is shared by threads
            connection = self.resumed_paths.offer_resumption(peer, time.monotonic())
        # the caller (`wrap`, `aio.create_connection`) has a socket that has not connected
        if connection is not None:
            self.kernel.offer_record(sock, self.resumed_paths.kernel_record(connection))
            return connection
        connection = self.new_connection(True, peer)
        self.kernel.offer_record(sock, encode_active(connection.syn_option()))
        return connection

    def prepare_listener(self, sock: socket.socket) -> None:
        """Host B, before listen()."""
        try:
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        except OSError:
            pass
        else:
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                raise UsageError("ENO is answered from listen(): wrap the socket before "
                                 "calling listen(), then call listen() on the wrapped socket")
        self.kernel.listen(sock, self.teps)
        if self.defer_accept:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, DEFER_ACCEPT_S)

    def after_connect(self, sock: socket.socket, connection: TcpcryptConnection) -> None:
        """Host A, once connected: feed the kernel's view of the SYN-ACK to the core."""
        raw = self.kernel.negotiation_raw(sock)
        options = negotiated_options(raw) if raw is not None else None
        if options is not None:  # the common case, without decoding the whole record
            self._adopt_synack(connection, options[1])
            return
        record = decode_sock(raw) if raw is not None else None
        if record is None or record.state != "negotiated":
            connection.fall_back(_reason(record))
            return
        self._adopt_synack(connection, record.synack_option)

    def _adopt_synack(self, connection: TcpcryptConnection, synack_option: bytes) -> None:
        if connection._resuming is not None:
            with self._lock:  # the cache is shared by threads
                self.resumed_paths.adopt_synack(connection, synack_option)
        else:
            connection.on_synack(synack_option)
        if connection.state is ConnectionState.FALLBACK:
            # The kernel already put ENO on our ACK: B believes ENO succeeded. Never plain.
            connection.abort(f"eno-disagreement-{connection.reason}")

    def accepted(self, sock: socket.socket,
                 kernel: KernelEno | None = None) -> TcpcryptConnection:
        """Host B, an accepted connection: replay the kernel's negotiation in the core.
        `kernel`: the handle its listener was prepared with (a listener passes it, so an
        accept reads no environment variable), else the shared one."""
        raw = (kernel or self.kernel).negotiation_raw(sock)
        options = negotiated_options(raw) if raw is not None else None
        if options is not None:  # the common case, without decoding the whole record
            # a full key exchange (most connections): no cache involved, so no lock
            connection = self.accepted_paths.accept(*options, time.monotonic())
            if connection is not None:
                return connection
            with self._lock:  # the cache is shared by threads
                now = time.monotonic()
                resumed = self.resumed_paths.accept_resumption(*options, now)
                if resumed is not None:
                    return resumed
                connection = TcpcryptConnection(
                    active=False, config=self.config, random=system_random, cache=self.cache,
                    rsa_keys=self.rsa_keys, now=now, suites=self.suites)
                connection.adopt_kernel_negotiation(*options)
            return connection
        record = decode_sock(raw) if raw is not None else None
        connection = self.new_connection(False, None)
        if record is None:
            connection.fall_back("no-kernel-record")
        elif record.state == "error":
            connection.abort(record.reason or "kernel-error")
        else:  # not negotiated (that case was handled above)
            connection.fall_back(_reason(record))
        return connection

    def register_resumption(self, sock: socket.socket, connection: TcpcryptConnection,
                            where: tuple[int, int] | None = None) -> None:
        """Host B puts an established session's resumption identifiers in the kernel's table,
        keyed by the listener's port: those the core cached it under, of ss[i+1], the secret
        a resumed session will use (docs/protocol.md, "the resumption identifier").
        `where` is (listening port, netns cookie) when the caller knows them (a listener
        reads them once); otherwise they are read from `sock`."""
        secret, session_id = connection.secret, connection.session_id
        if secret is None or session_id is None:
            return
        resumable = connection.resumable  # ss[i+1] as the core cached it, ids derived
        a_id, b_id = ((resumable.a_resumption_id, resumable.b_resumption_id) if resumable
                      else secret.next().resumption_ids())
        port, netns = where if where is not None else listening_place(sock)
        self.kernel.add_resumption(port, session_id[0], a_id, b_id, netns=netns)

    def established(self, sock: socket.socket, connection: TcpcryptConnection,
                    server_side: bool) -> None:
        """Keys exist: B registers the session's resumption identifiers in the kernel's table
        (the core already cached it), and the key log gets its line."""
        self._established(sock, connection, server_side, None)

    def established_at(self, sock: socket.socket, connection: TcpcryptConnection,
                       where: tuple[int, int]) -> None:
        """`established` for host B whose listener knows (listening port, netns cookie)."""
        self._established(sock, connection, True, where)

    def established_unregistered(self, connection: TcpcryptConnection) -> None:
        """`established` for host B without the kernel registration: the caller makes it
        later with `register_resumption` (off the connection's critical path)."""
        self._established(None, connection, False, None)

    def _established(self, sock: socket.socket | None, connection: TcpcryptConnection,
                     server_side: bool, where: tuple[int, int] | None) -> None:
        secret, session_id = connection.secret, connection.session_id
        if secret is None or session_id is None:
            return
        if server_side and self.cache.capacity and sock is not None:
            self.register_resumption(sock, connection, where)
        path = self._keylog_path
        if path:
            with self._lock:
                if self._keylog is None:
                    self._keylog = KeyLog(Path(path))
                self._keylog.write(connection)


def listening_place(sock: socket.socket) -> tuple[int, int]:
    """(local port, netns cookie) of a socket: for an accepted one, its listener's."""
    return sock.getsockname()[1], netns_cookie(sock)


def _reason(record: Negotiation | None) -> str:
    if record is None:
        return "not-covered"
    return record.reason or record.state


def chosen_tep(record: Negotiation) -> int | None:
    """The TEP of B's SYN-ACK option (the last one), when there is one."""
    try:
        teps = parse_eno_option(record.synack_option).teps
    except Exception:
        return None
    return teps[-1].tep if teps else None


_default: TcpcryptContext | None = None


def default_context() -> TcpcryptContext:
    global _default
    if _default is None:
        _default = TcpcryptContext()
    return _default
