"""The 2010 paper's claims, each held against a results directory: the paper's figure, this
run's figure and the ratio the claim is about, as rows of a table per claim.

Figures are taken by metric name from the saved results (`connect.server_cpu_us.<label>`,
`connect.latency_ms.<label>`, `throughput.mbps.<label>`, `web.server_cpu_us.<label>.<mode>`,
`rate.conn_per_s.<label>.<cores>`, the `middlebox-matrix` rows), so whatever labels a run
measured are shown and nothing it did not measure is made up: a claim without its figures is
"not measured in this run", with the reason when the run recorded one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed.paper import paper_figures
from testbed.results import load_result

STATUS_FILE = "reproduction-status.json"  # which experiments of `make run` failed, and why
NOT_MEASURED = "not measured in this run"


@dataclass
class Claim:
    """One claim's table: rows of (what, the paper's figure, this run's figure)."""

    title: str
    experiment: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    missing: str | None = None  # why the claim is not measured (None: it is)
    key_width: int = 32  # the first column folds beyond this on the terminal

    def add(self, what: str, paper: str | float | None, run: str | float | None) -> None:
        self.rows.append({"figure": what, "paper (2010)": paper, "this run": run})


@dataclass
class Results:
    """What a results directory holds: each experiment's result, and recorded failures."""

    directory: Path
    documents: dict[str, dict[str, Any]]
    failures: dict[str, str]
    unreadable: dict[str, str]

    def metric(self, experiment: str, name: str) -> float | None:
        document = self.documents.get(experiment)
        value = (document.get("metrics") or {}).get(name) if document else None
        return None if not isinstance(value, (int, float)) else float(value)


def load_results(directory: Path) -> Results:
    """Every schema-1 result file in `directory` by experiment name (the simulated
    `connection-rate` only with the xeon-2008 profile), and the failures `make run` recorded.
    ValueError (one line) when `directory` is not a readable directory."""
    import json

    if not directory.is_dir():
        raise ValueError(f"{directory}: not a directory of results")
    documents: dict[str, dict[str, Any]] = {}
    unreadable: dict[str, str] = {}
    failures: dict[str, str] = {}
    for path in sorted(directory.glob("*.json")):
        if path.name == STATUS_FILE:
            try:
                status = json.loads(path.read_text())
                failures = {str(k): str(v) for k, v in status.get("failed", {}).items()}
            except (OSError, ValueError, AttributeError) as error:
                unreadable[path.name] = str(error)
            continue
        try:
            document = load_result(path)
        except (OSError, ValueError) as error:
            unreadable[path.name] = str(error).splitlines()[0][:200]
            continue
        name = str(document.get("experiment"))
        if name == "connection-rate" and (document.get("runtime") != "simulation"
                                          or document.get("profile") != "xeon-2008"):
            unreadable[path.name] = "connection-rate not simulated with --profile xeon-2008"
            continue
        documents[name] = document
    return Results(directory, documents, failures, unreadable)


def _ratio(top: float | None, bottom: float | None) -> float | None:
    return top / bottom if top is not None and bottom else None


def ratio_text(value: float | None) -> str | None:
    return None if value is None else f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"


def _us(value: float | None) -> str | None:
    return None if value is None else f"{value:,.0f} us" if value >= 100 else f"{value:.1f} us"


def _ms(value: float | None) -> str | None:
    return None if value is None else f"{value:.3f} ms"


def _daemon_note(results: Results, label: str) -> str:
    """' (tcpcryptd)' when `label`'s connect row shows a daemon's CPU (today's main runs
    `tcpcrypt-*` through the daemon; the library rows show none), else ''."""
    if label.startswith("tcpcryptd-"):
        return ""
    document = results.documents.get("connect", {})
    for row in document.get("rows", []):
        if row.get("protocol") == label and (row.get("daemon_cpu_us") or 0) > 0:
            return " (tcpcryptd)"
    return ""


def _tcp_first(labels: list[str]) -> list[str]:
    return sorted(labels, key=lambda label: (label != "tcp", label))


