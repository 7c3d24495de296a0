"""`tcpcryptd`: the command line, start-up and orderly shutdown of the daemon.

Start-up order: check everything that can be checked (root, parameters, free ports, tools),
load the kernel's TCP-ENO program if it is not loaded, open the proxy listeners (the incoming
one opted in to ENO), install the rules, open the control socket, then print
one "ready" line. Shutdown (SIGTERM, SIGINT, or an error) removes the rules first, so that no
new connection is redirected to a daemon that is going away, then closes the rest.
`tcpcryptd --cleanup` removes the rules of a daemon that was killed.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import math
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, Final

from tcpcrypt.config import TcpcryptConfig
from tcpcrypt.connection import TcpcryptConnection
from tcpcrypt.control import DEFAULT_CONTROL_NAME
from tcpcrypt.daemon import kernel_path, rules
from tcpcrypt.daemon.budget import BufferBudget
from tcpcrypt.daemon.control_server import ControlServer, ControlSocketTaken
from tcpcrypt.daemon.keylog import ENVIRONMENT_VARIABLE, KeyLog, KeyLogError
from tcpcrypt.daemon.log import Log
from tcpcrypt.daemon.proxy import Proxy
from tcpcrypt.daemon.relay import RelayLimits
from tcpcrypt.daemon.sessions import SessionRecord, SessionTable
from tcpcrypt.daemon.stats import Stats
from tcpcrypt.errors import UsageError
from tcpcrypt.kernel.api import KernelEno
from tcpcrypt.kernel.loader import KernelUnavailable
from tcpcrypt.resumption import ResumptionCache

DEFAULT_PORTS = "80,443,5201,8000,8080,8443"


class StartupError(RuntimeError):
    """The daemon cannot start; the message says why. Nothing was left installed."""


def parse_ports(text: str) -> tuple[int, ...]:
    """"80,443,8000-8010" -> the ports (at most 15 entries, as iptables multiport allows)."""
    ports: list[int] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        low, _, high = item.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a port or range: {item!r}") from None
        if not 1 <= first <= last <= 65535:
            raise argparse.ArgumentTypeError(f"port out of range: {item!r}")
        ports.extend(range(first, last + 1))
    if not ports:
        raise argparse.ArgumentTypeError("no ports given")
    if len(ports) > 15:
        raise argparse.ArgumentTypeError(f"{len(ports)} ports: at most 15 can be covered")
    return tuple(dict.fromkeys(ports))


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tcpcryptd",
        description="Transparent tcpcrypt (RFC 8547/8548) for this host's TCP connections: "
        "encrypted when the peer runs tcpcryptd too, plain TCP otherwise.",
    )
    parser.add_argument("--ports", type=parse_ports, default=parse_ports(DEFAULT_PORTS),
                        help=f"server ports to cover, both directions (default {DEFAULT_PORTS})")
    parser.add_argument("--suites", type=_names, default=("x25519",),
                        help="key-agreement suites offered, preferred first (default x25519)")
    parser.add_argument("--aeads", type=_names, default=("aes-128-gcm",),
                        help="AEADs offered, preferred first (default aes-128-gcm)")
    parser.add_argument("--cache-size", type=int, default=1024,
                        help="resumable sessions kept; 0 turns resumption off (default 1024)")
    parser.add_argument("--cache-lifetime", type=float, default=3600.0,
                        help="seconds a session stays resumable (default 3600)")
    parser.add_argument("--proxy-ports", default="1008,1009",
                        help="OUT,IN: the local port for outgoing redirected connections, and "
                        "the first of one port per covered port for incoming ones; privileged "
                        "ports only (default 1008,1009: up to 1023 with 15 covered ports)")
    parser.add_argument("--control", default=DEFAULT_CONTROL_NAME,
                        help="abstract Unix socket name of the control socket")
    parser.add_argument("--keylog", type=Path, default=None,
                        help=f"append session keys to this file (default: ${ENVIRONMENT_VARIABLE})")
    parser.add_argument("--idle-timeout", type=float, default=900.0,
                        help="seconds without a byte either way after which a relayed "
                        "connection is reset, 1..86400 (default 900)")
    parser.add_argument("--buffer-mb", type=float, default=256.0,
                        help="MiB all relayed connections together may hold in buffers, "
                        "1..65536 (default 256)")
    parser.add_argument("--max-connections", type=int, default=4096,
                        help="relayed connections at once, more are reset, 1..1000000 "
                        "(default 4096)")
    parser.add_argument("--cleanup", action="store_true",
                        help="remove the rules a killed tcpcryptd left, then exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each connection")
    return parser


class Daemon:
    """The running daemon: kernel handle, proxy, control socket."""

    def __init__(self, args: argparse.Namespace, config: TcpcryptConfig) -> None:
        self.args = args
        self.config = config
        self.stats = Stats()
        self.log = Log(self.stats)
        self.sessions = SessionTable()
        try:
            self.kernel = KernelEno()
        except KernelUnavailable as error:
            raise StartupError(str(error)) from None
        self.context = kernel_path.DaemonContext(
            config.suites, config.aeads, ResumptionCache(args.cache_size, args.cache_lifetime),
            self.kernel,
        )
        keylog_path = args.keylog or os.environ.get(ENVIRONMENT_VARIABLE)
        try:
            self.keylog = KeyLog(Path(keylog_path)) if keylog_path else None
        except KeyLogError as error:
            raise StartupError(str(error)) from None
        self.budget = BufferBudget(int(args.buffer_mb * 1024 * 1024))
        self.proxy = Proxy(
            self.context, self.sessions, self.stats, self._established,
            RelayLimits(idle_timeout_s=args.idle_timeout), self.budget, args.max_connections,
        )
        self.started = time.time()
        self.control = ControlServer(self.sessions, self.stats, {
            "started": self.started, "ports": list(args.ports), "suites": list(config.suites),
            "aeads": list(config.aeads), "pid": os.getpid(),
        }, self._live_stats)

    def _live_stats(self) -> dict[str, Any]:
        return {
            "live_connections": len(self.sessions.records(include_ended=False)),
            "buffered_bytes": self.budget.used, "buffered_peak_bytes": self.budget.peak,
        }

    def _established(self, record: SessionRecord, connection: TcpcryptConnection) -> None:
        if self.keylog is not None:
            self.keylog.write(connection)
        if self.args.verbose:
            self.log.line(f"tcpcryptd: {record.role} {record.wire_local}->{record.wire_remote} "
                          f"{record.suite} {record.aead} resumed={record.resumed} "
                          f"sid={record.session_id}")

    def _unhandled(self, _loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """The event loop's report of an exception nothing caught: one line, counted."""
        error = context.get("exception")
        name = type(error).__name__ if error is not None else "error"
        self.stats.count("internal_errors", name)
        self.log.line(f"tcpcryptd: internal error: {context.get('message', '')}: {error!r}")

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(self._unhandled)
        outgoing_port, incoming_port = _proxy_ports(self.args.proxy_ports)
        settings = rules.RuleSettings(self.args.ports, outgoing_port, incoming_port)
        listeners: list[socket.socket] = []
        try:
            listeners.append(Proxy.listen(outgoing_port))
            for port in settings.incoming_proxy_ports():
                listeners.append(Proxy.listen(port, self.context))
        except OSError as error:
            for listener in listeners:
                listener.close()
            raise StartupError(f"cannot listen on proxy ports {self.args.proxy_ports}: "
                               f"{error.strerror}") from None
        try:
            self.control.bind(self.args.control)  # before any rule: a taken name stops here
        except OSError as error:
            for listener in listeners:
                listener.close()
            await self.control.close()
            raise StartupError(error.strerror if isinstance(error, ControlSocketTaken)
                               else f"control socket @{self.args.control}: {error.strerror}"
                               ) from None
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        installed = False
        try:
            rules.install(settings)
            installed = True
            self.proxy.start(listeners[0], listeners[1:])
            await self.control.start()
            print(f"tcpcryptd ready: ports {','.join(map(str, self.args.ports))}, "
                  f"suites {','.join(self.config.suites)}, control @{self.args.control}",
                  flush=True)
            await stop.wait()
        finally:
            if installed:
                rules.remove()
            await self.proxy.close()
            self.budget.close()
            await self.control.close()
            if self.keylog is not None:
                self.keylog.close()
            self.kernel.close()
            self.log.close()


