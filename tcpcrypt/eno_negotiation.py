"""One endpoint's TCP-ENO negotiation (RFC 8547): roles, TEP choice, transcript, fallback.

Sans-IO: the caller hands in the ENO option bytes of the segments it received (None when a
segment carried none) and asks for the option bytes to send.

* The active opener is host A: `syn_option()` lists the TEPs it offers (after a global
  suboption with b=1 when `want_b`), then `on_synack()` picks the negotiated TEP: the last TEP
  of B's SYN-ACK that A also offered. B's SYN-ACK option carries a global suboption with
  b=1 (ours writes it first; a peer's may stand anywhere, the first one counts); an option
  without one means b=0, and equal b bits at both ends disable ENO ("role-conflict"), as in
  the 2016 Linux TCP-ENO implementation. A's first ACK carries
  `ack_option()`, an ENO option without suboptions, so that B knows its SYN-ACK's option
  arrived.
* The passive opener is host B: `on_syn()`, then `synack_option()` (the TEP its chooser picked,
  with the chooser's data; None = send no option), then `on_ack()`: only an ENO option on A's
  first ACK completes the negotiation.
* Simultaneous open: `syn_option()` was called and then `on_syn()` brings the peer's SYN. The
  `b` bits decide: the side with b=1 becomes B, the other A; equal bits are a role conflict.

The negotiation transcript (believed RFC behaviour) is A's SYN option and B's SYN-ACK option
as on the wire, kind and length bytes included, concatenated; both sides compute it from the
same bytes. Missing or malformed peer options end in FALLBACK with a reason ("no-eno-syn",
"no-eno-synack", "no-common-tep", "role-conflict", "no-eno-ack", "malformed-option"), never an
exception; calling a method that makes no sense in the endpoint's role or state raises
`UsageError`.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tcpcrypt.constants import ENO_OPTION_KIND
from tcpcrypt.eno_option import (
    LENGTH_BYTE_MAX,
    V_BIT,
    EnoOption,
    GlobalSuboption,
    Suboption,
    TepSuboption,
    encode_eno_option,
    parse_eno_option,
)
from tcpcrypt.errors import DecodeError, UsageError


class Role(enum.Enum):
    """Host A (active opener, or b=0 in a simultaneous open) or host B."""

    A = "A"
    B = "B"


class EnoState(enum.Enum):
    PENDING = "pending"
    NEGOTIATED = "negotiated"
    FALLBACK = "fallback"


@dataclass(frozen=True, slots=True)
class EnoResult:
    """A completed negotiation: the TEP, the data each side attached to it, the transcript."""

    role: Role
    tep: int
    a_data: bytes
    b_data: bytes
    transcript: bytes


Chooser = Callable[[Sequence[TepSuboption]], TepSuboption | None]


def negotiation_transcript(syn_option: bytes, synack_option: bytes) -> bytes:
    """Believed RFC behaviour: A's SYN option then B's SYN-ACK option, as on the wire."""
    return bytes(syn_option) + bytes(synack_option)


def _first_with_tep(suboptions: Sequence[TepSuboption], tep: int) -> TepSuboption | None:
    return next((s for s in suboptions if s.tep == tep), None)


_CHECKED_OFFERS_MAX = 256
_checked_offers: dict[int, tuple[TepSuboption, ...]] = {}
"""Offer tuples already checked, by identity: a server's connections share one tuple (the
cached `plain_offers` of its suites), so it is not encoded again on every connection.
Offers are immutable (a tuple of frozen suboptions), so one check holds for the object."""


class EnoEndpoint:
    """The TCP-ENO state of one end of one connection."""

    def __init__(
        self,
        offers: Sequence[TepSuboption],
        *,
        chooser: Chooser | None = None,
        want_b: bool = False,
    ) -> None:
        offers = tuple(offers)
        if _checked_offers.get(id(offers)) is not offers:  # checked once per tuple object
            if not offers:
                raise UsageError("an ENO endpoint needs at least one TEP to offer")
            if not all(isinstance(offer, TepSuboption) for offer in offers):
                raise UsageError("offers must be TepSuboption values")
            for offer in offers:  # a bad TEP or data is a UsageError now, not at the first SYN
                encode_eno_option(EnoOption((offer,)))
            if len(_checked_offers) < _CHECKED_OFFERS_MAX:
                _checked_offers[id(offers)] = offers  # kept alive: its id is not reused
        self.offers: tuple[TepSuboption, ...] = offers
        self.want_b = want_b
        # None: `_default_chooser` at the time of choosing (a bound method kept here would
        # make every endpoint a reference cycle, freed only by the garbage collector)
        self._chooser: Chooser | None = chooser
        self._state = EnoState.PENDING
        self._role: Role | None = None
        self._result: EnoResult | None = None
        self._fallback_reason: str | None = None
        self._sent_syn: bytes | None = None
        self._received_syn: bytes | None = None
        self._peer_syn: EnoOption | None = None
        self._sent_synack: bytes | None = None
        self._chosen: TepSuboption | None = None

    # --- read-only state ------------------------------------------------------------------
    @property
    def state(self) -> EnoState:
        return self._state

    @property
    def role(self) -> Role | None:
        return self._role

    @property
    def result(self) -> EnoResult | None:
        return self._result

    @property
    def fallback_reason(self) -> str | None:
        return self._fallback_reason

    # --- helpers --------------------------------------------------------------------------
    def _fall_back(self, reason: str) -> None:
        self._state = EnoState.FALLBACK
        self._fallback_reason = reason

    def _default_chooser(self, offered: Sequence[TepSuboption]) -> TepSuboption | None:
        """B's own offers in B's preference order: the first one that A offered too."""
        offered_teps = {offer.tep for offer in offered}
        return next((own for own in self.offers if own.tep in offered_teps), None)

    @staticmethod
    def _parse(option: bytes) -> EnoOption | None:
        try:
            return parse_eno_option(option)
        except DecodeError:
            return None

    def _suboptions(self, teps: Sequence[TepSuboption]) -> tuple[Suboption, ...]:
        head: tuple[Suboption, ...] = (GlobalSuboption(b=True),) if self.want_b else ()
        return head + tuple(teps)

    # --- host A ---------------------------------------------------------------------------
    def syn_option(self) -> bytes:
        """The ENO option for our SYN (this makes us the active opener, host A)."""
        if self._sent_syn is not None or self._received_syn is not None:
            raise UsageError("syn_option: a SYN was already sent or received")
        self._sent_syn = encode_eno_option(EnoOption(self._suboptions(self.offers)))
        self._role = Role.A
        return self._sent_syn

    def on_synack(self, option: bytes | None) -> None:
        """A receives B's SYN-ACK option (None: the SYN-ACK carried none)."""
        if self._role is not Role.A or self._sent_syn is None:
            raise UsageError("on_synack: only host A, after its SYN, receives a SYN-ACK")
        if self._state is not EnoState.PENDING:
            return  # already decided (a fallback, or a retransmitted SYN-ACK)
        if option is None:
            self._fall_back("no-eno-synack")
            return
        parsed = self._parse(option)
        if parsed is None:
            self._fall_back("malformed-option")
            return
        peer_global = parsed.global_suboption
        if peer_global is None or not peer_global.b:
            self._fall_back("role-conflict")  # B's SYN-ACK must say b=1; equal b bits: no ENO
            return
        offered = {offer.tep for offer in self.offers}
        common = [tep for tep in parsed.teps if tep.tep in offered]
        if not common:
            self._fall_back("no-common-tep")
            return
        chosen = common[-1]
        ours = _first_with_tep(self.offers, chosen.tep)
        assert ours is not None  # chosen.tep is among the offers
        self._state = EnoState.NEGOTIATED
        self._result = EnoResult(
            Role.A, chosen.tep, ours.data, chosen.data,
            negotiation_transcript(self._sent_syn, option),
        )

    def ack_option(self) -> bytes:
        """A's first ACK: an ENO option without suboptions."""
        if self._role is not Role.A or self._state is not EnoState.NEGOTIATED:
            raise UsageError("ack_option: only a negotiated host A sends ENO on its first ACK")
        return encode_eno_option(EnoOption())

    # --- host B ---------------------------------------------------------------------------
    def on_syn(self, option: bytes | None) -> None:
        """A SYN arrived (passive open, or the peer's SYN in a simultaneous open)."""
        if self._received_syn is not None:
            raise UsageError("on_syn: a SYN was already received")
        if self._state is not EnoState.PENDING:
            raise UsageError("on_syn: the negotiation is already over")
        simultaneous = self._sent_syn is not None
        self._received_syn = bytes(option) if option is not None else b""
        if not simultaneous:
            self._role = Role.B
        if option is None:
            self._fall_back("no-eno-syn")
            return
        parsed = self._parse(option)
        if parsed is None:
            self._fall_back("malformed-option")
            return
        self._peer_syn = parsed
        peer_global = parsed.global_suboption
        peer_b = peer_global is not None and peer_global.b
        if simultaneous:
            if peer_b == self.want_b:
                self._fall_back("role-conflict")
                return
            self._role = Role.B if self.want_b else Role.A
        elif peer_b:
            self._fall_back("role-conflict")  # A asked for b=1 as well: equal b bits

    def synack_option(self, chooser: Chooser | None = None) -> bytes | None:
        """B's SYN-ACK option with the chosen TEP, or None (fall back: send no option).
        `chooser`, when given, chooses instead of the endpoint's own (an owner that passes
        its method here holds the endpoint without a reference cycle)."""
        if self._received_syn is None:
            raise UsageError("synack_option: no SYN was received")
        if self._state is EnoState.FALLBACK:
            return None
        if self._role is not Role.B:
            raise UsageError("synack_option: only host B answers a SYN with an ENO SYN-ACK")
        if self._sent_synack is not None:
            return self._sent_synack  # the same bytes again (a retransmitted SYN-ACK)
        assert self._peer_syn is not None  # set whenever B is still PENDING after on_syn
        offered = self._peer_syn.teps
        choose = chooser or self._chooser or self._default_chooser
        chosen = choose(offered)
        if chosen is None:
            self._fall_back("no-common-tep")
            return None
        if not isinstance(chosen, TepSuboption) or _first_with_tep(offered, chosen.tep) is None:
            raise UsageError(f"the chooser returned {chosen!r}, which A did not offer")
        self._chosen = chosen
        synack = (GlobalSuboption(b=True), chosen)  # B's SYN-ACK always says b=1
        self._sent_synack = encode_eno_option(EnoOption(synack))
        return self._sent_synack

    def settle_as_b(self, received_syn: bytes, sent_synack: bytes, result: EnoResult) -> None:
        """Take a negotiation `replay_decided_b` checked: this endpoint becomes host B with
        `result`, as if it had answered the SYN with `sent_synack` and seen A's ENO ACK."""
        if self._sent_syn is not None or self._received_syn is not None or (
            self._state is not EnoState.PENDING or result.role is not Role.B
        ):
            raise UsageError("settle_as_b: only a fresh endpoint becomes host B of a replay")
        self._role = Role.B
        self._received_syn = received_syn
        self._sent_synack = sent_synack
        self._chosen = TepSuboption(result.tep, result.b_data)
        self._state = EnoState.NEGOTIATED
        self._result = result

    def on_ack(self, option: bytes | None) -> None:
        """B receives A's first ACK: only an ENO option there confirms the negotiation."""
        if self._role is not Role.B:
            raise UsageError("on_ack: only host B checks A's first ACK")
        if self._state is not EnoState.PENDING:
            return  # already decided (a fallback, or a later ACK)
        if self._sent_synack is None or self._chosen is None:
            raise UsageError("on_ack: no SYN-ACK option was sent")
        if option is None:
            self._fall_back("no-eno-ack")
            return
        if self._parse(option) is None:
            self._fall_back("malformed-option")
            return
        assert self._peer_syn is not None and self._received_syn is not None
        a_offer = _first_with_tep(self._peer_syn.teps, self._chosen.tep)
        self._state = EnoState.NEGOTIATED
        self._result = EnoResult(
            Role.B, self._chosen.tep, a_offer.data if a_offer else b"", self._chosen.data,
            negotiation_transcript(self._received_syn, self._sent_synack),
        )


