"""The straight-line set-up of host B's full key exchange after the kernel's TCP-ENO
negotiation (what a server's `accept()` does on most connections): the same
`TcpcryptConnection` in the same state as the general path reaches with its constructor and
`adopt_kernel_negotiation`, without running the general steps.

The general path builds a fresh endpoint, replays the kernel's options through
`replay_decided_b` (whose verdict is a pure function of the two options, remembered), checks
the TEP against this end's suites and settles the endpoint as host B, waiting for Init1. For
a given pair of options (a server sees the same few pairs again and again) everything but the
connection's clock, buffers and event queue is the same every time: `AcceptedPaths` keeps it
per pair, decided once by exactly those general steps, and sets it on each new connection.

Only a negotiation without TEP data in B's SYN-ACK option (a full key exchange) takes this
path; anything else (a resumption, a mismatch, a TEP without a suite here) returns None and
the caller runs the general path, which decides as before (the same reasons, resets included).

tests/protocol/test_accepted_path.py compares the connections of both paths: attributes,
endpoint, events and the bytes they send for the same Init1.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any, Final

from tcpcrypt.config import TcpcryptConfig
from tcpcrypt.connection import ConnectionState, TcpcryptConnection
from tcpcrypt.connection_tables import plain_offers, tables
from tcpcrypt.eno_negotiation import EnoEndpoint, EnoState, Role, replay_decided_b
from tcpcrypt.eno_option import TepSuboption
from tcpcrypt.randomness import RandomSource
from tcpcrypt.resumption import ResumptionCache
from tcpcrypt.suites import KeyAgreementSuite, suite_name_for_tep

PLAIN_SYNACK_LENGTH: Final = 4
"""B's SYN-ACK option without TEP data: kind, length, the global suboption (b=1), the TEP."""
SETTLED_PAIRS_MAX: Final = 256
"""Option pairs remembered per context (a server sees a few; a flood of distinct ones, e.g.
SYNs carrying resumption identifiers B did not answer, only restarts the memory)."""

Settled = tuple[dict[str, Any], dict[str, Any]]
"""For one pair of options: the endpoint's attributes and the connection's, as the general
path leaves them (but the per-connection ones)."""


class AcceptedPaths:
    """One context's straight line for host B's full key exchange (its config, suites and
    cache are fixed)."""

    def __init__(self, config: TcpcryptConfig, suites: Mapping[int, KeyAgreementSuite],
                 cache: ResumptionCache, random: RandomSource) -> None:
        self.config, self.suites, self.cache = config, suites, cache
        self._plain = plain_offers(tuple(suites))
        # what TcpcryptConnection.__init__ sets for host B that is the same for every
        # connection of this context
        self._fixed: dict[str, Any] = {
            "config": config, "active": False, "_random": random, "_cache": cache,
            "_peer": None, "_tables": tables(config), "_suites": suites, "_resuming": None,
            "_b_resumed": None, "_decided": None, "aead": None, "session_id": None,
            "resumed": False, "reason": None, "secret": None, "resumable": None,
            "_a_state": None, "_init1_raw": b"", "_nonce_a": b"", "_sealer": None,
            "_opener": None, "_rekey_requested": False, "_sealed_since_rekey": 0}
        self._settled: dict[tuple[bytes, bytes], Settled] = {}

    def accept(self, syn_option: bytes, synack_option: bytes,
               now: float) -> TcpcryptConnection | None:
        """Host B: the connection of a negotiation the kernel completed with B's SYN-ACK
        option `synack_option` (no TEP data) answering `syn_option`, waiting for Init1 (state
        KEY_EXCHANGE); None for any other negotiation (the caller runs the general path)."""
        if type(syn_option) is not bytes or type(synack_option) is not bytes:
            return None  # (the general path takes any bytes-like options)
        settled = self._settled.get((syn_option, synack_option))
        if settled is None:
            found = self._settle(syn_option, synack_option)
            if found is None:
                return None
            settled = found
        eno_fields, fields = settled
        connection = TcpcryptConnection.__new__(TcpcryptConnection)
        state = connection.__dict__
        state.update(fields)
        eno = EnoEndpoint.__new__(EnoEndpoint)
        eno.__dict__.update(eno_fields)
        state.update(_now=now, _eno=eno, _events=deque(), _outgoing=[], _inbuf=bytearray(),
                     _pending_plaintext=[])
        return connection

    def _settle(self, syn_option: bytes, synack_option: bytes) -> Settled | None:
        """What the general path settles for this pair (remembered), or None when it would
        not simply wait for Init1."""
        if len(synack_option) != PLAIN_SYNACK_LENGTH:
            return None
        outcome = replay_decided_b(syn_option, synack_option)
        if isinstance(outcome, str) or outcome.b_data or outcome.role is not Role.B:
            return None
        suite = self.suites.get(outcome.tep)
        if suite is None:
            return None
        eno_fields: dict[str, Any] = {
            "offers": self._plain, "want_b": False, "_chooser": None,
            "_state": EnoState.NEGOTIATED,
            "_role": Role.B, "_result": outcome, "_fallback_reason": None, "_sent_syn": None,
            "_received_syn": syn_option, "_peer_syn": None, "_sent_synack": synack_option,
            "_chosen": TepSuboption(outcome.tep, outcome.b_data)}
        fields = dict(self._fixed, _suite_obj=suite, suite=suite_name_for_tep(outcome.tep),
                      state=ConnectionState.KEY_EXCHANGE)
        if len(self._settled) >= SETTLED_PAIRS_MAX:
            self._settled.clear()
        settled = self._settled[(syn_option, synack_option)] = (eno_fields, fields)
        return settled