M_TRIM_THRESHOLD: Final = -1
M_MMAP_THRESHOLD: Final = -3
HEAP_THRESHOLD_BYTES: Final = 32 * 1024 * 1024  # the largest mmap threshold glibc takes


def keep_buffers_on_the_heap() -> bool:
    """Ask glibc to serve the relay's large buffers from the heap and keep freed memory.

    By default glibc maps every allocation above 128 KiB afresh and unmaps it when freed, and
    returns heap memory past a trim threshold: each 256 KiB read and each sealed batch then
    costs page faults. Measured on a bulk transfer: 260-480 minor faults per MiB relayed
    before, about 2 after, and daemon CPU per byte halved. False where this is not glibc.
    """
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, HEAP_THRESHOLD_BYTES)) and bool(
        mallopt(M_TRIM_THRESHOLD, 4 * HEAP_THRESHOLD_BYTES)
    )


def _run_event_loop(coroutine: Coroutine[Any, Any, None]) -> None:
    """uvloop when installed (measured: about 10% less user CPU per connection), else asyncio."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coroutine)
        return
    uvloop.run(coroutine)


def _proxy_ports(text: str) -> tuple[int, int]:
    try:
        outgoing, incoming = (int(part) for part in text.split(","))
    except ValueError:
        raise StartupError(f"--proxy-ports wants two ports, got {text!r}") from None
    return outgoing, incoming


def _unprivileged_port_start() -> int:
    """The lowest port any user may bind in this network namespace (1024 by default)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    except (OSError, ValueError):
        return 1024  # a kernel without the setting: the classic rule


