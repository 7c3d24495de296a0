"""The daemon's iptables rules: what they are, installing them, and removing exactly them.

Three jobs. (1) NFQUEUE sees only handshake packets: a connection's conntrack mark walks through
a small state machine (SYN seen, SYN-ACK seen, done) so that the SYN, the SYN-ACK and host A's
segments until B's first non-SYN segment are queued, and nothing after. (2) Connections to the
covered ports are redirected (nat REDIRECT) to the daemon's two proxy ports: outgoing ones
(local applications connecting out) and incoming ones (peers connecting in). The daemon's own
sockets carry a socket mark and are exempt. (3) A guard in the filter table's INPUT chain lets
a new connection reach a proxy port only when the socket there is transparent (IP_TRANSPARENT,
which only a privileged process can set; the proxy's listeners and the sockets they accept are):
a killed daemon's leftover redirect rules then refuse covered connections (fail closed) instead
of handing them, in plaintext, to whoever binds the proxy port next. The proxy ports are also
privileged ports (see main.py), so an unprivileged user cannot bind them in the first place.

Every rule lives in chains named TCPCRYPTD-*, reached by jumps from the built-in chains that
carry the comment `tcpcryptd`; removal deletes those jumps and chains and nothing else, so it
also works after the daemon was killed (`tcpcryptd --cleanup`).
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

COMMENT: Final = "tcpcryptd"
CHAIN_PREFIX: Final = "TCPCRYPTD-"
SOCKET_MARK: Final = 0x7463  # on the daemon's own sockets: never redirected, never queued
CONNMARK_MASK: Final = 0xF00
A_SYN: Final = 0x100  # A sent a SYN
A_WAIT: Final = 0x200  # A saw the SYN-ACK; A's segments are queued until B sends a non-SYN one
A_DONE: Final = 0x300
B_SYN: Final = 0x400  # B received a SYN on a covered port
B_WAIT: Final = 0x500  # B sent the SYN-ACK; A's segments are queued until B sends a non-SYN one
B_DONE: Final = 0x600
TABLES: Final = ("filter", "mangle", "nat")  # installed in this order: the guard first
REMOVAL_ORDER: Final = ("nat", "mangle", "filter")  # the redirects go before the guard


class RulesError(RuntimeError):
    """iptables refused a rule (message from iptables included)."""


@dataclass(frozen=True)
class RuleSettings:
    queue_num: int
    ports: tuple[int, ...]
    outgoing_proxy_port: int
    incoming_proxy_port: int


def _mark(value: int) -> str:
    return f"0x{value:x}/0x{CONNMARK_MASK:x}"


def restore_input(settings: RuleSettings) -> str:
    """The rules as `iptables-restore --noflush` input (one transaction per table)."""
    queue = f"-j NFQUEUE --queue-num {settings.queue_num} --queue-bypass"
    ports = ",".join(str(port) for port in settings.ports)
    syn = "-p tcp --tcp-flags SYN,ACK SYN"
    synack = "-p tcp --tcp-flags SYN,ACK SYN,ACK"
    not_syn = "-p tcp --tcp-flags SYN NONE"
    tag = f"-m comment --comment {COMMENT}"
    proxy_ports = f"{settings.outgoing_proxy_port},{settings.incoming_proxy_port}"
    new_to_proxy = f"-p tcp --syn -m multiport --dports {proxy_ports}"
    lines = [
        "*filter",
        f":{CHAIN_PREFIX}GUARD - [0:0]",
        # after nat: a redirected SYN reaches a proxy port only if the daemon listens there
        # (a transparent socket: its listener, or a TIME_WAIT left by a socket it accepted)
        f"-A {CHAIN_PREFIX}GUARD {new_to_proxy} -m socket --nowildcard --transparent -j RETURN",
        f"-A {CHAIN_PREFIX}GUARD {new_to_proxy} -j REJECT --reject-with tcp-reset",
        f"-I INPUT 1 -p tcp {tag} -j {CHAIN_PREFIX}GUARD",
        "COMMIT",
        "*mangle",
        f":{CHAIN_PREFIX}OUT - [0:0]",
        f":{CHAIN_PREFIX}IN - [0:0]",
    ]
    steps = {"A-SYN": A_SYN, "A-SYNACK": A_WAIT, "B-SYN": B_SYN, "B-SYNACK": B_WAIT}
    lines += [f":{CHAIN_PREFIX}{name} - [0:0]" for name in steps]
    for name, value in steps.items():
        lines.append(f"-A {CHAIN_PREFIX}{name} -j CONNMARK --set-xmark {_mark(value)}")
        lines.append(f"-A {CHAIN_PREFIX}{name} {queue}")
    lines += [
        # locally originated: our own SYNs (host A), A's segments, our SYN-ACKs (host B)
        f"-A {CHAIN_PREFIX}OUT {syn} -m mark --mark 0x{SOCKET_MARK:x} -j {CHAIN_PREFIX}A-SYN",
        f"-A {CHAIN_PREFIX}OUT -m connmark --mark {_mark(A_WAIT)} -m conntrack --ctdir ORIGINAL "
        f"{queue}",
        f"-A {CHAIN_PREFIX}OUT {synack} -m connmark --mark {_mark(B_SYN)} "
        f"-j {CHAIN_PREFIX}B-SYNACK",
        # a retransmitted SYN-ACK needs the same option again
        f"-A {CHAIN_PREFIX}OUT {synack} -m connmark --mark {_mark(B_WAIT)} {queue}",
        f"-A {CHAIN_PREFIX}OUT {not_syn} -m connmark --mark {_mark(B_WAIT)} "
        f"-m conntrack --ctdir REPLY -j CONNMARK --set-xmark {_mark(B_DONE)}",
        # arriving from the network: peers' SYNs (host B), A's segments, SYN-ACKs (host A)
        f"-A {CHAIN_PREFIX}IN {syn} -m multiport --dports {ports} -j {CHAIN_PREFIX}B-SYN",
        f"-A {CHAIN_PREFIX}IN -m connmark --mark {_mark(B_WAIT)} -m conntrack --ctdir ORIGINAL "
        f"{queue}",
        f"-A {CHAIN_PREFIX}IN {synack} -m connmark --mark {_mark(A_SYN)} "
        f"-j {CHAIN_PREFIX}A-SYNACK",
        f"-A {CHAIN_PREFIX}IN {not_syn} -m connmark --mark {_mark(A_WAIT)} "
        f"-m conntrack --ctdir REPLY -j CONNMARK --set-xmark {_mark(A_DONE)}",
        f"-A OUTPUT ! -o lo -p tcp {tag} -j {CHAIN_PREFIX}OUT",
        f"-A PREROUTING ! -i lo -p tcp {tag} -j {CHAIN_PREFIX}IN",
        "COMMIT",
        "*nat",
        f":{CHAIN_PREFIX}NAT-OUT - [0:0]",
        f":{CHAIN_PREFIX}NAT-IN - [0:0]",
        f"-A {CHAIN_PREFIX}NAT-OUT -m mark --mark 0x{SOCKET_MARK:x} -j RETURN",
        f"-A {CHAIN_PREFIX}NAT-OUT -d 127.0.0.0/8 -j RETURN",
        f"-A {CHAIN_PREFIX}NAT-OUT -p tcp -m multiport --dports {ports} "
        f"-j REDIRECT --to-ports {settings.outgoing_proxy_port}",
        f"-A {CHAIN_PREFIX}NAT-IN -p tcp -m multiport --dports {ports} "
        f"-j REDIRECT --to-ports {settings.incoming_proxy_port}",
        f"-A OUTPUT -p tcp {tag} -j {CHAIN_PREFIX}NAT-OUT",
        f"-A PREROUTING ! -i lo -p tcp {tag} -j {CHAIN_PREFIX}NAT-IN",
        "COMMIT",
    ]
    return "\n".join(lines) + "\n"


def _run(command: Sequence[str], stdin: str | None = None) -> str:
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RulesError(f"{' '.join(command)}: {result.stderr.strip()}")
    return result.stdout


def ours_present() -> bool:
    """Whether any tcpcryptd chain or jump exists in this network namespace."""
    return any(_our_lines(table) for table in TABLES)


def _our_lines(table: str) -> list[str]:
    listing = _run(["iptables", "-w", "-t", table, "-S"])
    return [
        line for line in listing.splitlines()
        if CHAIN_PREFIX in line or f"--comment {COMMENT}" in line
    ]


def install(settings: RuleSettings) -> None:
    """Add the daemon's rules; refuses if another daemon's rules are present."""
    if ours_present():
        raise RulesError(
            "tcpcryptd rules already exist here (another daemon, or a killed one: "
            "run `tcpcryptd --cleanup`)"
        )
    try:
        _run(["iptables-restore", "-w", "--noflush"], restore_input(settings))
    except RulesError:
        remove()
        raise


def remove() -> int:
    """Delete every tcpcryptd jump and chain; returns how many rules and chains went."""
    removed = 0
    for table in REMOVAL_ORDER:
        lines = _our_lines(table)
        for line in lines:  # jumps from built-in chains first, then our chains' contents
            words = shlex.split(line)
            if words[:1] == ["-A"] and not words[1].startswith(CHAIN_PREFIX):
                _run(["iptables", "-w", "-t", table, "-D", *words[1:]])
                removed += 1
        chains = [
            shlex.split(line)[1] for line in lines
            if line.startswith("-N ") and shlex.split(line)[1].startswith(CHAIN_PREFIX)
        ]
        for chain in chains:
            _run(["iptables", "-w", "-t", table, "-F", chain])
        for chain in chains:
            _run(["iptables", "-w", "-t", table, "-X", chain])
            removed += 1
    return removed