_EMPTY_ENO = bytes((69, 2))


def _replay_decided_b(syn_option: bytes, synack_option: bytes) -> EnoResult | str:
    chosen = None
    parsed = EnoEndpoint._parse(synack_option)
    if parsed is not None and parsed.teps:
        chosen = parsed.teps[-1]
    if chosen is None:
        return "eno-mismatch"
    decided = chosen
    try:
        endpoint = EnoEndpoint((decided,), chooser=lambda _offered: decided)
        endpoint.on_syn(syn_option if syn_option else None)
        if endpoint.state is not EnoState.PENDING:
            return "eno-mismatch"  # the core would have answered with no ENO option at all
        option = endpoint.synack_option()  # UsageError: A did not offer the chosen TEP
    except UsageError:
        return "eno-mismatch"
    if option != synack_option:
        return "eno-mismatch"
    endpoint.on_ack(_EMPTY_ENO)
    return endpoint.result or "eno-mismatch"


_replay_remembered = functools.lru_cache(maxsize=512)(_replay_decided_b)
# The core's SYN-ACK option without TEP data is exactly kind, length, global suboption, TEP.
_PLAIN_SYNACK_LENGTH = 4


def replay_decided_b(syn_option: bytes, synack_option: bytes) -> EnoResult | str:
    """Host B whose SYN-ACK option was written elsewhere (the kernel), after A's first ACK
    carried ENO: the negotiation's result, exactly as this module's endpoint would have
    reached it answering `syn_option` with the TEP that `synack_option` chose; or
    "eno-mismatch" when the endpoint would not have written `synack_option` byte for byte (no
    TEP in it, a TEP that A did not offer, a SYN the endpoint answers without ENO, any other
    byte). The TEP's data (a resumption answer) is taken as written: the caller checks it.

    A pure function of its two arguments; results for SYN-ACK options without TEP data (the
    same few pairs on most connections) are remembered, those with data (different on every
    resumed connection) come from the verdict remembered for the same shape with the data
    zeroed (`_replay_blanked`)."""
    if type(syn_option) is bytes and type(synack_option) is bytes:
        if len(synack_option) == _PLAIN_SYNACK_LENGTH:
            return _replay_remembered(syn_option, synack_option)
        blanked_synack = _data_blanked(synack_option)
        blanked_syn = _data_blanked(syn_option) if blanked_synack is not None else None
        if blanked_synack is not None and blanked_syn is not None:
            return _replay_blanked(syn_option, synack_option, blanked_syn, blanked_synack)
    return _replay_decided_b(bytes(syn_option), bytes(synack_option))


