"""Runs wrk (Debian's HTTP load generator) once and prints one JSON object: requests/s,
median and p99 latency, requests, errors, and wrk's own CPU seconds (to tell which side
saturated). Run inside an emulated host, pinned by the caller:

python -m testbed.apps.wrk_runner --url http://10.0.0.2:8080/index.html --connections 16 \
    --seconds 5 [--close]

`--close` sends "Connection: close": one connection per request, the paper's worst case.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def milliseconds(text: str) -> float:
    """wrk's "1.23ms", "850.00us", "2.01s" in milliseconds."""
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text.strip())
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def parse(output: str) -> dict[str, float]:
    """The figures of wrk's report (run with --latency)."""
    figures: dict[str, float] = {}
    rate = re.search(r"Requests/sec:\s+([0-9.]+)", output)
    total = re.search(r"(\d+) requests in ([0-9.]+\w+),", output)
    if rate is None or total is None:
        raise ValueError(f"no wrk report in: {output[-300:]!r}")
    figures["rps"] = float(rate.group(1))
    figures["requests"] = float(total.group(1))
    for label, key in (("50%", "p50_ms"), ("99%", "p99_ms")):
        found = re.search(rf"^\s+{re.escape(label)}\s+(\S+)\s*$", output, re.M)
        if found:
            figures[key] = milliseconds(found.group(1))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       output)
    figures["socket_errors"] = float(sum(int(v) for v in errors.groups())) if errors else 0.0
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    figures["bad_responses"] = float(bad.group(1)) if bad else 0.0
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--close", action="store_true")
    args = parser.parse_args(argv)
    command = ["wrk", "--latency", "-t", str(args.threads), "-c", str(args.connections),
               "-d", f"{args.seconds:g}s", args.url]
    if args.close:
        command[1:1] = ["-H", "Connection: close"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"wrk failed: {done.stderr.strip()[-300:]}", file=sys.stderr)
        return 1
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = parse(done.stdout)
    figures["client_cpu_s"] = usage.ru_utime + usage.ru_stime
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
