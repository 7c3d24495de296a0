"""The middlebox base class, its actions, and the direction and flow of a packet."""

from __future__ import annotations

import enum
import math
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from packets.errors import MalformedPacket
from packets.tcp import TcpPacket, parse_packet


class Direction(enum.Enum):
    TO_SERVER = "to-server"
    TO_CLIENT = "to-client"

    @property
    def reverse(self) -> Direction:
        return Direction.TO_CLIENT if self is Direction.TO_SERVER else Direction.TO_SERVER


@dataclass(frozen=True, slots=True)
class Forward:
    packet: bytes


@dataclass(frozen=True, slots=True)
class Drop:
    reason: str


@dataclass(frozen=True, slots=True)
class Delay:
    seconds: float
    packet: bytes


@dataclass(frozen=True, slots=True)
class Inject:
    packet: bytes
    direction: Direction


Action = Forward | Drop | Delay | Inject


class EnoEffect(enum.Enum):
    """What a model does to the TCP-ENO handshake (RFC 8547) of a connection it carries."""

    PASSES = "passes"  # ENO reaches the peer in the SYN and the SYN-ACK: tcpcrypt encrypts
    STRIPPED = "stripped"  # removed from the SYN or the SYN-ACK: both ends fall back to TCP
    BLOCKED = "blocked"  # a handshake carrying ENO is refused or dropped (fail closed): broken
FlowKey = tuple[bytes, int, bytes, int]  # client address, client port, server address, port


def flow_key(packet: TcpPacket, direction: Direction) -> FlowKey:
    """The flow a packet belongs to, the same for both of its directions."""
    if direction is Direction.TO_SERVER:
        return (packet.ip.src, packet.src_port, packet.ip.dst, packet.dst_port)
    return (packet.ip.dst, packet.dst_port, packet.ip.src, packet.src_port)


class MiddleboxConfigError(ValueError):
    """A model was given a parameter it cannot honour; raised before anything runs."""


Timed = tuple[Direction, Action]  # an action a model takes on a timer, with its direction


class Scope(enum.IntEnum):
    """What a model must see of a path whose hosts keep their segmentation offloads, where
    data arrives as super-packets of up to 64 KB (many wire segments in one). Ordered: a
    chain needs the most any of its models needs.

    NOTHING: forwards everything unchanged (pass-through): the engine need not parse packets.
    CONTROL: acts only on segments carrying SYN, FIN or RST; the others cross unparsed.
    PACKETS: acts on every packet, and acting on a super-packet equals acting on each of its
        wire segments (address, port and sequence rewriting; a fixed delay).
    SEGMENTS: behaves per wire segment (loss, reordering, segment boundaries, one ACK per
        segment): the engine splits super-packets into wire-sized segments first.
    """

    NOTHING = 0
    CONTROL = 1
    PACKETS = 2
    SEGMENTS = 3


class Middlebox:
    """Subclasses override `process`; a model that holds packets back (a coalescer) also
    overrides `next_timer` and `expire`, which engines call when the time comes. `scope`
    says what the model must see (see `Scope`); a model whose need depends on its parameters
    overrides `needs()` instead.

    `ranges` gives each numeric parameter its accepted range (inclusive; a list parameter's
    items each); the constructor calls `check_ranges`, so a bad value is refused before
    anything runs, and `testbed list` shows the ranges."""

    name: ClassVar[str] = "middlebox"
    scope: ClassVar[Scope] = Scope.SEGMENTS  # the safe default for a model that says nothing
    ranges: ClassVar[Mapping[str, tuple[float, float]]] = {}
    choices: ClassVar[Mapping[str, tuple[str, ...]]] = {}  # a text parameter's values

    def needs(self) -> Scope:
        """What this instance must see of the packets (engines split super-packets for
        SEGMENTS, hand every packet to the model for PACKETS, only SYN/FIN/RST for CONTROL)."""
        return self.scope

    def __init__(self) -> None:
        self.stats: Counter[str] = Counter()
        self.errors: deque[str] = deque(maxlen=5)  # the last model errors, for reports

    def check_ranges(self, **values: float | tuple[int, ...]) -> None:
        """MiddleboxConfigError unless each value is finite and within its declared range."""
        for label, value in values.items():
            low, high = self.ranges[label]
            for number in value if isinstance(value, tuple) else (value,):
                if isinstance(number, bool) or not isinstance(number, (int, float)):
                    raise MiddleboxConfigError(f"{self.name}: {label} must be a number")
                if not math.isfinite(number) or not low <= number <= high:
                    raise MiddleboxConfigError(
                        f"{self.name}: {label} must be in {span(low, high)}, got {number}")

    def process(self, packet: TcpPacket, direction: Direction, now: float) -> list[Action]:
        return [Forward(packet.raw)]

    def eno_effect(self, port: int) -> EnoEffect:
        """This model's effect on the ENO handshake of a connection to server `port`; the
        outcome every experiment predicts comes from it (`middleboxes.outcomes`). A model
        that removes, rewrites or refuses unknown TCP options overrides it."""
        return EnoEffect.PASSES

    def next_timer(self) -> float | None:
        """The time at which `expire` has something to release; None: nothing held."""
        return None

    def expire(self, now: float) -> list[Timed]:
        """The actions due by `now` on packets the model held back, each with its direction."""
        return []

    def holds_packets(self) -> bool:
        """Whether the model may hold packets back (engines then watch `next_timer`)."""
        return type(self).next_timer is not Middlebox.next_timer

    def release(self, now: float) -> list[Timed]:
        """`expire`, with the same protection as `handle`: an error is counted, not raised."""
        try:
            timed = self.expire(now)
        except Exception as error:  # a buggy model must not kill the engine
            self._model_error(error)
            return []
        for _, action in timed:
            self.stats[type(action).__name__.lower()] += 1
        return timed

    def _model_error(self, error: Exception) -> str:
        reason = f"model-error: {type(error).__name__}: {error}"
        self.stats["dropped:model-error"] += 1
        self.errors.append(f"{self.describe()}: {type(error).__name__}: {error}")
        return reason

    def handle(self, raw: bytes, direction: Direction, now: float) -> list[Action]:
        """Parse and process one packet; malformed packets and model errors become drops."""
        self.stats["seen"] += 1
        try:
            packet = parse_packet(raw)
        except MalformedPacket as error:
            self.stats[f"dropped:{error.reason}"] += 1
            return [Drop(error.reason)]
        try:
            actions = self.process(packet, direction, now)
        except Exception as error:  # a buggy model must not kill the engine
            return [Drop(self._model_error(error))]
        for action in actions:
            self.stats[type(action).__name__.lower()] += 1
        return actions

    def describe(self) -> str:
        """The canonical command-line form, e.g. "link(delay_ms=10)"."""
        params = getattr(self, "params", {})
        if not params:
            return self.name
        body = ",".join(f"{key}={_render(value)}" for key, value in params.items())
        return f"{self.name}({body})"


def span(low: float, high: float) -> str:
    """"low..high" with whole numbers written whole (0..4294967295, 0.001..1000)."""
    return "..".join(str(int(x)) if float(x).is_integer() else f"{x:g}" for x in (low, high))


def _render(value: object) -> str:
    if isinstance(value, tuple):
        return "|".join(str(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
