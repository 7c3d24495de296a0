"""One endpoint's TCP-ENO negotiation (RFC 8547): roles, TEP choice, transcript, fallback.

The active opener is host A and lists the TEPs it supports in its SYN; the passive opener B
answers with the one it chose in its SYN-ACK; A's first ACK carries an ENO option (possibly
empty) so that B knows its SYN-ACK's option arrived. In a simultaneous open both sides sent a
SYN: the `b` bit of the global suboption decides who is B; equal bits disable encryption.
Anything missing or malformed ends in a fallback to plain TCP with a reason, never an
exception; calling the wrong method for the endpoint's role is a `UsageError`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tcpcrypt.eno_option import (
    EnoOption,
    GlobalSuboption,
    Suboption,
    TepSuboption,
    encode_eno_option,
    parse_eno_option,
)
from tcpcrypt.errors import DecodeError, UsageError


class Role(enum.Enum):
    A = "A"
    B = "B"


class EnoState(enum.Enum):
    PENDING = "pending"
    NEGOTIATED = "negotiated"
    FALLBACK = "fallback"


@dataclass(frozen=True, slots=True)
class EnoResult:
    role: Role
    tep: int
    a_data: bytes
    b_data: bytes
    transcript: bytes


Chooser = Callable[[Sequence[TepSuboption]], TepSuboption | None]


def negotiation_transcript(syn_option: bytes, synack_option: bytes) -> bytes:
    """Believed RFC behaviour: A's SYN option then B's SYN-ACK option, as on the wire."""
    return syn_option + synack_option


class EnoEndpoint:
    def __init__(
        self,
        offers: Sequence[TepSuboption],
        *,
        chooser: Chooser | None = None,
        want_b: bool = False,
    ) -> None:
        if not offers:
            raise UsageError("an ENO endpoint needs at least one TEP to offer")
        self.offers = tuple(offers)
        self._chooser = chooser or self._default_chooser
        self.want_b = want_b
        self.state = EnoState.PENDING
        self.role: Role | None = None
        self.result: EnoResult | None = None
        self.fallback_reason: str | None = None
        self._sent_syn: bytes | None = None
        self._received_syn: bytes | None = None
        self._received_syn_option: EnoOption | None = None
        self._sent_synack: bytes | None = None
        self._chosen: TepSuboption | None = None

    # --- helpers --------------------------------------------------------------------------
    def _fall_back(self, reason: str) -> None:
        self.state = EnoState.FALLBACK
        self.fallback_reason = reason

    def _default_chooser(self, offered: Sequence[TepSuboption]) -> TepSuboption | None:
        offered_teps = {offer.tep for offer in offered}
        return next((own for own in self.offers if own.tep in offered_teps), None)

    @staticmethod
    def _parse(option: bytes) -> EnoOption | None:
        try:
            return parse_eno_option(option)
        except DecodeError:
            return None

    # --- host A ---------------------------------------------------------------------------
    def syn_option(self) -> bytes:
        """The ENO option for our SYN (this makes us the active opener)."""
        if self._sent_syn is not None or self._received_syn is not None:
            raise UsageError("syn_option: a SYN was already sent or received")
        suboptions: list[Suboption] = [GlobalSuboption(b=True)] if self.want_b else []
        suboptions.extend(self.offers)
        self._sent_syn = encode_eno_option(EnoOption(tuple(suboptions)))
        self.role = Role.A
        return self._sent_syn

    def on_synack(self, option: bytes | None) -> None:
        """A receives B's SYN-ACK option (None: there was none)."""
        if self.role is not Role.A or self._sent_syn is None:
            raise UsageError("on_synack: only the active opener (A) receives a SYN-ACK")
        if self.state is not EnoState.PENDING:
            return
        if option is None:
            self._fall_back("no-eno-synack")
            return
        parsed = self._parse(option)
        if parsed is None:
            self._fall_back("malformed-option")
            return
        ours = {offer.tep: offer for offer in self.offers}
        common = [tep for tep in parsed.teps if tep.tep in ours]
        if not common:
            self._fall_back("no-common-tep")
            return
        chosen = common[-1]
        self.state = EnoState.NEGOTIATED
        self.result = EnoResult(
            Role.A, chosen.tep, ours[chosen.tep].data, chosen.data,
            negotiation_transcript(self._sent_syn, option),
        )

    def ack_option(self) -> bytes:
        """A's first ACK: an ENO option without suboptions."""
        if self.role is not Role.A or self.state is not EnoState.NEGOTIATED:
            raise UsageError("ack_option: only a negotiated A sends ENO on its first ACK")
        return encode_eno_option(EnoOption())

    # --- host B ---------------------------------------------------------------------------
    def on_syn(self, option: bytes | None) -> None:
        """A SYN arrived (passive open, or the peer's SYN in a simultaneous open)."""
        if self._received_syn is not None:
            raise UsageError("on_syn: a SYN was already received")
        self._received_syn = option if option is not None else b""
        if self._sent_syn is None:
            self.role = Role.B
        if option is None:
            self._fall_back("no-eno-syn")
            return
        parsed = self._parse(option)
        if parsed is None:
            self._fall_back("malformed-option")
            return
        self._received_syn_option = parsed
        if self._sent_syn is None:
            return
        # Simultaneous open: the b bits decide.
        peer_global = parsed.global_suboption
        peer_b = bool(peer_global and peer_global.b)
        if peer_b == self.want_b:
            self._fall_back("role-conflict")
            return
        self.role = Role.B if self.want_b else Role.A

    def synack_option(self) -> bytes | None:
        """B's SYN-ACK option with the chosen TEP, or None (fall back: send no option)."""
        if self.role is Role.A or self._received_syn is None:
            if self.state is EnoState.FALLBACK:
                return None
            raise UsageError("synack_option: only host B, after a SYN, answers")
        if self.state is not EnoState.PENDING or self._received_syn_option is None:
            return None
        if self._sent_synack is not None:
            return self._sent_synack
        chosen = self._chooser(self._received_syn_option.teps)
        if chosen is None:
            self._fall_back("no-common-tep")
            return None
        suboptions: list[Suboption] = [GlobalSuboption(b=True)] if self.want_b else []
        suboptions.append(chosen)
        self._chosen = chosen
        self._sent_synack = encode_eno_option(EnoOption(tuple(suboptions)))
        return self._sent_synack

    def on_ack(self, option: bytes | None) -> None:
        """B receives A's first ACK: only an ENO option there confirms the negotiation."""
        if self.role is not Role.B:
            raise UsageError("on_ack: only host B checks A's first ACK")
        if self.state is not EnoState.PENDING:
            return
        if self._sent_synack is None or self._chosen is None:
            raise UsageError("on_ack: no SYN-ACK option was sent")
        if option is None:
            self._fall_back("no-eno-ack")
            return
        if self._parse(option) is None:
            self._fall_back("malformed-option")
            return
        assert self._received_syn_option is not None and self._received_syn is not None
        a_offer = next(
            (t for t in self._received_syn_option.teps if t.tep == self._chosen.tep), None
        )
        self.state = EnoState.NEGOTIATED
        self.result = EnoResult(
            Role.B, self._chosen.tep, a_offer.data if a_offer else b"", self._chosen.data,
            negotiation_transcript(self._received_syn, self._sent_synack),
        )