def _data_blanked(option: bytes) -> tuple[bytes, int] | None:
    """The shape of a resumption's options: kind 69 whose length byte covers exactly the
    option, a body of one-byte suboptions (global suboptions, TEPs without data) and then one
    v=1 TEP whose data runs to the end. For that shape: (the option with that data's bytes
    zeroed, where the data starts); None for any other option."""
    size = len(option)
    if size < 3 or option[0] != ENO_OPTION_KIND or option[1] != size:
        return None
    for position in range(2, size):
        byte = option[position]
        if byte >= V_BIT:
            if byte <= LENGTH_BYTE_MAX:  # a length byte: not this shape
                return None
            start = position + 1
            return option[:start] + bytes(size - start), start
    return None


def _replay_blanked(syn_option: bytes, synack_option: bytes, blanked_syn: tuple[bytes, int],
                    blanked_synack: tuple[bytes, int]) -> EnoResult | str:
    """`_replay_decided_b` of two options of `_data_blanked`'s shape, through the verdict
    remembered for the same options with their TEP data zeroed. Sound because the endpoint
    never looks into TEP data: parsing finds it by length bytes and v bits, encoding copies it,
    and the one comparison (the SYN-ACK it would write against `synack_option`) compares data
    taken from `synack_option` itself. So the verdict is the same and only the result's data
    and transcript are this connection's: each side's data is the one data-bearing suboption
    of its option (the result names it exactly when it is non-empty)."""
    verdict = _replay_remembered(blanked_syn[0], blanked_synack[0])
    if isinstance(verdict, str):
        return verdict
    return EnoResult(
        verdict.role, verdict.tep,
        syn_option[blanked_syn[1]:] if verdict.a_data else b"",
        synack_option[blanked_synack[1]:] if verdict.b_data else b"",
        negotiation_transcript(syn_option, synack_option),
    )
