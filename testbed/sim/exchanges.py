"""Protocols as message exchanges: the flights of each protocol's connection (request and
response included) and where each side does its work.

A flight carries `size` bytes one way. `work` names what its receiver does on arrival:
"connection" (the server's TCP work for the whole connection: accept, read, answer, close),
"handshake" (the receiver's share of the protocol's handshake), or both. Sizes are typical
wire sizes (headers included) and only matter on rate-limited links.
"""

from __future__ import annotations

from dataclasses import dataclass

CONNECTION = "connection"
HANDSHAKE = "handshake"


@dataclass(frozen=True, slots=True)
class Flight:
    to_server: bool
    size: int
    work: tuple[str, ...] = ()
    name: str = ""


def _c(name: str, size: int, *work: str) -> Flight:
    return Flight(True, size, work, name)


def _s(name: str, size: int, *work: str) -> Flight:
    return Flight(False, size, work, name)


SYN, SYNACK = _c("SYN", 60), _s("SYN-ACK", 60)
RESPONSE = _s("response", 140)

EXCHANGES: dict[str, tuple[Flight, ...]] = {
    "tcp": (SYN, SYNACK, _c("ACK+request", 80, CONNECTION), RESPONSE),
    "tls12-rsa": (
        SYN, SYNACK, _c("ClientHello", 300, CONNECTION), _s("ServerHello..Done", 1500),
        _c("ClientKeyExchange+Finished", 400, HANDSHAKE), _s("Finished", 100, HANDSHAKE),
        _c("request", 120), RESPONSE,
    ),
    "tls12-rsa-resumed": (
        SYN, SYNACK, _c("ClientHello", 300, CONNECTION, HANDSHAKE),
        _s("ServerHello+Finished", 200, HANDSHAKE), _c("Finished+request", 200), RESPONSE,
    ),
    "tls13": (
        SYN, SYNACK, _c("ClientHello", 300, CONNECTION, HANDSHAKE),
        _s("ServerHello..Finished", 1800, HANDSHAKE), _c("Finished+request", 200), RESPONSE,
    ),
    "tls13-resumed": (
        SYN, SYNACK, _c("ClientHello+PSK", 500, CONNECTION, HANDSHAKE),
        _s("ServerHello..Finished", 300, HANDSHAKE), _c("Finished+request", 200), RESPONSE,
    ),
    "tcpcrypt-x25519": (
        _c("SYN+ENO", 70), _s("SYN-ACK+ENO", 70), _c("ACK+Init1", 120, CONNECTION, HANDSHAKE),
        _s("Init2", 110, HANDSHAKE), _c("request", 120), RESPONSE,
    ),
    "tcpcrypt-rsa-exp3": (
        _c("SYN+ENO", 70), _s("SYN-ACK+ENO", 70), _c("ACK+Init1", 340, CONNECTION, HANDSHAKE),
        _s("Init2", 340, HANDSHAKE), _c("request", 120), RESPONSE,
    ),
}
for _label in ("tcpcrypt-x25519", "tcpcrypt-rsa-exp3"):
    # resumption: the identifiers ride in the SYN and SYN-ACK, data follows the ACK at once
    EXCHANGES[f"{_label}-resumed"] = (
        _c("SYN+ENO(resume)", 80), _s("SYN-ACK+ENO(resume)", 80, HANDSHAKE),
        _c("ACK+request", 120, CONNECTION, HANDSHAKE), RESPONSE,
    )


def exchange(protocol: str) -> tuple[Flight, ...]:
    try:
        return EXCHANGES[protocol]
    except KeyError:
        raise ValueError(f"no exchange for protocol {protocol!r}; known: "
                         f"{', '.join(EXCHANGES)}") from None
