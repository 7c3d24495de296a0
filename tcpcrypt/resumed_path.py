"""The straight-line set-up of a resumed tcpcrypt connection (RFC 8548 resumption), for the
library: the same `TcpcryptConnection` in the same state, and the same bytes on the wire, as the
general state machine reaches, without building the general steps' objects.

A resumed session's keys, session ID and next secret come from the cached ss[i+1] alone: no
nonce and no transcript of the new connection enters them (tcpcrypt.key_schedule). So all of it
can be derived, and the AEAD objects keyed, before the connection exists (`prepare`). Host A
does that, and builds its SYN option, kernel record, expected SYN-ACK and the connection object
(`ResumedPaths.make_ready`), when its previous connection closes, after its own first byte;
host B derives on use (its work after an answer would delay that answer's reader:
docs/library.md, sixth pass). What depends on the new connection (the single-use take from the
cache, the peer's options and every check) is done per connection as in the general path:

* host A (`offer_resumption`): the SYN option is the general encoding of A's offers with the
  cached session's identifier spliced in (`_SpliceTemplate`: where the data goes is found once
  per context and TEP, by encoding two different placeholders); `adopt_synack` takes the
  straight line only when the SYN-ACK option is exactly the one B's core writes to resume
  (B's identifier of that session), and hands every other option to the general `on_synack`
  of the very same connection, whose state is the general path's after `syn_option()`.
* host B (`accept_resumption`): the kernel's negotiation is replayed by the general
  `replay_decided_b`, the session is taken from the cache by A's identifier and checked
  against the TEP and B's identifier as `TcpcryptConnection._take_resumed` does; anything else
  (no resumption, a refusal, a mismatch) returns None and the caller runs the general path,
  which reaches the same verdict (the entry, if any, is already used up).

tests/protocol/test_resumed_path.py compares both ends with the general path: attributes,
events, session IDs and the bytes sealed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tcpcrypt.aead import aead_by_id
from tcpcrypt.config import TcpcryptConfig
from tcpcrypt.connection import ConnectionState, TcpcryptConnection
from tcpcrypt.connection_tables import plain_offers, tables
from tcpcrypt.constants import RESUMPTION_ID_LENGTH
from tcpcrypt.eno_negotiation import (
    EnoEndpoint,
    EnoResult,
    EnoState,
    Role,
    negotiation_transcript,
    replay_decided_b,
)
from tcpcrypt.eno_option import EnoOption, GlobalSuboption, TepSuboption, encode_eno_option
from tcpcrypt.events import Established
from tcpcrypt.frames import FrameOpener, FrameSealer
from tcpcrypt.kernel.records import encode_active
from tcpcrypt.key_schedule import derive_session
from tcpcrypt.randomness import RandomSource
from tcpcrypt.resumption import ResumableSession, ResumptionCache
from tcpcrypt.suites import KeyAgreementSuite, suite_name_for_tep


@dataclass(frozen=True, slots=True)
class PreparedResume:
    """Everything one end derives from a cached ss[i+1] to resume with it: the session ID, the
    keyed frame sealer and opener of generation 0 (for `role` and `max_frame_plaintext`), and
    ss[i+2] with its identifiers (None unless the cache keeps sessions). `ready`: what one
    context (`ResumedPaths.prepare_next`) built ahead from it, else None."""

    role: Role
    max_frame_plaintext: int
    session_id: bytes
    sealer: FrameSealer
    opener: FrameOpener
    following: ResumableSession | None
    ready: ReadyResume | None = None


@dataclass(frozen=True, slots=True)
class ReadyResume:
    """What one context's straight line sets on host A's resumed connection, built ahead (at
    the previous connection's close) from a `PreparedResume`: the connection's established
    attributes and its `Established` event, its SYN option, the kernel record carrying it,
    the one SYN-ACK option that resumes and the negotiation's result for that pair (a pure
    function of the two options). Used once: its session is taken from the cache once."""

    paths: ResumedPaths
    established: dict[str, Any]
    event: Established
    offers: tuple[TepSuboption, ...] = ()
    syn: bytes = b""
    record: bytes = b""
    synack: bytes = b""
    result: EnoResult | None = None
    # host A: the connection object itself, in the general path's state after syn_option()
    # but for its peer and clock (set when it is handed out, once: popped)
    spare: list[TcpcryptConnection] = field(default_factory=list, compare=False)


def prepare(session: ResumableSession, role: Role, config: TcpcryptConfig,
            caching: bool) -> PreparedResume:
    """Derive what resuming `session` as `role` needs (the general `_establish`'s steps)."""
    spec = aead_by_id(session.aead_id)
    derived = derive_session(session.secret, session.tep, spec.key_length, caching)
    chain = derived.chain
    send, receive = (chain.key_ab, chain.key_ba) if role is Role.A else (
        chain.key_ba, chain.key_ab)
    following = None
    if derived.next_secret is not None and derived.next_ids is not None:
        following = ResumableSession.with_ids(derived.next_secret, session.tep,
                                              session.aead_id, derived.next_ids)
    return PreparedResume(role, config.max_frame_plaintext, derived.session_id,
                          FrameSealer(spec, send, config.max_frame_plaintext),
                          FrameOpener(spec, receive), following)


def prepare_next(connection: TcpcryptConnection, paths: ResumedPaths | None = None) -> None:
    """Key the resumption that host A cached (if any) ahead of its use; with `paths` (the
    connection's context's), its straight line's objects are built too. Host B derives on
    use: a server's work between its answer and its next wait delays that answer's reader
    (the kernel wakes the reader on the server's CPU and lets the server run on until it
    blocks), so deriving ahead at close made the first byte later, not earlier (measured,
    docs/library.md)."""
    session = connection.resumable
    if session is None:  # (most connections: nothing cached, no role to ask)
        return
    role = connection.role
    cache = connection._cache
    if role is not Role.A or session.prepared is not None or cache is None:
        return
    kit = prepare(session, role, connection.config, cache.capacity > 0)
    if paths is not None and cache is paths.cache and connection.config is paths.config:
        kit = paths.make_ready(session, kit)
    session.keep_prepared(kit)


class _SpliceTemplate:
    """An ENO option whose one 9-byte TEP data is spliced into fixed bytes."""

    def __init__(self, encode: Callable[[bytes], bytes]) -> None:
        low, high = encode(bytes(RESUMPTION_ID_LENGTH)), encode(b"\xff" * RESUMPTION_ID_LENGTH)
        start = next(i for i in range(len(low)) if low[i] != high[i])
        if len(low) != len(high) or low[start + RESUMPTION_ID_LENGTH:] != high[
                start + RESUMPTION_ID_LENGTH:]:
            raise AssertionError("the resumption identifier is not one run of the option")
        self.head, self.tail = low[:start], low[start + RESUMPTION_ID_LENGTH:]

    def __call__(self, identifier: bytes) -> bytes:
        return self.head + identifier + self.tail


class ResumedPaths:
    """One context's straight-line resumption (its config, suites and cache are fixed)."""

    def __init__(self, config: TcpcryptConfig, suites: Mapping[int, KeyAgreementSuite],
                 cache: ResumptionCache, random: RandomSource) -> None:
        self.config, self.suites, self.cache = config, suites, cache
        self._plain = plain_offers(tuple(suites))
        self._templates: dict[int, tuple[tuple[TepSuboption, ...], _SpliceTemplate,
                                         _SpliceTemplate]] = {}
        # what TcpcryptConnection.__init__ sets that is the same for every connection here
        self._fixed: dict[str, Any] = {
            "config": config, "_random": random, "_cache": cache,
            "_tables": tables(config), "_suites": suites, "_decided": None,
            "reason": None, "_a_state": None, "_init1_raw": b"", "_nonce_a": b"",
            "_rekey_requested": False, "_sealed_since_rekey": 0, "suite": None, "aead": None,
            "session_id": None, "resumed": False, "secret": None, "resumable": None,
            "_sealer": None, "_opener": None, "_suite_obj": None, "_resuming": None,
            "_b_resumed": None}

    def _template(self, tep: int) -> tuple[tuple[TepSuboption, ...], _SpliceTemplate,
                                           _SpliceTemplate]:
        found = self._templates.get(tep)
        if found is None:
            rest = tuple(offer for offer in self._plain if offer.tep != tep)
            syn = _SpliceTemplate(lambda data: encode_eno_option(
                EnoOption((TepSuboption(tep, data),) + rest)))
            synack = _SpliceTemplate(lambda data: encode_eno_option(
                EnoOption((GlobalSuboption(b=True), TepSuboption(tep, data)))))
            found = self._templates[tep] = (rest, syn, synack)
        return found

    def _connection(self, active: bool, peer: Hashable | None, now: float,
                    eno: EnoEndpoint) -> TcpcryptConnection:
        connection = TcpcryptConnection.__new__(TcpcryptConnection)
        state = connection.__dict__
        state.update(self._fixed)
        state.update(active=active, _peer=peer, _now=now, _eno=eno,
                     state=ConnectionState.NEGOTIATING, _events=deque(), _outgoing=[],
                     _inbuf=bytearray(), _pending_plaintext=[])
        return connection

    def make_ready(self, session: ResumableSession, kit: PreparedResume) -> PreparedResume:
        """`kit` (host A's) with this context's `ReadyResume` for resuming `session`; any
        other kit unchanged."""
        if kit.role is not Role.A or session.tep not in self.suites or (
            kit.max_frame_plaintext != self.config.max_frame_plaintext
        ):
            return kit
        suite = suite_name_for_tep(session.tep)
        assert suite is not None  # session.tep is one of this end's suites
        spec = aead_by_id(session.aead_id)
        established = dict(
            _suite_obj=self.suites[session.tep], suite=suite, _sealer=kit.sealer,
            _opener=kit.opener, aead=spec.name, session_id=kit.session_id, resumed=True,
            secret=session.secret, state=ConnectionState.ESTABLISHED)
        event = Established(kit.session_id, Role.A.value, suite, spec.name, True)
        rest, syn_template, synack_template = self._template(session.tep)
        syn = syn_template(session.a_resumption_id)
        synack = synack_template(session.b_resumption_id)
        offers = (TepSuboption(session.tep, session.a_resumption_id),) + rest
        eno = _endpoint(offers, Role.A, EnoState.PENDING)
        eno._sent_syn = syn
        spare = self._connection(True, None, 0.0, eno)
        spare._resuming = session
        ready = ReadyResume(
            self, established, event, offers, syn, encode_active(syn), synack,
            EnoResult(Role.A, session.tep, session.a_resumption_id, session.b_resumption_id,
                      negotiation_transcript(syn, synack)),
            [spare])
        return PreparedResume(kit.role, kit.max_frame_plaintext, kit.session_id, kit.sealer,
                              kit.opener, kit.following, ready)

    def _ready(self, session: ResumableSession) -> ReadyResume | None:
        """The session's `ReadyResume` when this context built it (host A)."""
        kit = session.prepared
        ready = kit.ready if kit is not None else None
        if ready is None or ready.paths is not self or kit is None or kit.role is not Role.A or (
            kit.following is None and self.cache.capacity > 0
        ):
            return None
        return ready

    # --- host A ---------------------------------------------------------------------------
    def offer_resumption(self, peer: Hashable, now: float) -> TcpcryptConnection | None:
        """Host A before its SYN: the connection resuming the session cached for `peer`
        (taken from the cache), in the general path's state after `syn_option()`; None when
        there is none (the cache then holds nothing for `peer`, as after the general path)."""
        session = self.cache.take(peer, now)
        if session is None or session.tep not in self.suites:
            return None
        ready = self._ready(session)
        if ready is not None and ready.spare:
            connection = ready.spare.pop()
            connection._peer, connection._now = peer, now
            return connection
        if ready is not None:
            eno = _endpoint(ready.offers, Role.A, EnoState.PENDING)
            eno._sent_syn = ready.syn
        else:
            rest, syn_template, _ = self._template(session.tep)
            offers = (TepSuboption(session.tep, session.a_resumption_id),) + rest
            eno = _endpoint(offers, Role.A, EnoState.PENDING)
            eno._sent_syn = syn_template(session.a_resumption_id)
        connection = self._connection(True, peer, now, eno)
        connection._resuming = session
        return connection

    def kernel_record(self, connection: TcpcryptConnection) -> bytes:
        """Host A: the kernel record (`records.encode_active`) of a connection of
        `offer_resumption`: its SYN option's."""
        session = connection._resuming
        ready = self._ready(session) if session is not None else None
        if ready is not None and connection._eno._sent_syn is ready.syn:
            return ready.record
        return encode_active(connection._eno._sent_syn or b"")

    def adopt_synack(self, connection: TcpcryptConnection, synack_option: bytes) -> None:
        """Host A: B's SYN-ACK option (as the kernel saw it) for a connection of
        `offer_resumption`; the general `on_synack` for anything but B's exact answer."""
        session = connection._resuming
        eno = connection._eno
        ready = self._ready(session) if session is not None else None
        if ready is not None and eno._sent_syn is ready.syn and (
            eno._state is EnoState.PENDING and synack_option == ready.synack
        ):
            eno._state, eno._result = EnoState.NEGOTIATED, ready.result
            self._establish_ready(connection, session, ready)  # type: ignore[arg-type]
            return
        if session is None or eno._sent_syn is None or eno.state is not EnoState.PENDING or (
            synack_option != self._template(session.tep)[2](session.b_resumption_id)
        ):
            connection.on_synack(synack_option)
            return
        eno._state = EnoState.NEGOTIATED
        eno._result = EnoResult(Role.A, session.tep, session.a_resumption_id,
                                session.b_resumption_id,
                                negotiation_transcript(eno._sent_syn, synack_option))
        self._establish(connection, session, Role.A)

    # --- host B ---------------------------------------------------------------------------
    def accept_resumption(self, syn_option: bytes, synack_option: bytes,
                          now: float) -> TcpcryptConnection | None:
        """Host B: the connection the kernel's negotiation resumes, established; None when
        it does not resume a session this end holds under exactly these identifiers (the
        caller then runs the general path, which resets or continues as it decides)."""
        if len(synack_option) != 3 + RESUMPTION_ID_LENGTH + 1:  # kind, len, b=1, TEP, data
            return None
        outcome = replay_decided_b(syn_option, synack_option)
        if isinstance(outcome, str) or outcome.tep not in self.suites or not (
            outcome.b_data and outcome.a_data
        ):
            return None
        session = self.cache.take(outcome.a_data, now)
        if session is None or session.tep != outcome.tep or (
            session.b_resumption_id != outcome.b_data
        ):
            return None
        eno = _endpoint(self._plain, Role.B, EnoState.NEGOTIATED)
        eno._received_syn, eno._sent_synack = bytes(syn_option), bytes(synack_option)
        eno._chosen, eno._result = TepSuboption(outcome.tep, outcome.b_data), outcome
        connection = self._connection(False, None, now, eno)
        connection._b_resumed = session
        self._establish(connection, session, Role.B)
        return connection

    # --- both -----------------------------------------------------------------------------
    def _establish(self, connection: TcpcryptConnection, session: ResumableSession,
                   role: Role) -> None:
        """`_after_eno` and `_establish` of the general path for a resumed session."""
        caching = self.cache.capacity > 0
        kit = session.prepared
        if kit is None or kit.role is not role or (
            kit.max_frame_plaintext != self.config.max_frame_plaintext
        ) or (kit.following is None and caching):
            kit = prepare(session, role, self.config, caching)
        suite = suite_name_for_tep(session.tep)
        assert suite is not None  # session.tep is one of this end's suites
        spec = aead_by_id(session.aead_id)
        state = connection.__dict__
        state.update(_suite_obj=self.suites[session.tep], suite=suite, _sealer=kit.sealer,
                     _opener=kit.opener, aead=spec.name, session_id=kit.session_id,
                     resumed=True, secret=session.secret, state=ConnectionState.ESTABLISHED)
        connection._events.append(Established(kit.session_id, role.value, suite, spec.name,
                                              True))
        following = kit.following
        if caching and following is not None:
            connection.resumable = following
            if role is Role.A and connection._peer is not None:
                self.cache.put(connection._peer, following, connection._now)
            elif role is Role.B:
                self.cache.put(following.a_resumption_id, following, connection._now)
        pending, connection._pending_plaintext = connection._pending_plaintext, []
        for data in pending:
            connection.send(data)

    def _establish_ready(self, connection: TcpcryptConnection, session: ResumableSession,
                         ready: ReadyResume) -> None:
        """Host A's `_establish` with what `make_ready` built (the same attributes, event
        and cache)."""
        connection.__dict__.update(ready.established)
        connection._events.append(ready.event)
        kit = session.prepared
        following = kit.following if kit is not None else None
        if following is not None and self.cache.capacity > 0:
            connection.resumable = following
            if connection._peer is not None:
                self.cache.put(connection._peer, following, connection._now)
        if connection._pending_plaintext:
            pending, connection._pending_plaintext = connection._pending_plaintext, []
            for data in pending:
                connection.send(data)


def _endpoint(offers: tuple[TepSuboption, ...], role: Role, state: EnoState) -> EnoEndpoint:
    """An `EnoEndpoint` with the fields its constructor sets (offers checked by the caller's
    encoding), then `role` and `state`."""
    eno = EnoEndpoint.__new__(EnoEndpoint)
    eno.__dict__.update(offers=offers, want_b=False, _chooser=None, _state=state, _role=role,
                        _result=None, _fallback_reason=None, _sent_syn=None,
                        _received_syn=None, _peer_syn=None, _sent_synack=None, _chosen=None)
    return eno
