"""Who owns a TCP socket, from the kernel's table (/proc/net/tcp and tcp6) of this namespace.

The control socket answers an unprivileged user's `lookup` only for a connection whose socket
that user owns; the kernel's socket table says which user that is. IPv4-mapped IPv6 addresses
(a dual-stack server's sockets) compare equal to their IPv4 form.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

Address = tuple[str, int]
TABLES = (Path("/proc/self/net/tcp"), Path("/proc/self/net/tcp6"))


def normal_host(host: str) -> str:
    """An address as the daemon records it: IPv4-mapped IPv6 becomes IPv4."""
    try:
        parsed = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(parsed)


def _decode(field: str) -> Address:
    """'0100007F:1F40' -> ('127.0.0.1', 8000): words in host byte order, port in hex."""
    hex_address, _, hex_port = field.partition(":")
    words = [int(hex_address[i:i + 8], 16) for i in range(0, len(hex_address), 8)]
    raw = b"".join(struct.pack("=I", word) for word in words)
    host = socket.inet_ntoa(raw) if len(raw) == 4 else socket.inet_ntop(socket.AF_INET6, raw)
    return normal_host(host), int(hex_port, 16)


def _entries() -> Iterator[tuple[Address, Address, int]]:
    for table in TABLES:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 7:
                yield _decode(fields[1]), _decode(fields[2]), int(fields[7])


def socket_owner(local: Address, remote: Address) -> int | None:
    """The uid owning the TCP socket with this local and remote address, or None if none."""
    wanted = ((normal_host(local[0]), local[1]), (normal_host(remote[0]), remote[1]))
    for entry_local, entry_remote, uid in _entries():
        if (entry_local, entry_remote) == wanted:
            return uid
    return None
