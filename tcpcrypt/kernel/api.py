"""`KernelEno`: userspace's handle on the loaded kernel program, through its pinned maps.

* `offer(sock, syn_option)`: before connect(), the socket becomes host A and its SYN carries
  exactly `syn_option` (a whole ENO option, e.g. from `EnoEndpoint.syn_option()`);
  `offer_record` is the same for an encoded record, without re-checking the socket.
* `listen(sock, teps)`: before listen(), the listener answers ENO as host B, choosing the first
  of `teps` that A offered (unless A resumes, below).
* `add_resumption(port, tep, a_id, b_id)`: B's single-use lookup table: a SYN to `port` naming
  A's identifier `a_id` for `tep` is answered with `b_id` (the entry is consumed then).
* `negotiation(sock)`: the socket's record (`records.Negotiation`), or None when the socket
  never took part (plain TCP).
* `set_netns_enabled(enabled)`: ENO on or off for the calling process's network namespace.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from tcpcrypt.errors import UsageError
from tcpcrypt.kernel import bpf_syscall as bpf
from tcpcrypt.kernel import records
from tcpcrypt.kernel.loader import KernelUnavailable, pin_dir

SO_NETNS_COOKIE: Final = 71


def netns_cookie(sock: socket.socket | None = None) -> int:
    """The cookie of the socket's (or the calling thread's) network namespace."""
    if sock is not None:
        return int.from_bytes(sock.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8),
                              "little")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        return netns_cookie(probe)


_FD_KEY: Final = struct.Struct("=i")
_SOCK_RECORD_SIZE: Final = records.SOCK_FORMAT.size
_TCP_CLOSE: Final = 7  # tcp_info's tcpi_state of a socket that never connected (or closed)


def before_connect(sock: socket.socket) -> bool:
    """Whether the TCP socket has not started connecting (nor listening): its SYN, if any,
    is still to come. One getsockopt (the first byte of TCP_INFO, the socket's TCP state)
    instead of a getpeername() that raises on the very sockets this is asked about."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == _TCP_CLOSE


def _fd_key(sock: socket.socket | int) -> bytes:
    fd = sock if isinstance(sock, int) else sock.fileno()
    if fd < 0:
        raise UsageError("the socket is closed")
    return _FD_KEY.pack(fd)


class KernelEno:
    """Opened pinned maps of one loaded program (`pin_dir()` unless given)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or pin_dir()
        self._fds: dict[str, int] = {}
        self._lookup_lock = threading.Lock()
        try:
            for name in records_map_names():
                self._fds[name] = bpf.obj_get(str(self.directory / "maps" / name))
        except bpf.BpfError as error:
            self.close()
            if error.errno == errno.ENOENT:
                raise KernelUnavailable(
                    f"the tcpcrypt kernel program is not loaded ({self.directory}): "
                    "run `tcpcrypt kernel load` as root") from None
            raise KernelUnavailable(f"cannot open the kernel program's maps: {error}") from None
        self._sock_lookup = bpf.Lookup(self._fds["eno_sock"], _FD_KEY.size,
                                       records.SOCK_FORMAT.size)
        self._sock_map = self._fds["eno_sock"]
        self._native_lookup = bpf.native_lookup()

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def __enter__(self) -> KernelEno:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- per socket -----------------------------------------------------------------------
    def offer(self, sock: socket.socket, syn_option: bytes) -> None:
        """Host A: the socket's SYN will carry `syn_option`. Call before connect()."""
        if sock.type != socket.SOCK_STREAM:
            raise UsageError("ENO needs a TCP socket")
        if not before_connect(sock):
            raise UsageError("ENO rides on the SYN: opt in before connect(), not after")
        bpf.update(self._fds["eno_sock"], _fd_key(sock), records.encode_active(syn_option))

    def offer_record(self, sock: socket.socket, record: bytes) -> None:
        """`offer` of a SYN option already encoded (`records.encode_active`), for a caller
        that knows `sock` is a TCP socket that has not connected (the library checks it when
        the socket is wrapped, and its connect() follows at once, failing on a socket that
        connected meanwhile): one bpf(2) call, no check."""
        bpf.update(self._fds["eno_sock"], _fd_key(sock), record)

    def listen(self, sock: socket.socket, teps: Sequence[int], draft: bool = False) -> None:
        """Host B: the listener answers ENO with the first of `teps` A offered. Before listen().
        `draft`: the drafts' wire profile (kind 253 with ExID 0x454E, no b bit)."""
        if sock.type != socket.SOCK_STREAM:
            raise UsageError("ENO needs a TCP socket")
        bpf.update(self._fds["eno_sock"], _fd_key(sock), records.encode_listener(teps, draft))

    def negotiation(self, sock: socket.socket | int) -> records.Negotiation | None:
        raw = self.negotiation_raw(sock)
        return records.decode_sock(raw) if raw is not None else None

    def negotiation_raw(self, sock: socket.socket | int) -> bytes | None:
        """The socket's record as the kernel keeps it (`records.SOCK_FORMAT`), or None: one
        bpf(2) call (what a server does on every accept): in C when it is built, else
        through buffers made once."""
        fd = sock if isinstance(sock, int) else sock.fileno()
        if fd < 0:
            raise UsageError("the socket is closed")
        native = self._native_lookup
        if native is not None:  # no shared buffers: no lock
            try:
                return native(self._sock_map, _FD_KEY.pack(fd), _SOCK_RECORD_SIZE)
            except OSError as error:
                raise bpf.refused(error, "map lookup") from None
        with self._lookup_lock:
            return self._sock_lookup(_FD_KEY.pack(fd))

    def forget(self, sock: socket.socket | int) -> None:
        """Drop the socket's record (the kernel drops it anyway when the socket closes)."""
        bpf.delete(self._fds["eno_sock"], _fd_key(sock))

    # --- B's resumption table -------------------------------------------------------------
    def add_resumption(self, port: int, tep: int, a_id: bytes, b_id: bytes,
                       netns: int | None = None) -> None:
        key = records.encode_resume_key(netns if netns is not None else netns_cookie(),
                                        port, tep, a_id)
        bpf.update(self._fds["eno_resume"], key, records.encode_resume_value(b_id))

    def remove_resumption(self, port: int, tep: int, a_id: bytes,
                          netns: int | None = None) -> bool:
        key = records.encode_resume_key(netns if netns is not None else netns_cookie(),
                                        port, tep, a_id)
        return bpf.delete(self._fds["eno_resume"], key)

    # --- per network namespace ------------------------------------------------------------
    def set_netns_enabled(self, enabled: bool, netns: int | None = None) -> None:
        key = records.NETNS_KEY_FORMAT.pack(netns if netns is not None else netns_cookie())
        if enabled:
            bpf.delete(self._fds["eno_netns"], key)
        else:
            bpf.update(self._fds["eno_netns"], key,
                       records.NETNS_VALUE_FORMAT.pack(records.NETNS_DISABLED))

    def netns_enabled(self, netns: int | None = None) -> bool:
        key = records.NETNS_KEY_FORMAT.pack(netns if netns is not None else netns_cookie())
        raw = bpf.lookup(self._fds["eno_netns"], key, records.NETNS_VALUE_FORMAT.size)
        return raw is None or not records.NETNS_VALUE_FORMAT.unpack(raw)[0] & 1

    # --- counters -------------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        """The program's counters summed over CPUs (since it was loaded)."""
        cpus = bpf.possible_cpus()
        totals: dict[str, int] = {}
        for index, name in enumerate(records.COUNTERS):
            raw = bpf.lookup(self._fds["eno_stats"], struct.pack("=I", index), 8 * cpus)
            values = struct.unpack(f"={cpus}Q", raw) if raw else ()
            totals[name] = sum(values)
        return totals

    def pending_count(self) -> int:
        """B's decided-but-unfinished handshakes (SYN-ACK sent, no final ACK yet)."""
        return len(bpf.keys(self._fds["eno_pending"], 48))


def records_map_names() -> tuple[str, ...]:
    return ("eno_sock", "eno_resume", "eno_netns", "eno_stats", "eno_pending")