def _missing(results: Results, experiment: str, what: str) -> str:
    if experiment in results.failures:
        return f"{NOT_MEASURED}: {experiment} failed ({results.failures[experiment]})"
    if experiment not in results.documents:
        return f"{NOT_MEASURED}: no {experiment} result"
    return f"{NOT_MEASURED}: the {experiment} result has no {what}"


def ssl_vs_tcp(results: Results) -> Claim:
    claim = Claim("SSL vs TCP: server CPU per connection", "connect")
    tcp = results.metric("connect", "connect.server_cpu_us.tcp")
    found = False
    for label, paper_name in (("tls12-rsa", "SSL / TCP"), ("tls13", None)):
        cost = results.metric("connect", f"connect.server_cpu_us.{label}")
        if cost is None or tcp is None:
            continue
        if not found:
            claim.add("tcp: server CPU per connection", None, _us(tcp))
            found = True
        paper = paper_figures()["server_cost_ratios"][paper_name] if paper_name else None
        claim.add(f"{label}: server CPU per connection", None, _us(cost))
        claim.add(f"ratio {label} / tcp", ratio_text(paper), ratio_text(_ratio(cost, tcp)))
    if not found:
        claim.missing = _missing(results, "connect", "tcp and tls12-rsa server CPU")
    claim.notes.append("the paper's SSL was RSA key exchange: tls12-rsa is the comparable row")
    return claim


TCPCRYPT_VS_SSL = (
    ("tls12-rsa", "tcpcrypt-rsa-exp3", "SSL / tcpcrypt"),
    ("tls12-rsa", "tcpcryptd-rsa-exp3", "SSL / tcpcrypt"),
    ("tls13", "tcpcrypt-x25519", None),
    ("tls13", "tcpcryptd-x25519", None),
)


def tcpcrypt_vs_ssl(results: Results) -> Claim:
    claim = Claim("tcpcrypt vs SSL: server CPU per connection", "connect")
    figures = paper_figures()["server_cost_ratios"]
    for ssl_label, tcpcrypt_label, paper_name in TCPCRYPT_VS_SSL:
        ssl_cost = results.metric("connect", f"connect.server_cpu_us.{ssl_label}")
        cost = results.metric("connect", f"connect.server_cpu_us.{tcpcrypt_label}")
        if ssl_cost is None or cost is None:
            continue
        note = _daemon_note(results, tcpcrypt_label)
        claim.add(f"{tcpcrypt_label}{note}: server CPU per connection", None, _us(cost))
        claim.add(f"ratio {ssl_label} / {tcpcrypt_label}",
                  ratio_text(figures[paper_name]) if paper_name else None,
                  ratio_text(_ratio(ssl_cost, cost)))
    tcp = results.metric("connect", "connect.server_cpu_us.tcp")
    worst = results.metric("connect", "connect.server_cpu_us.tcpcrypt-rsa-exp3")
    if tcp is not None and worst is not None:
        claim.add("ratio tcpcrypt-rsa-exp3 / tcp (worst case)",
                  ratio_text(figures["tcpcrypt / TCP (worst case)"]),
                  ratio_text(_ratio(worst, tcp)))
    if not claim.rows:
        claim.missing = _missing(results, "connect", "TLS and tcpcrypt server CPU")
    claim.notes.append("the paper: RSA-exp3 puts the expensive RSA operation on the client; "
                       "its 36x pairs tcpcrypt-rsa-exp3 with tls12-rsa (no paper figure for "
                       "x25519 against tls13)")
    return claim


CACHED = (
    ("tcpcrypt-x25519-resumed", "tcpcrypt cached"),
    ("tcpcrypt-rsa-exp3-resumed", "tcpcrypt cached"),
    ("tcpcryptd-x25519-resumed", "tcpcrypt cached"),
    ("tls12-rsa-resumed", "SSL cached"),
    ("tls13-resumed", None),
)


