"""Two `TcpcryptConnection`s, A and B, connected in memory.

The handshake's options pass through an optional `option_filter` (a path that strips or
mangles options), the stream's bytes through an optional `transform` (a path that splits,
merges, delays or corrupts). Used by tests, by the `protocol-costs` experiment and by the
simulator; no sockets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tcpcrypt.config import TcpcryptConfig
from tcpcrypt.connection import ConnectionState, TcpcryptConnection
from tcpcrypt.events import ConnectionReset, DataReceived, Event, Fallback
from tcpcrypt.randomness import RandomSource
from tcpcrypt.resumption import ResumptionCache
from tcpcrypt.suites import RsaKeyHolder

# (segment name: "syn" | "synack" | "ack", option or None) -> option or None
OptionFilter = Callable[[str, bytes | None], bytes | None]
# (direction: "a->b" | "b->a", bytes written) -> the pieces that arrive, in order
StreamTransform = Callable[[str, bytes], list[bytes]]


@dataclass
class Endpoint:
    """One side of the pair with everything it has received and reported."""

    connection: TcpcryptConnection
    received: bytearray = field(default_factory=bytearray)
    events: list[Event] = field(default_factory=list)


@dataclass
class Pair:
    a: Endpoint
    b: Endpoint
    transform: StreamTransform | None = None

    def pump(self, max_rounds: int = 10_000) -> None:
        """Move bytes both ways until neither side has anything more to send."""
        for _ in range(max_rounds):
            moved = self._move(self.a, self.b, "a->b") | self._move(self.b, self.a, "b->a")
            if not moved:
                return
        raise RuntimeError("pair did not settle")

    def _move(self, sender: Endpoint, receiver: Endpoint, direction: str) -> bool:
        data = sender.connection.data_to_send()
        self._drain(sender)
        if not data:
            return False
        pieces = self.transform(direction, data) if self.transform else [data]
        for piece in pieces:
            receiver.connection.receive(piece)
        self._drain(receiver)
        return True

    @staticmethod
    def _drain(endpoint: Endpoint) -> None:
        while (event := endpoint.connection.next_event()) is not None:
            endpoint.events.append(event)
            if isinstance(event, DataReceived):
                endpoint.received += event.data

    @property
    def encrypted(self) -> bool:
        return (
            self.a.connection.state is ConnectionState.ESTABLISHED
            and self.b.connection.state is ConnectionState.ESTABLISHED
        )

    def outcome(self) -> str:
        """"encrypted", "fallback" or "reset" (with the first reason seen)."""
        for endpoint in (self.a, self.b):
            for event in endpoint.events:
                if isinstance(event, ConnectionReset):
                    return f"reset:{event.reason}"
        for endpoint in (self.a, self.b):
            for event in endpoint.events:
                if isinstance(event, Fallback):
                    return f"fallback:{event.reason}"
        return "encrypted" if self.encrypted else "pending"


def connect_pair(
    config_a: TcpcryptConfig | None = None,
    config_b: TcpcryptConfig | None = None,
    *,
    random_a: RandomSource,
    random_b: RandomSource,
    cache_a: ResumptionCache | None = None,
    cache_b: ResumptionCache | None = None,
    rsa_keys: RsaKeyHolder | None = None,
    option_filter: OptionFilter | None = None,
    transform: StreamTransform | None = None,
    now: float = 0.0,
) -> Pair:
    """Run the TCP-ENO handshake and the key exchange between a new A and a new B."""
    keep: OptionFilter = option_filter or (lambda _segment, option: option)
    a = TcpcryptConnection(
        active=True, config=config_a, random=random_a, cache=cache_a, rsa_keys=rsa_keys,
        peer="b", now=now,
    )
    b = TcpcryptConnection(
        active=False, config=config_b, random=random_b, cache=cache_b, rsa_keys=rsa_keys, now=now
    )
    b.on_syn(keep("syn", a.syn_option()))
    a.on_synack(keep("synack", b.synack_option()))
    b.on_ack(keep("ack", a.ack_option()))
    pair = Pair(Endpoint(a), Endpoint(b), transform)
    pair.pump()
    return pair
