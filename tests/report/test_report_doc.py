"""The document model renders the same blocks to Markdown and HTML."""

from __future__ import annotations

from scalesearch.report.doc import Document, render_html, render_markdown


def test_document_renders_both_ways(tmp_path):
    doc = Document("T")
    doc.heading(1, "Section")
    doc.para("use **this** `spec` <now>")
    doc.table(["a", "b"], [["x|y", 1]])
    md, html = render_markdown(doc, tmp_path), render_html(doc)
    assert md == "# T\n\n## Section\n\nuse **this** `spec` <now>\n\n| a | b |\n|---|---|\n| x\\|y | 1 |\n"
    assert "<p>use <strong>this</strong> <code>spec</code> &lt;now&gt;</p>" in html
    assert "<tr><td>x|y</td><td>1</td></tr>" in html
