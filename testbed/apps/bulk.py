"""Bulk transfer: a sender streams N bytes of seeded pseudo-random data, a receiver checks them.

The data is the AES-128-CTR keystream of a key derived from the seed (every byte differs from
the ones before, and the whole stream is reproducible from the seed and the size). Both ends
hold the whole stream in memory and hash it with SHA-256 outside the timed window, so that the
figure is the transport's and not the hash's; the receiver hashes exactly what it read.

Wire format: an 8-byte big-endian length; the receiver allocates its buffer (pages faulted
in) and answers one byte, "ready"; the data; the receiver's answer (its SHA-256 in hex and a
newline); both close. No half-close is needed, so the same programs run over TCP, TLS and
(unmodified, through tcpcryptd) tcpcrypt.

The receiver prints "listening", then one JSON object per connection: bytes, seconds from
"ready" to the last data byte, Mbit/s, sha256, its own CPU time in that window. The sender
prints one JSON object: bytes, sha256 of what it sent, seconds from "ready" until the last
send() returned and until the receiver's answer (which includes the receiver's hashing), its
own CPU time while sending, the receiver's sha256 as answered, and what limited its TCP
connection (`testbed.apps.tcp_info`: congestion control, RTTs, cwnd-limited share).
Run inside emulated hosts:
python -m testbed.apps.bulk receive --port P [--tls MODE --cert C --key K]
python -m testbed.apps.bulk send --host IP --port P --bytes N --seed S [--tls MODE]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import socket
import ssl
import struct
import sys
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from testbed.apps.protocols import client_context, library_context, server_context
from testbed.apps.tcp_info import sender_limits

CHUNK = 1024 * 1024  # bytes per send()/recv_into() call
HEADER = struct.Struct("!Q")
MAX_BYTES = 4 << 30  # both ends hold the stream in memory
TIMEOUT_S = 120.0
READY = b"R"  # the receiver's buffer is allocated: the sender starts its clock


def pattern(seed: int, size: int) -> bytes:
    """`size` bytes of the AES-128-CTR keystream keyed by `seed` (no two 16-byte blocks alike)."""
    key = hashlib.sha256(b"testbed bulk pattern" + seed.to_bytes(8, "big")).digest()[:16]
    encryptor = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    return encryptor.update(bytes(size)) + encryptor.finalize()


def pattern_sha256(seed: int, size: int) -> str:
    return hashlib.sha256(pattern(seed, size)).hexdigest()


def set_buffers(sock: socket.socket, size: int) -> None:
    """Socket buffers of `size` bytes (as root beyond the sysctl limits); 0: kernel autotuning."""
    if size <= 0:
        return
    for forced, plain in ((33, socket.SO_SNDBUF), (32, socket.SO_RCVBUF)):  # SO_*BUFFORCE
        try:
            sock.setsockopt(socket.SOL_SOCKET, forced, size)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, plain, size)


def _read_exactly(stream: socket.socket, view: memoryview) -> int:
    """Fill `view` from `stream`; the number of bytes read (short only at end of stream)."""
    done = 0
    while done < len(view):
        got = stream.recv_into(view[done:done + CHUNK])
        if not got:
            break
        done += got
    return done


def receive_one(stream: socket.socket) -> dict[str, object]:
    """Read one transfer from `stream`, answer with the SHA-256, return the report."""
    header = bytearray(HEADER.size)
    if _read_exactly(stream, memoryview(header)) != HEADER.size:
        raise ConnectionError("stream ended before the length header")
    (size,) = HEADER.unpack(header)
    if size > MAX_BYTES:
        raise ValueError(f"announced {size} bytes, more than {MAX_BYTES}")
    data = bytearray(size)
    data[::4096] = bytes(len(range(0, size, 4096)))  # fault the pages in before the clock
    stream.sendall(READY)
    cpu_start, start = time.process_time(), time.perf_counter()
    received = _read_exactly(stream, memoryview(data))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    digest = hashlib.sha256(memoryview(data)[:received]).hexdigest()
    stream.sendall(digest.encode() + b"\n")
    return {
        "announced": size,
        "bytes": received,
        "seconds": seconds,
        "mbps": received * 8 / seconds / 1e6 if seconds > 0 else 0.0,
        "sha256": digest,
        "cpu_s": cpu,
    }


def serve(port: int, tls: str | None, cert: Path | None, key: Path | None, buffers: int,
          tcpcrypt_suite: str | None = None) -> None:
    context = server_context(tls, cert, key) if tls and cert and key else None
    if tcpcrypt_suite:
        serve_library(port, tcpcrypt_suite, buffers)
        return
    listener = socket.create_server(("0.0.0.0", port), backlog=16)
    set_buffers(listener, buffers)  # inherited by accepted sockets, before the handshake
    print("listening", flush=True)
    while True:
        connection, _ = listener.accept()
        connection.settimeout(TIMEOUT_S)
        try:
            stream = context.wrap_socket(connection, server_side=True) if context else connection
            with stream:
                report = receive_one(stream)
        except (OSError, ssl.SSLError, ValueError) as error:
            report = {"error": f"{type(error).__name__}: {error}"}
        print(json.dumps(report), flush=True)


def serve_library(port: int, suite: str, buffers: int) -> None:
    """The receiver through the in-process tcpcrypt library (TCP-ENO in the kernel)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    set_buffers(sock, buffers)
    sock.bind(("0.0.0.0", port))
    listener = library_context(suite, False).wrap_socket(sock, server_side=True)
    listener.listen(16)
    print("listening", flush=True)
    while True:
        try:
            stream, _ = listener.accept()
            stream.settimeout(TIMEOUT_S)
            with stream:
                report = receive_one(stream)
                report["encrypted"] = stream.encrypted
        except (OSError, ValueError) as error:
            report = {"error": f"{type(error).__name__}: {error}"}
        print(json.dumps(report), flush=True)


