"""A single-threaded request/response server: reads one line, answers N bytes, closes.

Single-threaded on purpose: the load generator is sequential, and the server's CPU time is
then the main thread's, read with nanosecond resolution from /proc/<pid>/schedstat.
Run inside an emulated host: python -m testbed.apps.rr_server --port P [--tls MODE ...]
or [--tcpcrypt SUITE [--resumption] [--auth METHOD ...]] for the in-process tcpcrypt library,
with `--auth` an authentication method run over each session before its request is read.

Every protocol's listener defers accept() until the connection's first data arrived (Linux's
TCP_DEFER_ACCEPT; the library's `defer_accept`): the load generator's clients always speak
first (the request, a TLS ClientHello, tcpcrypt's Init1), so each connection wakes the server
once less, the same for every row. `--no-defer-accept` turns it off for all of them.
"""

from __future__ import annotations

import argparse
import socket
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from testbed.apps.protocols import library_context, server_context
from testbed.apps.session_auth import BATCH_WINDOW_MS, METHODS, ServerAuth


def answer_one(stream: Any, answer: bytes) -> None:
    """Read one request (up to its newline, or the peer's end) from `stream`; send `answer`."""
    request = b""
    while not request.endswith(b"\n"):
        chunk = stream.recv(4096)
        if not chunk:
            break
        request += chunk
    stream.sendall(answer)


DEFER_ACCEPT_S = 1  # the kernel's shortest wait for a client that sends nothing


def serve_library(port: int, suite: str, resumed: bool, response_bytes: int,
                  reuse_port: bool = False,
                  authenticate: Callable[[Any], object] | None = None,
                  defer_accept: bool = True) -> None:
    """The same exchange through the in-process tcpcrypt library (TCP-ENO in the kernel);
    `authenticate` (a `session_auth.ServerAuth`) runs on each connection before the request.
    A connection whose authentication fails is closed unanswered (the client reports it)."""
    from tcpcrypt.auth import AuthError
    from tcpcrypt.library import TcpcryptConnectionError

    context = library_context(suite, resumed, defer_accept)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("0.0.0.0", port))
    listener = context.wrap_socket(sock, server_side=True)
    listener.listen(128)
    answer = b"x" * response_bytes
    print("listening", flush=True)
    while True:
        try:
            stream, _ = listener.accept()
        except (OSError, TcpcryptConnectionError):
            continue
        try:
            with stream:
                stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if authenticate is not None:
                    authenticate(stream)
                answer_one(stream, answer)
        except (OSError, TcpcryptConnectionError, AuthError):
            continue


def serve(port: int, tls: str | None, cert: Path | None, key: Path | None,
          response_bytes: int, reuse_port: bool = False, defer_accept: bool = True) -> None:
    context = server_context(tls, cert, key) if tls and cert and key else None
    listener = socket.create_server(("0.0.0.0", port), backlog=128, reuse_port=reuse_port)
    if defer_accept:
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, DEFER_ACCEPT_S)
    answer = b"x" * response_bytes
    print("listening", flush=True)
    while True:
        connection, _ = listener.accept()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            stream = context.wrap_socket(connection, server_side=True) if context else connection
            with stream:
                answer_one(stream, answer)
        except (OSError, ssl.SSLError):
            continue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--tls", choices=["tls12-rsa", "tls13"])
    parser.add_argument("--cert", type=Path)
    parser.add_argument("--key", type=Path)
    parser.add_argument("--response-bytes", type=int, default=100)
    parser.add_argument("--reuse-port", action="store_true",
                        help="share the port with other servers (one per core)")
    parser.add_argument("--no-defer-accept", action="store_true",
                        help="accept connections before their first data (every protocol)")
    parser.add_argument("--tcpcrypt", metavar="SUITE", help="serve through the tcpcrypt library")
    parser.add_argument("--resumption", action="store_true",
                        help="with --tcpcrypt: keep sessions so that clients can resume")
    parser.add_argument("--auth", choices=METHODS,
                        help="with --tcpcrypt: authenticate each session ID before the request")
    parser.add_argument("--public-key-out", type=Path,
                        help="with --auth batch-sign: where to write the per-run public key")
    parser.add_argument("--batch-window-ms", type=float, default=BATCH_WINDOW_MS,
                        help="with --auth batch-sign: the batching window")
    args = parser.parse_args(argv)
    if args.tls and not (args.cert and args.key):
        parser.error("--tls needs --cert and --key")
    if args.auth and not args.tcpcrypt:
        parser.error("--auth needs --tcpcrypt")
    if args.auth == "batch-sign" and not args.public_key_out:
        parser.error("--auth batch-sign needs --public-key-out")
    if args.tcpcrypt:
        authenticate = (ServerAuth(args.auth, args.public_key_out, args.batch_window_ms)
                        if args.auth else None)
        serve_library(args.port, args.tcpcrypt, args.resumption, args.response_bytes,
                      args.reuse_port, authenticate, not args.no_defer_accept)
        return 0
    serve(args.port, args.tls, args.cert, args.key, args.response_bytes, args.reuse_port,
          not args.no_defer_accept)
    return 0


if __name__ == "__main__":
    sys.exit(main())
