"""A tiny document model for reports, rendered to Markdown and to self-contained HTML.

The report is built once as a list of blocks (headings, paragraphs, tables, figures) and rendered
twice, so the Markdown and HTML versions always say the same thing. Inline markup in text is limited
to ``code`` and **bold**, which both renderers understand.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Figure:
    path: Path  # PNG file, absolute
    caption: str


@dataclass(frozen=True)
class Code:
    text: str


@dataclass
class Document:
    """Blocks in reading order; ``add_*`` helpers keep call sites short."""

    title: str
    blocks: list[Any] = field(default_factory=list)

    def heading(self, level: int, text: str) -> None:
        self.blocks.append(Heading(level, text))

    def para(self, text: str) -> None:
        self.blocks.append(Para(text))

    def table(self, header: list[str], rows: list[list[Any]]) -> None:
        self.blocks.append(Table(tuple(header), tuple(tuple(str(c) for c in row) for row in rows)))

    def figure(self, path: Path, caption: str) -> None:
        self.blocks.append(Figure(Path(path), caption))

    def code(self, text: str) -> None:
        self.blocks.append(Code(text))


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(doc: Document, base: Path) -> str:
    """Markdown text; figure links are relative to ``base`` (the folder report.md is written to)."""
    out = [f"# {doc.title}", ""]
    for block in doc.blocks:
        if isinstance(block, Heading):
            out += ["#" * (block.level + 1) + " " + block.text, ""]
        elif isinstance(block, Para):
            out += [block.text, ""]
        elif isinstance(block, Code):
            out += ["```", block.text, "```", ""]
        elif isinstance(block, Table):
            out.append("| " + " | ".join(map(_md_cell, block.header)) + " |")
            out.append("|" + "---|" * len(block.header))
            out += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in block.rows]
            out.append("")
        elif isinstance(block, Figure):
            out += [f"![{block.caption}]({block.path.relative_to(base).as_posix()})", "", f"*{block.caption}*", ""]
    return "\n".join(out)


def _inline_html(text: str) -> str:
    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)


# Wide tables stay inside the page: each sits in a box that scrolls sideways when it must, and a cell longer than
# LONG_CELL characters (a graph, a point's label) may break anywhere, so it wraps instead of widening its column.
LONG_CELL = 40
_STYLE = (
    "body{font-family:sans-serif;max-width:72em;margin:2em auto;padding:0 1em;color:#222}"
    ".table{overflow-x:auto;max-width:100%;margin:1em 0}"
    "table{border-collapse:collapse;font-size:90%}"
    "td,th{border:1px solid #bbb;padding:.25em .5em;text-align:left;vertical-align:top}th{background:#eee}"
    "td.long{overflow-wrap:anywhere;min-width:12em}"
    "img{max-width:100%}figcaption{font-style:italic;color:#555}pre{background:#f4f4f4;padding:.5em;overflow-x:auto}"
)


def _td(text: str) -> str:
    attrs = ' class="long"' if len(text) > LONG_CELL else ""
    return f"<td{attrs}>{_inline_html(text)}</td>"


def _html_block(block: Any) -> str:
    if isinstance(block, Heading):
        level = min(block.level + 1, 6)
        return f"<h{level}>{_inline_html(block.text)}</h{level}>"
    if isinstance(block, Para):
        return f"<p>{_inline_html(block.text)}</p>"
    if isinstance(block, Code):
        return f"<pre>{html.escape(block.text)}</pre>"
    if isinstance(block, Table):
        # A header may break after "_" (fpn_channels): a column is then as wide as its values, not its name.
        head = "".join(f"<th>{_inline_html(c).replace('_', '_<wbr>')}</th>" for c in block.header)
        body = "".join("<tr>" + "".join(_td(c) for c in row) + "</tr>" for row in block.rows)
        return f'<div class="table"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    data = base64.b64encode(block.path.read_bytes()).decode("ascii")
    caption = _inline_html(block.caption)
    image = f'<img alt="{html.escape(block.caption)}" src="data:image/png;base64,{data}">'
    return f"<figure>{image}<figcaption>{caption}</figcaption></figure>"


def render_html(doc: Document) -> str:
    """One HTML page with every figure inlined as a base64 PNG, so it needs no other file."""
    body = "\n".join(_html_block(b) for b in doc.blocks)
    title = html.escape(doc.title)
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>"
        f"<style>{_STYLE}</style></head>\n<body>\n<h1>{title}</h1>\n{body}\n</body></html>\n"
    )
