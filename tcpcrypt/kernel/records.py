"""The byte layouts of the kernel program's maps (mirrors the structs in eno.bpf.c) and what
their codes mean: modes, states, roles and the fallback reasons, named like the sans-IO core's."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from tcpcrypt.constants import ENO_EXID, ENO_OPTION_KIND, EXPERIMENTAL_OPTION_KIND
from tcpcrypt.errors import UsageError

OPTION_MAX: Final = 40
MAX_LISTENER_TEPS: Final = 16
RESUMPTION_ID_LENGTH: Final = 9

MODE_A: Final = 1
MODE_B_LISTEN: Final = 2
MODE_B: Final = 3
MODES: Final = {MODE_A: "A", MODE_B_LISTEN: "B-listen", MODE_B: "B"}
STATES: Final = {0: "idle", 1: "pending", 2: "negotiated", 3: "fallback", 4: "error"}
ROLES: Final = {0: None, 1: "A", 2: "B"}
REASONS: Final = {
    0: None, 1: "no-eno-syn", 2: "no-eno-synack", 3: "no-common-tep", 4: "role-conflict",
    5: "no-eno-ack", 6: "malformed-option", 7: "syncookie", 8: "tfo", 9: "netns-disabled",
    10: "state-lost", 11: "simultaneous-open", 12: "no-room", 13: "bad-config",
}
FLAG_B_SEGMENT_SEEN: Final = 1
FLAG_RESUMED: Final = 2
FLAG_DRAFT: Final = 4  # the drafts' wire profile: ENO as kind 253 with ExID 0x454E
DRAFT_ENO_HEADER: Final = (bytes((EXPERIMENTAL_OPTION_KIND, 4))  # searched for, and A's
                            + ENO_EXID.to_bytes(2, "big"))  # empty option
NETNS_DISABLED: Final = 1
COUNTERS: Final = (
    "a_offered", "a_negotiated", "a_fallback", "b_synack_eno", "b_negotiated", "b_fallback",
    "resumed", "syncookie", "state_lost", "simultaneous_open", "tfo", "no_room",
)
COUNTER_SLOTS: Final = 16

# struct eno_sock: 8 one-byte fields, syn[40], synack[40], teps[16]
SOCK_FORMAT: Final = struct.Struct("=8B40s40s16s")
# struct listener_key / resume_key / resume_val / netns_cfg
RESUME_KEY_FORMAT: Final = struct.Struct("=QHB9s4x")
RESUME_VALUE_FORMAT: Final = struct.Struct("=9s3x")
NETNS_KEY_FORMAT: Final = struct.Struct("=Q")
NETNS_VALUE_FORMAT: Final = struct.Struct("=I4x")
LISTENER_KEY_FORMAT: Final = struct.Struct("=QI4x")
LISTENER_VALUE_FORMAT: Final = struct.Struct("=B7x16s")


@dataclass(frozen=True, slots=True)
class Negotiation:
    """One socket's TCP-ENO record as the kernel program keeps it.

    `state` is "pending", "negotiated", "fallback" (plain TCP, `reason` says why) or "error"
    (B cannot tell what it answered while A may believe ENO succeeded: reset the connection).
    `syn_option` / `synack_option` are the options as on the wire (kind and length included);
    their concatenation is the negotiation transcript.
    """

    mode: str
    state: str
    role: str | None
    reason: str | None
    syn_option: bytes
    synack_option: bytes
    resumed: bool
    peer_segment_seen: bool
    draft: bool = False

    @property
    def transcript(self) -> bytes:
        """The RFC profile's transcript (the drafts' is `tcpcrypt.drafts.eno03.transcript`)."""
        return self.syn_option + self.synack_option


def decode_sock(raw: bytes) -> Negotiation:
    mode, state, role, reason, syn_len, synack_len, _n_teps, flags, syn, synack, _teps = (
        SOCK_FORMAT.unpack(raw[: SOCK_FORMAT.size])
    )
    return Negotiation(
        mode=MODES.get(mode, f"unknown-{mode}"),
        state=STATES.get(state, f"unknown-{state}"),
        role=ROLES.get(role),
        reason=REASONS.get(reason, f"unknown-{reason}"),
        syn_option=bytes(syn[:syn_len]),
        synack_option=bytes(synack[:synack_len]),
        resumed=bool(flags & FLAG_RESUMED),
        peer_segment_seen=bool(flags & FLAG_B_SEGMENT_SEEN),
        draft=bool(flags & FLAG_DRAFT),
    )


STATE_NEGOTIATED: Final = 2
STATE_ERROR: Final = 4


def negotiated_options(raw: bytes) -> tuple[bytes, bytes] | None:
    """The (SYN, SYN-ACK) options of a record whose state is "negotiated", else None (then
    `decode_sock` says what happened): the one thing a server needs on every accept."""
    if raw[1] != STATE_NEGOTIATED:
        return None
    syn_len, synack_len = min(raw[4], OPTION_MAX), min(raw[5], OPTION_MAX)
    return raw[8 : 8 + syn_len], raw[8 + OPTION_MAX : 8 + OPTION_MAX + synack_len]


def encode_active(syn_option: bytes) -> bytes:
    """The record userspace creates for an active socket: mode A and its SYN's ENO option."""
    if not isinstance(syn_option, bytes | bytearray):
        raise UsageError("the SYN's ENO option must be bytes")
    draft = bytes(syn_option[:1]) == DRAFT_ENO_HEADER[:1]
    if not 2 <= len(syn_option) <= OPTION_MAX or syn_option[1] != len(syn_option) or not (
        syn_option[0] == ENO_OPTION_KIND
        or (draft and bytes(syn_option[2:4]) == DRAFT_ENO_HEADER[2:])
    ):
        raise UsageError("the SYN option must be a whole ENO option: kind 69 (or 253 with "
                         "the ExID 0x454E), its length, at most 40 bytes")
    if draft and len(syn_option) < 4:
        raise UsageError("a kind-253 ENO option needs its ExID")
    return SOCK_FORMAT.pack(MODE_A, 0, 0, 0, len(syn_option), 0, 0, 0, bytes(syn_option),
                            b"", b"")


