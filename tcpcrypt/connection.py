"""`TcpcryptConnection`: one TCP flow, one role, sans-IO.

Driven by three kinds of input: the TCP-ENO options of the handshake (carried in TCP options by
whoever owns the packets), bytes of the TCP stream, and calls from the application side. It
answers with option bytes, stream bytes (`data_to_send`) and events (`next_event`). Time and
randomness are passed in. Nothing the peer sends escapes as an exception: it becomes a
`Fallback` (before the key exchange starts) or a `ConnectionReset` (after), with a reason.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Hashable, Mapping, Sequence

from tcpcrypt.aead import AeadSpec, aead_by_id
from tcpcrypt.config import TcpcryptConfig
from tcpcrypt.connection_state import ConnectionState as ConnectionState  # re-exported
from tcpcrypt.connection_tables import ConfigTables, plain_offers, suite_table, tables
from tcpcrypt.constants import NONCE_LENGTH, RESUMPTION_ID_LENGTH
from tcpcrypt.eno_negotiation import EnoEndpoint, EnoResult, EnoState, Role, replay_decided_b
from tcpcrypt.eno_option import TepSuboption
from tcpcrypt.errors import PeerError, UsageError
from tcpcrypt.events import ConnectionReset, DataReceived, Established, Event, Fallback
from tcpcrypt.frames import FrameOpener, FrameSealer
from tcpcrypt.init_messages import encode_init1, encode_init2, try_parse_init1, try_parse_init2
from tcpcrypt.key_schedule import SessionSecret, derive_session
from tcpcrypt.native import b_init1_x25519
from tcpcrypt.randomness import RandomSource, system_random
from tcpcrypt.resumption import ResumableSession, ResumptionCache
from tcpcrypt.suites import KeyAgreementSuite, RsaKeyHolder, X25519Suite, suite_name_for_tep


class TcpcryptConnection:
    """One endpoint of one flow; see docs/modules.md for how the daemon drives it."""

    def __init__(
        self,
        *,
        active: bool,
        config: TcpcryptConfig | None = None,
        random: RandomSource,
        cache: ResumptionCache | None = None,
        rsa_keys: RsaKeyHolder | None = None,
        peer: Hashable | None = None,
        now: float = 0.0,
        suites: Mapping[int, KeyAgreementSuite] | None = None,
    ) -> None:
        """`suites`, when given, is `suite_table(config, rsa_keys)` built once by the caller
        (it must match `config`); otherwise it is built here."""
        self.config = config or TcpcryptConfig()
        self.active = active
        self._random = random
        self._cache = cache
        self._peer = peer
        self._now = now
        self._tables: ConfigTables = tables(self.config)
        self._suites = suites if suites is not None else suite_table(self.config, rsa_keys)
        self._resuming: ResumableSession | None = None  # A: the session offered for resumption
        self._b_resumed: ResumableSession | None = None  # B: the session A's identifier named
        self._decided: TepSuboption | None = None  # B: a SYN-ACK choice made elsewhere
        self._eno = EnoEndpoint(self._offers())  # B's choice: `_choose`, passed when asked
        self.state = ConnectionState.NEGOTIATING
        self.suite: str | None = None
        self.aead: str | None = None
        self.session_id: bytes | None = None
        self.resumed = False
        self.reason: str | None = None
        self.secret: SessionSecret | None = None
        self.resumable: ResumableSession | None = None  # what this end cached to resume
        self._events: deque[Event] = deque()
        self._outgoing: list[bytes | bytearray] = []
        self._inbuf = bytearray()
        self._pending_plaintext: list[bytes] = []
        self._suite_obj: KeyAgreementSuite | None = None
        self._a_state: object = None
        self._init1_raw = b""
        self._nonce_a = b""
        self._sealer: FrameSealer | None = None
        self._opener: FrameOpener | None = None
        self._rekey_requested = False
        self._sealed_since_rekey = 0

    # --- TCP-ENO --------------------------------------------------------------------------
    @property
    def role(self) -> Role | None:
        return self._eno.role

    def syn_option(self) -> bytes:
        return self._eno.syn_option()

    def on_syn(self, option: bytes | None) -> None:
        self._eno.on_syn(option)
        self._after_eno()

    def synack_option(self) -> bytes | None:
        option = self._eno.synack_option(self._choose)
        self._after_eno()
        return option

    def on_synack(self, option: bytes | None) -> None:
        self._eno.on_synack(option)
        self._after_eno()

    def ack_option(self) -> bytes | None:
        if self._eno.state is not EnoState.NEGOTIATED:
            return None
        return self._eno.ack_option()

    def on_ack(self, option: bytes | None) -> None:
        self._eno.on_ack(option)
        self._after_eno()

    def adopt_decided_synack(self, syn_option: bytes, synack_option: bytes | None) -> None:
        """Host B whose SYN-ACK option was decided elsewhere (the kernel): replay the SYN,
        choose exactly the TEP and data of `synack_option` (taking a resumed session from the
        cache), and reset with "eno-mismatch" if the core would not write the same bytes."""
        if self.active:
            raise UsageError("adopt_decided_synack: only host B")
        self._decided = None
        if synack_option is not None:
            parsed = EnoEndpoint._parse(synack_option)
            chosen = parsed.teps[-1] if parsed is not None and parsed.teps else None
            if chosen is None:
                self._reset("eno-mismatch")
                return
            self._decided = chosen
        self.on_syn(syn_option if syn_option else None)
        if self.state is ConnectionState.FALLBACK:
            # The core would have answered without ENO, the kernel answered with it.
            self._reset("eno-mismatch")
        if self.state is not ConnectionState.NEGOTIATING:
            return
        try:
            option = self.synack_option()
        except PeerError as error:
            self._reset(error.reason)
            return
        except UsageError:  # the kernel chose a TEP that A did not offer
            self._reset("eno-mismatch")
            return
        if option != synack_option:
            self._reset("eno-mismatch")

    def adopt_kernel_negotiation(self, syn_option: bytes, synack_option: bytes) -> None:
        """Host B whose whole TCP-ENO negotiation happened elsewhere (the kernel wrote the
        SYN-ACK option and saw ENO on A's first ACK): `adopt_decided_synack` and `on_ack` in
        one pass. Resets with "eno-mismatch" when the core would not have written the same
        SYN-ACK option (or has no suite for its TEP), "bad-resumption-id" when the option
        resumes a session this end's cache does not hold."""
        if self.active or self.state is not ConnectionState.NEGOTIATING or (
            self._eno.role is not None
        ):
            raise UsageError("adopt_kernel_negotiation: only a fresh host B")
        outcome = replay_decided_b(syn_option, synack_option)
        if isinstance(outcome, str):
            self._reset(outcome)
            return
        if outcome.tep not in self._suites:
            self._reset("eno-mismatch")
            return
        if outcome.b_data and not self._take_resumed(outcome):
            self._reset("bad-resumption-id")
            return
        self._eno.settle_as_b(bytes(syn_option), bytes(synack_option), outcome)
        self._after_eno()

    def _take_resumed(self, outcome: EnoResult) -> bool:
        """B: the cached session that A's identifier names and B's answer matches, taken
        from the cache (single use) into `_b_resumed`; False when there is none."""
        session = None
        if self._cache is not None and outcome.a_data:
            session = self._cache.take(outcome.a_data, self._now)
        if session is None or session.tep != outcome.tep or (
            session.b_resumption_id != outcome.b_data
        ):
            return False
        self._b_resumed = session
        return True

    def fall_back(self, reason: str) -> None:
        """Plain TCP, decided outside the core (e.g. the kernel's negotiation fell back)."""
        if self.state is ConnectionState.NEGOTIATING:
            self._fall_back(reason)

    def abort(self, reason: str) -> None:
        """Reset with `reason` (a failure seen outside the core, e.g. the kernel's)."""
        if self.state is not ConnectionState.RESET:
            self._reset(reason)

    def _offers(self) -> Sequence[TepSuboption]:
        offers: Sequence[TepSuboption] = plain_offers(tuple(self._suites))
        if self.active and self._cache is not None and self._peer is not None:
            cached = self._cache.take(self._peer, self._now)
            if cached is not None and cached.tep in self._suites:
                self._resuming = cached
                offers = [TepSuboption(cached.tep, cached.a_resumption_id)] + [
                    offer for offer in offers if offer.tep != cached.tep
                ]
        return offers

    def _choose(self, offered: Sequence[TepSuboption]) -> TepSuboption | None:
        """B's choice of TEP: resume a cached session if A named one, else our first common."""
        if self._decided is not None:
            return self._choose_decided(offered, self._decided)
        if self._cache is not None:
            for offer in offered:
                if len(offer.data) != RESUMPTION_ID_LENGTH or offer.tep not in self._suites:
                    continue
                session = self._cache.take(offer.data, self._now)
                if session is not None and session.tep == offer.tep:
                    self._b_resumed = session
                    return TepSuboption(offer.tep, session.b_resumption_id)
        offered_teps = {offer.tep for offer in offered}
        for tep in self._suites:
            if tep in offered_teps:
                return TepSuboption(tep)
        return None

    def _choose_decided(self, offered: Sequence[TepSuboption],
                        decided: TepSuboption) -> TepSuboption | None:
        """The TEP someone else chose for B; with data, the cached session A's id names."""
        if not decided.data:
            return decided
        a_offer = next((offer for offer in offered if offer.tep == decided.tep), None)
        session = None
        if a_offer is not None and self._cache is not None:
            session = self._cache.take(a_offer.data, self._now)
        if session is None or session.tep != decided.tep or (
            session.b_resumption_id != decided.data
        ):
            raise PeerError("bad-resumption-id", "the resumed session is not in the cache")
        self._b_resumed = session
        return decided

    def _after_eno(self) -> None:
        if self.state is not ConnectionState.NEGOTIATING:
            return
        if self._eno.state is EnoState.FALLBACK:
            self._fall_back(self._eno.fallback_reason or "eno-fallback")
            return
        result = self._eno.result
        if self._eno.state is not EnoState.NEGOTIATED or result is None:
            return
        suite = self._suites.get(result.tep)
        if suite is None:
            self._fall_back("no-common-tep")
            return
        self._suite_obj = suite
        self.suite = suite_name_for_tep(result.tep)
        self.state = ConnectionState.KEY_EXCHANGE
        if result.role is Role.A:
            if self._resuming is not None and result.tep == self._resuming.tep and result.b_data:
                if result.b_data != self._resuming.b_resumption_id:
                    self._reset("bad-resumption-id")
                    return
                self._establish(self._resuming.secret, self._resuming.aead_id, True)
                return
            self._send_init1(suite)
        elif self._b_resumed is not None and result.b_data:
            self._establish(self._b_resumed.secret, self._b_resumed.aead_id, True)
        # else B waits for Init1

    # --- key exchange ---------------------------------------------------------------------
    def _send_init1(self, suite: KeyAgreementSuite) -> None:
        self._a_state, public_key = suite.a_start(self._random, self._now)
        self._nonce_a = self._random(NONCE_LENGTH)
        init1 = encode_init1(self._tables.aead_ids, self._nonce_a, public_key)
        self._init1_raw = init1.raw
        self._outgoing.append(init1.raw)

    def _receive_init1(self) -> None:
        suite = self._suite_obj
        result = self._eno._result
        assert suite is not None and result is not None
        if b_init1_x25519 is not None and type(suite) is X25519Suite:  # the C path, or None
            random = self._random  # (system_random's bytes come from os.urandom: called as is)
            done = b_init1_x25519(self._inbuf, bytes(self._tables.aead_ids),
                                  os.urandom if random is system_random else random,
                                  result.transcript)  # (then the same bytes go below)
            if done is not None:
                del self._inbuf[: done[0]]
                self._outgoing.append(done[2])
                self._establish(SessionSecret(done[3]), done[1], False)
                return
        parsed = try_parse_init1(bytes(self._inbuf), suite.pk_a_length)
        if parsed is None:
            return
        init1, used = parsed
        del self._inbuf[:used]
        chosen = next((spec for spec in self._tables.aeads if spec.wire_id in init1.aead_ids),
                      None)
        if chosen is None:
            raise PeerError("no-common-aead", f"peer offered {init1.aead_ids}")
        public_key, es = suite.b_respond(init1.public_key, self._random)
        init2 = encode_init2(chosen.wire_id, self._random(NONCE_LENGTH), public_key)
        self._outgoing.append(init2.raw)
        secret = SessionSecret.from_key_exchange(
            result.transcript, init1.raw, init2.raw, es, init1.nonce
        )
        self._establish(secret, chosen.wire_id, False)

    def _receive_init2(self) -> None:
        suite = self._suite_obj
        result = self._eno._result
        assert suite is not None and result is not None
        parsed = try_parse_init2(bytes(self._inbuf), suite.pk_b_length)
        if parsed is None:
            return
        init2, used = parsed
        del self._inbuf[:used]
        if init2.aead_id not in self._tables.aead_ids:
            raise PeerError("unoffered-aead", f"peer chose 0x{init2.aead_id:04x}")
        es = suite.a_finish(self._a_state, init2.public_key)
        self._a_state = None
        secret = SessionSecret.from_key_exchange(
            result.transcript, self._init1_raw, init2.raw, es, self._nonce_a
        )
        self._establish(secret, init2.aead_id, False)

    def _establish(self, secret: SessionSecret, aead_id: int, resumed: bool) -> None:
        result = self._eno._result
        suite = self.suite
        assert result is not None and suite is not None
        spec: AeadSpec = aead_by_id(aead_id)
        cache = self._cache
        caching = cache is not None and cache.capacity > 0  # ss[i+1] wanted
        chain = (derived := derive_session(secret, result.tep, spec.key_length, caching)).chain
        role = result.role
        send_keys, receive_keys = (
            (chain.key_ab, chain.key_ba) if role is Role.A else (chain.key_ba, chain.key_ab))
        self._sealer = FrameSealer(spec, send_keys, self.config.max_frame_plaintext)
        self._opener = FrameOpener(spec, receive_keys)  # any length the field allows
        self.aead = spec.name
        self.session_id = session_id = derived.session_id
        self.resumed = resumed
        self.secret = secret
        self.state = ConnectionState.ESTABLISHED
        self._events.append(Established(  # (`_value_`: no call of the enum's `value` property)
            session_id, role._value_, suite, spec.name, resumed))
        if cache is not None and derived.next_secret and derived.next_ids:
            # Only ss[i+1] is kept (ss[i] is not), and the identifiers come from it.
            self.resumable = session = ResumableSession.with_ids(
                derived.next_secret, result.tep, aead_id, derived.next_ids)
            if role is Role.A and self._peer is not None:
                cache.put(self._peer, session, self._now)
            elif role is Role.B:
                cache.put(session.a_resumption_id, session, self._now)
        if self._pending_plaintext:
            pending, self._pending_plaintext = self._pending_plaintext, []
            for data in pending:
                self.send(data)

    # --- the stream -----------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        """Application data to carry to the peer (queued until keys exist)."""
        state = self.state
        if state is ConnectionState.ESTABLISHED:
            if data:
                self._seal(data)
        elif state is ConnectionState.RESET:
            raise UsageError("the connection was reset")
        elif not data:
            return
        elif state is ConnectionState.FALLBACK:
            self._outgoing.append(data)
        else:
            self._pending_plaintext.append(data)

    def _seal(self, data: bytes) -> None:
        sealer = self._sealer
        assert sealer is not None
        interval = self.config.rekey_interval_bytes
        if not interval:  # no rekey budget to track: all frames into one buffer
            rekey, self._rekey_requested = self._rekey_requested, False
            self._outgoing.append(sealer.seal_stream(data, rekey))
            return
        limit = self.config.max_frame_plaintext
        view = memoryview(data)
        for start in range(0, len(data), limit):
            if interval and self._sealed_since_rekey >= interval:
                self._rekey_requested = True
            rekey = self._rekey_requested
            self._rekey_requested = False
            if rekey:
                self._sealed_since_rekey = 0
            frame = sealer.seal(bytes(view[start : start + limit]), rekey)
            self._sealed_since_rekey += len(frame)
            self._outgoing.append(frame)

    def rekey(self) -> None:
        """Move this direction to the next key with the next frame sent."""
        if self.state is not ConnectionState.ESTABLISHED:
            raise UsageError(f"cannot rekey in state {self.state.value}")
        self._rekey_requested = True

    def receive(self, data: bytes) -> None:
        """Bytes read from the TCP stream."""
        state = self.state
        if state is ConnectionState.RESET or not data:
            return
        if state is ConnectionState.FALLBACK:
            self._events.append(DataReceived(bytes(data)))
            return
        if state is ConnectionState.NEGOTIATING:
            self._inbuf += data
            return
        try:
            if state is ConnectionState.KEY_EXCHANGE:
                self._inbuf += data
                if self._eno._role is Role.B:
                    self._receive_init1()
                else:
                    self._receive_init2()
                if self.state is ConnectionState.ESTABLISHED and self._inbuf:
                    self._open_rest()
            elif self._opener is not None:
                for chunk in self._opener.feed(data):
                    self._events.append(DataReceived(bytes(chunk)))
        except PeerError as error:
            self._reset(error.reason)

    def receive_established(self, data: bytes) -> list[bytearray]:
        """`receive` for a connection in ESTABLISHED state with no event waiting: the
        application data that `data` completes is returned (in order) instead of queued as
        `DataReceived` events, so a caller reading a stream copies it once less. A bad frame
        resets the connection as in `receive` (the `ConnectionReset` event is queued, the
        state becomes RESET) and nothing of that call is returned."""
        opener = self._opener
        if self.state is not ConnectionState.ESTABLISHED or opener is None or self._events:
            raise UsageError("receive_established: only an established connection, events read")
        try:
            return opener.feed(data)
        except PeerError as error:
            self._reset(error.reason)
            return []

    def _open_rest(self) -> None:
        """Frames that came with the last Init message (the key exchange just ended)."""
        opener = self._opener
        if opener is not None:
            rest = bytes(self._inbuf)
            self._inbuf.clear()
            for chunk in opener.feed(rest):
                self._events.append(DataReceived(bytes(chunk)))

    def data_to_send(self) -> bytes:
        """Bytes to write to the TCP stream now."""
        if not self._outgoing:
            return b""
        if len(self._outgoing) == 1:  # the common case (one sealed buffer): no join, no copy
            single: bytes = self._outgoing.pop()  # type: ignore[assignment]  # reads like bytes
            return single
        out = b"".join(self._outgoing)
        self._outgoing.clear()
        return out

    @property
    def has_events(self) -> bool:
        """Whether `next_event` has something to return."""
        return bool(self._events)

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    # --- endings --------------------------------------------------------------------------
    def _fall_back(self, reason: str) -> None:
        self.state, self.reason = ConnectionState.FALLBACK, reason
        self._events.append(Fallback(reason))
        pending, self._pending_plaintext = self._pending_plaintext, []
        self._outgoing.extend(pending)
        if self._inbuf:
            self._events.append(DataReceived(bytes(self._inbuf)))
            self._inbuf.clear()

    def _reset(self, reason: str) -> None:
        self.state, self.reason = ConnectionState.RESET, reason
        self._outgoing.clear()
        self._pending_plaintext.clear()
        self._inbuf.clear()
        self._events.append(ConnectionReset(reason))
