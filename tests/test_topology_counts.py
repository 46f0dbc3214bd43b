"""The topology counts report: node lists, figures and per-variant tables with ratios to fpn."""

from scalesearch.topology_counts import Row, render_markdown


def test_report_markdown_tables_and_ratios():
    rows = [Row("d0", "fpn", "sum", 3_000_000, 2_000_000_000, 100_000, 400_000_000),
            Row("d0", "bifpn", "sum", 3_880_010, 2_500_000_000, 150_000, 300_000_000)]
    text = render_markdown(rows, ["fpn", "bifpn"], {"date": "today"}, {"bifpn": "figures/topology_bifpn.png"},
                           {("d0", "bifpn", "sum"): 3_880_010})
    assert "- date: today" in text
    assert "- **bifpn** (8 nodes, 19 edges): `5:P6[3,4] 6:P5[2,5]" in text
    assert "![bifpn](figures/topology_bifpn.png)" in text
    assert "| fpn | sum | 3,000,000 | - | 2.000 | 100,000 | 0.400 | 1.00x | 1.00x |" in text
    assert "| bifpn | sum | 3,880,010 | 3,880,010 (equal) | 2.500 | 150,000 | 0.300 | 1.50x | 0.75x |" in text
