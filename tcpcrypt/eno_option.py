"""The TCP-ENO option (RFC 8547): parsing and encoding its suboptions.

Wire form: kind 69, length, then suboptions. A suboption byte with the high bit (v) clear is
either the global suboption (0x00-0x1f: bit 0x01 = b, bits 0x06 = application-aware) or a TEP
identifier without data (0x20-0x7f). A byte 0x80-0x9f is a length byte 100nnnnn: the next
nnnnn+1 bytes are one suboption, a TEP byte with v set followed by its data (believed RFC
behaviour: the count includes the TEP byte). A TEP byte with v set and no length byte before it
takes every remaining byte of the option as its data, so it must come last. Receipt of the
drafts' experimental form (kind 253, ExID 0x454E) is accepted too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from tcpcrypt.constants import ENO_EXID, ENO_OPTION_KIND, EXPERIMENTAL_OPTION_KIND
from tcpcrypt.errors import DecodeError, UsageError

MAX_TCP_OPTION: Final = 40
V_BIT: Final = 0x80
GLOBAL_B_BIT: Final = 0x01
# Believed RFC behaviour: the application-aware field is bits 0x06 of the global suboption.
GLOBAL_APP_AWARE_MASK: Final = 0x06
GLOBAL_APP_AWARE_SHIFT: Final = 1
LENGTH_BYTE_MIN: Final = 0x80
LENGTH_BYTE_MAX: Final = 0x9F
TEP_MIN: Final = 0x20
TEP_MAX: Final = 0x7F


@dataclass(frozen=True, slots=True)
class GlobalSuboption:
    b: bool = False
    application_aware: int = 0


@dataclass(frozen=True, slots=True)
class TepSuboption:
    tep: int
    data: bytes = b""


Suboption = GlobalSuboption | TepSuboption


@dataclass(frozen=True, slots=True)
class EnoOption:
    suboptions: tuple[Suboption, ...] = ()

    @property
    def global_suboption(self) -> GlobalSuboption | None:
        first = self.suboptions[0] if self.suboptions else None
        return first if isinstance(first, GlobalSuboption) else None

    @property
    def teps(self) -> tuple[TepSuboption, ...]:
        return tuple(s for s in self.suboptions if isinstance(s, TepSuboption))


def _option_body(option: bytes) -> bytes:
    if len(option) < 2:
        raise DecodeError("eno-truncated", "option shorter than its kind and length bytes")
    kind, length = option[0], option[1]
    if length < 2 or length > len(option):
        raise DecodeError("eno-bad-length", f"length byte {length} for {len(option)} bytes")
    if kind == ENO_OPTION_KIND:
        return option[2:length]
    if kind == EXPERIMENTAL_OPTION_KIND:
        if length < 4:
            raise DecodeError("eno-truncated", "experimental option without its ExID")
        if int.from_bytes(option[2:4], "big") != ENO_EXID:
            raise DecodeError("eno-bad-kind", "experimental option with another ExID")
        return option[4:length]
    raise DecodeError("eno-bad-kind", f"option kind {kind}")


def parse_eno_option(option: bytes) -> EnoOption:
    """Parse a whole TCP option (kind, length, body); bytes past its length are ignored."""
    body = _option_body(option)
    suboptions: list[Suboption] = []
    position = 0
    while position < len(body):
        byte = body[position]
        if byte < TEP_MIN:
            if suboptions:
                raise DecodeError("eno-bad-suboption", "global suboption not first")
            suboptions.append(
                GlobalSuboption(
                    bool(byte & GLOBAL_B_BIT),
                    (byte & GLOBAL_APP_AWARE_MASK) >> GLOBAL_APP_AWARE_SHIFT,
                )
            )
            if byte & ~(GLOBAL_B_BIT | GLOBAL_APP_AWARE_MASK):
                raise DecodeError("eno-bad-suboption", f"reserved global bits in 0x{byte:02x}")
            position += 1
        elif byte <= TEP_MAX:
            suboptions.append(TepSuboption(byte))
            position += 1
        elif byte <= LENGTH_BYTE_MAX:
            count = (byte & 0x1F) + 1
            chunk = body[position + 1 : position + 1 + count]
            if len(chunk) < count:
                raise DecodeError("eno-truncated", "length byte runs past the option")
            if chunk[0] < V_BIT | TEP_MIN:
                raise DecodeError("eno-bad-suboption", "length byte not followed by a TEP")
            suboptions.append(TepSuboption(chunk[0] & ~V_BIT, bytes(chunk[1:])))
            position += 1 + count
        else:
            suboptions.append(TepSuboption(byte & ~V_BIT, bytes(body[position + 1 :])))
            position = len(body)
    return EnoOption(tuple(suboptions))


def _encode_suboption(suboption: Suboption, last: bool) -> bytes:
    if isinstance(suboption, GlobalSuboption):
        if not 0 <= suboption.application_aware <= 3:
            raise UsageError("application_aware must be 0..3")
        return bytes(
            (int(suboption.b) | suboption.application_aware << GLOBAL_APP_AWARE_SHIFT,)
        )
    if not TEP_MIN <= suboption.tep <= TEP_MAX:
        raise UsageError(f"TEP 0x{suboption.tep:02x} outside 0x20..0x7f")
    if not suboption.data:
        return bytes((suboption.tep,))
    if last:
        return bytes((suboption.tep | V_BIT,)) + suboption.data
    count = 1 + len(suboption.data)
    if count > 32:
        raise UsageError("TEP data too long for a length byte")
    return bytes((LENGTH_BYTE_MIN | (count - 1), suboption.tep | V_BIT)) + suboption.data


def encode_eno_option(option: EnoOption) -> bytes:
    """The option as kind 69, length, suboptions; UsageError if it cannot be encoded."""
    for index, suboption in enumerate(option.suboptions):
        if isinstance(suboption, GlobalSuboption) and index != 0:
            raise UsageError("the global suboption must come first")
    count = len(option.suboptions)
    body = b"".join(
        _encode_suboption(s, index == count - 1) for index, s in enumerate(option.suboptions)
    )
    if 2 + len(body) > MAX_TCP_OPTION:
        raise UsageError(f"ENO option of {2 + len(body)} bytes exceeds {MAX_TCP_OPTION}")
    return bytes((ENO_OPTION_KIND, 2 + len(body))) + body
