"""The study report's two renderings of one list of blocks: an HTML page and a Markdown page.

A block is a tuple: ("h2" | "h3", text), ("p" | "meta" | "note", html text), ("findings", [sentences]),
("img", src, alt), ("videos", [(src, caption)]), or a table (kind, head, rows, index of the row to highlight).

    html_page, md_page = render("mw5 study", [("h2", "Success"), ("p", "...")])
"""

from __future__ import annotations

import html
import re


_CSS = """body{font:15px/1.45 system-ui,sans-serif;max-width:1150px;margin:1.5em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:left}
th{background:#f3f3f3}tr.best td{background:#dff3df;font-weight:600}.meta{color:#666}.note{color:#555;font-size:13px}
.findings{background:#fff7e0;border-left:4px solid #e0a800;padding:.5em 1em}img{max-width:100%}
.videos{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}video{height:200px;image-rendering:pixelated;background:#000}
figcaption{font-size:12px;color:#555}"""

_SCRIPT = """<script>document.querySelectorAll('video').forEach(v => v.addEventListener('error', () => {
  v.insertAdjacentHTML('afterend', '<p class=note>this browser cannot play it: <a href="' + v.getAttribute('src')
    + '">download</a></p>'); }));</script>"""


def _html_block(block: tuple) -> str:
    kind, *rest = block
    if kind in ("h2", "h3"):
        return f"<{kind}>{html.escape(rest[0])}</{kind}>"
    if kind in ("p", "meta", "note"):
        return f"<p class={kind}>{rest[0]}</p>"
    if kind == "findings":
        return "<div class=findings>" + "".join(f"<p>{html.escape(s)}</p>" for s in rest[0]) + "</div>"
    if kind == "img":
        return f'<p><img src="{rest[0]}" alt="{html.escape(rest[1])}"></p>'
    if kind == "videos":
        return "<div class=videos>" + "".join(
            f'<figure><video src="{src}" controls muted loop autoplay playsinline></video>'
            f"<figcaption>{html.escape(cap)}</figcaption></figure>" for src, cap in rest[0]) + "</div>"
    head, rows, hi = rest
    cells = "".join(f"<tr{' class=best' if i == hi else ''}>" + "".join(f"<td>{html.escape(c)}</td>" for c in r)
                    + "</tr>" for i, r in enumerate(rows))
    return "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + f"</tr>{cells}</table>"


def md_block(block: tuple) -> str:
    kind, *rest = block
    if kind in ("h2", "h3"):
        return f"{'#' * int(kind[1])} {rest[0]}"
    if kind in ("p", "meta", "note"):
        text = re.sub(r"</?b>", "**", html.unescape(rest[0]))
        return f"*{text}*" if kind != "p" else text
    if kind == "findings":
        return "\n".join(f"> {s}  " for s in rest[0])
    if kind == "img":
        return f"![{rest[1]}]({rest[0]})"
    if kind == "videos":
        return "\n".join(f"- [{cap}]({src})" for src, cap in rest[0])
    head, rows, hi = rest
    esc = lambda c: c.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(map(esc, head)) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(f"**{esc(c)}**" if i == hi and c else esc(c) for c in r) + " |"
              for i, r in enumerate(rows)]
    return "\n".join(lines)


def render(title: str, blocks: list[tuple]) -> tuple[str, str]:
    """(report.html, report.md) texts of the blocks under one title."""
    page = "\n".join(_html_block(b) for b in blocks)
    html_page = (f"<!doctype html>\n<html><head><meta charset=utf-8><title>{html.escape(title)}</title>"
                 f"<style>{_CSS}</style></head>\n<body><h1>{html.escape(title)}</h1>\n{page}\n{_SCRIPT}</body></html>\n")
    return html_page, f"# {title}\n\n" + "\n\n".join(md_block(b) for b in blocks) + "\n"
