"""`tcpcrypt`: ask the local tcpcryptd about its connections (like netstat) and counters.

    tcpcrypt sessions [--live] [--json]    live and recent connections with their session IDs
    tcpcrypt stats [--json]                counters: established, resumed, fallbacks, resets...
    tcpcrypt kernel load|unload|status     the kernel's TCP-ENO program (root; docs/kernel.md)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from tcpcrypt.control import DEFAULT_CONTROL_NAME, DaemonUnavailable, request

COLUMNS = ("role", "state", "wire_local", "wire_remote", "suite", "aead", "resumed",
           "bytes_sent", "bytes_received", "session_id")


def _session_table(sessions: list[dict[str, Any]]) -> str:
    rows = [[str(s.get(column) if s.get(column) is not None else "-") for column in COLUMNS]
            for s in sessions]
    for row, session in zip(rows, sessions, strict=False):
        if session.get("reason"):
            row[1] += f" ({session['reason']})"
    widths = [max([len(column)] + [len(row[i]) for row in rows])
              for i, column in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=False)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip()
              for row in rows]
    return "\n".join(lines)


def _stats_text(stats: dict[str, Any]) -> str:
    lines = []
    reasons = stats.get("by_reason", {})
    for name, value in stats.items():
        if name == "by_reason":
            continue
        lines.append(f"{name}: {value}")
        for reason, count in sorted(reasons.get(name, {}).items()):
            lines.append(f"    {reason}: {count}")
    return "\n".join(lines)


def _kernel(action: str, as_json: bool) -> int:
    from tcpcrypt.kernel import loader
    from tcpcrypt.kernel.api import KernelEno

    try:
        if action == "load":
            print(f"tcpcrypt kernel: {loader.load()}")
        elif action == "unload":
            print(f"tcpcrypt kernel: {loader.unload()}")
        else:
            status = loader.status()
            counters: dict[str, int] = {}
            if status.loaded:
                with KernelEno(status.pin_dir) as kernel:
                    counters = kernel.stats()
            if as_json:
                print(json.dumps({"loaded": status.loaded, "attached": status.attached,
                                  "prog_id": status.prog_id, "pin_dir": str(status.pin_dir),
                                  "cgroup": str(status.cgroup), "counters": counters}))
            else:
                print(status.line())
                for name, value in counters.items():
                    print(f"  {name}: {value}")
    except (loader.KernelUnavailable, OSError) as error:
        print(f"tcpcrypt kernel: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tcpcrypt", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--control", default=DEFAULT_CONTROL_NAME, help="daemon's socket name")
    commands = parser.add_subparsers(dest="command", required=True)
    sessions = commands.add_parser("sessions", help="connections and their session IDs")
    sessions.add_argument("--live", action="store_true", help="only live connections")
    commands.add_parser("stats", help="the daemon's counters")
    kernel = commands.add_parser("kernel", help="load, unload or show the TCP-ENO kernel program")
    kernel.add_argument("action", choices=("load", "unload", "status"))
    args = parser.parse_args(argv)
    if args.command == "kernel":
        return _kernel(args.action, args.json)
    try:
        if args.command == "sessions":
            listing = request({"op": "sessions", "ended": not args.live}, args.control)
            found = listing["sessions"]
            print(json.dumps(found, indent=1) if args.json else _session_table(found))
        else:
            counters = request({"op": "stats"}, args.control)["stats"]
            print(json.dumps(counters, indent=1) if args.json else _stats_text(counters))
    except (DaemonUnavailable, ValueError) as error:
        print(f"tcpcrypt: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
