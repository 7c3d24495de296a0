"""A test peer run inside a network namespace (python peer.py COMMAND ...); prints one JSON line
per connection, then exits. Commands:

    lib-server PORT COUNT [SUITES]     library server: read a line, answer "echo:" + line
    lib-client HOST PORT COUNT [SUITES] library client, one context for all COUNT connections
    plain-server PORT COUNT            plain TCP server, same exchange
    plain-client HOST PORT COUNT       plain TCP client
    raw-bad-client HOST PORT           kernel opt-in as A, then garbage instead of Init1
    simultaneous LOCAL_PORT HOST PORT  opt in as A, bind, connect to a peer doing the same
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from typing import Any

import tcpcrypt
from tcpcrypt.constants import TEP_TCPCRYPT_ECDHE_CURVE25519
from tcpcrypt.kernel import KernelEno
from tcpcrypt.library import TcpcryptConnectionError

TIMEOUT = float(os.environ.get("PEER_TIMEOUT", "10"))


def record(sock: Any) -> dict[str, Any] | None:
    with KernelEno() as kernel:
        found = kernel.negotiation(sock.fileno())
    if found is None:
        return None
    return {"state": found.state, "role": found.role, "reason": found.reason,
            "syn": found.syn_option.hex(), "synack": found.synack_option.hex(),
            "resumed": found.resumed}


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def read_line(stream: Any) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = stream.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def lib_server(port: int, count: int, suites: list[str]) -> None:
    context = tcpcrypt.TcpcryptContext(suites=suites)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", port))
    listener = context.wrap_socket(sock, server_side=True)
    listener.listen(64)
    emit(listening=True)
    for _ in range(count):
        try:
            conn, _ = listener.accept()
        except TcpcryptConnectionError as error:
            emit(error=error.reason)
            continue
        conn.settimeout(TIMEOUT)
        kernel = record(conn)
        try:
            line = read_line(conn)
            conn.sendall(b"echo:" + line)
            emit(sessid=(conn.getsessid() or b"").hex() or None, resumed=conn.resumed,
                 encrypted=conn.encrypted, reason=conn.fallback_reason,
                 line=line.decode(errors="replace"), kernel=kernel)
        except TcpcryptConnectionError as error:
            emit(error=error.reason, kernel=kernel)
        except OSError as error:
            emit(oserror=type(error).__name__, reason=conn.fallback_reason, kernel=kernel)
        conn.close()


def lib_client(host: str, port: int, count: int, suites: list[str]) -> None:
    context = tcpcrypt.TcpcryptContext(suites=suites)
    for index in range(count):
        try:
            conn = tcpcrypt.create_connection((host, port), timeout=TIMEOUT, context=context)
            kernel = record(conn)
            conn.sendall(b"secret-line-%d\n" % index)
            answer = read_line(conn)
            emit(sessid=(conn.getsessid() or b"").hex() or None, resumed=conn.resumed,
                 encrypted=conn.encrypted, reason=conn.fallback_reason,
                 answer=answer.decode(), kernel=kernel)
            conn.close()
        except TcpcryptConnectionError as error:
            emit(error=error.reason)
        except OSError as error:
            emit(oserror=type(error).__name__)


def plain_server(port: int, count: int) -> None:
    listener = socket.create_server(("0.0.0.0", port), reuse_port=False)
    emit(listening=True)
    for _ in range(count):
        conn, _ = listener.accept()
        conn.settimeout(TIMEOUT)
        line = read_line(conn)
        conn.sendall(b"echo:" + line)
        emit(line=line.decode(errors="replace"), kernel=record(conn))
        conn.close()


def plain_client(host: str, port: int, count: int) -> None:
    for index in range(count):
        conn = socket.create_connection((host, port), timeout=TIMEOUT)
        conn.sendall(b"secret-line-%d\n" % index)
        emit(answer=read_line(conn).decode(errors="replace"), kernel=record(conn))
        conn.close()


def raw_bad_client(host: str, port: int) -> None:
    sock = socket.socket()
    sock.settimeout(TIMEOUT)
    with KernelEno() as kernel:
        kernel.offer(sock, bytes([69, 3, TEP_TCPCRYPT_ECDHE_CURVE25519]))
    sock.connect((host, port))
    kernel_record = record(sock)
    sock.sendall(b"\x00" * 80)  # not an Init1
    try:
        answer = sock.recv(100)
        emit(kernel=kernel_record, answer=answer.hex())
    except ConnectionResetError:
        emit(kernel=kernel_record, reset=True)


def simultaneous(local_port: int, host: str, port: int) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", local_port))
    sock.settimeout(TIMEOUT)
    with KernelEno() as kernel:
        kernel.offer(sock, bytes([69, 3, 0x21]))
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            sock.connect((host, port))
            break
        except (ConnectionRefusedError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    sock.sendall(b"hello\n")
    emit(kernel=record(sock), answer=read_line(sock).decode(errors="replace"))


def main(argv: list[str]) -> None:
    command, args = argv[0], argv[1:]
    if command == "lib-server":
        lib_server(int(args[0]), int(args[1]), args[2].split(",") if len(args) > 2 else
                   ["x25519"])
    elif command == "lib-client":
        lib_client(args[0], int(args[1]), int(args[2]),
                   args[3].split(",") if len(args) > 3 else ["x25519"])
    elif command == "plain-server":
        plain_server(int(args[0]), int(args[1]))
    elif command == "plain-client":
        plain_client(args[0], int(args[1]), int(args[2]))
    elif command == "raw-bad-client":
        raw_bad_client(args[0], int(args[1]))
    elif command == "simultaneous":
        simultaneous(int(args[0]), args[1], int(args[2]))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
