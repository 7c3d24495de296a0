"""tcpcrypt: TCP-ENO negotiation (RFC 8547) and the tcpcrypt protocol (RFC 8548), sans-IO.

The protocol modules here never open sockets, read clocks or draw global randomness: time and
random bytes are passed in by the caller, so that every run can be replayed. Only the daemon
(`tcpcrypt.daemon`), the kernel program's API (`tcpcrypt.kernel`) and the socket library
(`tcpcrypt.library`, whose `TcpcryptContext`, `wrap_socket`, `create_connection` and
`TcpcryptConnectionError` are importable from here) do I/O.
"""

from __future__ import annotations

from typing import Any

_LIBRARY_NAMES = ("TcpcryptContext", "TcpcryptConnectionError", "wrap_socket",
                  "create_connection")


def __getattr__(name: str) -> Any:
    """The library's names, imported on first use (the protocol modules stay I/O-free)."""
    if name in _LIBRARY_NAMES:
        import tcpcrypt.library

        return getattr(tcpcrypt.library, name)
    raise AttributeError(f"module 'tcpcrypt' has no attribute {name!r}")
