"""A test peer run inside a network namespace (python peer.py COMMAND ...); prints one JSON line
per connection, then exits. Commands:

    lib-server PORT COUNT [SUITES]     library server: read a line, answer "echo:" + line
    lib-client HOST PORT COUNT [SUITES] library client, one context for all COUNT connections
    plain-server PORT COUNT            plain TCP server, same exchange
    plain-client HOST PORT COUNT       plain TCP client
    raw-bad-client HOST PORT           kernel opt-in as A, then garbage instead of Init1
    raw-silent-client HOST PORT        kernel opt-in as A, then close without sending anything
    simultaneous LOCAL_PORT HOST PORT  opt in as A, bind, connect to a peer doing the same
    raw-listen PORT COUNT TEP A_ID B_ID kernel opt-in listener with one resumption entry
    raw-offer HOST PORT SYN_HEX [fastopen]  kernel opt-in as A with exactly this SYN option
    (PEER_DEFER_ACCEPT=1: library servers defer accept() until the first data;
     PEER_GREET=1: servers send "hello\n" first, clients read it before their line)
    flood HOST PORT SECONDS CLIENT_IP LIMIT  spoofed SYNs (ENO with b=1, resumption-shaped and odd
                                       options) from other addresses, and spoofed ACK/RST
                                       segments with ENO from CLIENT_IP's ports
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
DEFER_ACCEPT = bool(os.environ.get("PEER_DEFER_ACCEPT"))
GREET = bool(os.environ.get("PEER_GREET"))


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
    context = tcpcrypt.TcpcryptContext(suites=suites, defer_accept=DEFER_ACCEPT)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", port))
    listener = context.wrap_socket(sock, server_side=True)
    listener.listen(4096)
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
            if GREET:
                conn.sendall(b"hello\n")
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
            greeting = read_line(conn).decode() if GREET else None
            conn.sendall(b"secret-line-%d\n" % index)
            answer = read_line(conn)
            emit(sessid=(conn.getsessid() or b"").hex() or None, resumed=conn.resumed,
                 encrypted=conn.encrypted, reason=conn.fallback_reason,
                 answer=answer.decode(), kernel=kernel, greeting=greeting)
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
        greeting = read_line(conn).decode() if GREET else None
        conn.sendall(b"secret-line-%d\n" % index)
        emit(answer=read_line(conn).decode(errors="replace"), kernel=record(conn),
             greeting=greeting)
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


def raw_silent_client(host: str, port: int) -> None:
    sock = socket.socket()
    sock.settimeout(TIMEOUT)
    with KernelEno() as kernel:
        kernel.offer(sock, bytes([69, 3, TEP_TCPCRYPT_ECDHE_CURVE25519]))
    sock.connect((host, port))
    kernel_record = record(sock)
    sock.shutdown(socket.SHUT_WR)  # nothing sent: a FIN instead of Init1
    try:
        answer = sock.recv(100)
        emit(kernel=kernel_record, answer=answer.hex())
    except ConnectionResetError:
        emit(kernel=kernel_record, reset=True)
    sock.close()


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


def flood(host: str, port: int, seconds: float, client_ip: str, limit: int) -> None:
    import random

    from packets.ipv4 import IPv4Header
    from packets.tcp import build_packet
    from packets.tcp_options import TcpOption

    rng = random.Random(7)
    options = [bytes([69, 4, 0x01, 0x23]), bytes([69, 12, 0xA3]) + bytes(9),
               bytes([69, 3, 0x23]), bytes([69, 5, 0x21, 0x22, 0x23]), bytes([69, 2])]
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    destination = socket.inet_aton(host)
    sent, index = 0, 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and index < limit:
        index += 1
        option = options[index % len(options)]
        if index % 2:
            source, flags = socket.inet_aton(f"10.201.0.{rng.randrange(100, 250)}"), 0x02
        else:  # ACK or RST from the real client's address, any port, any sequence number
            source, flags = socket.inet_aton(client_ip), rng.choice((0x10, 0x04, 0x14))
        header = IPv4Header(20, 0, 0, rng.randrange(65536), 0x4000, 64, 6, 0, source,
                            destination)
        packet = build_packet(header, src_port=rng.randrange(1024, 65535), dst_port=port,
                              seq=rng.randrange(2**32), ack=rng.randrange(2**32), flags=flags,
                              window=65535, options=[TcpOption(69, option)])
        raw.sendto(packet, (host, 0))
        sent += 1
    emit(sent=sent)


def aio_server(port: int, count: int) -> None:
    import asyncio

    from tcpcrypt.library import aio

    async def run() -> None:
        done = asyncio.Event()
        served = 0

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal served
            line = await reader.readline()
            writer.write(b"echo:" + line)
            await writer.drain()
            connection = writer.get_extra_info("tcpcrypt")
            emit(sessid=(connection.session_id or b"").hex() or None,
                 resumed=connection.resumed, line=line.decode())
            writer.close()
            served += 1
            if served == count:
                done.set()

        server = await aio.start_server(handle, "0.0.0.0", port)
        emit(listening=True)
        await done.wait()
        server.close()

    asyncio.run(run())


def aio_client(host: str, port: int, count: int) -> None:
    import asyncio

    from tcpcrypt.library import aio

    async def run() -> None:
        context = tcpcrypt.TcpcryptContext()
        for index in range(count):
            reader, writer = await aio.open_connection(host, port, context)
            writer.write(b"secret-line-%d\n" % index)
            answer = await reader.readline()
            connection = writer.get_extra_info("tcpcrypt")
            emit(sessid=(connection.session_id or b"").hex() or None,
                 resumed=connection.resumed, answer=answer.decode())
            writer.close()

    asyncio.run(run())


def raw_listen(port: int, count: int, tep: int, a_id: str, b_id: str) -> None:
    """Kernel opt-in only: a listener preferring `tep`, with one resumption entry."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", port))
    with KernelEno() as kernel:
        kernel.listen(sock, [tep])
        kernel.add_resumption(port, tep, bytes.fromhex(a_id), bytes.fromhex(b_id))
    sock.listen(16)
    emit(listening=True)
    for _ in range(count):
        conn, _ = sock.accept()
        emit(kernel=record(conn))
        conn.close()


def raw_offer(host: str, port: int, syn_hex: str, fastopen: bool = False) -> None:
    sock = socket.socket()
    sock.settimeout(TIMEOUT)
    if fastopen:
        sock.setsockopt(socket.IPPROTO_TCP, 30, 1)  # TCP_FASTOPEN_CONNECT
    with KernelEno() as kernel:
        kernel.offer(sock, bytes.fromhex(syn_hex))
    sock.connect((host, port))
    if fastopen:
        sock.sendall(b"x")  # the SYN goes out now
        time.sleep(0.2)
    emit(kernel=record(sock))
    sock.close()


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
    elif command == "raw-silent-client":
        raw_silent_client(args[0], int(args[1]))
    elif command == "aio-server":
        aio_server(int(args[0]), int(args[1]))
    elif command == "aio-client":
        aio_client(args[0], int(args[1]), int(args[2]))
    elif command == "raw-listen":
        raw_listen(int(args[0]), int(args[1]), int(args[2], 16), args[3], args[4])
    elif command == "raw-offer":
        raw_offer(args[0], int(args[1]), args[2], len(args) > 3 and args[3] == "fastopen")
    elif command == "flood":
        flood(args[0], int(args[1]), float(args[2]), args[3], int(args[4]))
    elif command == "simultaneous":
        simultaneous(int(args[0]), args[1], int(args[2]))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