def _preflight(args: argparse.Namespace) -> TcpcryptConfig:
    if os.geteuid() != 0:
        raise StartupError("tcpcryptd needs root (iptables rules and the kernel program)")
    for tool in ("iptables", "iptables-restore"):
        if shutil.which(tool) is None:
            raise StartupError(f"{tool} is not installed")
    if args.cleanup:
        return TcpcryptConfig()
    if args.cache_size < 0 or not (math.isfinite(args.cache_lifetime)
                                   and args.cache_lifetime > 0):
        raise StartupError("--cache-size must be >= 0 and --cache-lifetime > 0")
    for name, value, low, high in (("--idle-timeout", args.idle_timeout, 1, 86400),
                                   ("--buffer-mb", args.buffer_mb, 1, 65536),
                                   ("--max-connections", args.max_connections, 1, 1_000_000)):
        if not (math.isfinite(value) and low <= value <= high):
            raise StartupError(f"{name} must be in {low}..{high}, got {value}")
    outgoing, incoming = _proxy_ports(args.proxy_ports)
    proxy_ports = {outgoing, *range(incoming, incoming + len(args.ports))}
    if len(proxy_ports) != 1 + len(args.ports) or not all(1 <= p <= 65535 for p in proxy_ports):
        raise StartupError(f"--proxy-ports {outgoing},{incoming}: the outgoing port and "
                           f"{len(args.ports)} incoming ports from {incoming} must differ and "
                           "lie in 1..65535")
    if proxy_ports & set(args.ports):
        raise StartupError("the proxy ports must not be covered ports")
    unprivileged_start = _unprivileged_port_start()
    if max(proxy_ports) >= unprivileged_start:
        raise StartupError(
            f"--proxy-ports {outgoing},{incoming}: with {len(args.ports)} covered ports the "
            f"proxy ports reach {max(proxy_ports)}; each must be privileged (below "
            f"net.ipv4.ip_unprivileged_port_start = {unprivileged_start} here), or any local "
            f"user could bind it while tcpcryptd is down"
        )
    try:
        return TcpcryptConfig(suites=args.suites, aeads=args.aeads)
    except UsageError as error:
        raise StartupError(str(error)) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = _preflight(args)
        if args.cleanup:
            removed = rules.remove()
            print(f"tcpcryptd: removed {removed} rules and chains")
            return 0
        if rules.ours_present():
            raise StartupError("tcpcryptd rules already exist here (another daemon, or a killed "
                               "one: run `tcpcryptd --cleanup`)")
        try:
            loaded = kernel_path.ensure_loaded()
        except KernelUnavailable as error:
            raise StartupError(str(error)) from None
        if loaded:
            print(loaded, file=sys.stderr, flush=True)
        keep_buffers_on_the_heap()
        _run_event_loop(Daemon(args, config).run())
    except (StartupError, rules.RulesError) as error:
        print(f"tcpcryptd: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