def cached_latency(results: Results) -> Claim:
    claim = Claim("cached tcpcrypt vs TCP: connect latency (LAN)", "connect")
    paper = paper_figures()["lan_connect_ms"]
    tcp = results.metric("connect", "connect.latency_ms.tcp")
    if tcp is not None:
        for label, row in CACHED:
            latency = results.metric("connect", f"connect.latency_ms.{label}")
            if latency is None:
                continue
            if not claim.rows:
                claim.add("tcp: time to first response byte", _ms(paper["TCP"]), _ms(tcp))
            note = _daemon_note(results, label)
            claim.add(f"{label}{note}: time to first byte", _ms(paper[row]) if row else None,
                      _ms(latency))
            claim.add(f"ratio {label} / tcp",
                      ratio_text(paper[row] / paper["TCP"]) if row else None,
                      f"{ratio_text(latency / tcp)} ({latency - tcp:+.3f} ms)")
    if not claim.rows:
        claim.missing = _missing(results, "connect", "tcp and resumed tcpcrypt latency")
    claim.notes.append("the paper's times are a 2008 Xeon's with a kernel tcpcrypt: compare "
                       "the ratios and the added time, not the milliseconds")
    return claim


def _survey() -> str:
    """The paper's survey of access networks, as a sentence."""
    survey = paper_figures()["middlebox_survey"]
    shares = "; ".join(
        f"{what} {survey[key]['all_ports']:.0%} ({survey[key]['port_80']:.0%} on port 80)"
        for what, key in (("sequence numbers rewritten", "sequence_numbers_rewritten"),
                          ("data resegmented", "data_resegmented"),
                          ("proxy ACKs", "proxy_ack")))
    return (f"the paper's survey of {survey['access_networks']} access networks in "
            f"{survey['countries']} countries saw, of paths: {shares}")


def middlebox_outcomes(results: Results) -> Claim:
    claim = Claim("middleboxes: tcpcrypt encrypts or falls back, never breaks",
                  "middlebox-matrix", key_width=24)
    document = results.documents.get("middlebox-matrix")
    if document is None or not document.get("rows"):
        claim.missing = _missing(results, "middlebox-matrix", "cells")
        return claim
    conditions: dict[str, dict[str, Any]] = {}
    protocols: list[str] = []
    for row in document["rows"]:
        if not isinstance(row, dict) or "middlebox" not in row or "protocol" not in row:
            continue  # not a cell (a row of another kind)
        cell = conditions.setdefault(str(row["middlebox"]), {})
        protocol = str(row["protocol"])
        protocols += [] if protocol in protocols else [protocol]
        mark = "" if row.get("outcome") == row.get("expected") else " (unexpected)"
        cell[protocol] = f"{row.get('outcome')}{mark}"
    for condition, cells in conditions.items():
        claim.rows.append({"middlebox": condition, **{p: cells.get(p) for p in protocols}})
    metrics = document.get("metrics") or {}
    total = int(metrics.get("matrix.cells", len(document["rows"])))
    unexpected = int(metrics.get("matrix.unexpected_cells", 0))
    claim.notes.append(f"{total - unexpected} of {total} cells as expected; "
                       f"{int(metrics.get('matrix.broken_cells', 0))} broken, "
                       f"{int(metrics.get('matrix.silent_corruption_cells', 0))} silently "
                       "corrupted (the paper: option stripping makes tcpcrypt fall back to "
                       "TCP; the other middleboxes it surveyed leave it working)")
    claim.notes.append(_survey())
    return claim


