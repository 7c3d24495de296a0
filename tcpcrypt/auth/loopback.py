"""Real loopback TCP with tcpcrypt on it, and a man in the middle: the harness of the security
tests and of the `auth` experiments.

`LoopbackServer` accepts connections on 127.0.0.1, runs the in-band tcpcrypt handshake
(`tcpcrypt.inband`) and hands each encrypted connection to a handler in its own thread,
recording what the handler returned or raised. `MitmRelay` is the attacker the paper's
authentication is meant to defeat: it terminates tcpcrypt on each side (one session with the
client, another with the server, so two different session IDs) and copies the plaintext
between them, including every authentication message.
"""

from __future__ import annotations

import contextlib
import queue
import select
import socket
import threading
import time
from collections.abc import Callable

from tcpcrypt.inband import InbandTcpcryptSocket, inband_accept, inband_connect

Address = tuple[str, int]
Handler = Callable[[InbandTcpcryptSocket], object]
_RELAY_READ = 1 << 20


def connect_inband(address: Address, timeout: float = 10.0) -> InbandTcpcryptSocket:
    """A client connection to `address` with tcpcrypt keys established."""
    sock = socket.create_connection(address, timeout=timeout)
    try:
        return inband_connect(sock)
    except BaseException:
        sock.close()
        raise


class _Listener:
    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.address: Address = self.listener.getsockname()[:2]
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed
            thread = threading.Thread(target=self._serve_one, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve_one(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self._acceptor.join(5)
        for thread in list(self._threads):
            thread.join(5)


class LoopbackServer(_Listener):
    """Each accepted connection: in-band tcpcrypt, then `handler`; outcomes go to `results`."""

    def __init__(self, handler: Handler, timeout: float = 10.0) -> None:
        self.handler = handler
        self.timeout = timeout
        self.results: queue.Queue[object] = queue.Queue()
        self.cpu_ns: list[int] = []  # per connection: this thread's CPU, handshake + handler
        super().__init__()

    def _serve_one(self, conn: socket.socket) -> None:
        conn.settimeout(self.timeout)
        started = time.thread_time_ns()
        try:
            wrapped = inband_accept(conn)
            self.results.put(self.handler(wrapped))
        except Exception as error:
            self.results.put(error)
        finally:
            self.cpu_ns.append(time.thread_time_ns() - started)
            conn.close()

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MitmRelay(_Listener):
    """Terminates tcpcrypt with each client and, separately, with `target`; relays plaintext."""

    def __init__(self, target: Address, timeout: float = 10.0) -> None:
        self.target = target
        self.timeout = timeout
        self.session_pairs: list[tuple[bytes | None, bytes | None]] = []  # (client's, server's)
        self.relayed = {"to-server": 0, "to-client": 0}
        self._lock = threading.Lock()
        super().__init__()

    def _serve_one(self, conn: socket.socket) -> None:
        conn.settimeout(self.timeout)
        upstream: socket.socket | None = None
        try:
            client_side = inband_accept(conn)
            upstream = socket.create_connection(self.target, timeout=self.timeout)
            server_side = inband_connect(upstream)
            with self._lock:
                self.session_pairs.append((client_side.getsessid(), server_side.getsessid()))
            self._relay(client_side, server_side)
        except OSError:
            pass  # either end went away: so does the relay
        finally:
            conn.close()
            if upstream is not None:
                upstream.close()

    def _relay(self, client_side: InbandTcpcryptSocket, server_side: InbandTcpcryptSocket) -> None:
        routes = {client_side.fileno(): (client_side, server_side, "to-server"),
                  server_side.fileno(): (server_side, client_side, "to-client")}
        while True:
            # plaintext already decrypted inside a wrapper (e.g. a frame that came with Init2)
            # never makes its descriptor readable again: relay it before waiting
            readable = [fileno for fileno, (source, _, _) in routes.items() if source.pending()]
            if not readable:
                readable, _, _ = select.select(list(routes), [], [], self.timeout)
            if not readable:
                return
            for fileno in readable:
                source, sink, direction = routes[fileno]
                data = source.recv(_RELAY_READ)
                if not data:
                    return
                with self._lock:
                    self.relayed[direction] += len(data)
                sink.sendall(data)

    def __enter__(self) -> MitmRelay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
