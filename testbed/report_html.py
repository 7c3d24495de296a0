"""The paper-reproduction report as one self-contained HTML page: the claims' tables, the
plots embedded as data URIs, failures and warnings. No script, no external resource."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from testbed.claims import Claim, Results
from testbed.report import format_cell
from testbed.report_plots import all_plots

STYLE = """
body { font-family: sans-serif; max-width: 60em; margin: 1em auto; padding: 0 1em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #999; padding: 0.2em 0.6em; text-align: left; }
th { background: #eee; }
.missing { color: #8a6d00; } .failed { color: #b00020; }
img { max-width: 100%; }
"""


def _table(claim: Claim) -> str:
    columns = list(dict.fromkeys(column for row in claim.rows for column in row))
    head = "".join(f"<th>{html.escape(column)}</th>" for column in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(format_cell(row.get(c)))}</td>" for c in columns)
        + "</tr>" for row in claim.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _claim(claim: Claim) -> str:
    parts = [f"<h2>{html.escape(claim.title)}</h2>"]
    if claim.missing:
        parts.append(f'<p class="missing">{html.escape(claim.missing)}</p>')
        return "\n".join(parts)
    parts.append(_table(claim))
    parts += [f"<p>{html.escape(note)}</p>" for note in claim.notes]
    return "\n".join(parts)


def render(results: Results, claims: list[Claim]) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>tcpcrypt paper reproduction</title>", f"<style>{STYLE}</style>",
             "</head><body>", "<h1>The 2010 tcpcrypt paper beside this run</h1>",
             "<p>The paper measured a kernel tcpcrypt on a 2008 8-core Xeon: compare the "
             "ratios, not the absolute times.</p>"]
    for experiment, reason in results.failures.items():
        parts.append(f'<p class="failed">failed: {html.escape(experiment)}: '
                     f"{html.escape(reason)}</p>")
    parts += [_claim(claim) for claim in claims]
    parts.append("<h2>Plots</h2>")
    for title, png, caption in all_plots(results):
        data = base64.b64encode(png).decode("ascii")
        parts.append(f"<figure><img alt=\"{html.escape(title)}\" "
                     f"src=\"data:image/png;base64,{data}\"><figcaption>"
                     f"{html.escape(title)}: {html.escape(caption)}</figcaption></figure>")
    warnings = [(name, warning) for name, document in results.documents.items()
                for warning in document.get("warnings", [])]
    if warnings:
        parts.append("<h2>Warnings of the runs</h2><ul>")
        parts += [f"<li>{html.escape(name)}: {html.escape(text)}</li>" for name, text in warnings]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_html(results: Results, claims: list[Claim], path: Path) -> Path:
    """Write the page atomically (a temporary file renamed over `path`); its path."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(render(results, claims))
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
