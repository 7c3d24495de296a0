"""Turns a topology's middlebox nodes into transparent bridges running their model chain, and
collects what the engines counted (model errors among it) so experiments can warn about it.

    start_middleboxes(net)            # done by emulated_network; kept on net.middlebox_engines
    middlebox_reports(net)            # counters so far (SIGUSR1), engines keep running
    stop_middleboxes(net)             # final counters (SIGTERM); before leaving the network
    for text in engine_warnings(reports): ctx.warn(text)

Nodes with more interfaces than the engine has sides are wired with Linux bridges inside their
own network namespace (so the namespace's teardown removes them):

- a middlebox node's last interface faces the server (the topologies add the server-side link
  last), every other one faces clients. With more than one client-side interface, those are
  joined by a bridge `<node>-br` together with `<node>-brp`, one end of a veth pair; the
  engine's client side is the other end, `<node>-eng`. A 2-interface node is unchanged.
- a plain host with several interfaces (the access-paths server) gets them joined by a bridge
  `<node>-br` that takes the host's address; its ports are isolated from each other, so the
  host is reachable from every link but does not switch frames between them.

Bridges have STP off and forward delay 0; netfilter is not called on bridged frames
(bridge-nf-call-* = 0 in the node). Every interface keeps its offloads (the engine carries
super-packets with their virtio-net header); `net.offload_settings` records them all, the
bridges and veths created here included (`testbed.emulation.offloads.read_offloads`).
"""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from testbed.apps.hosts import stop_process
from testbed.emulation.offloads import read_offloads


class MiddleboxNodeError(RuntimeError):
    """A middlebox node cannot be hosted (wrong number of interfaces, engine failed)."""


@dataclass
class Engine:
    """One bridge engine process in a middlebox node."""

    node: str
    path: str
    process: subprocess.Popen[str]
    final: dict[str, Any] | None = None


@dataclass
class EngineReport:
    """What one engine counted: its own counters and each model's, with their last errors."""

    node: str
    path: str
    engine: dict[str, int] = field(default_factory=dict)
    models: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None  # the engine died or did not answer

    def model_errors(self) -> int:
        return sum(int(m["stats"].get("dropped:model-error", 0)) for m in self.models)


def _run_in(node: Any, *words: str) -> None:
    """One command in `node`'s namespace; MiddleboxNodeError with its output if it fails."""
    process: subprocess.Popen[str] = node.popen(list(words), stdout=subprocess.PIPE,
                                                stderr=subprocess.STDOUT, text=True)
    out, _ = process.communicate(timeout=30)
    if process.returncode != 0:
        raise MiddleboxNodeError(f"{node.name}: {' '.join(words)} failed: {out.strip()}")


def _bridge(node: Any, bridge: str, ports: list[str], *, isolated: bool = False) -> None:
    """A Linux bridge in `node` joining `ports`: STP off, forward delay 0, no netfilter."""
    for family in ("iptables", "ip6tables", "arptables"):  # per namespace; absent without
        node.cmd(f"sysctl -qw net.bridge.bridge-nf-call-{family}=0 2>/dev/null")  # br_netfilter
    _run_in(node, "ip", "link", "add", bridge, "type", "bridge", "stp_state", "0",
            "forward_delay", "0")
    for port in ports:
        _run_in(node, "ip", "link", "set", port, "master", bridge)
        if isolated:
            _run_in(node, "ip", "link", "set", port, "type", "bridge_slave", "isolated", "on")
    _run_in(node, "ip", "link", "set", bridge, "up")


def join_host_interfaces(net: Any) -> None:
    """Bridge the interfaces of every plain host that has several, moving its address to the
    bridge."""
    for host in net.hosts:
        interfaces = [i for i in host.intfList() if i.name != "lo"]
        if host.params.get("role") == "middlebox" or len(interfaces) < 2:
            continue
        names = [i.name for i in interfaces]
        address = f"{host.IP()}/{interfaces[0].prefixLen}"
        bridge = f"{host.name}-br"
        for name in names:
            _run_in(host, "ip", "addr", "flush", "dev", name)
        _bridge(host, bridge, names, isolated=True)
        _run_in(host, "ip", "addr", "add", address, "dev", bridge)


