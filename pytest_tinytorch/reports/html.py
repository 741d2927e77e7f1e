"""A tiny self-contained HTML helper: escaping, tables, badges and one page template.

Every report page is a single file with its CSS inline: no scripts, fonts or images from the
network, so a page opens the same from a laptop, an LMS attachment or a CI artifact. Student
text is untrusted: everything that is not markup built here goes through `esc`.
"""

from __future__ import annotations

import html

CSS = """
:root { --ok:#1a7f37; --bad:#cf222e; --warn:#9a6700; --muted:#57606a; --line:#d0d7de; --bg:#f6f8fa; }
* { box-sizing: border-box; }
body { font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color:#1f2328;
       max-width: 1100px; margin: 2em auto; padding: 0 1.2em; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { font-size: 1.25em; margin-top: 1.6em;
     border-bottom: 1px solid var(--line); padding-bottom: .2em; } h3 { font-size: 1.05em; }
.sub { color: var(--muted); margin-top: 0; }
table { border-collapse: collapse; width: 100%; margin: .6em 0 1.2em; font-size: .93em; }
th, td { border: 1px solid var(--line); padding: .35em .6em; text-align: left; vertical-align: top; }
th { background: var(--bg); } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 0 .55em; border-radius: 1em; font-size: .82em; font-weight: 600;
         color: #fff; background: var(--muted); }
.badge.ok { background: var(--ok); } .badge.bad { background: var(--bad); } .badge.warn { background: var(--warn); }
.card { border: 1px solid var(--line); border-radius: 8px; padding: .8em 1em; margin: .8em 0; background: #fff; }
.answer { white-space: pre-wrap; background: var(--bg); border-left: 3px solid var(--line); padding: .5em .8em; }
.grid { display: grid; grid-template-columns: 3fr 2fr; gap: 1em; }
.total { font-size: 1.4em; font-weight: 700; }
pre { background: var(--bg); padding: .6em; overflow-x: auto; font-size: .88em; }
.muted { color: var(--muted); } ul { margin: .3em 0; padding-left: 1.3em; }
"""


def esc(value) -> str:
    """HTML-escaped text of any value (quotes included, so it is safe in attributes too)."""
    if type(value) is str:
        return html.escape(value, quote=True)
    if value is None:
        return ""
    try:
        if value != value:  # NaN
            return ""
    except (TypeError, ValueError):
        pass
    return html.escape(str(value), quote=True)


def num(value, digits: int = 1) -> str:
    """A number for humans: 12, 12.5, or '' for missing."""
    if value is None or value != value:
        return ""
    if value == int(value):
        return str(int(value))
    value = round(float(value), digits)
    return str(int(value)) if value == int(value) else f"{value:.{digits}f}"


def badge(text: str, kind: str = "") -> str:
    return f'<span class="badge {esc(kind)}">{esc(text)}</span>'


def table(headers: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    """A table; `rows` hold already-rendered cell HTML (call `esc` on text first)."""
    head = "".join(f'<th class="num">{esc(h)}</th>' if i in numeric else f"<th>{esc(h)}</th>"
                   for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
                         for i, c in enumerate(row)) + "</tr>"
        for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def bullet_list(items) -> str:
    return "<ul>" + "".join(f"<li>{esc(item)}</li>" for item in items) + "</ul>"


def page(title: str, body: str, subtitle: str = "") -> str:
    """A complete, self-contained HTML document."""
    sub = f'<p class="sub">{esc(subtitle)}</p>' if subtitle else ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head>"
            f"<body><h1>{esc(title)}</h1>{sub}{body}</body></html>\n")
