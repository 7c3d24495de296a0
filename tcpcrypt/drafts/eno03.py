"""TCP-ENO as draft-ietf-tcpinc-tcpeno-03 writes it: experimental option kind 253, the 2-byte
ExID 0x454E after the length byte, then suboptions.

The draft has no `b` bit: the SYN's sender is A. A suboption byte below 0x20 is the general
suboption (0x02: application aware); 0x20..0x7f is a TEP without data; a TEP byte with the `v`
bit (0x80) set carries the rest of the option as its data (the reference puts a resumption
identifier there). The negotiation transcript is each side's option followed by an empty ENO
option: SYN option, 253 4 45 4E, SYN-ACK option, 253 4 45 4E.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from tcpcrypt.constants import ENO_EXID, EXPERIMENTAL_OPTION_KIND
from tcpcrypt.errors import DecodeError, UsageError

KIND: Final = EXPERIMENTAL_OPTION_KIND
EXID: Final = ENO_EXID
EMPTY_OPTION: Final = bytes((KIND, 4)) + EXID.to_bytes(2, "big")
"""The ENO option without suboptions: A's marker on its first data segment, and the delimiter
the transcript puts after each side's option."""
APP_AWARE: Final = 0x02
V_BIT: Final = 0x80
MAX_OPTION: Final = 40
HEADER_LENGTH: Final = 4


@dataclass(frozen=True, slots=True)
class DraftEnoOption:
    """One parsed kind-253 ENO option: TEPs in order, the application-aware bit, and the data
    of a TEP sent with `v` set (its TEP and bytes), if any."""

    teps: tuple[int, ...]
    app_aware: bool = False
    variable_tep: int | None = None
    variable_data: bytes = b""


def _check_tep(tep: int) -> int:
    if not isinstance(tep, int) or not 0x20 <= tep <= 0x7F:
        raise UsageError(f"a TEP is 0x20..0x7f, not {tep!r}")
    return tep


def encode_option(teps: Sequence[int], app_aware: bool = False) -> bytes:
    """A's SYN option (or B's SYN-ACK option with one TEP): header, TEPs, general byte."""
    body = bytes(_check_tep(tep) for tep in teps)
    if not body:
        raise UsageError("an ENO option offers at least one TEP")
    if len(set(body)) != len(body):
        raise UsageError("TEPs offered twice")
    if app_aware:
        body += bytes((APP_AWARE,))
    if HEADER_LENGTH + len(body) > MAX_OPTION:
        raise UsageError(f"the option would exceed {MAX_OPTION} bytes")
    return bytes((KIND, HEADER_LENGTH + len(body))) + EXID.to_bytes(2, "big") + body


def parse_option(option: bytes) -> DraftEnoOption:
    """A whole kind-253 ENO option (kind and length included); DecodeError when it is not one."""
    if len(option) < HEADER_LENGTH or option[0] != KIND or option[1] != len(option):
        raise DecodeError("malformed-option", f"not a kind-253 option: {bytes(option).hex()}")
    if int.from_bytes(option[2:4], "big") != EXID:
        raise DecodeError("malformed-option", f"ExID 0x{bytes(option[2:4]).hex()} is not ENO's")
    teps: list[int] = []
    app_aware = False
    position = HEADER_LENGTH
    while position < len(option):
        byte = option[position]
        if byte < 0x20:
            app_aware = app_aware or bool(byte & APP_AWARE)
            position += 1
        elif byte < V_BIT:
            teps.append(byte)
            position += 1
        elif byte >= V_BIT | 0x20:
            teps.append(byte & 0x7F)
            return DraftEnoOption(tuple(teps), app_aware, byte & 0x7F,
                                  bytes(option[position + 1:]))
        else:
            raise DecodeError("malformed-option", f"suboption byte 0x{byte:02x}")
    return DraftEnoOption(tuple(teps), app_aware)


def transcript(syn_option: bytes, synack_option: bytes) -> bytes:
    """The bytes the key schedule binds: each side's option, each followed by EMPTY_OPTION."""
    parse_option(syn_option)
    parse_option(synack_option)
    return bytes(syn_option) + EMPTY_OPTION + bytes(synack_option) + EMPTY_OPTION


def negotiated_tep(syn_option: bytes, synack_option: bytes) -> int:
    """The TEP B chose: the SYN-ACK's first TEP, which A must have offered."""
    offered = parse_option(syn_option).teps
    answer = parse_option(synack_option).teps
    if not answer:
        raise DecodeError("no-common-tep", "the SYN-ACK names no TEP")
    if answer[0] not in offered:
        raise DecodeError("no-common-tep", f"B chose 0x{answer[0]:02x}, which A did not offer")
    return answer[0]