def throughput(results: Results) -> Claim:
    claim = Claim("throughput: bulk transfer", "throughput")
    tcp = results.metric("throughput", "throughput.mbps.tcp")
    document = results.documents.get("throughput", {})
    labels = sorted(name.removeprefix("throughput.mbps.")
                    for name in document.get("metrics", {}) if name.startswith("throughput.mbps."))
    for label in _tcp_first(labels):
        mbps = results.metric("throughput", f"throughput.mbps.{label}")
        claim.add(f"{label}{_daemon_note(results, label)}: Mbit/s", None,
                  None if mbps is None else f"{mbps:,.0f} Mbit/s")
        if label != "tcp" and tcp:
            claim.add(f"ratio {label} / tcp", None, ratio_text(_ratio(mbps, tcp)))
    if not claim.rows:
        claim.missing = _missing(results, "throughput", "Mbit/s")
    claim.notes.append("the paper's data file records no throughput figure (-): the claim is "
                       "that encryption keeps up with the link")
    return claim


RATE_RATIOS = (("tcpcrypt-rsa-exp3", "tls12-rsa", "SSL / tcpcrypt"),
               ("tcp", "tls12-rsa", "SSL / TCP"),
               ("tcp", "tcpcrypt-rsa-exp3", "tcpcrypt / TCP (worst case)"),
               ("tcpcrypt-x25519", "tls13", None))


def connection_rate(results: Results) -> Claim:
    claim = Claim("simulated 8-core server (xeon-2008 costs): connections/s",
                  "connection-rate")
    figures = paper_figures()["server_cost_ratios"]
    document = results.documents.get("connection-rate", {})
    for name in sorted(document.get("metrics", {})):
        if name.startswith("rate.conn_per_s.") and name.endswith(".8"):
            label = name.removeprefix("rate.conn_per_s.").removesuffix(".8")
            claim.add(f"{label}: connections/s", None,
                      f"{float(document['metrics'][name]):,.0f}/s")
    for faster, slower, paper_name in RATE_RATIOS:
        rate = _ratio(results.metric("connection-rate", f"rate.conn_per_s.{faster}.8"),
                      results.metric("connection-rate", f"rate.conn_per_s.{slower}.8"))
        if rate is not None:
            claim.add(f"ratio {faster} / {slower} (rates)",
                      ratio_text(figures[paper_name]) if paper_name else None, ratio_text(rate))
    if not claim.rows:
        claim.missing = _missing(results, "connection-rate", "8-core rates")
    claim.notes.append("simulated with the costs of the paper's machine: this checks the "
                       "model, not this host")
    return claim


def web_server(results: Results) -> Claim:
    claim = Claim("web server (Apache): server CPU per request", "web-server")
    figures = paper_figures()["server_cost_ratios"]
    document = results.documents.get("web-server", {})
    metrics = document.get("metrics", {})
    for mode in ("close", "keepalive"):
        tcp = metrics.get(f"web.server_cpu_us.tcp.{mode}")
        tcp_rps = metrics.get(f"web.rps.tcp.{mode}")
        labels = sorted({name.split(".")[2] for name in metrics
                         if name.startswith("web.server_cpu_us.") and name.endswith(f".{mode}")})
        for label in _tcp_first(labels):
            cost = metrics[f"web.server_cpu_us.{label}.{mode}"]
            rps = metrics.get(f"web.rps.{label}.{mode}")
            claim.add(f"{label} {mode}: CPU per request, req/s", None,
                      f"{_us(cost)}, {rps:,.0f}/s" if rps is not None else _us(cost))
            if label != "tcp" and tcp:
                paper = figures["SSL / TCP"] if label == "tls12-rsa" and mode == "close" else None
                rps_ratio = ratio_text(_ratio(rps, tcp_rps))
                claim.add(f"ratio {label} / tcp ({mode}): CPU; req/s",
                          ratio_text(paper), f"{ratio_text(cost / tcp)}; {rps_ratio or '-'}")
    if not claim.rows:
        claim.missing = _missing(results, "web-server", "server CPU per request")
    claim.notes.append("close: a new connection per request (the paper's worst case; its "
                       "80x is per connection); keepalive: many requests per connection")
    return claim


CLAIMS = (ssl_vs_tcp, tcpcrypt_vs_ssl, cached_latency, middlebox_outcomes, throughput,
          connection_rate, web_server)


def all_claims(results: Results) -> list[Claim]:
    return [build(results) for build in CLAIMS]
