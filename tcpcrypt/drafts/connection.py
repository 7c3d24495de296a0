"""One endpoint of a drafts-profile session (tcpcrypt-02 over eno-03), sans-IO.

Built once TCP-ENO is settled (the SYN's and SYN-ACK's kind-253 options are known), it runs the
full key exchange on the stream, then frames. A sends Init1 first; B answers Init2 and may send
data right after it; A may send data once Init2 arrived. Session resumption is not part of this
profile. Input errors raise PeerError: the caller must then reset the connection.
"""

from __future__ import annotations

from typing import Final, Literal

from tcpcrypt.drafts import eno03, handshake
from tcpcrypt.drafts.records import DraftOpener, DraftSealer
from tcpcrypt.errors import PeerError, UsageError
from tcpcrypt.randomness import RandomSource, system_random

Role = Literal["A", "B"]
_INIT_HEADER: Final = 8


class DraftConnection:
    """`role` A or B; `syn_option`/`synack_option` as on the wire; `aeads` offered (A) or
    accepted in preference order (B)."""

    def __init__(self, role: Role, syn_option: bytes, synack_option: bytes, *,
                 aeads: tuple[int, ...] = (0x01,), random: RandomSource = system_random) -> None:
        if role not in ("A", "B"):
            raise UsageError(f"role is A or B, not {role!r}")
        for aead in aeads:
            handshake.draft_aead(aead)
        self.role: Role = role
        self.tep = eno03.negotiated_tep(syn_option, synack_option)
        self._suite = handshake.draft_suite(self.tep)
        self._transcript = eno03.transcript(syn_option, synack_option)
        self._aeads = aeads
        self._random = random
        self._incoming = bytearray()
        self._outgoing = bytearray()
        self._pending_plaintext = bytearray()
        self._received = bytearray()
        self._sealer: DraftSealer | None = None
        self._opener: DraftOpener | None = None
        self.session_id: bytes | None = None
        self.aead: int | None = None
        self._init1 = b""
        if role == "A":
            self._nonce = random(handshake.NONCE_LENGTH)
            self._private, point = self._suite.a_start(random)
            self._init1 = handshake.encode_init1(aeads, self._nonce, point)
            self._outgoing += self._init1

    @property
    def established(self) -> bool:
        return self.session_id is not None

    @property
    def peer_finished(self) -> bool:
        return self._opener is not None and self._opener.fin

    def receive(self, stream: bytes) -> None:
        """Bytes read from the TCP stream."""
        if self._opener is not None:
            self._received += self._opener.feed(stream)
            return
        self._incoming += stream
        if len(self._incoming) < _INIT_HEADER:
            return
        magic = handshake.INIT2_MAGIC if self.role == "A" else handshake.INIT1_MAGIC
        length = handshake.message_length(bytes(self._incoming[:_INIT_HEADER]), magic)
        if len(self._incoming) < length:
            return
        message = bytes(self._incoming[:length])
        rest = bytes(self._incoming[length:])
        self._incoming.clear()
        if self.role == "A":
            self._a_finish(message)
        else:
            self._b_respond(message)
        if rest:
            self.receive(rest)

    def _a_finish(self, message: bytes) -> None:
        init2 = handshake.parse_init2(message, self._suite)
        if init2.aead not in self._aeads:
            raise PeerError("unknown-aead", f"B chose AEAD 0x{init2.aead:02x}, not offered")
        shared = self._suite.a_finish(self._private, init2.point)
        self._start_frames(init2.aead, message, shared, self._nonce)

    def _b_respond(self, message: bytes) -> None:
        init1 = handshake.parse_init1(message, self._suite)
        chosen = next((aead for aead in self._aeads if aead in init1.aeads), None)
        if chosen is None:
            raise PeerError("no-common-aead", f"A offered {bytes(init1.aeads).hex()}")
        point, shared = self._suite.b_respond(init1.point, self._random)
        init2 = handshake.encode_init2(chosen, self._random(handshake.NONCE_LENGTH), point)
        self._init1 = message
        self._outgoing += init2
        self._start_frames(chosen, init2, shared, init1.nonce)

    def _start_frames(self, aead_id: int, init2: bytes, shared: bytes, nonce_a: bytes) -> None:
        aead = handshake.draft_aead(aead_id)
        keys = handshake.derive_keys(transcript=self._transcript, init1=self._init1,
                                     init2=init2, shared=shared, nonce_a=nonce_a,
                                     tep=self.tep, aead=aead)
        mine, theirs = (keys.key_a, keys.key_b) if self.role == "A" else (keys.key_b, keys.key_a)
        self._sealer = DraftSealer(aead, mine)
        self._opener = DraftOpener(aead, theirs)
        self.aead = aead_id
        self.session_id = keys.session_id
        if self._pending_plaintext:
            self._outgoing += self._sealer.seal_all(bytes(self._pending_plaintext))
            self._pending_plaintext.clear()

    def send(self, data: bytes) -> None:
        """Application data to protect (held until the keys exist)."""
        if self._sealer is None:
            self._pending_plaintext += data
        else:
            self._outgoing += self._sealer.seal_all(data)

    def data_to_send(self) -> bytes:
        out = bytes(self._outgoing)
        self._outgoing.clear()
        return out

    def read(self) -> bytes:
        """The application data received so far and not yet read."""
        out = bytes(self._received)
        self._received.clear()
        return out