def engine_interfaces(node: Any) -> tuple[str, str]:
    """(client side, server side) for the engine in a middlebox node: the last interface faces
    the server; several client-side ones are bridged to one end of a veth pair whose other end
    the engine uses."""
    interfaces = [i.name for i in node.intfList() if i.name != "lo"]
    if len(interfaces) < 2:
        raise MiddleboxNodeError(
            f"{node.name}: a middlebox node needs at least 2 interfaces, has {interfaces}"
        )
    for interface in interfaces:
        node.cmd("ip", "addr", "flush", "dev", interface)  # a bridge has no address
    *clients, server = interfaces
    if len(clients) == 1:
        return clients[0], server
    engine_end, bridge_end = f"{node.name}-eng", f"{node.name}-brp"
    _run_in(node, "ip", "link", "add", engine_end, "type", "veth", "peer", "name", bridge_end)
    _bridge(node, f"{node.name}-br", [*clients, bridge_end])
    for interface in (engine_end, bridge_end):
        _run_in(node, "ip", "link", "set", interface, "up")
    return engine_end, server


def start_middleboxes(net: Any) -> list[subprocess.Popen[str]]:
    """Start the bridge engine in every host with params role=middlebox (after bridging the
    interfaces of plain hosts that have several)."""
    middleboxes = [h for h in net.hosts if h.params.get("role") == "middlebox"]
    net.middlebox_engines = []
    join_host_interfaces(net)
    engines = []
    for node in middleboxes:
        client_side, server_side = engine_interfaces(node)
        process: subprocess.Popen[str] = node.popen(
            [sys.executable, "-m", "middleboxes.engines.bridge", "--path", node.params["path"],
             "--client", client_side, "--server", server_side],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert process.stdout is not None
        if process.stdout.readline().strip() != "bridging":
            _, error = process.communicate(timeout=5)
            raise MiddleboxNodeError(f"{node.name}: engine did not start: {error.strip()}")
        engines.append(process)
        net.middlebox_engines.append(Engine(node.name, node.params["path"], process))
    net.offload_settings = read_offloads(net)
    return engines


def _report(engine: Engine, stats: dict[str, Any] | None, problem: str | None) -> EngineReport:
    if stats is None:
        return EngineReport(engine.node, engine.path, problem=problem or "no report")
    return EngineReport(engine.node, engine.path, dict(stats.get("engine", {})),
                        list(stats.get("models", [])), problem)


def _stats_line(text: str) -> dict[str, Any] | None:
    found = None
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                parsed = json.loads(line)
            except ValueError:
                continue
            if isinstance(parsed, dict) and parsed.get("event") == "stats":
                found = parsed
    return found


def middlebox_reports(net: Any, timeout: float = 5.0) -> list[EngineReport]:
    """The counters of every running engine so far (SIGUSR1: they keep running)."""
    reports = []
    for engine in getattr(net, "middlebox_engines", []):
        process = engine.process
        if engine.final is not None or process.poll() is not None:
            reports.append(_stopped(engine))
            continue
        assert process.stdout is not None
        process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        stats = None
        while stats is None and time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], deadline - time.monotonic())
            if not ready:
                break
            line = process.stdout.readline()
            if not line:
                break
            stats = _stats_line(line)
        reports.append(_report(engine, stats, None if stats else "engine did not answer"))
    return reports


def _stopped(engine: Engine) -> EngineReport:
    process = engine.process
    if engine.final is None:
        out, error = stop_process(process, signal.SIGTERM, 10.0)
        stats = _stats_line(out)
        problem = None
        if process.returncode not in (0, -signal.SIGTERM):
            problem = f"engine exited with {process.returncode}: {error.strip()[-300:]}"
        engine.final = stats if stats is not None else {"problem": problem or "no report"}
    final = engine.final
    if "event" not in final:
        return _report(engine, None, str(final.get("problem")))
    return _report(engine, final, None)


def stop_middleboxes(net: Any) -> list[EngineReport]:
    """Stop every engine and return its final counters (the network itself stays up)."""
    return [_stopped(engine) for engine in getattr(net, "middlebox_engines", [])]


def engine_warnings(reports: list[EngineReport]) -> list[str]:
    """One sentence per thing that went wrong in an engine: model errors, engine errors,
    failed sends, frames dropped before the engine read them, an engine that died or did not
    report."""
    warnings = []
    for report in reports:
        where = f"middlebox {report.node} ({report.path})"
        if report.problem:
            warnings.append(f"{where}: {report.problem}")
        for model in report.models:
            count = int(model["stats"].get("dropped:model-error", 0))
            if count:
                last = model["errors"][-1] if model["errors"] else "?"
                warnings.append(f"{where}: {count} packet(s) dropped because model "
                                f"{model['model']} raised (last: {last})")
        for key in ("engine-errors", "send-errors"):
            if report.engine.get(key):
                warnings.append(f"{where}: {report.engine[key]} {key}")
        if report.engine.get("socket-drops"):  # lost before any model saw them
            warnings.append(f"{where}: the kernel dropped {report.engine['socket-drops']} "
                            "frame(s) before the engine read them (the engine fell behind): "
                            "losses on this path are not all the model's")
    return warnings
