"""The TCP-ENO option (RFC 8547): parsing and encoding its suboptions.

Wire form: kind 69, length (counting the kind and length bytes), then suboptions, one byte each,
some with data:

* high bit (v) clear, 0x00-0x1f: the global suboption. Bit 0x01 is `b` (this host wants role B);
  bits 0x06 are the application-aware field (believed RFC behaviour); the other bits are
  reserved: sent as zero, ignored on receipt (believed RFC behaviour). It may stand anywhere
  among the suboptions (the reference implementation sends it after its TEPs); on receipt the
  first one counts and any later one is ignored (believed RFC behaviour, as a 2016 Linux TCP-ENO
  implementation reads it). The encoder writes at most one, where the caller puts it.
* v clear, 0x20-0x7f: a TEP identifier without data.
* 0x80-0x9f: a length byte `100nnnnn`. It is followed by a TEP byte with v set and then nnnnn+1
  bytes of data: nnnnn+2 bytes after the length byte, 1 to 32 bytes of data (believed RFC
  behaviour, as two 2016 Linux TCP-ENO implementations read it). So a TEP without data never
  has a length byte: it is written as its plain byte (v clear).
* 0xa0-0xff without a length byte in front: a TEP byte with v set whose data runs to the end of
  the option, so it must be the last suboption.

The encoder writes a TEP with empty data as its plain byte, the last suboption, when it is a TEP
with data, in the no-length-byte form, and any other TEP with data behind a length byte
(`length_byte`). Receipt of the drafts' experimental form (kind 253, ExID 0x454E) is accepted
too; the encoder always writes kind 69.

Malformed input raises `DecodeError` with one of the reasons "eno-truncated", "eno-bad-length",
"eno-bad-kind", "eno-bad-suboption"; an option the encoder cannot write raises `UsageError`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

from tcpcrypt.constants import ENO_EXID, ENO_OPTION_KIND, EXPERIMENTAL_OPTION_KIND
from tcpcrypt.errors import DecodeError, UsageError

# A TCP header has room for at most 40 bytes of options.
MAX_TCP_OPTION: Final = 40
OPTION_HEADER: Final = 2  # kind and length bytes
EXPERIMENTAL_HEADER: Final = 4  # kind, length and the 2-byte ExID
V_BIT: Final = 0x80
GLOBAL_B_BIT: Final = 0x01
# Believed RFC behaviour: the application-aware field is bits 0x06 of the global suboption.
GLOBAL_APP_AWARE_MASK: Final = 0x06
GLOBAL_APP_AWARE_SHIFT: Final = 1
GLOBAL_APP_AWARE_MAX: Final = GLOBAL_APP_AWARE_MASK >> GLOBAL_APP_AWARE_SHIFT
LENGTH_BYTE_MIN: Final = 0x80
LENGTH_BYTE_MAX: Final = 0x9F
LENGTH_BYTE_COUNT_MASK: Final = 0x1F
# Believed RFC behaviour: a length byte `100nnnnn` is followed by the v=1 TEP byte and then
# nnnnn+1 data bytes, so it carries 1 to 32 bytes of data (never none).
MIN_LENGTH_BYTE_DATA: Final = 1
MAX_LENGTH_BYTE_DATA: Final = LENGTH_BYTE_COUNT_MASK + 1
TEP_MIN: Final = 0x20
TEP_MAX: Final = 0x7F


@dataclass(frozen=True, slots=True)
class GlobalSuboption:
    """The global suboption: the `b` (role B) bit and the 2-bit application-aware field."""

    b: bool = False
    application_aware: int = 0


@dataclass(frozen=True, slots=True)
class TepSuboption:
    """One TEP identifier (0x20-0x7f) with its optional TEP-specific data."""

    tep: int
    data: bytes = b""


Suboption = GlobalSuboption | TepSuboption


@dataclass(frozen=True, slots=True)
class EnoOption:
    """A decoded ENO option: its suboptions in wire order."""

    suboptions: tuple[Suboption, ...] = ()

    @property
    def global_suboption(self) -> GlobalSuboption | None:
        """The (first) global suboption, wherever it stands; None when there is none."""
        return next((s for s in self.suboptions if isinstance(s, GlobalSuboption)), None)

    @property
    def teps(self) -> tuple[TepSuboption, ...]:
        return tuple(s for s in self.suboptions if isinstance(s, TepSuboption))


def _option_body(option: bytes) -> bytes:
    """The suboption bytes of a kind-69 or experimental-form option; trailing bytes ignored."""
    if len(option) < OPTION_HEADER:
        raise DecodeError("eno-truncated", "option shorter than its kind and length bytes")
    kind, length = option[0], option[1]
    if kind == ENO_OPTION_KIND:
        header = OPTION_HEADER
    elif kind == EXPERIMENTAL_OPTION_KIND:
        header = EXPERIMENTAL_HEADER
    else:
        raise DecodeError("eno-bad-kind", f"option kind {kind}")
    if length < header or length > MAX_TCP_OPTION:
        raise DecodeError("eno-bad-length", f"length byte {length} for option kind {kind}")
    if length > len(option):
        raise DecodeError("eno-truncated", f"length byte {length}, only {len(option)} bytes")
    if kind == EXPERIMENTAL_OPTION_KIND and int.from_bytes(option[2:4], "big") != ENO_EXID:
        raise DecodeError("eno-bad-kind", "experimental option with another ExID")
    return bytes(option[header:length])


def _global_suboption(byte: int) -> GlobalSuboption:
    # Reserved bits (0x18) are ignored on receipt.
    return GlobalSuboption(
        bool(byte & GLOBAL_B_BIT), (byte & GLOBAL_APP_AWARE_MASK) >> GLOBAL_APP_AWARE_SHIFT
    )


def parse_eno_option(option: bytes) -> EnoOption:
    """Parse a whole TCP option (kind, length, body); bytes past its length are ignored.

    The first global suboption is kept wherever it stands; later ones are left out.
    Results are immutable, so those of recent `bytes` inputs are remembered (a connection
    parses the same few options several times, and most connections carry the same ones);
    a bad option is parsed, and refused, every time.
    """
    if type(option) is bytes:
        return _parse_cached(option)
    return _parse(option)


def _parse(option: bytes) -> EnoOption:
    body = _option_body(option)
    suboptions: list[Suboption] = []
    seen_global = False
    position = 0
    while position < len(body):
        byte = body[position]
        if byte < TEP_MIN:
            if not seen_global:
                suboptions.append(_global_suboption(byte))
                seen_global = True
            position += 1
        elif byte <= TEP_MAX:
            suboptions.append(TepSuboption(byte))
            position += 1
        elif byte <= LENGTH_BYTE_MAX:
            # The TEP byte, then nnnnn+1 data bytes.
            data_size = (byte & LENGTH_BYTE_COUNT_MASK) + 1
            chunk = body[position + 1 : position + 2 + data_size]
            if len(chunk) < 1 + data_size:
                raise DecodeError("eno-truncated", "length byte runs past the option")
            if chunk[0] < V_BIT | TEP_MIN:
                raise DecodeError("eno-bad-suboption", "length byte not followed by a v=1 TEP")
            suboptions.append(TepSuboption(chunk[0] & ~V_BIT, chunk[1:]))
            position += 2 + data_size
        else:
            suboptions.append(TepSuboption(byte & ~V_BIT, body[position + 1 :]))
            position = len(body)
    return EnoOption(tuple(suboptions))


def _encode_global(suboption: GlobalSuboption) -> bytes:
    aware = suboption.application_aware
    if not isinstance(suboption.b, bool):
        raise UsageError("GlobalSuboption.b must be a bool")
    if not isinstance(aware, int) or not 0 <= aware <= GLOBAL_APP_AWARE_MAX:
        raise UsageError(f"application_aware must be 0..{GLOBAL_APP_AWARE_MAX}")
    return bytes((int(suboption.b) | aware << GLOBAL_APP_AWARE_SHIFT,))


def length_byte(data_size: int) -> int:
    """The length byte `100nnnnn` in front of a TEP byte with `data_size` (1-32) data bytes."""
    if not MIN_LENGTH_BYTE_DATA <= data_size <= MAX_LENGTH_BYTE_DATA:
        raise UsageError(
            f"a length byte carries {MIN_LENGTH_BYTE_DATA} to {MAX_LENGTH_BYTE_DATA} data bytes, "
            f"not {data_size} (a TEP without data is written as its plain byte)"
        )
    return LENGTH_BYTE_MIN | (data_size - 1)


def _encode_tep(suboption: TepSuboption, last: bool) -> bytes:
    tep, data = suboption.tep, suboption.data
    if not isinstance(tep, int) or not TEP_MIN <= tep <= TEP_MAX:
        raise UsageError(f"TEP {tep!r} outside 0x20..0x7f")
    if not isinstance(data, bytes):
        raise UsageError("TEP data must be bytes")
    if not data:
        return bytes((tep,))
    if last:
        return bytes((tep | V_BIT,)) + data
    if len(data) > MAX_LENGTH_BYTE_DATA:
        raise UsageError(f"TEP data of {len(data)} bytes too long for a length byte (at most "
                         f"{MAX_LENGTH_BYTE_DATA}) before another suboption")
    return bytes((length_byte(len(data)), tep | V_BIT)) + data


def encode_eno_option(option: EnoOption) -> bytes:
    """The option as kind 69, length, suboptions; UsageError if it cannot be encoded.

    Options made only of exactly-typed fields (int, bytes, bool: equal values encode alike)
    are encoded once and remembered; anything else is checked and encoded every time."""
    if type(option) is EnoOption and _plainly_typed(option.suboptions):
        return _encode_cached(option)
    return _encode(option)


def _plainly_typed(suboptions: object) -> bool:
    if type(suboptions) is not tuple:
        return False
    for suboption in suboptions:
        kind = type(suboption)
        if kind is TepSuboption:
            if type(suboption.tep) is not int or type(suboption.data) is not bytes:
                return False
        elif kind is GlobalSuboption:
            if type(suboption.b) is not bool or type(suboption.application_aware) is not int:
                return False
        else:
            return False
    return True


def _encode(option: EnoOption) -> bytes:
    count = len(option.suboptions)
    parts: list[bytes] = []
    seen_global = False
    for index, suboption in enumerate(option.suboptions):
        if isinstance(suboption, GlobalSuboption):
            if seen_global:
                raise UsageError("an ENO option carries at most one global suboption")
            seen_global = True
            parts.append(_encode_global(suboption))
        elif isinstance(suboption, TepSuboption):
            parts.append(_encode_tep(suboption, index == count - 1))
        else:
            raise UsageError(f"not an ENO suboption: {suboption!r}")
    body = b"".join(parts)
    if OPTION_HEADER + len(body) > MAX_TCP_OPTION:
        raise UsageError(f"ENO option of {OPTION_HEADER + len(body)} bytes exceeds 40")
    return bytes((ENO_OPTION_KIND, OPTION_HEADER + len(body))) + body


_parse_cached = functools.lru_cache(maxsize=512)(_parse)
_encode_cached = functools.lru_cache(maxsize=512)(_encode)
