"""The two-way transfer of the middlebox-matrix and access-population experiments, run inside
emulated hosts.

The server greets at once (so the client can time the first byte, handshakes included), reads
"N\\n" and N bytes, answers with their SHA-256 and N bytes of its own, and closes; one
connection a thread. The client reports, per connection, one JSON line of what the
application saw (no judgement: the experiment compares the digests with the data it knows).
Data is seeded: the client uploads `data(seed, N)`, the server sends `data(seed + 1, N)`.

    python -m testbed.apps.exchange serve --port 8000 --seed 1 [--tls --cert C --key K]
    python -m testbed.apps.exchange fetch --host IP --port 8000 --seed 1 --bytes N

`--tcpcrypt` on both runs the exchange through the in-process tcpcrypt library (TCP-ENO in the
kernel); the client then reports `encrypted` and `fallback_reason` per connection.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import random
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

GREETING = b"+"
DEFAULT_PORT = 8000


def data(seed: int, size: int) -> bytes:
    """The seeded bytes one side sends."""
    return random.Random(seed).randbytes(size)


def _recv_exact(stream: socket.socket, size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = stream.recv(min(1 << 20, size - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


MAX_BYTES = 1 << 30


def _answer_one(connection: Any, seed: int, context: ssl.SSLContext | None) -> None:
    """One exchange on an accepted connection; errors end it quietly (the client reports)."""
    try:
        stream = context.wrap_socket(connection, server_side=True) if context else connection
        with stream:
            stream.sendall(GREETING)
            line = b""
            while not line.endswith(b"\n") and len(line) < 32:
                chunk = stream.recv(1)
                if not chunk:
                    break
                line += chunk
            size = int(line.strip() or b"0")
            if not 0 <= size <= MAX_BYTES:
                return
            upload = _recv_exact(stream, size)
            stream.sendall(hashlib.sha256(upload).digest() + _server_data(seed, size))
    except (OSError, ssl.SSLError, ValueError):
        connection.close()


@functools.lru_cache(maxsize=4)
def _server_data(seed: int, size: int) -> bytes:
    """What the server sends after the digest (the same for every client of one size)."""
    return data(seed + 1, size)


def serve_library(port: int, seed: int, idle_s: float, backlog: int = 256) -> None:
    """`serve` through the tcpcrypt library: the key exchange runs in accept()."""
    from tcpcrypt.library import TcpcryptConnectionError
    from testbed.apps.protocols import library_context

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", port))
    listener = library_context("x25519", False).wrap_socket(sock, server_side=True)
    listener.listen(backlog)
    print("listening", flush=True)
    while True:
        try:
            connection, _ = listener.accept()
        except (OSError, TcpcryptConnectionError):
            continue
        connection.settimeout(idle_s)
        threading.Thread(target=_answer_one, args=(connection, seed, None),
                         daemon=True).start()


def serve(port: int, seed: int, tls: bool, cert: Path | None, key: Path | None,
          idle_s: float, backlog: int = 256) -> None:
    """Greet, read "N\\n" and N bytes, answer their SHA-256 and N bytes; a thread per
    connection, so that a population of clients can transfer at once."""
    context = None
    if tls and cert and key:
        from testbed.apps.protocols import server_context

        context = server_context("tls13", cert, key)
    listener = socket.create_server(("0.0.0.0", port), backlog=backlog)
    print("listening", flush=True)
    while True:
        connection, _ = listener.accept()
        connection.settimeout(idle_s)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_answer_one, args=(connection, seed, context),
                         daemon=True).start()


def fetch(host: str, port: int, seed: int, size: int, tls: bool, idle_s: float,
          tcpcrypt: bool = False) -> dict[str, Any]:
    """One connection; what the application saw (no judgement on the digests)."""
    result: dict[str, Any] = {"completed": False, "error": None}
    started = time.perf_counter()
    try:
        raw: Any
        if tcpcrypt:
            import tcpcrypt as library
            from testbed.apps.protocols import library_context

            raw = library.create_connection((host, port), timeout=idle_s,
                                            context=library_context("x25519", False))
            result["encrypted"] = raw.encrypted
            result["fallback_reason"] = raw.fallback_reason
        else:
            raw = socket.create_connection((host, port), timeout=idle_s)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        result["connect_ms"] = (time.perf_counter() - started) * 1000
        stream: socket.socket = raw
        if tls:
            from testbed.apps.protocols import client_context

            stream = client_context("tls13").wrap_socket(raw)
        with stream:
            greeting = stream.recv(1)
            result["latency_ms"] = (time.perf_counter() - started) * 1000
            if greeting != GREETING:
                raise ConnectionError(f"bad greeting {greeting!r}")
            stream.sendall(f"{size}\n".encode() + data(seed, size))
            echoed = _recv_exact(stream, 32)
            download = _recv_exact(stream, size)
            extra = stream.recv(1)  # the server closes: EOF, or trailing garbage
            result["upload_sha256"] = echoed.hex()
            result["download_sha256"] = hashlib.sha256(download).hexdigest()
            result["download_bytes"] = len(download)
            result["completed"] = len(echoed) == 32 and len(download) == size and not extra
            if not result["completed"]:
                result["error"] = f"short or long transfer: {len(download)} of {size} bytes"
    except (OSError, ssl.SSLError, ConnectionError) as error:
        result["error"] = f"{type(error).__name__}: {error}"
    result["elapsed_ms"] = (time.perf_counter() - started) * 1000
    return result


def run_fetch(host: Any, server_ip: str, port: int, seed: int, size: int, count: int,
              tls: bool, timeout_s: float,
              tcpcrypt: bool = False) -> tuple[list[dict[str, Any]], str | None]:
    """Run `fetch` inside an emulated host (the experiments' side): each connection's report,
    as they finished, and a problem text if the client failed or hung past `timeout_s`."""
    args = [sys.executable, "-m", "testbed.apps.exchange", "fetch", "--host", server_ip,
            "--port", str(port), "--seed", str(seed), "--bytes", str(size),
            "--connections", str(count), "--idle-s", str(min(20.0, timeout_s))]
    if tls:
        args.append("--tls")
    if tcpcrypt:
        args.append("--tcpcrypt")
    process: subprocess.Popen[str] = host.popen(args, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, text=True)
    problem = None
    try:
        out, error = process.communicate(timeout=timeout_s)
        if process.returncode != 0:
            problem = f"client exited {process.returncode}: {error.strip()[-300:]}"
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
        problem = f"hung: killed after the timeout of {timeout_s:g} s"
    results = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return results, problem


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="two-way transfer with digests (middlebox-matrix)")
    parser.add_argument("role", choices=("serve", "fetch"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bytes", type=int, default=1_000_000)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--tcpcrypt", action="store_true", help="through the tcpcrypt library")
    parser.add_argument("--cert", type=Path)
    parser.add_argument("--key", type=Path)
    parser.add_argument("--idle-s", type=float, default=20.0)
    args = parser.parse_args(argv)
    if args.role == "serve":
        if args.tcpcrypt:
            serve_library(args.port, args.seed, args.idle_s)
            return 0
        serve(args.port, args.seed, args.tls, args.cert, args.key, args.idle_s)
        return 0
    results = []
    for _ in range(args.connections):
        results.append(fetch(args.host, args.port, args.seed, args.bytes, args.tls, args.idle_s,
                             args.tcpcrypt))
        print(json.dumps(results[-1]), flush=True)  # one line per connection, as they finish
    return 0


if __name__ == "__main__":
    sys.exit(main())
