"""What one tcpcrypt endpoint offers and how it frames: `TcpcryptConfig`."""

from __future__ import annotations

from dataclasses import dataclass

from tcpcrypt.aead import aead_by_name
from tcpcrypt.errors import UsageError
from tcpcrypt.frames import DEFAULT_MAX_FRAME_PLAINTEXT
from tcpcrypt.suites import get_suite


@dataclass(frozen=True)
class TcpcryptConfig:
    """Key-agreement suites and AEADs in preference order, frame size and rekey interval.

    `rekey_interval_bytes` = 0 never rekeys on its own; otherwise the sender moves to the next
    key once that many bytes of frames went out under the current one.
    """

    suites: tuple[str, ...] = ("x25519",)
    aeads: tuple[str, ...] = ("aes-128-gcm",)
    max_frame_plaintext: int = DEFAULT_MAX_FRAME_PLAINTEXT
    rekey_interval_bytes: int = 0

    def __post_init__(self) -> None:
        if not self.suites:
            raise UsageError("at least one key-agreement suite is needed")
        if not self.aeads:
            raise UsageError("at least one AEAD is needed")
        if len(set(self.suites)) != len(self.suites) or len(set(self.aeads)) != len(self.aeads):
            raise UsageError("suites and AEADs must not repeat")
        for name in self.suites:
            get_suite(name)
        for name in self.aeads:
            aead_by_name(name)
        if not 1 <= self.max_frame_plaintext <= 0xFFFF - 17:
            raise UsageError(f"max_frame_plaintext {self.max_frame_plaintext} out of range")
        if self.rekey_interval_bytes < 0:
            raise UsageError("rekey_interval_bytes must be >= 0")