def send(host: str, port: int, size: int, seed: int, tls: str | None,
         buffers: int, tcpcrypt_suite: str | None = None) -> dict[str, object]:
    data = pattern(seed, size)
    digest = hashlib.sha256(data).hexdigest()
    view = memoryview(data)
    connect_start = time.perf_counter()
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    set_buffers(raw, buffers)
    raw.settimeout(TIMEOUT_S)
    stream: Any
    if tcpcrypt_suite:
        stream = library_context(tcpcrypt_suite, False).wrap_socket(raw)
        stream.connect((host, port))
    else:
        raw.connect((host, port))
        stream = client_context(tls).wrap_socket(raw) if tls else raw
    with stream:
        stream.sendall(HEADER.pack(size))
        if stream.recv(1) != READY:
            raise ConnectionError("the receiver did not get ready")
        cpu_start, start = time.process_time(), time.perf_counter()
        for offset in range(0, size, CHUNK):
            stream.sendall(view[offset:offset + CHUNK])
        sent_cpu, sent = time.process_time() - cpu_start, time.perf_counter() - start
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = stream.recv(128)
            if not chunk:
                break
            answer += chunk
        seconds, total = time.perf_counter() - start, time.perf_counter() - connect_start
        limits = sender_limits(raw if tcpcrypt_suite or not tls else stream)
        with contextlib.suppress(OSError):
            stream.close()
    return {
        "bytes": size,
        "sha256": digest,
        "seconds": seconds,
        "send_seconds": sent,
        "total_seconds": total,
        "cpu_s": sent_cpu,
        "peer_sha256": answer.decode(errors="replace").strip(),
        "encrypted": bool(tls) or bool(getattr(stream, "encrypted", False)),
        "tcp": limits,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="role", required=True)
    receiver = sub.add_parser("receive", help="accept transfers, report each as one JSON line")
    receiver.add_argument("--port", type=int, default=8000)
    receiver.add_argument("--tls", choices=["tls12-rsa", "tls13"])
    receiver.add_argument("--cert", type=Path)
    receiver.add_argument("--key", type=Path)
    receiver.add_argument("--buffers", type=int, default=0, help="socket buffer bytes (0: auto)")
    receiver.add_argument("--tcpcrypt", metavar="SUITE", help="through the tcpcrypt library")
    sender = sub.add_parser("send", help="send one transfer, print one JSON object")
    sender.add_argument("--host", required=True)
    sender.add_argument("--port", type=int, default=8000)
    sender.add_argument("--bytes", type=int, required=True)
    sender.add_argument("--seed", type=int, default=1)
    sender.add_argument("--tls", choices=["tls12-rsa", "tls13"])
    sender.add_argument("--buffers", type=int, default=0, help="socket buffer bytes (0: auto)")
    sender.add_argument("--tcpcrypt", metavar="SUITE", help="through the tcpcrypt library")
    args = parser.parse_args(argv)
    if args.role == "receive":
        if args.tls and not (args.cert and args.key):
            parser.error("--tls needs --cert and --key")
        serve(args.port, args.tls, args.cert, args.key, args.buffers, args.tcpcrypt)
        return 0
    if not 0 < args.bytes <= MAX_BYTES:
        parser.error(f"--bytes must be in 1..{MAX_BYTES}")
    print(json.dumps(send(args.host, args.port, args.bytes, args.seed, args.tls, args.buffers,
                          args.tcpcrypt)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
