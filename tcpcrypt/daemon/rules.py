"""The daemon's iptables rules: what they are, installing them, and removing exactly them.

Two jobs. (1) Connections to the covered ports are redirected (nat REDIRECT) to the daemon's
proxy ports: outgoing ones (local applications connecting out) to one port, incoming ones
(peers connecting in) to one port per covered port. (Incoming connections from one peer address
and port to two covered ports would otherwise map to the same NATed 4-tuple: the second one's
SYN is dropped until the first one's conntrack entry is gone.) The daemon's own sockets carry a
socket mark and are exempt. (2) A guard in the filter table's INPUT chain lets a new connection
reach a proxy port only when the socket there is transparent (IP_TRANSPARENT, which only a
privileged process can set; the proxy's listeners and the sockets they accept are): a killed
daemon's leftover redirect rules then refuse covered connections (fail closed) instead of
handing them, in plaintext, to whoever binds the proxy port next. The proxy ports are also
privileged ports (see main.py), so an unprivileged user cannot bind them in the first place. No
packet goes to userspace: TCP-ENO is negotiated by the kernel program (kernel_path.py).

Every rule lives in chains named TCPCRYPTD-*, reached by jumps from the built-in chains that
carry the comment `tcpcryptd`; removal deletes those jumps and chains and nothing else, so it
also works after the daemon was killed (`tcpcryptd --cleanup`), including the mangle-table
chains of the earlier NFQUEUE daemon.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

COMMENT: Final = "tcpcryptd"
CHAIN_PREFIX: Final = "TCPCRYPTD-"
SOCKET_MARK: Final = 0x7463  # on the daemon's own sockets: never redirected
TABLES: Final = ("filter", "mangle", "nat")  # where ours may be (mangle: earlier versions)
REMOVAL_ORDER: Final = ("nat", "mangle", "filter")  # the redirects go before the guard


class RulesError(RuntimeError):
    """iptables refused a rule (message from iptables included)."""


@dataclass(frozen=True)
class RuleSettings:
    ports: tuple[int, ...]
    outgoing_proxy_port: int
    first_incoming_proxy_port: int  # covered port i goes to this + i

    def incoming_proxy_ports(self) -> tuple[int, ...]:
        first = self.first_incoming_proxy_port
        return tuple(range(first, first + len(self.ports)))


def restore_input(settings: RuleSettings) -> str:
    """The rules as `iptables-restore --noflush` input (one transaction per table; the guard
    commits before the redirects exist)."""
    ports = ",".join(str(port) for port in settings.ports)
    tag = f"-m comment --comment {COMMENT}"
    incoming = settings.incoming_proxy_ports()
    incoming_range = f"{incoming[0]}:{incoming[-1]}" if len(incoming) > 1 else str(incoming[0])
    proxy_ports = f"{settings.outgoing_proxy_port},{incoming_range}"
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
        "*nat",
        f":{CHAIN_PREFIX}NAT-OUT - [0:0]",
        f":{CHAIN_PREFIX}NAT-IN - [0:0]",
        f"-A {CHAIN_PREFIX}NAT-OUT -m mark --mark 0x{SOCKET_MARK:x} -j RETURN",
        f"-A {CHAIN_PREFIX}NAT-OUT -d 127.0.0.0/8 -j RETURN",
        f"-A {CHAIN_PREFIX}NAT-OUT -p tcp -m multiport --dports {ports} "
        f"-j REDIRECT --to-ports {settings.outgoing_proxy_port}",
        *(f"-A {CHAIN_PREFIX}NAT-IN -p tcp --dport {port} -j REDIRECT --to-ports {proxy}"
          for port, proxy in zip(settings.ports, incoming, strict=True)),
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