def encode_listener(teps: Sequence[int], draft: bool = False) -> bytes:
    """The record userspace creates for a listener: mode B and its TEPs, preferred first;
    `draft` answers ENO as the drafts do (kind 253 with ExID, no b bit, no resumption)."""
    teps = list(teps)
    if not 1 <= len(teps) <= MAX_LISTENER_TEPS or len(set(teps)) != len(teps) or not all(
        isinstance(tep, int) and 0x20 <= tep <= 0x7F for tep in teps
    ):
        raise UsageError(f"a listener needs 1..{MAX_LISTENER_TEPS} distinct TEPs in 0x20..0x7f")
    return SOCK_FORMAT.pack(MODE_B_LISTEN, 0, 0, 0, 0, 0, len(teps), FLAG_DRAFT if draft else 0,
                            b"", b"", bytes(teps))


def encode_resume_key(netns: int, port: int, tep: int, a_id: bytes) -> bytes:
    if len(a_id) != RESUMPTION_ID_LENGTH:
        raise UsageError(f"a resumption identifier has {RESUMPTION_ID_LENGTH} bytes")
    if not 0x20 <= tep <= 0x7F or not 0 < port < 65536:
        raise UsageError(f"bad TEP 0x{tep:x} or port {port}")
    return RESUME_KEY_FORMAT.pack(netns, port, tep, a_id)


def encode_resume_value(b_id: bytes) -> bytes:
    if len(b_id) != RESUMPTION_ID_LENGTH:
        raise UsageError(f"a resumption identifier has {RESUMPTION_ID_LENGTH} bytes")
    return RESUME_VALUE_FORMAT.pack(b_id)
